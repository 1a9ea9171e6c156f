package blocks

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

var errBoom = errors.New("boom")

// TestMustStopsTheBlock: the first Must that sees an error ends the body
// (nothing after it runs), the Block returns that error prefixed once with
// the innermost block's name, and the graph's block scope is left as it
// was.
func TestMustStopsTheBlock(t *testing.T) {
	for _, tc := range []struct {
		name    string
		build   func(g *Graph, after *bool) error
		wantMsg string
	}{
		{"must in the body", func(g *Graph, after *bool) error {
			return g.Block("outer", func() error {
				Must(g.Input("x", tensor.Shape{2}))
				Must(0, errBoom)
				*after = true
				return nil
			})
		}, "outer: boom"},
		{"must2 in the body", func(g *Graph, after *bool) error {
			return g.Block("outer", func() error {
				Must2(1, 2, errBoom)
				*after = true
				return nil
			})
		}, "outer: boom"},
		{"the body's own error", func(g *Graph, after *bool) error {
			return g.Block("outer", func() error { return errBoom })
		}, "outer: boom"},
		{"inner block's error, passed on with Must", func(g *Graph, after *bool) error {
			return g.Block("outer", func() error {
				Must(0, g.Block("inner", func() error {
					Must(0, errBoom)
					return nil
				}))
				*after = true
				return nil
			})
		}, "outer.inner: boom"},
		{"Build", func(g *Graph, after *bool) error {
			return Build(func() error {
				Must(0, g.Block("inner", func() error { return errBoom }))
				*after = true
				return nil
			})
		}, "inner: boom"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewGraph(newTestStore(t), Eval, 0)
			after := false
			err := tc.build(g, &after)
			require.Error(t, err)
			assert.Equal(t, tc.wantMsg, err.Error())
			assert.ErrorIs(t, err, errBoom)
			assert.False(t, after, "the body went on after the failing Must")
			assert.Empty(t, g.scope)
		})
	}
}

// TestBlockPassesOtherPanicsOn: Block recovers only Must's panics; a bug
// in a body (here an index out of range) still panics, with its own value,
// and the scope is unwound.
func TestBlockPassesOtherPanicsOn(t *testing.T) {
	g := NewGraph(newTestStore(t), Eval, 0)
	assert.PanicsWithValue(t, "not a build error", func() {
		_ = g.Block("outer", func() error {
			return g.Block("inner", func() error { panic("not a build error") })
		})
	})
	assert.Empty(t, g.scope)
	assert.Panics(t, func() {
		_ = Build(func() error {
			var s []int
			_ = s[1]
			return nil
		})
	})
}

// TestMustOutsideABlockPanicsLoudly: a Must with no Block around it is a
// programming error; it panics at once with a message that names it.
func TestMustOutsideABlockPanicsLoudly(t *testing.T) {
	assert.NotPanics(t, func() { assert.Equal(t, 3, Must(3, nil)) })
	assert.PanicsWithError(t, "blocks.Must called outside Graph.Block and blocks.Build: boom", func() {
		Must(0, errBoom)
	})
}

// TestBlockGroupsNodesOnError: the nodes a failed block added still carry
// its group (a picture of a half-built graph is still readable), and a
// block built after it is not nested under it.
func TestBlockGroupsNodesOnError(t *testing.T) {
	s := newTestStore(t)
	l, err := NewLinear(s, "l", LinearConfig{In: 4, Out: 2})
	require.NoError(t, err)
	g := NewGraph(s, Eval, 0)
	x := Must(g.Input("x", tensor.Shape{3, 4}))
	err = g.Block("failed", func() error {
		Must(G.Add(x, x))
		Must(0, errBoom)
		return nil
	})
	require.ErrorIs(t, err, errBoom)
	_, err = l.Forward(g, x)
	require.NoError(t, err)
	dot := g.G.ToDot()
	assert.Contains(t, dot, "failed")
	assert.Contains(t, dot, "cluster_l")
	assert.NotContains(t, dot, "failed.l")
}

// TestShapeErrors: every block's shape check returns a *ShapeError that
// errors.As finds through the blocks' wrapping, naming the shape given and
// the shape wanted.
func TestShapeErrors(t *testing.T) {
	s := newTestStore(t)
	l := Must(NewLinear(s, "l", LinearConfig{In: 4, Out: 2}))
	ln := Must(NewLayerNorm(s, "ln", 4, 0))
	m := Must(NewMultiHeadAttention(s, "m", MultiHeadConfig{DModel: 8, Heads: 2}))
	lstm := Must(NewLSTM(s, "lstm", 4, 3, 2))
	cell := Must(NewLSTMCell(s, "cell", 4, 3))
	add := Must(NewAdditiveAttention(s, "add", 3, 4, 5))
	emb := Must(NewEmbedding(s, "emb", 10, 4, nil))
	g := NewGraph(s, Eval, 0)
	in := func(shape ...int) *G.Node {
		return Must(g.Input(fmt.Sprintf("in%d", len(g.inputs)), tensor.Shape(shape)))
	}
	ids := Must(g.Input("ids", tensor.Shape{5}, tensor.Int))
	q := in(2, 3, 8)
	keys := Must(add.Precompute(g, in(2, 6, 4)))
	for _, tc := range []struct {
		name       string
		build      func() error
		what, want string
		got        tensor.Shape
	}{
		{"Linear", func() error { _, err := l.Forward(g, in(2, 3, 5)); return err },
			"Linear input", "(..., 4)", tensor.Shape{2, 3, 5}},
		{"LayerNorm", func() error { _, err := ln.Forward(g, in(2, 3)); return err },
			"LayerNorm input", "(..., 4)", tensor.Shape{2, 3}},
		{"MHA query", func() error { _, _, err := m.Forward(g, in(2, 3, 6), q, nil); return err },
			"MultiHeadAttention query", "(B, T_q, 8)", tensor.Shape{2, 3, 6}},
		{"MHA memory batch", func() error { _, _, err := m.Forward(g, q, in(3, 4, 8), nil); return err },
			"MultiHeadAttention memory", "(2, T_k, 8)", tensor.Shape{3, 4, 8}},
		{"MHA mask", func() error { _, _, err := m.Forward(g, q, q, in(2, 3, 4)); return err },
			"MultiHeadAttention mask", "(2, 3, 3)", tensor.Shape{2, 3, 4}},
		{"SDPA K", func() error {
			_, _, err := ScaledDotProductAttention(g, in(2, 3, 4), in(2, 5, 3), in(2, 5, 4), nil, 0)
			return err
		}, "attention K", "(2, T_k, 4)", tensor.Shape{2, 5, 3}},
		{"SDPA V", func() error {
			_, _, err := ScaledDotProductAttention(g, in(2, 2, 3, 4), in(2, 2, 5, 4), in(2, 2, 6, 4), nil, 0)
			return err
		}, "attention V", "(2, 2, 5, d_v)", tensor.Shape{2, 2, 6, 4}},
		{"SDPA mask", func() error {
			_, _, err := ScaledDotProductAttention(g, in(2, 2, 3, 4), in(2, 2, 5, 4), in(2, 2, 5, 4), in(2, 3, 4), 0)
			return err
		}, "attention mask", "(2, 3, 5)", tensor.Shape{2, 3, 4}},
		{"LSTM input", func() error { _, err := lstm.Forward(g, in(2, 5, 3), nil, nil, nil); return err },
			"LSTM input", "(B, T, 4)", tensor.Shape{2, 5, 3}},
		{"LSTM step mask", func() error { _, err := lstm.Forward(g, in(2, 5, 4), in(2, 5, 4), nil, nil); return err },
			"LSTM step mask", "(2, 5, 3)", tensor.Shape{2, 5, 4}},
		{"LSTM initial c", func() error {
			_, err := lstm.Forward(g, in(2, 5, 4), nil, nil, []*G.Node{in(2, 3), in(1, 3)})
			return err
		}, "LSTM layer 1 initial c", "(2, 3)", tensor.Shape{1, 3}},
		{"LSTMCell h", func() error { _, _, err := cell.Forward(g, in(2, 4), in(2, 4), in(2, 3)); return err },
			"LSTMCell h", "(2, 3)", tensor.Shape{2, 4}},
		{"additive keys", func() error { _, err := add.Precompute(g, in(2, 6)); return err },
			"AdditiveAttention encoder states", "(B, T, 4)", tensor.Shape{2, 6}},
		{"additive state", func() error { _, _, err := add.Attend(g, in(2, 4), keys, nil); return err },
			"AdditiveAttention decoder state", "(2, 3)", tensor.Shape{2, 4}},
		{"additive mask", func() error { _, _, err := add.Attend(g, in(2, 3), keys, in(2, 5)); return err },
			"AdditiveAttention mask", "(2, 6)", tensor.Shape{2, 5}},
		{"embedding ids", func() error { _, err := emb.Forward(g, ids, 2, 3); return err },
			"token id vector", "(6) (batch 2 × steps 3)", tensor.Shape{5}},
		{"sinusoidal", func() error { _, err := AddSinusoidal(g, in(3, 4)); return err },
			"sinusoidal positions input", "(B, T, d)", tensor.Shape{3, 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.build()
			var se *ShapeError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, tc.what, se.What)
			assert.Equal(t, tc.got, se.Got)
			assert.Equal(t, tc.want, se.Want)
			assert.Contains(t, err.Error(), fmt.Sprint(tc.got))
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	assert.Empty(t, g.scope)
}

// TestMultiHeadInProjection: self-attention projects Q, K and V in one
// matrix product from the packed in_proj_weight and reads the heads out of
// it without slicing the weight; encoder–decoder attention does one
// product for Q and one for K and V together. Counted by op in the forward
// graph.
func TestMultiHeadInProjection(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		cross                 bool
		linear, slice, splits int
	}{
		{"self", false, 2, 0, 3}, // in-projection [B, T, 3d], out-projection
		{"cross", true, 3, 4, 3}, // Q; K and V [B, T_k, 2d]; out (W^Q, b^Q, W^KV, b^KV sliced)
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestStore(t)
			m := Must(NewMultiHeadAttention(s, "m", MultiHeadConfig{DModel: 8, Heads: 2}))
			g := NewGraph(s, Eval, 0)
			q := Must(g.Input("q", tensor.Shape{2, 3, 8}))
			mem := q
			if tc.cross {
				mem = Must(g.Input("mem", tensor.Shape{2, 5, 8}))
			}
			_, _, err := m.Forward(g, q, mem, nil)
			require.NoError(t, err)
			count := map[string]int{"linear": 0, "slice": 0, "split": 0}
			for _, n := range g.G.AllNodes() {
				if n.Op() == nil {
					continue
				}
				op := n.Op().String()
				switch {
				case strings.HasPrefix(op, "Linear{"):
					count["linear"]++
				case strings.HasPrefix(op, "SplitHeads{"):
					count["split"]++
				case strings.HasPrefix(op, "Narrow{"), fmt.Sprintf("%T", n.Op()) == "*gorgonia.sliceOp":
					count["slice"]++
				}
			}
			assert.Equal(t, map[string]int{"linear": tc.linear, "slice": tc.slice, "split": tc.splits}, count)
		})
	}
}
