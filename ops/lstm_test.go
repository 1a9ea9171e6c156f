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

func TestLSTMCellGradient(t *testing.T) {
	const B, H = 3, 5
	g := G.NewGraph()
	// Gates of std 2 reach the saturated parts of σ and tanh.
	z := param(g, "z", gradcheck.Tensor(1, 2, B, 4*H))
	c := param(g, "c", gradcheck.Tensor(2, 1, B, H))
	cNew, err := LSTMCellState(z, c)
	require.NoError(t, err)
	h, err := LSTMHidden(z, cNew)
	require.NoError(t, err)
	// h alone on c (not through c_t): LSTMHidden's gradient to its own
	// inputs, apart from LSTMCellState's.
	hc, err := LSTMHidden(z, c)
	require.NoError(t, err)
	res, err := gradcheck.Check(g, []*G.Node{cNew, h, hc}, []*G.Node{z, c}, gradcheck.Config{})
	require.NoError(t, err)
	assert.Equal(t, B*4*H+B*H, res.Probes)
}

// composedLSTM is the cell as blocks wrote it before the fused ops: four
// Narrow slices, stock sigmoid and tanh, Hadamard products and an add.
func composedLSTM(z, c *G.Node, H int) (cNew, h *G.Node) {
	gate := func(k int, act func(*G.Node) (*G.Node, error)) *G.Node {
		return G.Must(act(G.Must(Narrow(z, 1, k*H, (k+1)*H))))
	}
	i, f, gg, o := gate(0, G.Sigmoid), gate(1, G.Sigmoid), gate(2, G.Tanh), gate(3, G.Sigmoid)
	cNew = G.Must(G.Add(G.Must(G.HadamardProd(f, c)), G.Must(G.HadamardProd(i, gg))))
	return cNew, G.Must(G.HadamardProd(o, G.Must(G.Tanh(cNew))))
}

// TestLSTMCellMatchesComposed: forward values and the gradients of
// L = Σ c_t ⊙ R₁ + Σ h_t ⊙ R₂ with respect to z and c_{t−1} equal the stock
// composition's, in float64 and float32, at sizes with a partial vector
// step (H = 13) and at the benchmark's H = 256.
func TestLSTMCellMatchesComposed(t *testing.T) {
	type result struct{ c, h, dz, dc []float64 }
	runCell := func(t *testing.T, dt tensor.Dtype, B, H int, fused bool) result {
		g := G.NewGraph()
		z := param(g, "z", castTo(dt, gradcheck.Tensor(3, 2, B, 4*H)))
		c := param(g, "c", castTo(dt, gradcheck.Tensor(4, 1, B, H)))
		r1 := param(g, "r1", castTo(dt, gradcheck.Tensor(5, 1, B, H)))
		r2 := param(g, "r2", castTo(dt, gradcheck.Tensor(6, 1, B, H)))
		var cNew, h *G.Node
		if fused {
			cNew = G.Must(LSTMCellState(z, c))
			h = G.Must(LSTMHidden(z, cNew))
		} else {
			cNew, h = composedLSTM(z, c, H)
		}
		cost := G.Must(G.Add(G.Must(G.Sum(G.Must(G.HadamardProd(cNew, r1)))), G.Must(G.Sum(G.Must(G.HadamardProd(h, r2))))))
		grads, err := G.Grad(cost, z, c)
		require.NoError(t, err)
		v := run(t, g, cNew, h, grads[0], grads[1])
		return result{asF64(v[0]), asF64(v[1]), asF64(v[2]), asF64(v[3])}
	}
	for _, tc := range []struct {
		dt   tensor.Dtype
		B, H int
		tol  float64
	}{
		{tensor.Float64, 4, 13, 1e-12},
		{tensor.Float64, 2, 256, 1e-12},
		{tensor.Float32, 4, 13, 1e-6},
		{tensor.Float32, 2, 256, 1e-6},
	} {
		t.Run(fmt.Sprintf("%v_H%d", tc.dt, tc.H), func(t *testing.T) {
			ours, ref := runCell(t, tc.dt, tc.B, tc.H, true), runCell(t, tc.dt, tc.B, tc.H, false)
			for _, p := range []struct {
				what      string
				got, want []float64
			}{{"c_t", ours.c, ref.c}, {"h_t", ours.h, ref.h}, {"∂z", ours.dz, ref.dz}, {"∂c", ours.dc, ref.dc}} {
				require.Len(t, p.got, len(p.want), p.what)
				for i, w := range p.want {
					require.InDelta(t, w, p.got[i], tc.tol*math.Max(1, math.Abs(w)), "%s[%d], B %d H %d", p.what, i, tc.B, tc.H)
				}
			}
		})
	}
}

func TestLSTMCellShapeErrors(t *testing.T) {
	g := G.NewGraph()
	z := param(g, "z", gradcheck.Tensor(1, 1, 2, 12))
	for _, tc := range []struct {
		name  string
		f     func(z, c *G.Node) (*G.Node, error)
		c     *tensor.Dense
		shape string
	}{
		{"LSTMCellState", LSTMCellState, gradcheck.Tensor(2, 1, 2, 4), "(2, 4)"},
		{"LSTMCellState", LSTMCellState, gradcheck.Tensor(2, 1, 3, 3), "(3, 3)"},
		{"LSTMHidden", LSTMHidden, gradcheck.Tensor(2, 1, 2, 4), "(2, 4)"},
		{"LSTMHidden", LSTMHidden, gradcheck.Tensor(2, 1, 6), "(6)"},
	} {
		_, err := tc.f(z, param(g, "c"+tc.shape, tc.c))
		require.Error(t, err, tc.name)
		assert.Contains(t, err.Error(), tc.name)
		assert.Contains(t, err.Error(), "(2, 12)")
		assert.Contains(t, err.Error(), tc.shape)
	}
}

func castTo(dt tensor.Dtype, x *tensor.Dense) *tensor.Dense {
	if dt == tensor.Float64 {
		return x
	}
	f := make([]float32, x.Size())
	for i, v := range x.Data().([]float64) {
		f[i] = float32(v)
	}
	return tensor.New(tensor.WithShape(x.Shape().Clone()...), tensor.WithBacking(f))
}

func asF64(v G.Value) []float64 {
	switch d := v.Data().(type) {
	case []float64:
		return append([]float64(nil), d...)
	case []float32:
		out := make([]float64, len(d))
		for i, x := range d {
			out[i] = float64(x)
		}
		return out
	}
	panic("not a float tensor")
}
