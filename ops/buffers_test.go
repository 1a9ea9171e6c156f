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

// TestKeptBuffersGiveFreshResults: a graph of ops that keep their tensors
// (Linear, GELU, LayerNorm, Add, Narrow, Concat, ReLU, SoftMax and their
// backward ops), run on input A and then on input B by one tape machine,
// gives on B exactly what a fresh graph gives on B — output and gradients —
// and its second run reuses the first run's output tensor.
func TestKeptBuffersGiveFreshResults(t *testing.T) {
	type graph struct {
		m     G.VM
		x     *G.Node
		vals  []G.Value
		close func()
	}
	build := func() graph {
		g := G.NewGraph()
		x := G.NewTensor(g, tensor.Float64, 2, G.WithShape(4, 6), G.WithName("x"))
		w := param(g, "w", gradcheck.Tensor(2, 1, 6, 6))
		gamma := param(g, "gamma", gradcheck.Tensor(3, 1, 6))
		beta := param(g, "beta", gradcheck.Tensor(4, 1, 6))
		h := G.Must(GELU(G.Must(Linear(x, w, nil)), GELUErf))
		h = G.Must(Add(G.Must(LayerNorm(h, gamma, beta, 1e-5)), x))
		h = G.Must(Concat(1, G.Must(ReLU(G.Must(Narrow(h, 1, 0, 3)))), G.Must(Narrow(h, 1, 3, 6))))
		y := G.Must(SoftMax(h, nil, 1))
		r := param(g, "r", gradcheck.Tensor(5, 1, 4, 6))
		grads, err := G.Grad(G.Must(G.Sum(G.Must(G.HadamardProd(y, r)))), w, gamma, beta)
		require.NoError(t, err)
		nodes := append([]*G.Node{y}, grads...)
		vals := make([]G.Value, len(nodes))
		for i, n := range nodes {
			G.Read(n, &vals[i])
		}
		m := G.NewTapeMachine(g)
		return graph{m, x, vals, func() { m.Close() }}
	}
	runOn := func(gr graph, seed uint64) [][]float64 {
		require.NoError(t, G.Let(gr.x, gradcheck.Tensor(seed, 1, 4, 6)))
		gr.m.Reset()
		require.NoError(t, gr.m.RunAll())
		var out [][]float64
		for _, v := range gr.vals {
			out = append(out, append([]float64(nil), asF64(v)...))
		}
		return out
	}
	kept := build()
	defer kept.close()
	runOn(kept, 11)
	first := kept.vals[0].(*tensor.Dense)
	got := runOn(kept, 12)
	assert.Same(t, first, kept.vals[0].(*tensor.Dense), "the second run writes into the first run's output")

	fresh := build()
	defer fresh.close()
	assert.Equal(t, runOn(fresh, 12), got)
}

// TestBuffersDenseAndLike: like zeroes a kept tensor, dense keeps its
// values and fills a new one with NaN; a changed shape gets a new tensor.
func TestBuffersDenseAndLike(t *testing.T) {
	proto := tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(1))
	var b buffers
	d := b.dense(proto, tensor.Shape{2, 3})
	for _, v := range d.Data().([]float32) {
		assert.True(t, math.IsNaN(float64(v)), "a new dense tensor is NaN until written")
	}
	z := b.like(proto, tensor.Shape{4})
	assert.Equal(t, make([]float32, 4), z.Data().([]float32))
	copy(d.Data().([]float32), []float32{1, 2, 3, 4, 5, 6})
	copy(z.Data().([]float32), []float32{7, 8, 9, 10})

	b.next = 0 // the next run
	d2 := b.dense(proto, tensor.Shape{2, 3})
	assert.Same(t, d, d2)
	assert.Equal(t, []float32{1, 2, 3, 4, 5, 6}, d2.Data().([]float32), "dense keeps last run's values")
	z2 := b.like(proto, tensor.Shape{4})
	assert.Same(t, z, z2)
	assert.Equal(t, make([]float32, 4), z2.Data().([]float32), "like zeroes")

	b.next = 0
	d3 := b.dense(proto, tensor.Shape{3, 2})
	assert.NotSame(t, d, d3, "a new shape is a new tensor")
	f64 := b.like(tensor.New(tensor.Of(tensor.Float64), tensor.WithShape(1)), tensor.Shape{4})
	assert.NotSame(t, z, f64, "a new dtype is a new tensor")
	assert.Equal(t, tensor.Float64, f64.Dtype())
}
