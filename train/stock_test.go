package train

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestStockAdamWStillDoesNothing pins the Gorgonia bug our own AdamW works
// around: its Step updates a copy, so the weights never change.
func TestStockAdamWStillDoesNothing(t *testing.T) {
	g := G.NewGraph()
	w := G.NewTensor(g, tensor.Float64, 1, G.WithShape(3), G.WithName("w"),
		G.WithValue(tensor.New(tensor.WithBacking([]float64{1, 2, 3}))))
	cost := G.Must(G.Sum(G.Must(G.Square(w))))
	_, err := G.Grad(cost, w)
	require.NoError(t, err)
	m := G.NewTapeMachine(g, G.BindDualValues(w))
	defer m.Close()
	require.NoError(t, m.RunAll())
	require.NoError(t, G.NewAdamW(G.WithLearnRate(0.1)).Step(G.NodesToValueGrads(G.Nodes{w})))
	assert.Equal(t, []float64{1, 2, 3}, w.Value().Data(), "stock AdamW now changes the weights: the workaround may be retired")
}
