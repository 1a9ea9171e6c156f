package ops

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/internal/gradcheck"
)

func TestNarrowSelectGradient(t *testing.T) {
	g := G.NewGraph()
	x := param(g, "x", gradcheck.Tensor(1, 1, 2, 5, 6))
	var outs []*G.Node
	for _, c := range []struct{ axis, start, end int }{{0, 1, 2}, {1, 1, 4}, {2, 2, 6}, {2, 0, 1}} {
		y, err := Narrow(x, c.axis, c.start, c.end)
		require.NoError(t, err)
		outs = append(outs, y)
	}
	s, err := Select(x, 1, 3)
	require.NoError(t, err)
	assert.Equal(t, tensor.Shape{2, 6}, s.Shape())
	outs = append(outs, s)
	res, err := gradcheck.Check(g, outs, []*G.Node{x}, gradcheck.Config{})
	require.NoError(t, err)
	assert.Equal(t, 60, res.Probes)
}

// TestNarrowSelectMatchStockSlice: the same values as G.Slice (at bounds
// where the stock slice is right).
func TestNarrowSelectMatchStockSlice(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		g := G.NewGraph()
		xv := gradcheck.Tensor(2, 1, 3, 4, 8)
		if dt == tensor.Float32 {
			f := make([]float32, xv.Size())
			for i, v := range xv.Data().([]float64) {
				f[i] = float32(v)
			}
			xv = tensor.New(tensor.WithShape(3, 4, 8), tensor.WithBacking(f))
		}
		x := param(g, "x", xv)
		one := G.NewConstant(1.0, G.WithName("one"))
		if dt == tensor.Float32 {
			one = G.NewConstant(float32(1), G.WithName("one"))
		}
		stock := func(n *G.Node) *G.Node { return G.Must(G.Mul(n, one)) } // materialise the view
		pairs := [][2]*G.Node{
			{G.Must(Narrow(x, 2, 2, 6)), stock(G.Must(G.Slice(x, nil, nil, G.S(2, 6))))},
			{G.Must(Narrow(x, 0, 1, 3)), stock(G.Must(G.Slice(x, G.S(1, 3))))},
			{G.Must(Select(x, 1, 2)), stock(G.Must(G.Slice(x, nil, G.S(2))))},
			{G.Must(Select(x, 2, 7)), stock(G.Must(G.Slice(x, nil, nil, G.S(7))))},
		}
		var nodes []*G.Node
		for _, p := range pairs {
			require.Equal(t, p[1].Shape(), p[0].Shape())
			nodes = append(nodes, p[0], p[1])
		}
		v := run(t, g, nodes...)
		for i := 0; i < len(v); i += 2 {
			assert.Equal(t, tensor.Materialize(v[i+1].(tensor.Tensor)).Data(), v[i].Data(), "pair %d, %v", i/2, dt)
		}
	}
}

// TestNarrowDoesNotMergeAcross256: the parts the stock slice merges
// (bounds equal mod 256) are distinct nodes with their own values.
func TestNarrowDoesNotMergeAcross256(t *testing.T) {
	g := G.NewGraph()
	vals := make([]float64, 384*2)
	for i := range vals {
		vals[i] = float64(i)
	}
	x := param(g, "x", tensor.New(tensor.WithShape(384, 2), tensor.WithBacking(vals)))
	a := G.Must(Narrow(x, 0, 0, 128))
	b := G.Must(Narrow(x, 0, 256, 384))
	s0, s256 := G.Must(Select(x, 0, 0)), G.Must(Select(x, 0, 256))
	require.NotSame(t, a, b)
	require.NotSame(t, s0, s256)
	v := run(t, g, a, b, s0, s256)
	assert.Equal(t, 0.0, f64s(v[0])[0])
	assert.Equal(t, 512.0, f64s(v[1])[0])
	assert.Equal(t, []float64{0, 1}, f64s(v[2]))
	assert.Equal(t, []float64{512, 513}, f64s(v[3]))
}

func TestNarrowSelectValidate(t *testing.T) {
	g := G.NewGraph()
	x := param(g, "x", gradcheck.Tensor(1, 1, 2, 3))
	for _, f := range []func() (*G.Node, error){
		func() (*G.Node, error) { return Narrow(x, 2, 0, 1) },
		func() (*G.Node, error) { return Narrow(x, 1, 2, 2) },
		func() (*G.Node, error) { return Narrow(x, 1, 0, 4) },
		func() (*G.Node, error) { return Select(x, 0, 2) },
	} {
		_, err := f()
		assert.ErrorContains(t, err, "(2, 3)")
	}
}
