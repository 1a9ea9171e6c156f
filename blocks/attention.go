package blocks

import (
	"math"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/ops"
)

// ScaledDotProductAttention is attention as "Attention is all you need"
// (§3.2.1) writes it:
//
//	Attention(Q, K, V) = softmax(Q·Kᵀ/√d_k + M) · V
//
// for Q [..., T_q, d_k], K [..., T_k, d_k], V [..., T_k, d_v] (3-D, or 4-D
// with heads on axis 1) and M the additive mask from AttentionMask
// ([B, T_q, T_k], shared by the heads) or nil. It returns the output
// [..., T_q, d_v] and the weights [..., T_q, T_k] before dropout; dropout p
// applies to the weights in training graphs, as nn.MultiheadAttention does.
// It is one fused op over every head (ops.Attention), forward and backward.
func ScaledDotProductAttention(g *Graph, q, k, v, mask *G.Node, dropout float64) (out, weights *G.Node, err error) {
	err = g.Block("sdpa", func() error {
		if err := checkAttention(q, k, v, mask); err != nil {
			return err
		}
		if g.Mode == Eval {
			dropout = 0
		}
		dk := q.Shape()[q.Dims()-1]
		out, weights = Must2(ops.Attention(q, k, v, mask, 1/math.Sqrt(float64(dk)), dropout, g.Dropout))
		return nil
	})
	return out, weights, err
}

// checkAttention checks that K and V share Q's leading axes, K has Q's d_k,
// V has K's T_k, and the mask is [B, T_q, T_k] (or the scores' own shape).
func checkAttention(q, k, v, mask *G.Node) error {
	r := q.Dims()
	if r < 3 {
		return badShape("attention Q", q.Shape(), "...", "T_q", "d_k")
	}
	lead := make([]any, 0, r)
	for _, d := range q.Shape()[:r-2] {
		lead = append(lead, d)
	}
	if ks := k.Shape(); k.Dims() != r || !ks[:r-2].Eq(q.Shape()[:r-2]) || ks[r-1] != q.Shape()[r-1] {
		return badShape("attention K", ks, append(lead, "T_k", q.Shape()[r-1])...)
	}
	if vs := v.Shape(); v.Dims() != r || !vs[:r-2].Eq(q.Shape()[:r-2]) || vs[r-2] != k.Shape()[r-2] {
		return badShape("attention V", vs, append(lead, k.Shape()[r-2], "d_v")...)
	}
	if mask == nil {
		return nil
	}
	B, Tq, Tk := q.Shape()[0], q.Shape()[r-2], k.Shape()[r-2]
	scores := append(q.Shape()[:r-1].Clone(), Tk)
	if ms := mask.Shape(); !ms.Eq(tensor.Shape{B, Tq, Tk}) && !ms.Eq(scores) {
		return badShape("attention mask", ms, B, Tq, Tk)
	}
	return nil
}

// MultiHeadConfig configures multi-head attention.
type MultiHeadConfig struct {
	DModel, Heads int
	Dropout       float64
	// WeightInit and BiasInit override nn.MultiheadAttention's defaults
	// (Xavier-uniform in-projection, zero biases).
	WeightInit, BiasInit Init
}

// MultiHeadAttention is nn.MultiheadAttention ("Attention is all you need",
// §3.2.2):
//
//	MultiHead(Q, K, V) = Concat(head_1, …, head_h)·W^O
//	head_i = Attention(Q·W_i^Q, K·W_i^K, V·W_i^V)
//
// with d_k = d_v = d_model/h. The projections are PyTorch's packed
// in_proj_weight [3·d_model, d_model] (rows W^Q, W^K, W^V) and in_proj_bias,
// and out_proj.weight, out_proj.bias, so a state dict moves either way.
type MultiHeadAttention struct {
	Prefix        string
	DModel, Heads int
	Dropout       float64
}

// NewMultiHeadAttention validates cfg and adds the projections under prefix.
func NewMultiHeadAttention(s *Store, prefix string, cfg MultiHeadConfig) (*MultiHeadAttention, error) {
	if err := positive("MultiHeadAttention d_model and heads", cfg.DModel, cfg.Heads); err != nil {
		return nil, errors.Wrapf(err, "blocks: MultiHeadAttention %q", prefix)
	}
	if cfg.DModel%cfg.Heads != 0 {
		return nil, errors.Errorf("blocks: MultiHeadAttention %q: d_model %d is not divisible by %d heads", prefix, cfg.DModel, cfg.Heads)
	}
	if err := checkDropout(cfg.Dropout); err != nil {
		return nil, errors.Wrapf(err, "blocks: MultiHeadAttention %q", prefix)
	}
	e := cfg.DModel
	wi, bi, oi := cfg.WeightInit, cfg.BiasInit, cfg.WeightInit
	if wi == nil {
		wi, oi = XavierUniform(), FanInUniform(e)
	}
	if bi == nil {
		bi = Zeros()
	}
	for _, p := range []struct {
		n     string
		shape tensor.Shape
		init  Init
	}{
		{"in_proj_weight", tensor.Shape{3 * e, e}, wi},
		{"in_proj_bias", tensor.Shape{3 * e}, bi},
		{"out_proj.weight", tensor.Shape{e, e}, oi},
		{"out_proj.bias", tensor.Shape{e}, bi},
	} {
		if _, err := s.Add(join(prefix, p.n), p.shape, p.init); err != nil {
			return nil, err
		}
	}
	return &MultiHeadAttention{Prefix: prefix, DModel: e, Heads: cfg.Heads, Dropout: cfg.Dropout}, nil
}

// KV is one attention's keys and values laid out by head, [B, h, T_k, d_k]
// each: what a decoder caches for its earlier positions, and what
// encoder–decoder attention computes once per source sentence.
type KV struct{ K, V *G.Node }

// Forward attends from query [B, T_q, d_model] to memory [B, T_k, d_model]
// and returns the output [B, T_q, d_model] and the per-head weights
// [B, h, T_q, T_k]:
//
//	Q = query·W^Qᵀ + b^Q,  K = memory·W^Kᵀ + b^K,  V = memory·W^Vᵀ + b^V
//	head_i = Attention(Q_i, K_i, V_i)         (X_i: the d_k columns of head i)
//	out = Concat(head_1, …, head_h)·W^Oᵀ + b^O
//
// mask is AttentionMask's [B, T_q, T_k] (causal and/or key padding) or nil.
// As in PyTorch, self-attention (memory is the node query itself) computes
// Q, K and V in one product with the packed in_proj_weight, [B, T, 3d], and
// encoder–decoder attention computes Q from the query and K, V in one
// product [B, T_k, 2d] from the memory; each head is read straight out of
// the product. SelfAttend, KeysValues and Attend are the same computation in
// the pieces incremental decoding needs.
func (m *MultiHeadAttention) Forward(g *Graph, query, memory, mask *G.Node) (out, weights *G.Node, err error) {
	err = g.Block(name(m.Prefix, "mha"), func() error {
		if err := m.check(query, memory, mask); err != nil {
			return err
		}
		if memory == query {
			out, weights, _ = Must3(m.SelfAttend(g, query, nil, mask))
		} else {
			out, weights = Must2(m.Attend(g, query, Must(m.KeysValues(g, memory)), mask))
		}
		return nil
	})
	return out, weights, err
}

// SelfAttend is self-attention of the new positions x [B, T, d_model] over
// themselves and, when past is not nil, over P earlier positions whose keys
// and values past holds ([B, h, P, d_k], a decoder's cache):
//
//	[Q K V] = x·W^inᵀ + b^in                (one product, [B, T, 3d])
//	K, V = [K_past; K], [V_past; V]          (with a cache: T_k = P + T)
//	out = Concat(head_1, …, head_h)·W^Oᵀ + b^O,  head_i = Attention(Q_i, K_i, V_i)
//
// mask is [B, T, T_k] or nil. It returns the output [B, T, d_model], the
// per-head weights [B, h, T, T_k] and x's own keys and values (to cache).
func (m *MultiHeadAttention) SelfAttend(g *Graph, x *G.Node, past *KV, mask *G.Node) (out, weights *G.Node, kv KV, err error) {
	err = g.Block(name(m.Prefix, "mha"), func() error {
		tk := x.Shape()[1]
		if past != nil {
			if err := m.checkKV(x, *past, "past"); err != nil {
				return err
			}
			tk += past.K.Shape()[2]
		}
		if err := m.checkQuery(x, tk, mask); err != nil {
			return err
		}
		w, b := g.param(m.Prefix, "in_proj_weight"), g.param(m.Prefix, "in_proj_bias")
		qkv := Must(ops.Linear(x, w, b))
		q := m.heads(qkv, 0, 3)
		kv = KV{K: m.heads(qkv, 1, 3), V: m.heads(qkv, 2, 3)}
		all := kv
		if past != nil {
			all = KV{K: Must(ops.AppendSteps(past.K, kv.K)), V: Must(ops.AppendSteps(past.V, kv.V))}
		}
		out, weights = m.attend(g, q, all, mask)
		return nil
	})
	return out, weights, kv, err
}

// KeysValues projects memory [B, T_k, d_model] to the keys and values of
// every head in one product:
//
//	[K V] = memory·[W^K; W^V]ᵀ + [b^K; b^V]     ([B, T_k, 2d], then [B, h, T_k, d_k] each)
//
// Encoder–decoder attention computes them once per source sentence and
// attends to them at every decoder step (Attend).
func (m *MultiHeadAttention) KeysValues(g *Graph, memory *G.Node) (kv KV, err error) {
	err = g.Block(name(m.Prefix, "mha"), func() error {
		if memory.Dims() != 3 || memory.Shape()[2] != m.DModel {
			return badShape("MultiHeadAttention memory", memory.Shape(), "B", "T_k", m.DModel)
		}
		d := m.DModel
		w, b := g.param(m.Prefix, "in_proj_weight"), g.param(m.Prefix, "in_proj_bias")
		kvp := Must(ops.Linear(memory, rows(w, d, 3*d), rows(b, d, 3*d)))
		kv = KV{K: m.heads(kvp, 0, 2), V: m.heads(kvp, 1, 2)}
		return nil
	})
	return kv, err
}

// Attend attends from query [B, T_q, d_model] to keys and values kv that
// KeysValues computed:
//
//	Q = query·W^Qᵀ + b^Q
//	out = Concat(head_1, …, head_h)·W^Oᵀ + b^O,  head_i = Attention(Q_i, K_i, V_i)
//
// with mask [B, T_q, T_k] or nil. It returns the output [B, T_q, d_model]
// and the per-head weights [B, h, T_q, T_k].
func (m *MultiHeadAttention) Attend(g *Graph, query *G.Node, kv KV, mask *G.Node) (out, weights *G.Node, err error) {
	err = g.Block(name(m.Prefix, "mha"), func() error {
		if err := m.checkKV(query, kv, "memory"); err != nil {
			return err
		}
		if err := m.checkQuery(query, kv.K.Shape()[2], mask); err != nil {
			return err
		}
		d := m.DModel
		w, b := g.param(m.Prefix, "in_proj_weight"), g.param(m.Prefix, "in_proj_bias")
		q := m.heads(Must(ops.Linear(query, rows(w, 0, d), rows(b, 0, d))), 0, 1)
		out, weights = m.attend(g, q, kv, mask)
		return nil
	})
	return out, weights, err
}

// attend is the heads' scaled dot-product attention and the output
// projection; call it under Must.
func (m *MultiHeadAttention) attend(g *Graph, q *G.Node, kv KV, mask *G.Node) (out, weights *G.Node) {
	ctx, wts := Must2(ScaledDotProductAttention(g, q, kv.K, kv.V, mask, m.Dropout))
	wo, bo := g.param(m.Prefix, "out_proj.weight"), g.param(m.Prefix, "out_proj.bias")
	return Must(ops.Linear(Must(ops.MergeHeads(ctx)), wo, bo)), wts
}

// heads is part p of parts of a packed projection, by head.
func (m *MultiHeadAttention) heads(x *G.Node, part, parts int) *G.Node {
	return Must(ops.SplitHeads(x, part, parts, m.Heads))
}

func (m *MultiHeadAttention) check(query, memory, mask *G.Node) error {
	d := m.DModel
	if query.Dims() != 3 || query.Shape()[2] != d {
		return badShape("MultiHeadAttention query", query.Shape(), "B", "T_q", d)
	}
	B := query.Shape()[0]
	if memory.Dims() != 3 || memory.Shape()[0] != B || memory.Shape()[2] != d {
		return badShape("MultiHeadAttention memory", memory.Shape(), B, "T_k", d)
	}
	return m.checkQuery(query, memory.Shape()[1], mask)
}

// checkQuery checks a query [B, T_q, d_model] and its mask [B, T_q, T_k].
func (m *MultiHeadAttention) checkQuery(query *G.Node, tk int, mask *G.Node) error {
	if query.Dims() != 3 || query.Shape()[2] != m.DModel {
		return badShape("MultiHeadAttention query", query.Shape(), "B", "T_q", m.DModel)
	}
	B, Tq := query.Shape()[0], query.Shape()[1]
	if mask != nil && !mask.Shape().Eq(tensor.Shape{B, Tq, tk}) {
		return badShape("MultiHeadAttention mask", mask.Shape(), B, Tq, tk)
	}
	return nil
}

// checkKV checks keys and values [B, h, T_k, d_k] for a query [B, T_q, d].
func (m *MultiHeadAttention) checkKV(query *G.Node, kv KV, what string) error {
	if query.Dims() != 3 {
		return badShape("MultiHeadAttention query", query.Shape(), "B", "T_q", m.DModel)
	}
	B, dk := query.Shape()[0], m.DModel/m.Heads
	for _, x := range []struct {
		n    string
		node *G.Node
	}{{"keys", kv.K}, {"values", kv.V}} {
		if x.node == nil {
			return errors.Errorf("MultiHeadAttention %s %s are nil", what, x.n)
		}
		if s := x.node.Shape(); x.node.Dims() != 4 || s[0] != B || s[1] != m.Heads || s[3] != dk {
			return badShape("MultiHeadAttention "+what+" "+x.n, s, B, m.Heads, "T_k", dk)
		}
	}
	if kv.K.Shape()[2] != kv.V.Shape()[2] {
		return badShape("MultiHeadAttention "+what+" values", kv.V.Shape(), B, m.Heads, kv.K.Shape()[2], dk)
	}
	return nil
}

// rows is x[i:j] along the first axis.
func rows(x *G.Node, i, j int) *G.Node { return Must(ops.Narrow(x, 0, i, j)) }

// AdditiveAttention is the attention of Bahdanau, Cho & Bengio (2015):
//
//	e_ij = vᵀ tanh(W s_{i−1} + U h_j)
//	α_ij = exp(e_ij) / Σ_k exp(e_ik)     (padded j excluded)
//	c_i  = Σ_j α_ij h_j
//
// with W [A, d_s] ("W.weight"), U [A, d_h] ("U.weight") and v [1, A]
// ("v.weight"), bias-free as in the paper, initialised as bias-free
// nn.Linear modules.
type AdditiveAttention struct {
	Prefix                  string
	StateDim, KeyDim, Inner int
}

// NewAdditiveAttention adds W, U and v for decoder states of stateDim,
// encoder states of keyDim and an attention layer of inner units.
func NewAdditiveAttention(s *Store, prefix string, stateDim, keyDim, inner int) (*AdditiveAttention, error) {
	if err := positive("AdditiveAttention sizes", stateDim, keyDim, inner); err != nil {
		return nil, errors.Wrapf(err, "blocks: AdditiveAttention %q", prefix)
	}
	for _, l := range []struct {
		n       string
		in, out int
	}{{"W", stateDim, inner}, {"U", keyDim, inner}, {"v", inner, 1}} {
		if _, err := NewLinear(s, join(prefix, l.n), LinearConfig{In: l.in, Out: l.out, NoBias: true}); err != nil {
			return nil, err
		}
	}
	return &AdditiveAttention{Prefix: prefix, StateDim: stateDim, KeyDim: keyDim, Inner: inner}, nil
}

// Keys holds U·h_j for every j, computed once per source sentence and
// reused at every decoder step.
type Keys struct {
	H, UH *G.Node
}

// Precompute returns the keys of encoder states h [B, T, d_h].
func (a *AdditiveAttention) Precompute(g *Graph, h *G.Node) (k Keys, err error) {
	err = g.Block(name(a.Prefix, "additive_attention"), func() error {
		if h.Dims() != 3 || h.Shape()[2] != a.KeyDim {
			return badShape("AdditiveAttention encoder states", h.Shape(), "B", "T", a.KeyDim)
		}
		k = Keys{H: h, UH: Must(ops.Linear(h, g.param(a.Prefix, "U.weight"), nil))}
		return nil
	})
	return k, err
}

// Attend scores the decoder state s [B, d_s] against the keys, with mask
// PaddingMask's [B, T] or nil, and returns the context c_i [B, d_h] and the
// weights α_i [B, T] (the equations above).
func (a *AdditiveAttention) Attend(g *Graph, s *G.Node, k Keys, mask *G.Node) (ctx, alpha *G.Node, err error) {
	err = g.Block(name(a.Prefix, "additive_attention"), func() error {
		B, T := k.H.Shape()[0], k.H.Shape()[1]
		if !s.Shape().Eq(tensor.Shape{B, a.StateDim}) {
			return badShape("AdditiveAttention decoder state", s.Shape(), B, a.StateDim)
		}
		if mask != nil && !mask.Shape().Eq(tensor.Shape{B, T}) {
			return badShape("AdditiveAttention mask", mask.Shape(), B, T)
		}
		ws := Must(ops.Linear(s, g.param(a.Prefix, "W.weight"), nil))
		e := Must(ops.AdditiveScores(k.UH, ws, g.param(a.Prefix, "v.weight"))) // vᵀ tanh(W s_{i−1} + U h_j)
		alpha = Must(ops.SoftMax(e, mask, 1))
		ctx = Must(ops.WeightedSum(alpha, k.H)) // c_i = Σ_j α_ij h_j
		return nil
	})
	return ctx, alpha, err
}

// Score names an attention score function for encoder–decoder attention.
type Score string

const (
	// Additive is Bahdanau et al.'s e_ij = vᵀ tanh(W s + U h_j)
	// (AdditiveAttention).
	Additive Score = "additive"
	// Dot is Luong et al.'s e_ij = sᵀ h_j (MultiplicativeAttention).
	Dot Score = "dot"
	// General is Luong et al.'s e_ij = sᵀ W_a h_j (MultiplicativeAttention).
	General Score = "general"
)

// Attention is an encoder–decoder attention whose keys are computed once
// per source sentence (Precompute) and scored against each decoder state
// (Attend): AdditiveAttention and MultiplicativeAttention.
type Attention interface {
	Precompute(g *Graph, h *G.Node) (Keys, error)
	Attend(g *Graph, s *G.Node, k Keys, mask *G.Node) (ctx, alpha *G.Node, err error)
}

var (
	_ Attention = (*AdditiveAttention)(nil)
	_ Attention = (*MultiplicativeAttention)(nil)
)

// NewAttention adds the attention of the given score for decoder states of
// stateDim and encoder states of keyDim; inner is the additive score's
// layer size (unused by the others).
func NewAttention(s *Store, prefix string, score Score, stateDim, keyDim, inner int) (Attention, error) {
	switch score {
	case Additive:
		return NewAdditiveAttention(s, prefix, stateDim, keyDim, inner)
	case Dot, General:
		return NewMultiplicativeAttention(s, prefix, stateDim, keyDim, score == General)
	}
	return nil, errors.Errorf("blocks: attention score %q is not additive, dot or general", score)
}

// MultiplicativeAttention is the global attention of Luong, Pham & Manning
// (2015, §3.1) with their "dot" and "general" scores:
//
//	e_ij = sᵀ h_j            (dot: the states must have one size)
//	e_ij = sᵀ W_a h_j        (general)
//	α_ij = exp(e_ij) / Σ_k exp(e_ik)     (padded j excluded)
//	c_i  = Σ_j α_ij h_j
//
// with W_a [d_s, d_h] ("W_a.weight"), a bias-free nn.Linear(d_h, d_s), as
// OpenNMT's linear_in. Which state s is scored (s_{i−1} before the step,
// as Bahdanau, or s_i after it, as Luong) is the decoder's choice.
type MultiplicativeAttention struct {
	Prefix           string
	StateDim, KeyDim int
	General          bool
}

// NewMultiplicativeAttention adds W_a when general; dot has no parameters
// and needs stateDim = keyDim.
func NewMultiplicativeAttention(s *Store, prefix string, stateDim, keyDim int, general bool) (*MultiplicativeAttention, error) {
	if err := positive("MultiplicativeAttention sizes", stateDim, keyDim); err != nil {
		return nil, errors.Wrapf(err, "blocks: MultiplicativeAttention %q", prefix)
	}
	if !general && stateDim != keyDim {
		return nil, errors.Errorf("blocks: MultiplicativeAttention %q: the dot score needs decoder and encoder states of one size, got %d and %d (the general score maps between them)", prefix, stateDim, keyDim)
	}
	if general {
		if _, err := NewLinear(s, join(prefix, "W_a"), LinearConfig{In: keyDim, Out: stateDim, NoBias: true}); err != nil {
			return nil, err
		}
	}
	return &MultiplicativeAttention{Prefix: prefix, StateDim: stateDim, KeyDim: keyDim, General: general}, nil
}

// Precompute returns the keys of encoder states h [B, T, d_h]: W_a h_j
// (general) or h_j itself (dot), [B, T, d_s].
func (a *MultiplicativeAttention) Precompute(g *Graph, h *G.Node) (k Keys, err error) {
	err = g.Block(name(a.Prefix, "multiplicative_attention"), func() error {
		if h.Dims() != 3 || h.Shape()[2] != a.KeyDim {
			return badShape("MultiplicativeAttention encoder states", h.Shape(), "B", "T", a.KeyDim)
		}
		k = Keys{H: h, UH: h}
		if a.General {
			k.UH = Must(ops.Linear(h, g.param(a.Prefix, "W_a.weight"), nil))
		}
		return nil
	})
	return k, err
}

// Attend scores the decoder state s [B, d_s] against the keys, with mask
// PaddingMask's [B, T] or nil, and returns the context c_i [B, d_h] and the
// weights α_i [B, T]. The score is Σ_d s_d·K_jd over the broadcast state,
// so no reshape touches s (which is an input node in a decoding step, and
// Gorgonia's Reshape of an input overwrites it).
func (a *MultiplicativeAttention) Attend(g *Graph, s *G.Node, k Keys, mask *G.Node) (ctx, alpha *G.Node, err error) {
	err = g.Block(name(a.Prefix, "multiplicative_attention"), func() error {
		B, T := k.H.Shape()[0], k.H.Shape()[1]
		if !s.Shape().Eq(tensor.Shape{B, a.StateDim}) {
			return badShape("MultiplicativeAttention decoder state", s.Shape(), B, a.StateDim)
		}
		if mask != nil && !mask.Shape().Eq(tensor.Shape{B, T}) {
			return badShape("MultiplicativeAttention mask", mask.Shape(), B, T)
		}
		e := Must(G.Sum(Must(G.BroadcastHadamardProd(k.UH, s, nil, []byte{1})), 2)) // sᵀ K_j, [B, T]
		alpha = Must(ops.SoftMax(e, mask, 1))
		ctx = Must(ops.WeightedSum(alpha, k.H)) // c_i = Σ_j α_ij h_j
		return nil
	})
	return ctx, alpha, err
}
