package blocks

import (
	"fmt"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/ops"
)

// LSTMCell is nn.LSTMCell (Hochreiter & Schmidhuber 1997, with the forget
// gate of Gers et al.), gates in PyTorch's order i, f, g, o:
//
//	[i f g o] = W_ih x_t + b_ih + W_hh h_{t−1} + b_hh
//	c_t = σ(f) ⊙ c_{t−1} + σ(i) ⊙ tanh(g)
//	h_t = σ(o) ⊙ tanh(c_t)
//
// with weight_ih [4H, I], weight_hh [4H, H], bias_ih and bias_hh [4H],
// initialised U(−1/√H, 1/√H) as PyTorch does.
type LSTMCell struct {
	Prefix string
	Input  int
	Hidden int
	suffix string // "" for nn.LSTMCell, "_l0", "_l1", … inside nn.LSTM
}

// NewLSTMCell adds an LSTM cell's parameters under prefix.
func NewLSTMCell(s *Store, prefix string, input, hidden int) (*LSTMCell, error) {
	return newLSTMCell(s, prefix, "", input, hidden)
}

func newLSTMCell(s *Store, prefix, suffix string, input, hidden int) (*LSTMCell, error) {
	if err := positive("LSTM input and hidden size", input, hidden); err != nil {
		return nil, errors.Wrapf(err, "blocks: LSTM %q", prefix)
	}
	c := &LSTMCell{Prefix: prefix, Input: input, Hidden: hidden, suffix: suffix}
	init := FanInUniform(hidden)
	for _, p := range []struct {
		name  string
		shape tensor.Shape
	}{
		{"weight_ih", tensor.Shape{4 * hidden, input}},
		{"weight_hh", tensor.Shape{4 * hidden, hidden}},
		{"bias_ih", tensor.Shape{4 * hidden}},
		{"bias_hh", tensor.Shape{4 * hidden}},
	} {
		if _, err := s.Add(c.param(p.name), p.shape, init); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *LSTMCell) param(n string) string { return join(c.Prefix, n+c.suffix) }

func (c *LSTMCell) params(g *Graph) (wih, whh, bih, bhh *G.Node) {
	p := func(n string) *G.Node { return Must(g.Param(c.param(n))) }
	return p("weight_ih"), p("weight_hh"), p("bias_ih"), p("bias_hh")
}

// Forward is one step: x [B, I], h and c [B, H] → (h_t, c_t).
func (c *LSTMCell) Forward(g *Graph, x, h, cell *G.Node) (hOut, cOut *G.Node, err error) {
	err = g.Block(name(c.Prefix, "lstm_cell"), func() error {
		if x.Dims() != 2 || x.Shape()[1] != c.Input {
			return badShape("LSTMCell input", x.Shape(), "B", c.Input)
		}
		if err := c.checkState("LSTMCell", h, cell, x.Shape()[0]); err != nil {
			return err
		}
		wih, whh, bih, bhh := c.params(g)
		hOut, cOut = c.step(Must(ops.Linear(x, wih, bih)), h, cell, whh, bhh)
		return nil
	})
	return hOut, cOut, err
}

// checkState checks that h and c (either may be nil) are [B, H].
func (c *LSTMCell) checkState(what string, h, cell *G.Node, B int) error {
	for _, s := range []struct {
		n    string
		node *G.Node
	}{{" h", h}, {" c", cell}} {
		if s.node != nil && !s.node.Shape().Eq(tensor.Shape{B, c.Hidden}) {
			return badShape(what+s.n, s.node.Shape(), B, c.Hidden)
		}
	}
	return nil
}

// step is the recurrence, given the input half of the gates
// gx = W_ih x_t + b_ih [B, 4H] (LSTM computes it for every t at once):
//
//	z = [i f g o] = gx + W_hh h_{t−1} + b_hh
//	c_t = σ(f) ⊙ c_{t−1} + σ(i) ⊙ tanh(g)
//	h_t = σ(o) ⊙ tanh(c_t)
//
// The gates and the state update are ops.LSTMCellState and ops.LSTMHidden,
// fused with their backward passes; the products stay matrix products.
func (c *LSTMCell) step(gx, h, cell, whh, bhh *G.Node) (hNew, cNew *G.Node) {
	z := Must(ops.Add(gx, Must(ops.Linear(h, whh, bhh))))
	cNew = Must(ops.LSTMCellState(z, cell))
	hNew = Must(ops.LSTMHidden(z, cNew))
	return hNew, cNew
}

// LSTM is a stack of LSTM layers over a padded batch, as nn.LSTM with
// batch_first=True (parameters weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k},
// bias_hh_l{k}); layer k+1 reads the outputs of layer k, with dropout
// between layers in training graphs as nn.LSTM's dropout argument.
//
// A bidirectional LSTM (NewBiLSTM, nn.LSTM with bidirectional=True) runs a
// second stack of cells (…_l{k}_reverse) from the last step to the first,
// and each layer's output is both directions side by side:
//
//	h→_t = LSTM→(x_t, h→_{t−1}),  h←_t = LSTM←(x_t, h←_{t+1}),  h_t = [h→_t; h←_t]
//
// the encoder of Bahdanau et al. (2015).
type LSTM struct {
	Prefix string
	Layers []*LSTMCell
	// Reverse are the backward cells of a bidirectional LSTM, one per
	// layer (nil for one direction).
	Reverse []*LSTMCell
	// Dropout is the probability applied to every layer's outputs but the
	// last layer's, in training graphs (nn.LSTM's dropout).
	Dropout float64
}

// NewLSTM adds layers LSTM layers of hidden units reading input features.
func NewLSTM(s *Store, prefix string, input, hidden, layers int) (*LSTM, error) {
	return newLSTM(s, prefix, input, hidden, layers, false)
}

// NewBiLSTM adds a bidirectional stack: each of layers layers has a forward
// and a backward cell of hidden units, and outputs 2·hidden features.
func NewBiLSTM(s *Store, prefix string, input, hidden, layers int) (*LSTM, error) {
	return newLSTM(s, prefix, input, hidden, layers, true)
}

func newLSTM(s *Store, prefix string, input, hidden, layers int, bi bool) (*LSTM, error) {
	if err := positive("LSTM layer count", layers); err != nil {
		return nil, errors.Wrapf(err, "blocks: LSTM %q", prefix)
	}
	dirs := 1
	if bi {
		dirs = 2
	}
	l := &LSTM{Prefix: prefix}
	for k := 0; k < layers; k++ {
		in := input
		if k > 0 {
			in = dirs * hidden
		}
		c, err := newLSTMCell(s, prefix, fmt.Sprintf("_l%d", k), in, hidden)
		if err != nil {
			return nil, err
		}
		l.Layers = append(l.Layers, c)
		if bi {
			r, err := newLSTMCell(s, prefix, fmt.Sprintf("_l%d_reverse", k), in, hidden)
			if err != nil {
				return nil, err
			}
			l.Reverse = append(l.Reverse, r)
		}
	}
	return l, nil
}

// Hidden is the size of h (of one direction).
func (l *LSTM) Hidden() int { return l.Layers[0].Hidden }

// Directions is 2 for a bidirectional LSTM, else 1.
func (l *LSTM) Directions() int {
	if l.Reverse != nil {
		return 2
	}
	return 1
}

// OutDim is the size of each output step: Directions·Hidden.
func (l *LSTM) OutDim() int { return l.Directions() * l.Hidden() }

// States is the number of initial or final states h (and c): one per layer
// and direction, as the first axis of nn.LSTM's h_n.
func (l *LSTM) States() int { return len(l.Layers) * l.Directions() }

// LSTMOutput is what an LSTM returns: every h_t of the top layer [B, T, H]
// ([B, T, 2H] bidirectional: [h→_t; h←_t]), zero at padded steps as
// pad_packed_sequence gives, and the final states h_n, c_n [B, H] in
// nn.LSTM's order (layer k's forward state at 2k, its backward state at
// 2k+1 when bidirectional), the forward ones taken at the row's last real
// step and the backward ones at its first.
type LSTMOutput struct {
	Out    *G.Node
	H, C   []*G.Node
	Layers int
}

// Forward runs the stack over x [B, T, I]. keep is StepMask(lengths, T, H)
// as a node, or nil when every row has all T steps; at a padded step the
// state is carried over unchanged: h_t = h_{t−1} + m_t ⊙ (h'_t − h_{t−1}).
// The backward direction runs from step T−1 down to 0 through the same
// carry, so on a padded row it starts from its initial state at the row's
// own last real token, as nn.LSTM over pack_padded_sequence does. h0 and c0
// give each state's initial value (States() of [B, H] each, in h_n's
// order) or are nil for zeros.
func (l *LSTM) Forward(g *Graph, x, keep *G.Node, h0, c0 []*G.Node) (out LSTMOutput, err error) {
	err = g.Block(name(l.Prefix, "lstm"), func() error {
		if err := l.check(x, keep, h0, c0); err != nil {
			return err
		}
		dirs := l.Directions()
		seq := x
		for k, cell := range l.Layers {
			if k > 0 {
				seq = Must(g.ApplyDropout(seq, l.Dropout))
			}
			fwd, h, c := l.layer(g, cell, seq, keep, at(h0, dirs*k), at(c0, dirs*k), false)
			out.H, out.C = append(out.H, h), append(out.C, c)
			if l.Reverse != nil {
				bwd, hb, cb := l.layer(g, l.Reverse[k], seq, keep, at(h0, 2*k+1), at(c0, 2*k+1), true)
				out.H, out.C = append(out.H, hb), append(out.C, cb)
				fwd = Must(ops.Concat(2, fwd, bwd))
			}
			seq = fwd
		}
		out.Out, out.Layers = seq, len(l.Layers)
		return nil
	})
	return out, err
}

// Step runs one time step of a one-direction stack, as nn.LSTM over a
// sequence of length 1 does: x [B, I] and each layer's state h[k], c[k]
// [B, H] give the top layer's output and every layer's new state, with
// dropout between layers in training graphs. A decoder that feeds each
// step's output back (attention, greedy decoding) runs it step by step.
func (l *LSTM) Step(g *Graph, x *G.Node, h, c []*G.Node) (top *G.Node, hNew, cNew []*G.Node, err error) {
	err = g.Block(name(l.Prefix, "lstm"), func() error {
		if l.Reverse != nil {
			return errors.New("Step runs a one-direction LSTM; a bidirectional one needs the whole sequence")
		}
		if x.Dims() != 2 || x.Shape()[1] != l.Layers[0].Input {
			return badShape("LSTM step input", x.Shape(), "B", l.Layers[0].Input)
		}
		if len(h) != len(l.Layers) || len(c) != len(l.Layers) {
			return errors.Errorf("LSTM has %d layers, got %d h and %d c", len(l.Layers), len(h), len(c))
		}
		top = x
		for k, cell := range l.Layers {
			if err := cell.checkState(fmt.Sprintf("LSTM layer %d", k), h[k], c[k], x.Shape()[0]); err != nil {
				return err
			}
			if k > 0 {
				top = Must(g.ApplyDropout(top, l.Dropout))
			}
			wih, whh, bih, bhh := cell.params(g)
			hk, ck := cell.step(Must(ops.Linear(top, wih, bih)), h[k], c[k], whh, bhh)
			hNew, cNew = append(hNew, hk), append(cNew, ck)
			top = hk
		}
		return nil
	})
	return top, hNew, cNew, err
}

func (l *LSTM) check(x, keep *G.Node, h0, c0 []*G.Node) error {
	if x.Dims() != 3 || x.Shape()[2] != l.Layers[0].Input {
		return badShape("LSTM input", x.Shape(), "B", "T", l.Layers[0].Input)
	}
	B, T, H := x.Shape()[0], x.Shape()[1], l.Hidden()
	if keep != nil && !keep.Shape().Eq(tensor.Shape{B, T, H}) {
		return badShape("LSTM step mask", keep.Shape(), B, T, H)
	}
	n := l.States()
	if (h0 != nil && len(h0) != n) || (c0 != nil && len(c0) != n) {
		return errors.Errorf("LSTM has %d layers × %d directions, got %d initial h and %d initial c", len(l.Layers), l.Directions(), len(h0), len(c0))
	}
	for k := 0; k < n; k++ {
		what := fmt.Sprintf("LSTM layer %d initial", k/l.Directions())
		if k%l.Directions() == 1 {
			what = fmt.Sprintf("LSTM layer %d reverse initial", k/2)
		}
		if err := l.Layers[k/l.Directions()].checkState(what, at(h0, k), at(c0, k), B); err != nil {
			return err
		}
	}
	return nil
}

// at is ns[k], or nil when ns is nil.
func at(ns []*G.Node, k int) *G.Node {
	if ns == nil {
		return nil
	}
	return ns[k]
}

// layer runs one layer over x [B, T, I] from the state h, c (nil for
// zeros), forward or (reverse) from the last step to the first, and
// returns its outputs [B, T, H] in time order and its final state. The
// input half of the gates, W_ih x_t + b_ih, is one product for every t;
// the recurrence is ops.LSTMLayer, one op forward and one backward (the
// same step as LSTMCell's, over all T).
func (l *LSTM) layer(g *Graph, cell *LSTMCell, x, keep, h, c *G.Node, reverse bool) (seq, hT, cT *G.Node) {
	wih, whh, bih, bhh := cell.params(g)
	gxAll := Must(ops.Linear(x, wih, bih))
	o, err := ops.LSTMLayer(gxAll, whh, bhh, h, c, keep, reverse)
	Must(o.Out, err)
	return o.Out, o.H, o.C
}
