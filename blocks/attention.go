package blocks

import (
	"fmt"
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
		if q.Dims() != k.Dims() || q.Dims() != v.Dims() || q.Dims() < 3 {
			return errors.Errorf("attention: Q %v, K %v and V %v must be 3-D or 4-D alike", q.Shape(), k.Shape(), v.Shape())
		}
		r := q.Dims()
		dk := q.Shape()[r-1]
		if k.Shape()[r-1] != dk || k.Shape()[r-2] != v.Shape()[r-2] {
			return errors.Errorf("attention: Q %v, K %v and V %v disagree on d_k or T_k", q.Shape(), k.Shape(), v.Shape())
		}
		scores, err := G.BatchedMatMul(q, k, false, true)
		if err != nil {
			return err
		}
		if weights, err = ops.SoftMax(scores, mask, 1/math.Sqrt(float64(dk))); err != nil {
			return err
		}
		w, err := g.ApplyDropout(weights, dropout)
		if err != nil {
			return err
		}
		out, err = G.BatchedMatMul(w, v, false, false)
		return err
	})
	return out, weights, err
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

// Forward attends from query [B, T_q, d_model] to memory [B, T_k, d_model]:
// self-attention when memory is query, encoder–decoder attention when
// memory is the encoder's output. mask is AttentionMask's [B, T_q, T_k]
// (causal and/or key padding) or nil. It returns the output
// [B, T_q, d_model] and the per-head weights [B, h, T_q, T_k].
func (m *MultiHeadAttention) Forward(g *Graph, query, memory, mask *G.Node) (out, weights *G.Node, err error) {
	err = g.Block(name(m.Prefix, "mha"), func() error {
		e := m.DModel
		if query.Dims() != 3 || query.Shape()[2] != e || memory.Dims() != 3 || memory.Shape()[2] != e || memory.Shape()[0] != query.Shape()[0] {
			return errors.Errorf("MultiHeadAttention: query %v and memory %v must be [B, T, %d] with the same B", query.Shape(), memory.Shape(), e)
		}
		B, Tq, Tk := query.Shape()[0], query.Shape()[1], memory.Shape()[1]
		if mask != nil && !mask.Shape().Eq(tensor.Shape{B, Tq, Tk}) {
			return shapeErr("MultiHeadAttention mask", mask.Shape(), tensor.Shape{B, Tq, Tk})
		}
		w, err := g.Param(join(m.Prefix, "in_proj_weight"))
		if err != nil {
			return err
		}
		b, err := g.Param(join(m.Prefix, "in_proj_bias"))
		if err != nil {
			return err
		}
		project := func(x *G.Node, i int) (*G.Node, error) {
			wi, err := G.Slice(w, G.S(i*e, (i+1)*e))
			if err != nil {
				return nil, err
			}
			bi, err := G.Slice(b, G.S(i*e, (i+1)*e))
			if err != nil {
				return nil, err
			}
			y, err := ops.Linear(x, wi, bi)
			if err != nil {
				return nil, err
			}
			return ops.SplitHeads(y, 0, 1, m.Heads)
		}
		q, err := project(query, 0)
		if err != nil {
			return err
		}
		k, err := project(memory, 1)
		if err != nil {
			return err
		}
		v, err := project(memory, 2)
		if err != nil {
			return err
		}
		ctx, wts, err := ScaledDotProductAttention(g, q, k, v, mask, m.Dropout)
		if err != nil {
			return err
		}
		weights = wts
		merged, err := ops.MergeHeads(ctx)
		if err != nil {
			return err
		}
		wo, err := g.Param(join(m.Prefix, "out_proj.weight"))
		if err != nil {
			return err
		}
		bo, err := g.Param(join(m.Prefix, "out_proj.bias"))
		if err != nil {
			return err
		}
		out, err = ops.Linear(merged, wo, bo)
		return err
	})
	return out, weights, err
}

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
			return shapeErr("AdditiveAttention encoder states", h.Shape(), fmt.Sprintf("[B, T, %d]", a.KeyDim))
		}
		u, err := g.Param(join(a.Prefix, "U.weight"))
		if err != nil {
			return err
		}
		uh, err := ops.Linear(h, u, nil)
		k = Keys{H: h, UH: uh}
		return err
	})
	return k, err
}

// Attend scores the decoder state s [B, d_s] against the keys, with mask
// PaddingMask's [B, T] or nil, and returns the context c_i [B, d_h] and the
// weights α_i [B, T].
func (a *AdditiveAttention) Attend(g *Graph, s *G.Node, k Keys, mask *G.Node) (ctx, alpha *G.Node, err error) {
	err = g.Block(name(a.Prefix, "additive_attention"), func() error {
		B, T := k.H.Shape()[0], k.H.Shape()[1]
		if !s.Shape().Eq(tensor.Shape{B, a.StateDim}) {
			return shapeErr("AdditiveAttention decoder state", s.Shape(), tensor.Shape{B, a.StateDim})
		}
		if mask != nil && !mask.Shape().Eq(tensor.Shape{B, T}) {
			return shapeErr("AdditiveAttention mask", mask.Shape(), tensor.Shape{B, T})
		}
		w, err := g.Param(join(a.Prefix, "W.weight"))
		if err != nil {
			return err
		}
		v, err := g.Param(join(a.Prefix, "v.weight"))
		if err != nil {
			return err
		}
		ws, err := ops.Linear(s, w, nil)
		if err != nil {
			return err
		}
		sum, err := G.BroadcastAdd(k.UH, ws, nil, []byte{1})
		if err != nil {
			return err
		}
		th, err := G.Tanh(sum)
		if err != nil {
			return err
		}
		e, err := ops.Linear(th, v, nil)
		if err != nil {
			return err
		}
		if e, err = G.Reshape(e, tensor.Shape{B, T}); err != nil {
			return err
		}
		if alpha, err = ops.SoftMax(e, mask, 1); err != nil {
			return err
		}
		a3, err := G.Reshape(alpha, tensor.Shape{B, 1, T})
		if err != nil {
			return err
		}
		c, err := G.BatchedMatMul(a3, k.H, false, false)
		if err != nil {
			return err
		}
		ctx, err = G.Reshape(c, tensor.Shape{B, k.H.Shape()[2]})
		return err
	})
	return ctx, alpha, err
}
