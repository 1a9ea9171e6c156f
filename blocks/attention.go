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
func ScaledDotProductAttention(g *Graph, q, k, v, mask *G.Node, dropout float64) (out, weights *G.Node, err error) {
	err = g.Block("sdpa", func() error {
		if err := checkAttention(q, k, v, mask); err != nil {
			return err
		}
		dk := q.Shape()[q.Dims()-1]
		scores := Must(G.BatchedMatMul(q, k, false, true))
		weights = Must(ops.SoftMax(scores, mask, 1/math.Sqrt(float64(dk))))
		out = Must(G.BatchedMatMul(Must(g.ApplyDropout(weights, dropout)), v, false, false))
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
// the product.
func (m *MultiHeadAttention) Forward(g *Graph, query, memory, mask *G.Node) (out, weights *G.Node, err error) {
	err = g.Block(name(m.Prefix, "mha"), func() error {
		if err := m.check(query, memory, mask); err != nil {
			return err
		}
		d := m.DModel
		heads := func(x *G.Node, part, parts int) *G.Node { return Must(ops.SplitHeads(x, part, parts, m.Heads)) }
		w, b := g.param(m.Prefix, "in_proj_weight"), g.param(m.Prefix, "in_proj_bias")
		var q, k, v *G.Node
		if memory == query {
			qkv := Must(ops.Linear(query, w, b))
			q, k, v = heads(qkv, 0, 3), heads(qkv, 1, 3), heads(qkv, 2, 3)
		} else {
			q = heads(Must(ops.Linear(query, rows(w, 0, d), rows(b, 0, d))), 0, 1)
			kv := Must(ops.Linear(memory, rows(w, d, 3*d), rows(b, d, 3*d)))
			k, v = heads(kv, 0, 2), heads(kv, 1, 2)
		}
		ctx, wts := Must2(ScaledDotProductAttention(g, q, k, v, mask, m.Dropout))
		wo, bo := g.param(m.Prefix, "out_proj.weight"), g.param(m.Prefix, "out_proj.bias")
		out, weights = Must(ops.Linear(Must(ops.MergeHeads(ctx)), wo, bo)), wts
		return nil
	})
	return out, weights, err
}

func (m *MultiHeadAttention) check(query, memory, mask *G.Node) error {
	d := m.DModel
	if query.Dims() != 3 || query.Shape()[2] != d {
		return badShape("MultiHeadAttention query", query.Shape(), "B", "T_q", d)
	}
	B, Tq := query.Shape()[0], query.Shape()[1]
	if memory.Dims() != 3 || memory.Shape()[0] != B || memory.Shape()[2] != d {
		return badShape("MultiHeadAttention memory", memory.Shape(), B, "T_k", d)
	}
	if Tk := memory.Shape()[1]; mask != nil && !mask.Shape().Eq(tensor.Shape{B, Tq, Tk}) {
		return badShape("MultiHeadAttention mask", mask.Shape(), B, Tq, Tk)
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
		B, T, dh := k.H.Shape()[0], k.H.Shape()[1], k.H.Shape()[2]
		if !s.Shape().Eq(tensor.Shape{B, a.StateDim}) {
			return badShape("AdditiveAttention decoder state", s.Shape(), B, a.StateDim)
		}
		if mask != nil && !mask.Shape().Eq(tensor.Shape{B, T}) {
			return badShape("AdditiveAttention mask", mask.Shape(), B, T)
		}
		ws := Must(ops.Linear(s, g.param(a.Prefix, "W.weight"), nil))
		th := Must(G.Tanh(Must(G.BroadcastAdd(k.UH, ws, nil, []byte{1})))) // tanh(W s_{i−1} + U h_j)
		e := Must(G.Reshape(Must(ops.Linear(th, g.param(a.Prefix, "v.weight"), nil)), tensor.Shape{B, T}))
		alpha = Must(ops.SoftMax(e, mask, 1))
		c := Must(G.BatchedMatMul(Must(G.Reshape(alpha, tensor.Shape{B, 1, T})), k.H, false, false))
		ctx = Must(G.Reshape(c, tensor.Shape{B, dh}))
		return nil
	})
	return ctx, alpha, err
}
