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

func (c *LSTMCell) params(g *Graph) (wih, whh, bih, bhh *G.Node, err error) {
	ns := make([]*G.Node, 4)
	for i, n := range []string{"weight_ih", "weight_hh", "bias_ih", "bias_hh"} {
		if ns[i], err = g.Param(c.param(n)); err != nil {
			return
		}
	}
	return ns[0], ns[1], ns[2], ns[3], nil
}

// Forward is one step: x [B, I], h and c [B, H] → (h_t, c_t).
func (c *LSTMCell) Forward(g *Graph, x, h, cell *G.Node) (hOut, cOut *G.Node, err error) {
	err = g.Block(name(c.Prefix, "lstm_cell"), func() error {
		if x.Dims() != 2 || x.Shape()[1] != c.Input {
			return shapeErr("LSTMCell input", x.Shape(), fmt.Sprintf("[B, %d]", c.Input))
		}
		wih, whh, bih, bhh, err := c.params(g)
		if err != nil {
			return err
		}
		gx, err := ops.Linear(x, wih, bih)
		if err != nil {
			return err
		}
		hOut, cOut, err = c.step(gx, h, cell, whh, bhh)
		return err
	})
	return hOut, cOut, err
}

// step applies the recurrence given the input half of the gates,
// gx = W_ih x_t + b_ih [B, 4H].
func (c *LSTMCell) step(gx, h, cell, whh, bhh *G.Node) (*G.Node, *G.Node, error) {
	H := c.Hidden
	if h.Dims() != 2 || h.Shape()[1] != H || cell.Dims() != 2 || cell.Shape()[1] != H {
		return nil, nil, errors.Errorf("LSTM state has shapes %v and %v, want [B, %d]", h.Shape(), cell.Shape(), H)
	}
	gh, err := ops.Linear(h, whh, bhh)
	if err != nil {
		return nil, nil, err
	}
	gates, err := G.Add(gx, gh)
	if err != nil {
		return nil, nil, err
	}
	gate := func(k int, act func(*G.Node) (*G.Node, error)) (*G.Node, error) {
		s, err := G.Slice(gates, nil, G.S(k*H, (k+1)*H))
		if err != nil {
			return nil, err
		}
		return act(s)
	}
	i, err := gate(0, G.Sigmoid)
	if err != nil {
		return nil, nil, err
	}
	f, err := gate(1, G.Sigmoid)
	if err != nil {
		return nil, nil, err
	}
	gg, err := gate(2, G.Tanh)
	if err != nil {
		return nil, nil, err
	}
	o, err := gate(3, G.Sigmoid)
	if err != nil {
		return nil, nil, err
	}
	fc, err := G.HadamardProd(f, cell)
	if err != nil {
		return nil, nil, err
	}
	ig, err := G.HadamardProd(i, gg)
	if err != nil {
		return nil, nil, err
	}
	cNew, err := G.Add(fc, ig)
	if err != nil {
		return nil, nil, err
	}
	tc, err := G.Tanh(cNew)
	if err != nil {
		return nil, nil, err
	}
	hNew, err := G.HadamardProd(o, tc)
	if err != nil {
		return nil, nil, err
	}
	return hNew, cNew, nil
}

// LSTM is a stack of LSTM layers over a padded batch, as nn.LSTM with
// batch_first=True (parameters weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k},
// bias_hh_l{k}); layer k+1 reads the outputs of layer k.
type LSTM struct {
	Prefix string
	Layers []*LSTMCell
}

// NewLSTM adds layers LSTM layers of hidden units reading input features.
func NewLSTM(s *Store, prefix string, input, hidden, layers int) (*LSTM, error) {
	if err := positive("LSTM layer count", layers); err != nil {
		return nil, errors.Wrapf(err, "blocks: LSTM %q", prefix)
	}
	l := &LSTM{Prefix: prefix}
	for k := 0; k < layers; k++ {
		in := input
		if k > 0 {
			in = hidden
		}
		c, err := newLSTMCell(s, prefix, fmt.Sprintf("_l%d", k), in, hidden)
		if err != nil {
			return nil, err
		}
		l.Layers = append(l.Layers, c)
	}
	return l, nil
}

// Hidden is the size of h.
func (l *LSTM) Hidden() int { return l.Layers[0].Hidden }

// LSTMOutput is what an LSTM returns: every h_t of the top layer [B, T, H]
// (zero at padded steps, as pad_packed_sequence gives), and each layer's
// final state h_n, c_n [B, H] taken at the row's last real step.
type LSTMOutput struct {
	Out    *G.Node
	H, C   []*G.Node
	Layers int
}

// Forward runs the stack over x [B, T, I]. keep is StepMask(lengths, T, H)
// as a node, or nil when every row has all T steps; at a padded step the
// state is carried over unchanged: h_t = h_{t−1} + m_t ⊙ (h'_t − h_{t−1}).
// h0 and c0 give each layer's initial state ([B, H] each) or are nil for
// zeros.
func (l *LSTM) Forward(g *Graph, x, keep *G.Node, h0, c0 []*G.Node) (out LSTMOutput, err error) {
	err = g.Block(name(l.Prefix, "lstm"), func() error {
		if x.Dims() != 3 || x.Shape()[2] != l.Layers[0].Input {
			return shapeErr("LSTM input", x.Shape(), fmt.Sprintf("[B, T, %d]", l.Layers[0].Input))
		}
		B, T, H := x.Shape()[0], x.Shape()[1], l.Hidden()
		if keep != nil && !keep.Shape().Eq(tensor.Shape{B, T, H}) {
			return shapeErr("LSTM step mask", keep.Shape(), tensor.Shape{B, T, H})
		}
		if (h0 != nil && len(h0) != len(l.Layers)) || (c0 != nil && len(c0) != len(l.Layers)) {
			return errors.Errorf("LSTM has %d layers, got %d initial h and %d initial c", len(l.Layers), len(h0), len(c0))
		}
		out.Layers = len(l.Layers)
		seq := x
		for k, cell := range l.Layers {
			var hInit, cInit *G.Node
			if h0 != nil {
				hInit = h0[k]
			}
			if c0 != nil {
				cInit = c0[k]
			}
			var h, c *G.Node
			var err error
			if seq, h, c, err = l.layer(g, cell, seq, keep, hInit, cInit, B, T); err != nil {
				return errors.Wrapf(err, "layer %d", k)
			}
			out.H, out.C = append(out.H, h), append(out.C, c)
		}
		out.Out = seq
		return nil
	})
	return out, err
}

func (l *LSTM) layer(g *Graph, cell *LSTMCell, x, keep, h, c *G.Node, B, T int) (seq, hT, cT *G.Node, err error) {
	wih, whh, bih, bhh, err := cell.params(g)
	if err != nil {
		return nil, nil, nil, err
	}
	H := cell.Hidden
	zeros := func(which string) *G.Node {
		z := tensor.New(tensor.Of(g.Store.Dtype()), tensor.WithShape(B, H))
		return G.NewTensor(g.G, z.Dtype(), 2, G.WithShape(B, H), G.WithValue(z),
			G.WithName(fmt.Sprintf("%s.%s0_%dx%d", cell.param("zero"), which, B, H)))
	}
	if h == nil {
		h = zeros("h")
	}
	if c == nil {
		c = zeros("c")
	}
	// W_ih x_t + b_ih for every t in one matrix product.
	gxAll, err := ops.Linear(x, wih, bih)
	if err != nil {
		return nil, nil, nil, err
	}
	outs := make(G.Nodes, T)
	for t := 0; t < T; t++ {
		gx, err := G.Slice(gxAll, nil, G.S(t))
		if err != nil {
			return nil, nil, nil, err
		}
		hNew, cNew, err := cell.step(gx, h, c, whh, bhh)
		if err != nil {
			return nil, nil, nil, err
		}
		ht := hNew
		if keep != nil {
			m, err := G.Slice(keep, nil, G.S(t))
			if err != nil {
				return nil, nil, nil, err
			}
			if h, err = carry(h, hNew, m); err != nil {
				return nil, nil, nil, err
			}
			if c, err = carry(c, cNew, m); err != nil {
				return nil, nil, nil, err
			}
			if ht, err = G.HadamardProd(m, hNew); err != nil {
				return nil, nil, nil, err
			}
		} else {
			h, c = hNew, cNew
		}
		if outs[t], err = G.Reshape(ht, tensor.Shape{B, 1, H}); err != nil {
			return nil, nil, nil, err
		}
	}
	if T == 1 {
		seq = outs[0]
	} else if seq, err = G.Concat(1, outs...); err != nil {
		return nil, nil, nil, err
	}
	return seq, h, c, nil
}

// carry is old + m ⊙ (new − old): the new state where m is 1, the old one
// where m is 0 (a padded step).
func carry(old, nw, m *G.Node) (*G.Node, error) {
	d, err := G.Sub(nw, old)
	if err != nil {
		return nil, err
	}
	if d, err = G.HadamardProd(m, d); err != nil {
		return nil, err
	}
	return G.Add(old, d)
}
