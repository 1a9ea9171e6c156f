package ops

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/internal/gradcheck"
)

// concatCases are inputs' shapes, joined along axis: sizes that differ
// along it, a size-1 part, every axis of a 3-D input, 2-D and 1-D.
var concatCases = []struct {
	axis   int
	shapes [][]int
}{
	{0, [][]int{{2, 3, 4}, {1, 3, 4}, {3, 3, 4}}},
	{1, [][]int{{2, 1, 4}, {2, 3, 4}, {2, 2, 4}}},
	{2, [][]int{{2, 3, 4}, {2, 3, 1}, {2, 3, 5}}},
	{1, [][]int{{3, 5}, {3, 7}}},
	{0, [][]int{{4}, {2}}},
}

func concatInputs(g *G.ExprGraph, dt tensor.Dtype, shapes [][]int) []*G.Node {
	xs := make([]*G.Node, len(shapes))
	for k, s := range shapes {
		xs[k] = param(g, fmt.Sprintf("x%d", k), castTo(dt, gradcheck.Tensor(uint64(k+1), 1, s...)))
	}
	return xs
}

func TestConcatGradient(t *testing.T) {
	for _, tc := range concatCases {
		t.Run(fmt.Sprintf("axis%d_%v", tc.axis, tc.shapes), func(t *testing.T) {
			g := G.NewGraph()
			xs := concatInputs(g, tensor.Float64, tc.shapes)
			y, err := Concat(tc.axis, xs...)
			require.NoError(t, err)
			res, err := gradcheck.Check(g, []*G.Node{y}, xs, gradcheck.Config{})
			require.NoError(t, err)
			assert.Equal(t, y.Shape().TotalSize(), res.Probes)
		})
	}
}

// TestConcatMatchesStock: the output and every input's gradient of
// L = Σ y ⊙ R equal G.Concat's exactly (both only move values), in float64
// and float32.
func TestConcatMatchesStock(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		for _, tc := range concatCases {
			t.Run(fmt.Sprintf("%v_axis%d_%v", dt, tc.axis, tc.shapes), func(t *testing.T) {
				runConcat := func(ours bool) [][]float64 {
					g := G.NewGraph()
					xs := concatInputs(g, dt, tc.shapes)
					var y *G.Node
					var err error
					if ours {
						y, err = Concat(tc.axis, xs...)
					} else {
						y, err = G.Concat(tc.axis, xs...)
					}
					require.NoError(t, err)
					return lossGrads(t, g, y, nil, xs...)
				}
				assert.Equal(t, runConcat(false), runConcat(true))
			})
		}
	}
}

func TestConcatErrors(t *testing.T) {
	g := G.NewGraph()
	n := func(name string, shape ...int) *G.Node { return param(g, name, gradcheck.Tensor(1, 1, shape...)) }
	a := n("a", 2, 3)
	for _, tc := range []struct {
		name string
		axis int
		xs   []*G.Node
		want []string
	}{
		{"none", 0, nil, []string{"no inputs"}},
		{"axis", 2, []*G.Node{a, a}, []string{"axis 2", "(2, 3)"}},
		{"negative axis", -1, []*G.Node{a, a}, []string{"axis -1"}},
		{"rank", 1, []*G.Node{a, n("b", 2, 3, 1)}, []string{"(2, 3, 1)", "(2, 3)", "ranks"}},
		{"other axis", 1, []*G.Node{a, n("c", 3, 3)}, []string{"(3, 3)", "(2, 3)", "axis 1"}},
	} {
		_, err := Concat(tc.axis, tc.xs...)
		require.Error(t, err, tc.name)
		for _, w := range tc.want {
			assert.Contains(t, err.Error(), w, tc.name)
		}
	}
	y, err := Concat(1, a)
	require.NoError(t, err)
	assert.Same(t, a, y, "one input is itself")
}
