package transformer

import (
	"fmt"

	G "gorgonia.org/gorgonia"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/ops"
)

// EncoderLayer is nn.TransformerEncoderLayer (§3.1): self-attention
// (Q = K = V = x) and the position-wise FFN, each a residual sub-layer,
//
//	post-LN (the paper):  x = LN₁(x + Dropout(SelfAttn(x)));  y = LN₂(x + Dropout(FFN(x)))
//	pre-LN (NormFirst):   x = x + Dropout(SelfAttn(LN₁(x)));  y = x + Dropout(FFN(LN₂(x)))
//
// Parameters under Prefix: self_attn.*, linear1.*, linear2.*, norm1.*,
// norm2.*.
type EncoderLayer struct {
	Prefix       string
	SelfAttn     *blocks.MultiHeadAttention
	FFN          *blocks.FeedForward
	Norm1, Norm2 *blocks.LayerNorm
	NormFirst    bool
	Dropout      float64
}

// DecoderLayer is nn.TransformerDecoderLayer (§3.1): masked self-attention
// (Q = K = V = y, position i sees positions ≤ i), encoder–decoder attention
// (Q from the decoder, K = V from the encoder stack's output) and the FFN,
//
//	post-LN:  y = LN₁(y + Dropout(SelfAttn(y)));  y = LN₂(y + Dropout(CrossAttn(y, memory)));  y = LN₃(y + Dropout(FFN(y)))
//	pre-LN:   y = y + Dropout(SelfAttn(LN₁(y)));  y = y + Dropout(CrossAttn(LN₂(y), memory));  y = y + Dropout(FFN(LN₃(y)))
//
// Parameters under Prefix: self_attn.*, multihead_attn.* (cross-attention),
// linear1.*, linear2.*, norm1.*, norm2.*, norm3.*.
type DecoderLayer struct {
	Prefix              string
	SelfAttn, CrossAttn *blocks.MultiHeadAttention
	FFN                 *blocks.FeedForward
	Norm1, Norm2, Norm3 *blocks.LayerNorm
	NormFirst           bool
	Dropout             float64
}

// layerParts adds a layer's FFN and its LayerNorms norm1 … norm<n>, and
// its attentions under names.
func layerParts(s *blocks.Store, prefix string, cfg Config, attentions []string, norms int) ([]*blocks.MultiHeadAttention, *blocks.FeedForward, []*blocks.LayerNorm, error) {
	var mhas []*blocks.MultiHeadAttention
	for _, a := range attentions {
		// nn.Transformer's initialisation: Xavier-uniform projections,
		// zero projection biases (nn.MultiheadAttention).
		m, err := blocks.NewMultiHeadAttention(s, prefix+"."+a, blocks.MultiHeadConfig{
			DModel: cfg.DModel, Heads: cfg.NHead, Dropout: cfg.Dropout, WeightInit: blocks.XavierUniform()})
		if err != nil {
			return nil, nil, nil, err
		}
		mhas = append(mhas, m)
	}
	act := blocks.ReLU
	if cfg.Activation == "gelu" {
		act = blocks.GELUExact
	}
	// Xavier-uniform weights, nn.Linear's U(±1/√fan_in) biases.
	ffn, err := blocks.NewFeedForward(s, prefix, blocks.FeedForwardConfig{
		DModel: cfg.DModel, DFF: cfg.DimFeedforward, Activation: act, Dropout: cfg.Dropout, WeightInit: blocks.XavierUniform()})
	if err != nil {
		return nil, nil, nil, err
	}
	lns := make([]*blocks.LayerNorm, norms)
	for i := range lns {
		if lns[i], err = blocks.NewLayerNorm(s, fmt.Sprintf("%s.norm%d", prefix, i+1), cfg.DModel, cfg.LayerNormEps); err != nil {
			return nil, nil, nil, err
		}
	}
	return mhas, ffn, lns, nil
}

func newEncoderLayer(s *blocks.Store, prefix string, cfg Config) (*EncoderLayer, error) {
	a, ffn, ln, err := layerParts(s, prefix, cfg, []string{"self_attn"}, 2)
	if err != nil {
		return nil, err
	}
	return &EncoderLayer{Prefix: prefix, SelfAttn: a[0], FFN: ffn, Norm1: ln[0], Norm2: ln[1], NormFirst: cfg.NormFirst, Dropout: cfg.Dropout}, nil
}

func newDecoderLayer(s *blocks.Store, prefix string, cfg Config) (*DecoderLayer, error) {
	a, ffn, ln, err := layerParts(s, prefix, cfg, []string{"self_attn", "multihead_attn"}, 3)
	if err != nil {
		return nil, err
	}
	return &DecoderLayer{Prefix: prefix, SelfAttn: a[0], CrossAttn: a[1], FFN: ffn,
		Norm1: ln[0], Norm2: ln[1], Norm3: ln[2], NormFirst: cfg.NormFirst, Dropout: cfg.Dropout}, nil
}

// Forward applies the layer to x [B, S, d_model] with mask [B, S, S] (the
// source's key padding) and returns y [B, S, d_model] and the
// self-attention weights [B, h, S, S] (the equations above).
func (l *EncoderLayer) Forward(g *blocks.Graph, x, mask *G.Node) (y, weights *G.Node, err error) {
	err = g.Block(l.Prefix, func() error {
		x = sublayer(g, x, l.Norm1, l.NormFirst, l.Dropout, func(x *G.Node) *G.Node {
			var a *G.Node
			a, weights = blocks.Must2(l.SelfAttn.Forward(g, x, x, mask))
			return a
		})
		y = sublayer(g, x, l.Norm2, l.NormFirst, l.Dropout, func(x *G.Node) *G.Node { return blocks.Must(l.FFN.Forward(g, x)) })
		return nil
	})
	return y, weights, err
}

// DecoderAttention is what a decoder layer's attentions give besides its
// output: the weights of its self-attention [B, h, T, T_k] and of its
// cross-attention [B, h, T, S], and the keys and values of its new
// positions ([B, h, T, d_k] each), which a decoder caches.
type DecoderAttention struct {
	Self, Cross *G.Node
	KV          blocks.KV
}

// Forward applies the layer to the new positions y [B, T, d_model] (the
// equations above). past holds the self-attention's keys and values of
// earlier positions ([B, h, P, d_k], a decoding cache) or is nil; memory
// is the cross-attention's keys and values of the encoder's output
// (CrossAttn.KeysValues, computed once per source). selfMask is
// [B, T, P+T] (causal), memoryMask [B, T, S] (the source's key padding).
func (l *DecoderLayer) Forward(g *blocks.Graph, y *G.Node, past *blocks.KV, memory blocks.KV, selfMask, memoryMask *G.Node) (out *G.Node, att DecoderAttention, err error) {
	err = g.Block(l.Prefix, func() error {
		y = sublayer(g, y, l.Norm1, l.NormFirst, l.Dropout, func(y *G.Node) *G.Node {
			var a *G.Node
			a, att.Self, att.KV = blocks.Must3(l.SelfAttn.SelfAttend(g, y, past, selfMask))
			return a
		})
		y = sublayer(g, y, l.Norm2, l.NormFirst, l.Dropout, func(y *G.Node) *G.Node {
			var c *G.Node
			c, att.Cross = blocks.Must2(l.CrossAttn.Attend(g, y, memory, memoryMask))
			return c
		})
		out = sublayer(g, y, l.Norm3, l.NormFirst, l.Dropout, func(y *G.Node) *G.Node { return blocks.Must(l.FFN.Forward(g, y)) })
		return nil
	})
	return out, att, err
}

// sublayer is the residual connection around f, "LayerNorm(x +
// Sublayer(x))" (§3.1), with dropout on the sub-layer's output (§5.4):
//
//	post-LN:  LN(x + Dropout(f(x)))
//	pre-LN:   x + Dropout(f(LN(x)))
//
// Call it under Must, inside a Block.
func sublayer(g *blocks.Graph, x *G.Node, ln *blocks.LayerNorm, normFirst bool, p float64, f func(*G.Node) *G.Node) *G.Node {
	if normFirst {
		return blocks.Must(ops.Add(x, blocks.Must(g.ApplyDropout(f(blocks.Must(ln.Forward(g, x))), p))))
	}
	return blocks.Must(ln.Forward(g, blocks.Must(ops.Add(x, blocks.Must(g.ApplyDropout(f(x), p))))))
}
