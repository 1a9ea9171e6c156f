package train

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/ops"
)

// TestCrossEntropyMatchesTorch checks the training loss, ops.CrossEntropy,
// against F.cross_entropy's loss and gradient on logits spread wide enough
// (×30, ×50) to break a log-softmax that does not subtract each row's own
// maximum, with ignore_index (−100 and a pad id 0) and label smoothing.
func TestCrossEntropyMatchesTorch(t *testing.T) {
	var fx map[string]struct {
		IgnoreIndex int       `json:"ignore_index"`
		Smoothing   float64   `json:"smoothing"`
		Logits      fixTensor `json:"logits"`
		Targets     []int     `json:"targets"`
		Loss        float64   `json:"loss"`
		Grad        []float64 `json:"grad"`
	}
	loadFixture(t, "cross_entropy.json", &fx)
	require.Len(t, fx, 3)
	for name, c := range fx {
		for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
			g := G.NewGraph()
			lv := c.Logits.dense(dt)
			logits := G.NewTensor(g, dt, 2, G.WithShape(lv.Shape()...), G.WithName("logits"), G.WithValue(lv))
			tg := make([]float64, len(c.Targets))
			for i, id := range c.Targets {
				tg[i] = float64(id)
			}
			tv := fixTensor{Shape: []int{len(tg)}, Data: tg}.dense(dt)
			targets := G.NewTensor(g, dt, 1, G.WithShape(len(tg)), G.WithName("targets"), G.WithValue(tv))
			loss, err := ops.CrossEntropy(logits, targets, c.IgnoreIndex, c.Smoothing)
			require.NoError(t, err)
			grads, err := G.Grad(loss, logits)
			require.NoError(t, err)
			var lossV, gradV G.Value
			G.Read(loss, &lossV)
			G.Read(grads[0], &gradV)
			m := G.NewTapeMachine(g)
			require.NoError(t, m.RunAll())
			require.NoError(t, m.Close())
			tol := 1e-6
			if dt == tensor.Float32 {
				tol = 2e-5
			}
			lossF, err := scalar(lossV)
			require.NoError(t, err)
			assert.InDelta(t, c.Loss, lossF, tol*math.Max(1, c.Loss), "%s %v loss", name, dt)
			got := f64s(gradV.(*tensor.Dense))
			for i, want := range c.Grad {
				assert.InDelta(t, want, got[i], tol, "%s %v grad[%d]", name, dt, i)
			}
		}
	}
}
