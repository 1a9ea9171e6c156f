package ops

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/internal/gradcheck"
)

// TestElementwiseGradients: ReLU (inputs kept away from its kink), Scale
// and WeightedSum against finite differences in float64.
func TestElementwiseGradients(t *testing.T) {
	for _, tc := range []struct {
		name  string
		build func(g *G.ExprGraph) (*G.Node, []*G.Node)
	}{
		{"ReLU", func(g *G.ExprGraph) (*G.Node, []*G.Node) {
			x := gradcheck.Tensor(1, 1, 3, 4, 5)
			for i, v := range x.Data().([]float64) {
				if math.Abs(v) < 0.05 {
					x.Data().([]float64)[i] = 0.3
				}
			}
			xn := param(g, "x", x)
			return G.Must(ReLU(xn)), []*G.Node{xn}
		}},
		{"Scale", func(g *G.ExprGraph) (*G.Node, []*G.Node) {
			x := param(g, "x", gradcheck.Tensor(2, 1, 3, 4))
			return G.Must(Scale(x, -2.5)), []*G.Node{x}
		}},
		{"WeightedSum", func(g *G.ExprGraph) (*G.Node, []*G.Node) {
			a := param(g, "a", gradcheck.Tensor(3, 1, 2, 5))
			h := param(g, "h", gradcheck.Tensor(4, 1, 2, 5, 3))
			return G.Must(WeightedSum(a, h)), []*G.Node{a, h}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := G.NewGraph()
			y, xs := tc.build(g)
			res, err := gradcheck.Check(g, []*G.Node{y}, xs, gradcheck.Config{})
			require.NoError(t, err)
			assert.Positive(t, res.Probes)
		})
	}
}

// TestElementwiseMatchStock: the outputs and input gradients of
// L = Σ y ⊙ R equal the stock compositions they replace — Rectify, Mul by
// a scalar, and the reshaped BatchedMatMul of attention's context — in
// float64 and float32 (ReLU and Scale exactly; WeightedSum to rounding).
func TestElementwiseMatchStock(t *testing.T) {
	cases := []struct {
		name        string
		shapes      [][]int
		ours, stock func(g *G.ExprGraph, in []*G.Node) *G.Node
		exact       bool
	}{
		{"ReLU", [][]int{{3, 4, 5}},
			func(_ *G.ExprGraph, in []*G.Node) *G.Node { return G.Must(ReLU(in[0])) },
			func(_ *G.ExprGraph, in []*G.Node) *G.Node { return G.Must(G.Rectify(in[0])) }, true},
		{"Scale", [][]int{{3, 4}},
			func(_ *G.ExprGraph, in []*G.Node) *G.Node { return G.Must(Scale(in[0], 11.3137)) },
			func(g *G.ExprGraph, in []*G.Node) *G.Node {
				c := G.NewConstant(11.3137)
				if in[0].Dtype() == tensor.Float32 {
					c = G.NewConstant(float32(11.3137))
				}
				return G.Must(G.Mul(in[0], c))
			}, true},
		{"WeightedSum", [][]int{{2, 5}, {2, 5, 3}},
			func(_ *G.ExprGraph, in []*G.Node) *G.Node { return G.Must(WeightedSum(in[0], in[1])) },
			func(_ *G.ExprGraph, in []*G.Node) *G.Node {
				c := G.Must(G.BatchedMatMul(G.Must(G.Reshape(in[0], tensor.Shape{2, 1, 5})), in[1], false, false))
				return G.Must(G.Reshape(c, tensor.Shape{2, 3}))
			}, false},
	}
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		for _, tc := range cases {
			t.Run(dt.String()+"_"+tc.name, func(t *testing.T) {
				runIt := func(ours bool) [][]float64 {
					g := G.NewGraph()
					var in []*G.Node
					for i, s := range tc.shapes {
						// Reshape of an input overwrites it: the stock side reads a copy.
						x := param(g, string(rune('a'+i)), castTo(dt, gradcheck.Tensor(uint64(i+1), 1, s...)))
						in = append(in, x)
					}
					use := in
					if !ours {
						use = make([]*G.Node, len(in))
						for i, x := range in {
							use[i] = G.Must(Scale(x, 1))
						}
					}
					var y *G.Node
					if ours {
						y = tc.ours(g, use)
					} else {
						y = tc.stock(g, use)
					}
					return lossGrads(t, g, y, nil, in...)
				}
				want, got := runIt(false), runIt(true)
				if tc.exact {
					assert.Equal(t, want, got)
					return
				}
				tol := 1e-12
				if dt == tensor.Float32 {
					tol = 1e-5
				}
				require.Len(t, got, len(want))
				for i := range want {
					assert.InDeltaSlice(t, want[i], got[i], tol, "value %d", i)
				}
			})
		}
	}
}

func TestWeightedSumShapeError(t *testing.T) {
	g := G.NewGraph()
	a := param(g, "a", gradcheck.Tensor(1, 1, 2, 4))
	h := param(g, "h", gradcheck.Tensor(2, 1, 2, 5, 3))
	_, err := WeightedSum(a, h)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "(2, 4)")
	assert.Contains(t, err.Error(), "(2, 5, 3)")
}
