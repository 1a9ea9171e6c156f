package blocks

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/internal/gradcheck"
)

// Finite-difference checks of every block in float64, with a batch of 2 or
// more and padding wherever the block takes a mask. Parameters and float
// inputs are all differentiated.

func newStore64(t *testing.T) *Store {
	s, err := NewStore(tensor.Float64, 3)
	require.NoError(t, err)
	return s
}

// valued adds an input node with a fixed value (so the checker can perturb it).
func valued(t *testing.T, g *Graph, name string, v *tensor.Dense) *G.Node {
	n, err := g.Input(name, v.Shape(), v.Dtype())
	require.NoError(t, err)
	require.NoError(t, G.Let(n, v))
	return n
}

func checkGrad(t *testing.T, g *Graph, outs []*G.Node, inputs ...*G.Node) {
	t.Helper()
	_, params := g.Params()
	res, err := gradcheck.Check(g.G, outs, append(params, inputs...), gradcheck.Config{Tol: 1e-6})
	require.NoError(t, err)
	require.Greater(t, res.Probes, 0)
}

func TestGradientLinearAndLayerNorm(t *testing.T) {
	s := newStore64(t)
	l, err := NewLinear(s, "proj", LinearConfig{In: 4, Out: 3})
	require.NoError(t, err)
	ln, err := NewLayerNorm(s, "ln", 3, 0)
	require.NoError(t, err)
	require.NoError(t, s.Set("ln.weight", []float64{0.5, -1.2, 2}))
	require.NoError(t, s.Set("ln.bias", []float64{0.1, 0.2, -0.3}))
	g := NewGraph(s, Eval, 0)
	x := valued(t, g, "x", gradcheck.Tensor(1, 1, 2, 3, 4))
	y, err := l.Forward(g, x)
	require.NoError(t, err)
	y, err = ln.Forward(g, y)
	require.NoError(t, err)
	checkGrad(t, g, []*G.Node{y}, x)
}

func TestGradientEmbeddingAndPositions(t *testing.T) {
	s := newStore64(t)
	e, err := NewEmbedding(s, "tokens_embed", 7, 4, nil)
	require.NoError(t, err)
	pos, err := NewLearnedPositions(s, "positions_embed", 5, 4, nil)
	require.NoError(t, err)
	g := NewGraph(s, Eval, 0)
	ids, err := IDs([]int{1, 3, 3, 6, 0, 1}, 7)
	require.NoError(t, err)
	pids, err := IDs(PositionIDs(2, 3, 0), 5)
	require.NoError(t, err)
	u, err := e.Forward(g, valued(t, g, "ids", ids), 2, 3)
	require.NoError(t, err)
	p, err := pos.Forward(g, valued(t, g, "pos", pids), 2, 3)
	require.NoError(t, err)
	h, err := G.Add(u, p)
	require.NoError(t, err)
	h, err = AddSinusoidal(g, h)
	require.NoError(t, err)
	checkGrad(t, g, []*G.Node{h})
}

func TestGradientLSTMPadded(t *testing.T) {
	s := newStore64(t)
	l, err := NewLSTM(s, "lstm", 3, 4, 2)
	require.NoError(t, err)
	g := NewGraph(s, Eval, 0)
	x := valued(t, g, "x", gradcheck.Tensor(2, 1, 3, 4, 3))
	keep, err := StepMask(tensor.Float64, []int{4, 2, 1}, 4, 4)
	require.NoError(t, err)
	out, err := l.Forward(g, x, valued(t, g, "keep", keep), nil, nil)
	require.NoError(t, err)
	checkGrad(t, g, []*G.Node{out.Out, out.H[1], out.C[0]}, x)
}

func TestGradientBiLSTMPadded(t *testing.T) {
	s := newStore64(t)
	l, err := NewBiLSTM(s, "lstm", 2, 3, 2)
	require.NoError(t, err)
	g := NewGraph(s, Eval, 0)
	x := valued(t, g, "x", gradcheck.Tensor(2, 1, 3, 4, 2))
	keep, err := StepMask(tensor.Float64, []int{4, 2, 1}, 4, 3)
	require.NoError(t, err)
	h0 := make([]*G.Node, 4)
	for k := range h0 {
		h0[k] = valued(t, g, fmt.Sprintf("h0_%d", k), gradcheck.Tensor(uint64(10+k), 0.5, 3, 3))
	}
	out, err := l.Forward(g, x, valued(t, g, "keep", keep), h0, nil)
	require.NoError(t, err)
	require.Equal(t, tensor.Shape{3, 4, 6}, out.Out.Shape())
	require.Len(t, out.H, 4)
	// 16 probes a tensor, spread evenly, keep the check to a second.
	_, params := g.Params()
	res, err := gradcheck.Check(g.G, []*G.Node{out.Out, out.H[1], out.H[3], out.C[2]},
		append(append(params, x), h0...), gradcheck.Config{Tol: 1e-6, MaxProbes: 16})
	require.NoError(t, err)
	require.Greater(t, res.Probes, 200)
}

func TestGradientLSTMCell(t *testing.T) {
	s := newStore64(t)
	c, err := NewLSTMCell(s, "cell", 3, 4)
	require.NoError(t, err)
	g := NewGraph(s, Eval, 0)
	x := valued(t, g, "x", gradcheck.Tensor(3, 1, 2, 3))
	h0 := valued(t, g, "h0", gradcheck.Tensor(4, 1, 2, 4))
	c0 := valued(t, g, "c0", gradcheck.Tensor(5, 1, 2, 4))
	h, cc, err := c.Forward(g, x, h0, c0)
	require.NoError(t, err)
	checkGrad(t, g, []*G.Node{h, cc}, x, h0, c0)
}

func TestGradientMultiHeadAttentionMasked(t *testing.T) {
	for _, tc := range []struct {
		name   string
		causal bool
		cross  bool
	}{{"self_causal", true, false}, {"cross_padded", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore64(t)
			m, err := NewMultiHeadAttention(s, "attn", MultiHeadConfig{DModel: 6, Heads: 2})
			require.NoError(t, err)
			require.NoError(t, s.Set("attn.in_proj_bias", gradcheck.Tensor(9, 0.5, 18).Data().([]float64)))
			g := NewGraph(s, Eval, 0)
			q := valued(t, g, "q", gradcheck.Tensor(6, 1, 2, 4, 6))
			mem, tk := q, 4
			inputs := []*G.Node{q}
			if tc.cross {
				tk = 5
				mem = valued(t, g, "mem", gradcheck.Tensor(7, 1, 2, 5, 6))
				inputs = append(inputs, mem)
			}
			mask, err := AttentionMask(tensor.Float64, 2, 4, tk, []int{tk, 2}, tc.causal)
			require.NoError(t, err)
			out, w, err := m.Forward(g, q, mem, valued(t, g, "mask", mask))
			require.NoError(t, err)
			checkGrad(t, g, []*G.Node{out, w}, inputs...)
		})
	}
}

func TestGradientAdditiveAttentionPadded(t *testing.T) {
	s := newStore64(t)
	a, err := NewAdditiveAttention(s, "attn", 3, 4, 5)
	require.NoError(t, err)
	g := NewGraph(s, Eval, 0)
	h := valued(t, g, "h", gradcheck.Tensor(8, 1, 2, 4, 4))
	st := valued(t, g, "s", gradcheck.Tensor(9, 1, 2, 3))
	keys, err := a.Precompute(g, h)
	require.NoError(t, err)
	mask, err := PaddingMask(tensor.Float64, []int{4, 2}, 4)
	require.NoError(t, err)
	ctx, alpha, err := a.Attend(g, st, keys, valued(t, g, "mask", mask))
	require.NoError(t, err)
	checkGrad(t, g, []*G.Node{ctx, alpha}, h, st)
}

func TestGradientMultiplicativeAttentionPadded(t *testing.T) {
	for _, score := range []Score{Dot, General} {
		t.Run(string(score), func(t *testing.T) {
			s := newStore64(t)
			a, err := NewAttention(s, "attn", score, 4, 4, 0)
			require.NoError(t, err)
			g := NewGraph(s, Eval, 0)
			h := valued(t, g, "h", gradcheck.Tensor(8, 1, 2, 4, 4))
			st := valued(t, g, "s", gradcheck.Tensor(9, 1, 2, 4))
			keys, err := a.Precompute(g, h)
			require.NoError(t, err)
			mask, err := PaddingMask(tensor.Float64, []int{4, 2}, 4)
			require.NoError(t, err)
			ctx, alpha, err := a.Attend(g, st, keys, valued(t, g, "mask", mask))
			require.NoError(t, err)
			checkGrad(t, g, []*G.Node{ctx, alpha}, h, st)
		})
	}
	_, err := NewAttention(newStore64(t), "x", Dot, 4, 8, 0)
	require.ErrorContains(t, err, "one size")
	_, err = NewAttention(newStore64(t), "x", "cosine", 4, 8, 0)
	require.ErrorContains(t, err, `"cosine"`)
}

func TestGradientSDPA(t *testing.T) {
	g := NewGraph(newStore64(t), Eval, 0)
	q := valued(t, g, "q", gradcheck.Tensor(1, 1, 2, 3, 4))
	k := valued(t, g, "k", gradcheck.Tensor(2, 1, 2, 5, 4))
	v := valued(t, g, "v", gradcheck.Tensor(3, 1, 2, 5, 2))
	mask, err := AttentionMask(tensor.Float64, 2, 3, 5, []int{5, 3}, false)
	require.NoError(t, err)
	out, w, err := ScaledDotProductAttention(g, q, k, v, valued(t, g, "mask", mask), 0)
	require.NoError(t, err)
	checkGrad(t, g, []*G.Node{out, w}, q, k, v)
}

func TestGradientFeedForward(t *testing.T) {
	for _, act := range []Activation{ReLU, GELU, GELUExact, SiLU} {
		t.Run(act.String(), func(t *testing.T) {
			s := newStore64(t)
			f, err := NewFeedForward(s, "mlp", FeedForwardConfig{DModel: 4, DFF: 8, Activation: act})
			require.NoError(t, err)
			g := NewGraph(s, Eval, 0)
			x := valued(t, g, "x", gradcheck.Tensor(4, 1, 2, 3, 4))
			y, err := f.Forward(g, x)
			require.NoError(t, err)
			checkGrad(t, g, []*G.Node{y}, x)
		})
	}
}

func TestGradientDropoutInTrainingGraph(t *testing.T) {
	s := newStore64(t)
	f, err := NewFeedForward(s, "mlp", FeedForwardConfig{DModel: 4, DFF: 8, Dropout: 0.3})
	require.NoError(t, err)
	g := NewGraph(s, Train, 11)
	x := valued(t, g, "x", gradcheck.Tensor(4, 1, 2, 3, 4))
	y, err := f.Forward(g, x)
	require.NoError(t, err)
	_, params := g.Params()
	_, err = gradcheck.Check(g.G, []*G.Node{y}, append(params, x), gradcheck.Config{BeforeRun: func() { g.Dropout.Calls = 0 }})
	require.NoError(t, err)
}
