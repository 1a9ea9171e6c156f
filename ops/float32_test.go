package ops

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The float32 paths run on internal/vecmath, the float64 ones (which the
// gradient checks test) on package math: the two must agree on the same
// inputs to float32 accuracy.

func randRows(rng *rand.Rand, n int, scale float64) ([]float32, []float64) {
	f32, f64 := make([]float32, n), make([]float64, n)
	for i := range f32 {
		f32[i] = float32(scale * rng.NormFloat64())
		f64[i] = float64(f32[i])
	}
	return f32, f64
}

// near asserts |got − want| ≤ rel·max(|want|, floor) element by element.
func near(t *testing.T, want []float64, got []float32, rel, floor float64, what string) {
	t.Helper()
	require.Len(t, got, len(want))
	for i, w := range want {
		if math.IsInf(w, 0) {
			require.Equal(t, float32(w), got[i], "%s[%d]", what, i)
			continue
		}
		require.InDelta(t, w, float64(got[i]), rel*math.Max(math.Abs(w), floor), "%s[%d]", what, i)
	}
}

func TestFloat32SoftMaxMatchesFloat64(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	const rows, n = 24, 37
	x32, x64 := randRows(rng, rows*n, 4)
	m32, m64 := make([]float32, rows*n), make([]float64, rows*n)
	for i := range m32 {
		if rng.IntN(5) == 0 || i < n { // row 0 fully masked
			m32[i], m64[i] = float32(math.Inf(-1)), math.Inf(-1)
		}
	}
	same := func(r int) int { return r }
	y32, y64 := make([]float32, rows*n), make([]float64, rows*n)
	softmaxRows32(x32, m32, y32, n, 0.7, same)
	softmaxRows(x64, m64, y64, n, 0.7, same)
	// e^x within 1 ulp, x − max rounded to float32 (|x − max| ≲ 30 here).
	near(t, y64, y32, 2e-6, 0, "SoftMax")
	assert.Equal(t, make([]float32, n), y32[:n], "a fully masked row is zeros")

	dy32, dy64 := randRows(rng, rows*n, 1)
	dx32, dx64 := make([]float32, rows*n), make([]float64, rows*n)
	yc := make([]float64, rows*n)
	for i, v := range y32 {
		yc[i] = float64(v)
	}
	softmaxBack(yc, dy64, dx64, n, 0.7)
	softmaxBack32(y32, dy32, dx32, n, 0.7)
	near(t, dx64, dx32, 1e-6, 1e-3, "SoftMaxGrad")

	ls32, ls64 := make([]float32, rows*n), make([]float64, rows*n)
	logSoftmaxRows(x64, ls64, n)
	logSoftmaxRows32(x32, ls32, n)
	// x − lse with lse rounded to float32 first (|lse| < 16 here): within
	// an ulp of lse and one of the result.
	near(t, ls64, ls32, 0x1p-23, 16, "LogSoftMax")
	for i, v := range ls32 {
		yc[i] = float64(v)
	}
	logSoftmaxBack(yc, dy64, dx64, n)
	logSoftmaxBack32(ls32, dy32, dx32, n)
	near(t, dx64, dx32, 1e-6, 1, "LogSoftMaxGrad")
}

func TestFloat32CrossEntropyMatchesFloat64(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	const rows, v = 19, 300
	x32, x64 := randRows(rng, rows*v, 3)
	t32, t64 := make([]float32, rows), make([]float64, rows)
	for i := range t32 {
		c := rng.IntN(v)
		if i%5 == 2 {
			c = -100
		}
		t32[i], t64[i] = float32(c), float64(c)
	}
	for _, eps := range []float64{0, 0.1} {
		l32, err := crossEntropy32(x32, t32, nil, v, -100, eps, 0)
		require.NoError(t, err)
		l64, err := crossEntropy(x64, t64, nil, v, -100, eps, 0)
		require.NoError(t, err)
		assert.InDelta(t, l64, l32, 1e-12*math.Abs(l64)+1e-12, "loss, ε %v", eps) // both in float64 from the same logits
		d32, d64 := make([]float32, rows*v), make([]float64, rows*v)
		_, err = crossEntropy32(x32, t32, d32, v, -100, eps, 0.5)
		require.NoError(t, err)
		_, err = crossEntropy(x64, t64, d64, v, -100, eps, 0.5)
		require.NoError(t, err)
		near(t, d64, d32, 3e-6, 1e-4, "CrossEntropyGrad")
	}
	_, err := crossEntropy32(x32, []float32{0, 300, 1}, nil, v, -100, 0, 0)
	assert.ErrorContains(t, err, "target 300 in row 1")
}

func TestFloat32GELUMatchesFloat64(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	x32, x64 := randRows(rng, 5000, 3)
	dy32, dy64 := randRows(rng, 5000, 1)
	for _, form := range []GELUForm{GELUErf, GELUTanh} {
		y32, y64 := make([]float32, len(x32)), make([]float64, len(x32))
		geluFwd32(x32, y32, form)
		geluFwd(x64, y64, form)
		near(t, y64, y32, 5e-7, 1e-3, "GELU "+form.String())
		geluBack32(x32, dy32, y32, form)
		geluBack(x64, dy64, y64, form)
		// A difference of terms of size |dy|: relative to at least 1.
		near(t, y64, y32, 5e-7, 1, "GELUGrad "+form.String())
	}
}
