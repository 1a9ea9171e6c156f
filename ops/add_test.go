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

func TestAddGradient(t *testing.T) {
	for _, s := range [][]int{{3}, {2, 5}, {2, 3, 4}} {
		t.Run(fmt.Sprint(s), func(t *testing.T) {
			g := G.NewGraph()
			a := param(g, "a", gradcheck.Tensor(1, 1, s...))
			b := param(g, "b", gradcheck.Tensor(2, 1, s...))
			y, err := Add(a, b)
			require.NoError(t, err)
			res, err := gradcheck.Check(g, []*G.Node{y}, []*G.Node{a, b}, gradcheck.Config{})
			require.NoError(t, err)
			assert.Equal(t, 2*y.Shape().TotalSize(), res.Probes, "every element of a and b probed")
		})
	}
}

// TestAddMatchesStock: the sum and both gradients of L = Σ (a + b) ⊙ R, with
// a also read elsewhere (its gradient is then a sum), equal G.Add's exactly.
func TestAddMatchesStock(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		t.Run(dt.String(), func(t *testing.T) {
			runAdd := func(ours bool) [][]float64 {
				g := G.NewGraph()
				a := param(g, "a", castTo(dt, gradcheck.Tensor(1, 1, 2, 3, 4)))
				b := param(g, "b", castTo(dt, gradcheck.Tensor(2, 1, 2, 3, 4)))
				add := G.Add
				if ours {
					add = Add
				}
				y := G.Must(add(a, b))
				return lossGrads(t, g, y, G.Must(G.Sum(G.Must(G.Square(a)))), a, b)
			}
			assert.Equal(t, runAdd(false), runAdd(true))
		})
	}
}

func TestAddShapeError(t *testing.T) {
	g := G.NewGraph()
	a := param(g, "a", gradcheck.Tensor(1, 1, 2, 3))
	for _, b := range []*G.Node{param(g, "b", gradcheck.Tensor(1, 1, 3, 2)), param(g, "c", gradcheck.Tensor(1, 1, 6))} {
		_, err := Add(a, b)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "(2, 3)")
		assert.Contains(t, err.Error(), fmt.Sprint(b.Shape()))
	}
}

// TestRowsGradient: a [5, 3] table and the same 15 numbers as [1, 5, 3]
// (rows of the leading axes flattened); rows 1 and 3 have no id, so a zero
// gradient.
func TestRowsGradient(t *testing.T) {
	for _, ts := range [][]int{{5, 3}, {1, 5, 3}} {
		g := G.NewGraph()
		table := param(g, "table", gradcheck.Tensor(1, 1, ts...))
		ids := G.NewTensor(g, tensor.Int, 1, G.WithShape(6), G.WithName("ids"),
			G.WithValue(tensor.New(tensor.WithBacking([]int{4, 0, 4, 2, 2, 4}))))
		y, err := Rows(table, ids, tensor.Shape{2, 3, 3})
		require.NoError(t, err)
		res, err := gradcheck.Check(g, []*G.Node{y}, []*G.Node{table}, gradcheck.Config{})
		require.NoError(t, err)
		assert.Equal(t, 15, res.Probes, "table %v: every element probed", ts)
	}
}

// TestRowsMatchesByIndices: the rows and the table's gradient (repeated ids,
// an id never used) equal G.ByIndices + Reshape's exactly, and a second run
// on other ids (the op's kept tensors reused) equals a fresh graph's.
func TestRowsMatchesByIndices(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		t.Run(dt.String(), func(t *testing.T) {
			build := func(ours bool) (*G.ExprGraph, *G.Node, []*G.Node) {
				g := G.NewGraph()
				table := param(g, "table", castTo(dt, gradcheck.Tensor(1, 1, 5, 3)))
				ids := G.NewTensor(g, tensor.Int, 1, G.WithShape(6), G.WithName("ids"))
				var y *G.Node
				if ours {
					y = G.Must(Rows(table, ids, tensor.Shape{2, 3, 3}))
				} else {
					y = G.Must(G.Reshape(G.Must(G.ByIndices(table, ids, 0)), tensor.Shape{2, 3, 3}))
				}
				r := param(g, "r", castTo(dt, gradcheck.Tensor(3, 1, 2, 3, 3)))
				grads, err := G.Grad(G.Must(G.Sum(G.Must(G.HadamardProd(y, r)))), table)
				require.NoError(t, err)
				return g, ids, []*G.Node{y, grads[0]}
			}
			runOn := func(ours bool, runs [][]int) [][]float64 {
				g, ids, nodes := build(ours)
				vals := make([]G.Value, len(nodes))
				for i, n := range nodes {
					G.Read(n, &vals[i])
				}
				m := G.NewTapeMachine(g)
				defer m.Close()
				var out [][]float64
				for _, r := range runs {
					require.NoError(t, G.Let(ids, tensor.New(tensor.WithBacking(r))))
					m.Reset()
					require.NoError(t, m.RunAll())
					for _, v := range vals {
						out = append(out, asF64(v))
					}
				}
				return out
			}
			first, second := []int{4, 0, 4, 2, 2, 4}, []int{1, 1, 3, 0, 2, 1}
			want := append(runOn(false, [][]int{first}), runOn(false, [][]int{second})...)
			assert.Equal(t, want, runOn(true, [][]int{first, second}))
		})
	}
}

func TestRowsErrors(t *testing.T) {
	g := G.NewGraph()
	table := param(g, "table", gradcheck.Tensor(1, 1, 5, 3))
	ids := G.NewTensor(g, tensor.Int, 1, G.WithShape(2), G.WithName("ids"))
	_, err := Rows(table, ids, tensor.Shape{2, 2})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "(2, 2)")

	y, err := Rows(table, ids, tensor.Shape{1, 2, 3})
	require.NoError(t, err)
	require.NoError(t, G.Let(ids, tensor.New(tensor.WithBacking([]int{1, 5}))))
	m := G.NewTapeMachine(g)
	defer m.Close()
	err = m.RunAll()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "id 5 at position 1")
	_ = y
}
