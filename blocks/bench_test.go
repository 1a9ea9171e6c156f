package blocks

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// The configurations bench/torch_blocks.py times in PyTorch: each benchmark
// is one forward and backward pass of a compiled graph, with
// L = Σ out ⊙ R. BENCHMARKS.md records both sides and the ratio.

func randTensor(rng *rand.Rand, shape ...int) *tensor.Dense {
	v := make([]float32, tensor.Shape(shape).TotalSize())
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(v))
}

func benchGraph(b *testing.B, g *Graph, out *G.Node, x *G.Node) {
	rng := rand.New(rand.NewPCG(1, 1))
	r := valuedB(b, g, "R", randTensor(rng, out.Shape()...))
	cost := G.Must(G.Sum(G.Must(G.HadamardProd(out, r))))
	_, params := g.Params()
	_, err := G.Grad(cost, append(params, x)...)
	require.NoError(b, err)
	m := G.NewTapeMachine(g.G, G.BindDualValues(params...))
	defer m.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.Reset()
		if err := m.RunAll(); err != nil {
			b.Fatal(err)
		}
	}
}

func valuedB(b *testing.B, g *Graph, name string, v *tensor.Dense) *G.Node {
	n, err := g.Input(name, v.Shape(), v.Dtype())
	require.NoError(b, err)
	require.NoError(b, G.Let(n, v))
	return n
}

// BenchmarkMultiHeadAttentionFwdBwd: self-attention, B=16, T=64,
// d_model=128, h=4.
func BenchmarkMultiHeadAttentionFwdBwd(b *testing.B) {
	s, err := NewStore(tensor.Float32, 1)
	require.NoError(b, err)
	m, err := NewMultiHeadAttention(s, "attn", MultiHeadConfig{DModel: 128, Heads: 4})
	require.NoError(b, err)
	g := NewGraph(s, Train, 0)
	rng := rand.New(rand.NewPCG(2, 2))
	x := valuedB(b, g, "x", randTensor(rng, 16, 64, 128))
	out, _, err := m.Forward(g, x, x, nil)
	require.NoError(b, err)
	benchGraph(b, g, out, x)
}

// BenchmarkLSTMFwdBwd: one LSTM layer, B=32, T=20, input 128, hidden 256.
func BenchmarkLSTMFwdBwd(b *testing.B) {
	s, err := NewStore(tensor.Float32, 1)
	require.NoError(b, err)
	l, err := NewLSTM(s, "lstm", 128, 256, 1)
	require.NoError(b, err)
	g := NewGraph(s, Train, 0)
	rng := rand.New(rand.NewPCG(3, 3))
	x := valuedB(b, g, "x", randTensor(rng, 32, 20, 128))
	out, err := l.Forward(g, x, nil, nil, nil)
	require.NoError(b, err)
	benchGraph(b, g, out.Out, x)
}

// BenchmarkAdditiveAttentionFwdBwd: one Bahdanau attention step (the
// seq2seq benchmark's decoder attends this way 20 times a batch), B=32,
// T=20, decoder state, keys and attention 256. For before/after
// comparisons of our own ops; bench/torch_blocks.py has no counterpart.
func BenchmarkAdditiveAttentionFwdBwd(b *testing.B) {
	s, err := NewStore(tensor.Float32, 1)
	require.NoError(b, err)
	a, err := NewAdditiveAttention(s, "attn", 256, 256, 256)
	require.NoError(b, err)
	g := NewGraph(s, Train, 0)
	rng := rand.New(rand.NewPCG(4, 4))
	h := valuedB(b, g, "h", randTensor(rng, 32, 20, 256))
	st := valuedB(b, g, "s", randTensor(rng, 32, 256))
	k, err := a.Precompute(g, h)
	require.NoError(b, err)
	ctx, _, err := a.Attend(g, st, k, nil)
	require.NoError(b, err)
	benchGraph(b, g, ctx, h)
}
