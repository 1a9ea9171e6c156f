package blocks

import (
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func TestStoreDeterministicAndValidated(t *testing.T) {
	build := func(order []string) *Store {
		s, err := NewStore(tensor.Float32, 42)
		require.NoError(t, err)
		for _, n := range order {
			_, err := NewLinear(s, n, LinearConfig{In: 3, Out: 2})
			require.NoError(t, err)
		}
		return s
	}
	a, b := build([]string{"a", "b"}), build([]string{"b", "a"})
	for _, n := range a.Names() {
		ta, _ := a.Get(n)
		tb, _ := b.Get(n)
		assert.Equal(t, ta.Data(), tb.Data(), n)
	}
	wa, _ := a.Get("a.weight")
	wb, _ := a.Get("b.weight")
	assert.NotEqual(t, wa.Data(), wb.Data())
	// U(-1/√3, 1/√3), nn.Linear's default.
	for _, v := range wa.Data().([]float32) {
		assert.Less(t, math.Abs(float64(v)), 1/math.Sqrt(3))
	}
	c, err := NewStore(tensor.Float32, 43)
	require.NoError(t, err)
	_, err = NewLinear(c, "a", LinearConfig{In: 3, Out: 2})
	require.NoError(t, err)
	wc, _ := c.Get("a.weight")
	assert.NotEqual(t, wa.Data(), wc.Data())

	_, err = NewLinear(a, "a", LinearConfig{In: 3, Out: 2})
	assert.ErrorContains(t, err, `"a.weight" already exists`)
	assert.ErrorContains(t, a.Set("a.weight", []float64{1}), "(2, 3)")
	_, err = NewStore(tensor.Int, 1)
	assert.Error(t, err)
}

func TestConstructorsValidate(t *testing.T) {
	s := newTestStore(t)
	_, err := NewMultiHeadAttention(s, "m", MultiHeadConfig{DModel: 10, Heads: 3})
	assert.ErrorContains(t, err, "d_model 10 is not divisible by 3 heads")
	_, err = NewMultiHeadAttention(s, "m", MultiHeadConfig{DModel: 8, Heads: 2, Dropout: -0.1})
	assert.ErrorContains(t, err, "-0.1")
	_, err = NewLinear(s, "l", LinearConfig{In: 0, Out: 3})
	assert.ErrorContains(t, err, "got 0")
	_, err = NewFeedForward(s, "f", FeedForwardConfig{DModel: 4, DFF: 8, Dropout: 1})
	assert.ErrorContains(t, err, "dropout 1")
	_, err = NewLSTM(s, "lstm", 4, 0, 1)
	assert.Error(t, err)
	_, err = NewLayerNorm(s, "ln", 4, -1)
	assert.Error(t, err)
	_, err = NewEmbedding(s, "e", 0, 4, nil)
	assert.Error(t, err)
	_, err = AttentionMask(tensor.Float32, 2, 3, 3, []int{3}, false)
	assert.ErrorContains(t, err, "1 key lengths for batch 2")
	_, err = PaddingMask(tensor.Float32, []int{0}, 3)
	assert.Error(t, err)
	_, err = IDs([]int{1, 9}, 5)
	assert.ErrorContains(t, err, "token id 9 at position 1")
}

// TestRunsLeaveInputsAndParamsUnchanged guards against Gorgonia's in-place
// Reshape: running a graph of every block, forward and backward, many
// times must not change any input or parameter tensor.
func TestRunsLeaveInputsAndParamsUnchanged(t *testing.T) {
	s := newTestStore(t)
	e, err := NewEmbedding(s, "emb", 11, 8, nil)
	require.NoError(t, err)
	m, err := NewMultiHeadAttention(s, "attn", MultiHeadConfig{DModel: 8, Heads: 2})
	require.NoError(t, err)
	f, err := NewFeedForward(s, "mlp", FeedForwardConfig{DModel: 8, DFF: 16, Activation: GELU})
	require.NoError(t, err)
	ln, err := NewLayerNorm(s, "ln", 8, 0)
	require.NoError(t, err)
	l, err := NewLSTM(s, "lstm", 8, 8, 1)
	require.NoError(t, err)
	a, err := NewAdditiveAttention(s, "add", 8, 8, 4)
	require.NoError(t, err)

	g := NewGraph(s, Train, 5)
	ids, err := IDs([]int{1, 2, 3, 4, 5, 6, 7, 8}, 11)
	require.NoError(t, err)
	idn := valued(t, g, "ids", ids)
	mask, err := AttentionMask(tensor.Float32, 2, 4, 4, []int{4, 3}, true)
	require.NoError(t, err)
	maskn := valued(t, g, "mask", mask)
	keep, err := StepMask(tensor.Float32, []int{4, 3}, 4, 8)
	require.NoError(t, err)
	keepn := valued(t, g, "keep", keep)
	xt := tensor.New(tensor.WithShape(2, 4, 8), tensor.WithBacking(make([]float32, 64)))
	for i := range xt.Data().([]float32) {
		xt.Data().([]float32)[i] = float32(i%7) * 0.1
	}
	x := valued(t, g, "x", xt)

	h, err := e.Forward(g, idn, 2, 4)
	require.NoError(t, err)
	h = G.Must(G.Add(h, x))
	at, _, err := m.Forward(g, h, h, maskn)
	require.NoError(t, err)
	h = G.Must(G.Add(h, at))
	h, err = ln.Forward(g, h)
	require.NoError(t, err)
	ff, err := f.Forward(g, h)
	require.NoError(t, err)
	lo, err := l.Forward(g, ff, keepn, nil, nil)
	require.NoError(t, err)
	keys, err := a.Precompute(g, lo.Out)
	require.NoError(t, err)
	ctx, _, err := a.Attend(g, lo.H[0], keys, nil)
	require.NoError(t, err)
	cost := G.Must(G.Sum(ctx))
	_, params := g.Params()
	_, err = G.Grad(cost, append(params, x)...)
	require.NoError(t, err)

	snapshot := func() map[string][]float32 {
		out := map[string][]float32{}
		for _, n := range s.Names() {
			v, _ := s.Get(n)
			out[n] = append([]float32(nil), v.Data().([]float32)...)
		}
		out["x"] = append([]float32(nil), xt.Data().([]float32)...)
		out["mask"] = append([]float32(nil), mask.Data().([]float32)...)
		out["keep"] = append([]float32(nil), keep.Data().([]float32)...)
		return out
	}
	before := snapshot()
	idsBefore := append([]int(nil), ids.Data().([]int)...)
	vm := G.NewTapeMachine(g.G, G.BindDualValues(params...))
	defer vm.Close()
	for i := 0; i < 5; i++ {
		vm.Reset()
		require.NoError(t, vm.RunAll())
	}
	assert.Equal(t, before, snapshot())
	assert.Equal(t, idsBefore, ids.Data().([]int))
	assert.Equal(t, tensor.Shape{2, 4, 8}, xt.Shape())
}

// TestStockReshapeStillOverwritesInputs pins the Gorgonia bug the blocks
// avoid by reshaping only op outputs.
func TestStockReshapeStillOverwritesInputs(t *testing.T) {
	g := G.NewGraph()
	xt := tensor.New(tensor.WithShape(2, 2), tensor.WithBacking([]float32{1, 2, 3, 4}))
	x := G.NewTensor(g, tensor.Float32, 2, G.WithShape(2, 2), G.WithValue(xt), G.WithName("x"))
	b := G.NewTensor(g, tensor.Float32, 1, G.WithShape(4), G.WithValue(tensor.New(tensor.WithBacking([]float32{1, 1, 1, 1}))), G.WithName("b"))
	r := G.Must(G.Reshape(x, tensor.Shape{4}))
	G.Must(G.Add(r, b))
	m := G.NewTapeMachine(g)
	defer m.Close()
	for i := 0; i < 2; i++ {
		m.Reset()
		require.NoError(t, m.RunAll())
	}
	assert.NotEqual(t, []float32{1, 2, 3, 4}, xt.Data(), "Reshape no longer overwrites its input: the workaround may be retired")
}

// TestGraphsShareTheStore: graphs of different batch sizes and modes bound
// to one store see each other's updates, because they bind the same tensors.
func TestGraphsShareTheStore(t *testing.T) {
	s := newTestStore(t)
	l, err := NewLinear(s, "l", LinearConfig{In: 3, Out: 2})
	require.NoError(t, err)
	build := func(batch int, mode Mode) (*Graph, *G.Node, *G.Node) {
		g := NewGraph(s, mode, 0)
		x, err := g.Input("x", tensor.Shape{batch, 3})
		require.NoError(t, err)
		ones := make([]float32, batch*3)
		for i := range ones {
			ones[i] = 1
		}
		require.NoError(t, G.Let(x, tensor.New(tensor.WithShape(batch, 3), tensor.WithBacking(ones))))
		y, err := l.Forward(g, x)
		require.NoError(t, err)
		return g, x, y
	}
	g1, _, y1 := build(4, Train)
	g2, _, y2 := build(1, Eval)
	_, p1 := g1.Params()
	cost := G.Must(G.Sum(y1))
	_, err = G.Grad(cost, p1...)
	require.NoError(t, err)
	m1 := G.NewTapeMachine(g1.G, G.BindDualValues(p1...))
	defer m1.Close()
	require.NoError(t, m1.RunAll())
	bias, _ := s.Get("l.bias")
	biasBefore := append([]float32(nil), bias.Data().([]float32)...)
	solver := G.NewVanillaSolver(G.WithLearnRate(0.5))
	require.NoError(t, solver.Step(G.NodesToValueGrads(p1)))

	var out G.Value
	G.Read(y2, &out)
	m2 := G.NewTapeMachine(g2.G)
	defer m2.Close()
	require.NoError(t, m2.RunAll())
	w, _ := s.Get("l.weight")
	b, _ := s.Get("l.bias")
	for j := 0; j < 2; j++ {
		want := b.Data().([]float32)[j]
		for i := 0; i < 3; i++ {
			want += w.Data().([]float32)[j*3+i]
		}
		assert.InDelta(t, want, out.Data().([]float32)[j], 1e-6)
	}
	// The step moved the shared bias by −0.5·4 (dΣy/db = batch).
	for j, v := range biasBefore {
		assert.InDelta(t, v-2, b.Data().([]float32)[j], 1e-6)
	}
	_, p2 := g2.Params()
	assert.Same(t, p1[1].Value().(*tensor.Dense), p2[1].Value().(*tensor.Dense))
}

// TestDropoutTrainAndEval: a training graph drops with the right kept
// fraction and scale; an evaluation graph built from the same model is the
// exact identity, and building it does not turn dropout off in the training
// graph (as Gorgonia's EvalMode does).
func TestDropoutTrainAndEval(t *testing.T) {
	s := newTestStore(t)
	const n, p = 10000, 0.25
	run := func(g *Graph) []float32 {
		x, err := g.Input("x", tensor.Shape{n})
		require.NoError(t, err)
		ones := make([]float32, n)
		for i := range ones {
			ones[i] = 1
		}
		require.NoError(t, G.Let(x, tensor.New(tensor.WithShape(n), tensor.WithBacking(ones))))
		y, err := g.ApplyDropout(x, p)
		require.NoError(t, err)
		y = G.Must(G.Mul(y, G.NewConstant(float32(1), G.WithName("one"))))
		var v G.Value
		G.Read(y, &v)
		m := G.NewTapeMachine(g.G)
		defer m.Close()
		require.NoError(t, m.RunAll())
		return append([]float32(nil), v.Data().([]float32)...)
	}
	train := NewGraph(s, Train, 99)
	eval := NewGraph(s, Eval, 99)
	ev := run(eval)
	for _, v := range ev {
		require.Equal(t, float32(1), v)
	}
	tv := run(train)
	kept := 0
	for _, v := range tv {
		if v != 0 {
			kept++
			require.InDelta(t, 1/(1-p), v, 1e-6)
		}
	}
	assert.InDelta(t, 1-p, float64(kept)/n, 0.02)
	assert.Equal(t, uint64(1), train.Dropout.Calls)
	// Same seed → same mask.
	again := NewGraph(s, Train, 99)
	assert.Equal(t, tv, run(again))
}

func TestBlocksGroupTheirNodes(t *testing.T) {
	s := newTestStore(t)
	m, err := NewMultiHeadAttention(s, "h.0.attn", MultiHeadConfig{DModel: 8, Heads: 2})
	require.NoError(t, err)
	ln, err := NewLayerNorm(s, "h.0.ln_1", 8, 0)
	require.NoError(t, err)
	g := NewGraph(s, Eval, 0)
	x, err := g.Input("x", tensor.Shape{2, 3, 8})
	require.NoError(t, err)
	y, _, err := m.Forward(g, x, x, nil)
	require.NoError(t, err)
	_, err = ln.Forward(g, y)
	require.NoError(t, err)
	dot := g.G.ToDot()
	assert.Contains(t, dot, "h.0.attn")
	assert.Contains(t, dot, "h.0.ln_1")
	assert.True(t, strings.Count(dot, "h.0.attn") >= 5)
	assert.Contains(t, dot, "h.0.attn.sdpa", "attention inside a block is grouped under it")
}
