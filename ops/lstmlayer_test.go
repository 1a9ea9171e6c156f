package ops

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/internal/gradcheck"
)

// layerCase is one LSTMLayer configuration: batch, steps, hidden size,
// each row's length (nil: no step mask), and which initial states are
// given.
type layerCase struct {
	B, T, H int
	lengths []int
	h0, c0  bool
	reverse bool
	dt      tensor.Dtype
	tol     float64
}

func (c layerCase) String() string {
	return fmt.Sprintf("%vB%dT%dH%d_len%v_h0%v_c0%v_rev%v", c.dt, c.B, c.T, c.H, c.lengths, c.h0, c.c0, c.reverse)
}

// stepMask is blocks.StepMask: 1 at real steps, 0 at padding, [B, T, H].
func stepMask(dt tensor.Dtype, lengths []int, T, H int) *tensor.Dense {
	v := make([]float64, len(lengths)*T*H)
	for b, n := range lengths {
		for t := range n {
			for j := range H {
				v[(b*T+t)*H+j] = 1
			}
		}
	}
	return castTo(dt, tensor.New(tensor.WithShape(len(lengths), T, H), tensor.WithBacking(v)))
}

// layerInputs are the op's inputs for c as graph nodes (nil where absent).
type layerInputs struct{ gx, whh, bhh, h0, c0, keep *G.Node }

func newLayerInputs(g *G.ExprGraph, c layerCase) layerInputs {
	// Gates of std 2 reach the saturated parts of σ and tanh; W_hh of std
	// 0.5 keeps h_{t−1} in the play.
	in := layerInputs{
		gx:  param(g, "gx", castTo(c.dt, gradcheck.Tensor(1, 2, c.B, c.T, 4*c.H))),
		whh: param(g, "whh", castTo(c.dt, gradcheck.Tensor(2, 0.5, 4*c.H, c.H))),
		bhh: param(g, "bhh", castTo(c.dt, gradcheck.Tensor(3, 0.5, 4*c.H))),
	}
	if c.h0 {
		in.h0 = param(g, "h0", castTo(c.dt, gradcheck.Tensor(4, 0.5, c.B, c.H)))
	}
	if c.c0 {
		in.c0 = param(g, "c0", castTo(c.dt, gradcheck.Tensor(5, 1, c.B, c.H)))
	}
	if c.lengths != nil {
		in.keep = param(g, "keep", stepMask(c.dt, c.lengths, c.T, c.H))
	}
	return in
}

func (in layerInputs) wrt() []*G.Node {
	w := []*G.Node{in.gx, in.whh, in.bhh}
	for _, n := range []*G.Node{in.h0, in.c0} {
		if n != nil {
			w = append(w, n)
		}
	}
	return w
}

// composedLayer is the layer as blocks unrolled it before LSTMLayer: per
// step a Select of gx, ops.Linear for W_hh h + b_hh, an add, the fused
// cell ops and, with a mask, the carry old + m ⊙ (new − old) of stock ops.
func composedLayer(in layerInputs, c layerCase) LSTMLayerOutput {
	B, T, H := c.B, c.T, c.H
	dt := in.gx.Dtype()
	zeros := func(n string) *G.Node {
		return G.NewTensor(in.gx.Graph(), dt, 2, G.WithShape(B, H), G.WithName(n), G.WithValue(tensor.New(tensor.Of(dt), tensor.WithShape(B, H))))
	}
	h, cc := in.h0, in.c0
	if h == nil {
		h = zeros("zero_h")
	}
	if cc == nil {
		cc = zeros("zero_c")
	}
	carry := func(old, nw, m *G.Node) *G.Node {
		return G.Must(G.Add(old, G.Must(G.HadamardProd(m, G.Must(G.Sub(nw, old))))))
	}
	outs := make(G.Nodes, T)
	for i := range T {
		t := i
		if c.reverse {
			t = T - 1 - i
		}
		z := G.Must(G.Add(G.Must(Select(in.gx, 1, t)), G.Must(Linear(h, in.whh, in.bhh))))
		cNew := G.Must(LSTMCellState(z, cc))
		hNew := G.Must(LSTMHidden(z, cNew))
		ht := hNew
		if in.keep != nil {
			m := G.Must(Select(in.keep, 1, t))
			h, cc, ht = carry(h, hNew, m), carry(cc, cNew, m), G.Must(G.HadamardProd(m, hNew))
		} else {
			h, cc = hNew, cNew
		}
		outs[t] = G.Must(G.Reshape(ht, tensor.Shape{B, 1, H}))
	}
	out := outs[0]
	if T > 1 {
		out = G.Must(G.Concat(1, outs...))
	}
	return LSTMLayerOutput{Out: out, H: h, C: cc}
}

func TestLSTMLayerGradient(t *testing.T) {
	for _, c := range []layerCase{
		{B: 3, T: 4, H: 3, lengths: []int{4, 2, 1}, h0: true, c0: true},
		{B: 3, T: 4, H: 3, lengths: []int{4, 2, 1}, h0: true, c0: true, reverse: true},
		{B: 2, T: 3, H: 2},
		{B: 2, T: 3, H: 2, reverse: true, c0: true},
		{B: 1, T: 1, H: 3, h0: true},
		{B: 1, T: 2, H: 2, lengths: []int{1}, c0: true},
	} {
		c.dt = tensor.Float64
		t.Run(c.String(), func(t *testing.T) {
			g := G.NewGraph()
			in := newLayerInputs(g, c)
			o, err := LSTMLayer(in.gx, in.whh, in.bhh, in.h0, in.c0, in.keep, c.reverse)
			require.NoError(t, err)
			assert.Equal(t, tensor.Shape{c.B, c.T, c.H}, o.Out.Shape())
			assert.Equal(t, tensor.Shape{c.B, c.H}, o.H.Shape())
			assert.Equal(t, tensor.Shape{c.B, c.H}, o.C.Shape())
			res, err := gradcheck.Check(g, []*G.Node{o.Out, o.H, o.C}, in.wrt(), gradcheck.Config{})
			require.NoError(t, err)
			want := c.B*c.T*4*c.H + 4*c.H*c.H + 4*c.H
			if c.h0 {
				want += c.B * c.H
			}
			if c.c0 {
				want += c.B * c.H
			}
			assert.Equal(t, want, res.Probes)
		})
	}
}

// TestLSTMLayerMatchesComposed: out, h_T, c_T and the gradients of
// L = Σ out ⊙ R₁ + Σ h_T ⊙ R₂ + Σ c_T ⊙ R₃ with respect to every input
// equal the per-step composition's, with and without a mask, initial
// states and reversal, at T = 1, B = 1, a partial vector step (H = 13) and
// H = 256, in float64 (1e-12) and float32 (1e-6).
func TestLSTMLayerMatchesComposed(t *testing.T) {
	type result struct {
		vals  [][]float64
		names []string
	}
	runLayer := func(t *testing.T, c layerCase, fused bool) result {
		g := G.NewGraph()
		in := newLayerInputs(g, c)
		var o LSTMLayerOutput
		if fused {
			var err error
			o, err = LSTMLayer(in.gx, in.whh, in.bhh, in.h0, in.c0, in.keep, c.reverse)
			require.NoError(t, err)
		} else {
			o = composedLayer(in, c)
		}
		var cost *G.Node
		for k, n := range []*G.Node{o.Out, o.H, o.C} {
			r := param(g, fmt.Sprintf("r%d", k), castTo(c.dt, gradcheck.Tensor(uint64(10+k), 1, n.Shape()...)))
			s := G.Must(G.Sum(G.Must(G.HadamardProd(n, r))))
			if cost == nil {
				cost = s
			} else {
				cost = G.Must(G.Add(cost, s))
			}
		}
		wrt := in.wrt()
		grads, err := G.Grad(cost, wrt...)
		require.NoError(t, err)
		nodes := append([]*G.Node{o.Out, o.H, o.C}, grads...)
		names := []string{"out", "h_T", "c_T"}
		for _, w := range wrt {
			names = append(names, "∂"+w.Name())
		}
		vs := run(t, g, nodes...)
		res := result{names: names}
		for _, v := range vs {
			res.vals = append(res.vals, asF64(v))
		}
		return res
	}
	var cases []layerCase
	for _, dt := range []struct {
		dt  tensor.Dtype
		tol float64
	}{{tensor.Float64, 1e-12}, {tensor.Float32, 1e-6}} {
		for _, c := range []layerCase{
			{B: 3, T: 5, H: 13, lengths: []int{5, 3, 1}, h0: true, c0: true},
			{B: 3, T: 5, H: 13, lengths: []int{5, 3, 1}, h0: true, c0: true, reverse: true},
			{B: 3, T: 5, H: 13, lengths: []int{2, 5, 4}, reverse: true},
			{B: 2, T: 4, H: 13},
			{B: 2, T: 4, H: 13, reverse: true, h0: true},
			{B: 1, T: 1, H: 13, c0: true},
			{B: 1, T: 1, H: 13, lengths: []int{1}, h0: true, c0: true},
			{B: 1, T: 6, H: 5, lengths: []int{4}},
			{B: 2, T: 3, H: 256, lengths: []int{3, 2}, h0: true, c0: true},
		} {
			c.dt, c.tol = dt.dt, dt.tol
			cases = append(cases, c)
		}
	}
	for _, c := range cases {
		t.Run(c.String(), func(t *testing.T) {
			ours, ref := runLayer(t, c, true), runLayer(t, c, false)
			require.Equal(t, ref.names, ours.names)
			for k, want := range ref.vals {
				got := ours.vals[k]
				require.Len(t, got, len(want), ours.names[k])
				for i, w := range want {
					require.InDelta(t, w, got[i], c.tol*math.Max(1, math.Abs(w)), "%s[%d]", ours.names[k], i)
				}
			}
		})
	}
}

// TestLSTMLayerForwardIsExact: without the sums over steps that the
// backward reorders, the forward repeats the composition's arithmetic: out,
// h_T and c_T are equal to the bit in float32.
func TestLSTMLayerForwardIsExact(t *testing.T) {
	c := layerCase{B: 3, T: 7, H: 37, lengths: []int{7, 4, 2}, h0: true, c0: true, dt: tensor.Float32}
	outs := func(fused bool) [][]float64 {
		g := G.NewGraph()
		in := newLayerInputs(g, c)
		var o LSTMLayerOutput
		if fused {
			var err error
			o, err = LSTMLayer(in.gx, in.whh, in.bhh, in.h0, in.c0, in.keep, false)
			require.NoError(t, err)
		} else {
			o = composedLayer(in, c)
		}
		var r [][]float64
		for _, v := range run(t, g, o.Out, o.H, o.C) {
			r = append(r, asF64(v))
		}
		return r
	}
	assert.Equal(t, outs(false), outs(true))
}

// TestLSTMLayerWorkspaceIsReused: a second run of the same program gives
// the same values (the workspace is rewritten, not accumulated into).
func TestLSTMLayerWorkspaceIsReused(t *testing.T) {
	c := layerCase{B: 2, T: 3, H: 4, lengths: []int{3, 1}, h0: true, c0: true, dt: tensor.Float64}
	g := G.NewGraph()
	in := newLayerInputs(g, c)
	o, err := LSTMLayer(in.gx, in.whh, in.bhh, in.h0, in.c0, in.keep, false)
	require.NoError(t, err)
	cost := G.Must(G.Sum(G.Must(G.Add(G.Must(G.Sum(o.Out, 1)), o.H))))
	grads, err := G.Grad(cost, in.wrt()...)
	require.NoError(t, err)
	vals := make([]G.Value, len(grads))
	for i, n := range grads {
		G.Read(n, &vals[i])
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	var first [][]float64
	for run := range 3 {
		m.Reset()
		require.NoError(t, m.RunAll())
		var now [][]float64
		for _, v := range vals {
			now = append(now, asF64(v))
		}
		if run == 0 {
			first = now
			continue
		}
		require.Equal(t, first, now, "run %d", run)
	}
}

func TestLSTMLayerShapeErrors(t *testing.T) {
	g := G.NewGraph()
	n := func(name string, shape ...int) *G.Node { return param(g, name, gradcheck.Tensor(1, 1, shape...)) }
	gx, whh, bhh := n("gx", 2, 3, 8), n("whh", 8, 2), n("bhh", 8)
	for _, tc := range []struct {
		name                       string
		gx, whh, bhh, h0, c0, keep *G.Node
		want                       []string
	}{
		{"gates not 4H", n("gx7", 2, 3, 7), whh, bhh, nil, nil, nil, []string{"(2, 3, 7)", "(B, T, 4H)"}},
		{"gates rank", n("gx2", 6, 8), whh, bhh, nil, nil, nil, []string{"(6, 8)"}},
		{"W_hh", gx, n("w3", 8, 3), bhh, nil, nil, nil, []string{"W_hh", "(8, 3)", "(8, 2)"}},
		{"b_hh", gx, whh, n("b4", 4), nil, nil, nil, []string{"b_hh", "(4)", "(8)"}},
		{"h0", gx, whh, bhh, n("h0", 3, 2), nil, nil, []string{"initial h", "(3, 2)", "(2, 2)"}},
		{"c0", gx, whh, bhh, nil, n("c0", 2, 3), nil, []string{"initial c", "(2, 3)", "(2, 2)"}},
		{"keep", gx, whh, bhh, nil, nil, n("keep", 2, 4, 2), []string{"step mask", "(2, 4, 2)", "(2, 3, 2)"}},
	} {
		_, err := LSTMLayer(tc.gx, tc.whh, tc.bhh, tc.h0, tc.c0, tc.keep, false)
		require.Error(t, err, tc.name)
		assert.Contains(t, err.Error(), "LSTMLayer", tc.name)
		for _, w := range tc.want {
			assert.Contains(t, err.Error(), w, tc.name)
		}
	}
}
