package train

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSchedulesMatchTorchLambdaLR compares each schedule with the learning
// rate that torch's LambdaLR hands the optimizer at updates 1, 2, ….
func TestSchedulesMatchTorchLambdaLR(t *testing.T) {
	var fx map[string]struct {
		Config map[string]float64 `json:"config"`
		LRs    []float64          `json:"lrs"`
	}
	loadFixture(t, "schedules.json", &fx)
	require.Len(t, fx, 3)
	for name, c := range fx {
		var s Schedule
		var err error
		switch name {
		case "noam":
			s, err = NewNoam(int(c.Config["d_model"]), int(c.Config["warmup"]), c.Config["factor"])
		case "cosine", "linear":
			d := Cosine
			if name == "linear" {
				d = Linear
			}
			s, err = NewWarmupDecay(c.Config["peak"], c.Config["min"], int(c.Config["warmup"]), int(c.Config["total"]), d)
		}
		require.NoError(t, err, name)
		for i, want := range c.LRs {
			assert.InDelta(t, want, s.LR(i+1), 1e-15+1e-12*want, "%s at update %d", name, i+1)
		}
	}
}

func TestNoamPeaksAtWarmup(t *testing.T) {
	n, err := NewNoam(512, 4000, 1)
	require.NoError(t, err)
	peak := n.LR(4000)
	assert.InDelta(t, 1/(22.627416997969522*63.245553203367585), peak, 1e-15)
	assert.Less(t, n.LR(3999), peak)
	assert.Less(t, n.LR(4001), peak)
	assert.Equal(t, 0.5, float64(Constant(0.5).LR(7)))
}

func TestScheduleValidation(t *testing.T) {
	_, err := NewNoam(0, 10, 1)
	assert.ErrorContains(t, err, "d_model 0")
	_, err = NewNoam(8, -1, 1)
	assert.ErrorContains(t, err, "warm-up -1")
	_, err = NewWarmupDecay(1e-3, 0, 10, 10, Cosine)
	assert.ErrorContains(t, err, "warm-up 10 and total 10")
	_, err = NewWarmupDecay(1e-3, 2e-3, 1, 10, Cosine)
	assert.ErrorContains(t, err, "final rate 0.002")
}
