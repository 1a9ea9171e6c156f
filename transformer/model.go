package transformer

import (
	"fmt"
	"math"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/ops"
)

// Model is a Transformer: its configuration and its weights.
type Model struct {
	Config Config
	Store  *blocks.Store

	SrcEmbed, TgtEmbed *blocks.Embedding // E_src, E_tgt (the same with ShareEmbeddings)
	// SrcPositions, TgtPositions are the sinusoids (one table for both)
	// or the learned tables src_pos_embed, tgt_pos_embed.
	SrcPositions, TgtPositions PositionEncoding
	Encoder                    []*EncoderLayer
	EncoderNorm                *blocks.LayerNorm // encoder.norm
	Decoder                    []*DecoderLayer
	DecoderNorm                *blocks.LayerNorm // decoder.norm
	// Generator is W_gen, b_gen; with TieOutput its weight is E_tgt's and
	// only generator.bias is its own.
	Generator *blocks.Linear
}

// PositionEncoding is a position encoding looked up by position id: learned
// (blocks.LearnedPositions) or fixed (blocks.SinusoidalPositions).
type PositionEncoding interface {
	Forward(g *blocks.Graph, pos *G.Node, batch, steps int) (*G.Node, error)
}

// New builds a model with freshly initialised weights, deterministic for a
// seed: nn.Transformer's Xavier-uniform projections and FFN weights (zero
// attention biases, nn.Linear's FFN biases, unit LayerNorms), embeddings
// and learned positions N(0, d_model^−1/2) as fairseq (so that E·√d_model
// has unit variance, the scale of the sinusoids), and an nn.Linear
// generator.
func New(cfg Config, seed uint64) (*Model, error) {
	s, err := blocks.NewStore(tensor.Float32, seed)
	if err != nil {
		return nil, err
	}
	return NewWithStore(cfg, s)
}

// NewWithStore builds the model's parameters into s, an empty store (a
// float64 one for gradient checks).
func NewWithStore(cfg Config, s *blocks.Store) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if s.Len() != 0 {
		return nil, errors.Errorf("transformer: the store already holds %d parameters", s.Len())
	}
	d := cfg.DModel
	m := &Model{Config: cfg, Store: s}
	emb := blocks.Normal(0, 1/math.Sqrt(float64(d)))
	var err error
	if m.SrcEmbed, err = blocks.NewEmbedding(s, "src_embed", cfg.SrcVocabSize, d, emb); err != nil {
		return nil, err
	}
	m.TgtEmbed = m.SrcEmbed
	if !cfg.ShareEmbeddings {
		if m.TgtEmbed, err = blocks.NewEmbedding(s, "tgt_embed", cfg.TgtVocabSize, d, emb); err != nil {
			return nil, err
		}
	}
	if cfg.Positions == Learned {
		src, err := blocks.NewLearnedPositions(s, "src_pos_embed", cfg.MaxPositions, d, emb)
		if err != nil {
			return nil, err
		}
		tgt, err := blocks.NewLearnedPositions(s, "tgt_pos_embed", cfg.MaxPositions, d, emb)
		if err != nil {
			return nil, err
		}
		m.SrcPositions, m.TgtPositions = src, tgt
	} else {
		pe, err := blocks.NewSinusoidalPositions(cfg.MaxPositions, d)
		if err != nil {
			return nil, err
		}
		m.SrcPositions, m.TgtPositions = pe, pe
	}
	for i := 0; i < cfg.NumEncoderLayers; i++ {
		l, err := newEncoderLayer(s, fmt.Sprintf("encoder.layers.%d", i), cfg)
		if err != nil {
			return nil, err
		}
		m.Encoder = append(m.Encoder, l)
	}
	if m.EncoderNorm, err = blocks.NewLayerNorm(s, "encoder.norm", d, cfg.LayerNormEps); err != nil {
		return nil, err
	}
	for i := 0; i < cfg.NumDecoderLayers; i++ {
		l, err := newDecoderLayer(s, fmt.Sprintf("decoder.layers.%d", i), cfg)
		if err != nil {
			return nil, err
		}
		m.Decoder = append(m.Decoder, l)
	}
	if m.DecoderNorm, err = blocks.NewLayerNorm(s, "decoder.norm", d, cfg.LayerNormEps); err != nil {
		return nil, err
	}
	if cfg.TieOutput {
		if _, err := s.Add("generator.bias", tensor.Shape{cfg.TgtVocabSize}, blocks.FanInUniform(d)); err != nil {
			return nil, err
		}
		m.Generator = &blocks.Linear{Prefix: "generator", In: d, Out: cfg.TgtVocabSize, Bias: true}
	} else if m.Generator, err = blocks.NewLinear(s, "generator", blocks.LinearConfig{In: d, Out: cfg.TgtVocabSize}); err != nil {
		return nil, err
	}
	return m, nil
}

// Embed is the input of a stack for token ids and position ids (1-D
// tensor.Int nodes [B·T]) through table:
//
//	x₀ = Dropout(E[ids]·√d_model + PE[pos])          [B, T, d_model]
//
// (§3.4: "we multiply those weights by √d_model"; §5.4: dropout "to the sums
// of the embeddings and the positional encodings").
func (m *Model) Embed(g *blocks.Graph, table *blocks.Embedding, pe PositionEncoding, ids, pos *G.Node, batch, steps int) (x *G.Node, err error) {
	err = g.Block(table.Prefix, func() error {
		e := blocks.Must(table.Forward(g, ids, batch, steps))
		scaled := blocks.Must(ops.Scale(e, math.Sqrt(float64(m.Config.DModel))))
		x = blocks.Must(g.ApplyDropout(blocks.Must(ops.Add(scaled, blocks.Must(pe.Forward(g, pos, batch, steps)))), m.Config.Dropout))
		return nil
	})
	return x, err
}

// Encode runs the encoder stack over x₀ [B, S, d_model] with mask
// [B, S, S] (key padding) and returns memory = LN_enc(x_N) and each layer's
// self-attention weights [B, h, S, S].
func (m *Model) Encode(g *blocks.Graph, x, mask *G.Node) (memory *G.Node, weights []*G.Node, err error) {
	err = blocks.Build(func() error {
		weights = make([]*G.Node, len(m.Encoder))
		for i, l := range m.Encoder {
			x, weights[i] = blocks.Must2(l.Forward(g, x, mask))
		}
		memory = blocks.Must(m.EncoderNorm.Forward(g, x))
		return nil
	})
	return memory, weights, err
}

// MemoryKV is each decoder layer's cross-attention keys and values of the
// encoder's output memory [B, S, d_model]: K = memory·W^Kᵀ + b^K,
// V = memory·W^Vᵀ + b^V, [B, h, S, d_k], computed once per source.
func (m *Model) MemoryKV(g *blocks.Graph, memory *G.Node) (kv []blocks.KV, err error) {
	err = blocks.Build(func() error {
		kv = make([]blocks.KV, len(m.Decoder))
		for i, l := range m.Decoder {
			kv[i] = blocks.Must(l.CrossAttn.KeysValues(g, memory))
		}
		return nil
	})
	return kv, err
}

// Decode runs the decoder stack over the new positions y₀ [B, T, d_model]
// and returns h = LN_dec(y_N) [B, T, d_model] and each layer's attention
// (weights and new keys and values). memory is MemoryKV's; past, when not
// nil, holds each layer's cached self-attention keys and values. selfMask
// is [B, T, P+T] (causal), memoryMask [B, T, S].
func (m *Model) Decode(g *blocks.Graph, y *G.Node, memory, past []blocks.KV, selfMask, memoryMask *G.Node) (h *G.Node, att []DecoderAttention, err error) {
	if len(memory) != len(m.Decoder) || (past != nil && len(past) != len(m.Decoder)) {
		return nil, nil, errors.Errorf("transformer: %d memory and %d cached layers for %d decoder layers", len(memory), len(past), len(m.Decoder))
	}
	err = blocks.Build(func() error {
		att = make([]DecoderAttention, len(m.Decoder))
		for i, l := range m.Decoder {
			var p *blocks.KV
			if past != nil {
				p = &past[i]
			}
			y, att[i] = blocks.Must2(l.Forward(g, y, p, memory[i], selfMask, memoryMask))
		}
		h = blocks.Must(m.DecoderNorm.Forward(g, y))
		return nil
	})
	return h, att, err
}

// Transformer is nn.Transformer's forward on embedded inputs: the encoder
// over src [B, S, d_model] (mask srcMask [B, S, S]), then the decoder over
// tgt [B, T, d_model] (tgtMask [B, T, T], causal) attending to its output
// (memoryMask [B, T, S]): LN_dec(decoder(tgt, LN_enc(encoder(src)))).
func (m *Model) Transformer(g *blocks.Graph, src, tgt, srcMask, tgtMask, memoryMask *G.Node) (out *G.Node, err error) {
	err = blocks.Build(func() error {
		memory, _ := blocks.Must2(m.Encode(g, src, srcMask))
		out, _ = blocks.Must2(m.Decode(g, tgt, blocks.Must(m.MemoryKV(g, memory)), nil, tgtMask, memoryMask))
		return nil
	})
	return out, err
}

// Logits is the generator, h·W_genᵀ + b_gen [..., V_tgt], with W_gen = E_tgt
// when TieOutput.
func (m *Model) Logits(g *blocks.Graph, h *G.Node) (y *G.Node, err error) {
	if !m.Config.TieOutput {
		return m.Generator.Forward(g, h)
	}
	err = g.Block("generator", func() error {
		w := blocks.Must(g.Param(m.TgtEmbed.Prefix + ".weight"))
		y = blocks.Must(ops.Linear(h, w, blocks.Must(g.Param("generator.bias"))))
		return nil
	})
	return y, err
}

// Source is a source sentence as the encoder reads it: its tokens, then
// EOS (as fairseq appends </s> to every source). Decoder.Start applies it.
func (m *Model) Source(tokens []int) []int {
	return append(append(make([]int, 0, len(tokens)+1), tokens...), m.Config.EOS)
}

// Target is a target sentence as the decoder learns it: its tokens, then
// EOS, so that it learns to stop. (Batch puts BOS before it.)
func (m *Model) Target(tokens []int) []int {
	return append(append(make([]int, 0, len(tokens)+1), tokens...), m.Config.EOS)
}

// NumParams is the number of scalar weights.
func (m *Model) NumParams() int { return m.Store.NumElements() }
