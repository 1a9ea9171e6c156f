package ops

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/internal/gradcheck"
)

func TestAdditiveScoresGradient(t *testing.T) {
	const B, T, A = 2, 3, 5
	g := G.NewGraph()
	uh := param(g, "uh", gradcheck.Tensor(1, 1, B, T, A))
	ws := param(g, "ws", gradcheck.Tensor(2, 1, B, A))
	v := param(g, "v", gradcheck.Tensor(3, 1, 1, A))
	e, err := AdditiveScores(uh, ws, v)
	require.NoError(t, err)
	assert.Equal(t, tensor.Shape{B, T}, e.Shape())
	res, err := gradcheck.Check(g, []*G.Node{e}, []*G.Node{uh, ws, v}, gradcheck.Config{})
	require.NoError(t, err)
	assert.Equal(t, B*T*A+B*A+A, res.Probes)
}

// TestAdditiveScoresMatchesComposed: the scores and the gradients of
// L = Σ e ⊙ R equal the stock composition blocks' AdditiveAttention used
// (a broadcast add, tanh, the product with v), in float64 and float32.
// Float32 is compared with the float64 composition on the same (float32)
// inputs: the stock float32 one sums e's A terms in float32 and is itself
// a few 1e-6 off at A = 256, where this op accumulates in float64.
func TestAdditiveScoresMatchesComposed(t *testing.T) {
	type result struct{ e, duh, dws, dv []float64 }
	runScores := func(t *testing.T, dt tensor.Dtype, B, T, A int, fused bool) result {
		g := G.NewGraph()
		in := func(seed uint64, shape ...int) *tensor.Dense {
			return castTo(dt, roundTo32(gradcheck.Tensor(seed, 1, shape...)))
		}
		uh, ws, v := param(g, "uh", in(4, B, T, A)), param(g, "ws", in(5, B, A)), param(g, "v", in(6, 1, A))
		r := param(g, "r", in(7, B, T))
		var e *G.Node
		if fused {
			e = G.Must(AdditiveScores(uh, ws, v))
		} else {
			th := G.Must(G.Tanh(G.Must(G.BroadcastAdd(uh, ws, nil, []byte{1}))))
			e = G.Must(G.Reshape(G.Must(Linear(th, v, nil)), tensor.Shape{B, T}))
		}
		cost := G.Must(G.Sum(G.Must(G.HadamardProd(e, r))))
		grads, err := G.Grad(cost, uh, ws, v)
		require.NoError(t, err)
		vals := run(t, g, e, grads[0], grads[1], grads[2])
		return result{asF64(vals[0]), asF64(vals[1]), asF64(vals[2]), asF64(vals[3])}
	}
	for _, tc := range []struct {
		dt      tensor.Dtype
		B, T, A int
		tol     float64
	}{
		{tensor.Float64, 3, 4, 11, 1e-12},
		{tensor.Float64, 2, 20, 256, 1e-12},
		{tensor.Float32, 3, 4, 11, 1e-6},
		{tensor.Float32, 2, 20, 256, 1e-6},
	} {
		t.Run(fmt.Sprintf("%v_A%d", tc.dt, tc.A), func(t *testing.T) {
			ours, ref := runScores(t, tc.dt, tc.B, tc.T, tc.A, true), runScores(t, tensor.Float64, tc.B, tc.T, tc.A, false)
			for _, p := range []struct {
				what      string
				got, want []float64
			}{{"e", ours.e, ref.e}, {"∂uh", ours.duh, ref.duh}, {"∂ws", ours.dws, ref.dws}, {"∂v", ours.dv, ref.dv}} {
				require.Len(t, p.got, len(p.want), p.what)
				for i, w := range p.want {
					require.InDelta(t, w, p.got[i], tc.tol*math.Max(1, math.Abs(w)), "%s[%d]", p.what, i)
				}
			}
		})
	}
}

func TestAdditiveScoresShapeError(t *testing.T) {
	g := G.NewGraph()
	uh := param(g, "uh", gradcheck.Tensor(1, 1, 2, 3, 4))
	for _, tc := range []struct {
		ws, v *tensor.Dense
		shape string
	}{
		{gradcheck.Tensor(2, 1, 3, 4), gradcheck.Tensor(3, 1, 1, 4), "(3, 4)"},
		{gradcheck.Tensor(2, 1, 2, 4), gradcheck.Tensor(3, 1, 4), "(4)"},
		{gradcheck.Tensor(2, 1, 2, 4), gradcheck.Tensor(3, 1, 1, 5), "(1, 5)"},
	} {
		_, err := AdditiveScores(uh, param(g, "ws"+tc.shape, tc.ws), param(g, "v"+tc.shape, tc.v))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "(2, 3, 4)")
		assert.Contains(t, err.Error(), tc.shape)
	}
}

// roundTo32 rounds x's values to float32 precision, kept as float64.
func roundTo32(x *tensor.Dense) *tensor.Dense {
	for i, v := range x.Data().([]float64) {
		x.Data().([]float64)[i] = float64(float32(v))
	}
	return x
}
