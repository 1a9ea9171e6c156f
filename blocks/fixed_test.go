package blocks

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestFixedValueIsSetOnce: a fixed value is in the graph from build time,
// unchanged over runs, and distinct from another of equal contents (unlike
// Gorgonia constants, which merge by name or printout).
func TestFixedValueIsSetOnce(t *testing.T) {
	s := newTestStore(t)
	g := NewGraph(s, Eval, 0)
	a, err := g.Fixed("a", tensor.New(tensor.WithShape(2), tensor.WithBacking([]float64{1, 2})))
	require.NoError(t, err)
	b, err := g.Fixed("b", tensor.New(tensor.WithShape(2), tensor.WithBacking([]float64{1, 2})))
	require.NoError(t, err)
	assert.NotSame(t, a, b)
	_, err = g.Fixed("a", tensor.New(tensor.WithShape(1), tensor.WithBacking([]float64{0})))
	assert.ErrorContains(t, err, `input "a" already exists`)
	_, err = g.Fixed("c", nil)
	assert.ErrorContains(t, err, `fixed value "c" is nil`)
	n, ok := g.InputNode("b")
	require.True(t, ok)
	assert.Same(t, b, n)
	sum := G.Must(G.Add(a, G.Must(G.Mul(b, G.NewConstant(3.0)))))
	var v G.Value
	G.Read(sum, &v)
	vm := G.NewTapeMachine(g.G)
	defer vm.Close()
	for run := 0; run < 3; run++ {
		vm.Reset()
		require.NoError(t, vm.RunAll())
		assert.Equal(t, []float64{4, 8}, v.Data(), "run %d", run)
	}
}
