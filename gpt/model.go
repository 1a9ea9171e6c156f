package gpt

import (
	"fmt"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/ops"
)

// Model is a GPT: its configuration and its weights.
type Model struct {
	Config    Config
	Store     *blocks.Store
	tokens    *blocks.Embedding        // W_e, "tokens_embed"
	positions *blocks.LearnedPositions // W_p, "positions_embed"
	layers    []*Block
}

// New builds a model with freshly initialised weights (N(0, σ²) weights
// with σ = initializer_range, zero biases, unit LayerNorm gains, as
// HuggingFace's OpenAIGPTPreTrainedModel), deterministic for a seed.
func New(cfg Config, seed uint64) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s, err := blocks.NewStore(tensor.Float32, seed)
	if err != nil {
		return nil, err
	}
	return newModel(cfg, s)
}

func newModel(cfg Config, s *blocks.Store) (*Model, error) {
	w := blocks.Normal(0, cfg.InitializerRange)
	m := &Model{Config: cfg, Store: s}
	var err error
	if m.tokens, err = blocks.NewEmbedding(s, "tokens_embed", cfg.VocabSize, cfg.NEmbd, w); err != nil {
		return nil, err
	}
	if m.positions, err = blocks.NewLearnedPositions(s, "positions_embed", cfg.NPositions, cfg.NEmbd, w); err != nil {
		return nil, err
	}
	act := map[string]blocks.Activation{"gelu": blocks.GELUExact, "gelu_new": blocks.GELU, "relu": blocks.ReLU}[cfg.AFN]
	for i := 0; i < cfg.NLayer; i++ {
		b, err := newBlock(s, fmt.Sprintf("h.%d", i), cfg, act, w)
		if err != nil {
			return nil, err
		}
		m.layers = append(m.layers, b)
	}
	return m, nil
}

// Block is one Transformer block of GPT-1, post-LayerNorm:
//
//	n = LN₁(x + dropout(attn(x)))
//	h = LN₂(n + dropout(mlp(n)))
type Block struct {
	Prefix string
	Attn   *Attention
	LN1    *blocks.LayerNorm
	MLP    *blocks.FeedForward
	LN2    *blocks.LayerNorm
	resid  float64
}

func newBlock(s *blocks.Store, prefix string, cfg Config, act blocks.Activation, w blocks.Init) (*Block, error) {
	b := &Block{Prefix: prefix, resid: cfg.ResidPdrop}
	var err error
	if b.Attn, err = newAttention(s, prefix+".attn", cfg, w); err != nil {
		return nil, err
	}
	if b.LN1, err = blocks.NewLayerNorm(s, prefix+".ln_1", cfg.NEmbd, cfg.LayerNormEpsilon); err != nil {
		return nil, err
	}
	// HF's MLP applies its dropout after c_proj (a residual dropout), so
	// the FFN's inner dropout is 0 here.
	if b.MLP, err = blocks.NewFeedForward(s, prefix+".mlp", blocks.FeedForwardConfig{
		DModel: cfg.NEmbd, DFF: 4 * cfg.NEmbd, Activation: act,
		Names: [2]string{"c_fc", "c_proj"}, InOut: true, WeightInit: w, BiasInit: blocks.Zeros(),
	}); err != nil {
		return nil, err
	}
	if b.LN2, err = blocks.NewLayerNorm(s, prefix+".ln_2", cfg.NEmbd, cfg.LayerNormEpsilon); err != nil {
		return nil, err
	}
	return b, nil
}

// Forward applies the block to x [B, T, d]. past, when not nil, holds the
// cached keys and values of earlier positions (see Attention.Forward).
func (b *Block) Forward(g *blocks.Graph, x, mask *G.Node, past *KV) (h *G.Node, kv KV, err error) {
	err = g.Block(b.Prefix, func() error {
		a, akv, err := b.Attn.Forward(g, x, mask, past)
		if err != nil {
			return err
		}
		kv = akv
		if a, err = g.ApplyDropout(a, b.resid); err != nil {
			return err
		}
		n, err := G.Add(x, a)
		if err != nil {
			return err
		}
		if n, err = b.LN1.Forward(g, n); err != nil {
			return err
		}
		m, err := b.MLP.Forward(g, n)
		if err != nil {
			return err
		}
		if m, err = g.ApplyDropout(m, b.resid); err != nil {
			return err
		}
		if h, err = G.Add(n, m); err != nil {
			return err
		}
		h, err = b.LN2.Forward(g, h)
		return err
	})
	return h, kv, err
}

// Attention is GPT's masked multi-head self-attention with HF's Conv1D
// layout: c_attn.weight [d, 3d] holds W^Q, W^K, W^V side by side, c_proj is
// W^O.
type Attention struct {
	Prefix       string
	D, Heads     int
	CAttn, CProj *blocks.Linear
	dropout      float64
}

func newAttention(s *blocks.Store, prefix string, cfg Config, w blocks.Init) (*Attention, error) {
	a := &Attention{Prefix: prefix, D: cfg.NEmbd, Heads: cfg.NHead, dropout: cfg.AttnPdrop}
	var err error
	if a.CAttn, err = blocks.NewLinear(s, prefix+".c_attn", blocks.LinearConfig{In: cfg.NEmbd, Out: 3 * cfg.NEmbd, InOut: true, WeightInit: w, BiasInit: blocks.Zeros()}); err != nil {
		return nil, err
	}
	if a.CProj, err = blocks.NewLinear(s, prefix+".c_proj", blocks.LinearConfig{In: cfg.NEmbd, Out: cfg.NEmbd, InOut: true, WeightInit: w, BiasInit: blocks.Zeros()}); err != nil {
		return nil, err
	}
	return a, nil
}

// KV is one layer's keys and values, [B, h, T, d_k] each.
type KV struct{ K, V *G.Node }

// Forward is masked self-attention over x [B, T, d] with mask [B, T, T_k].
// Without past, T_k = T. With past (a key/value cache of P earlier
// positions, [B, h, P, d_k]), the new keys and values are appended, so
// T_k = P + T. It returns the output [B, T, d] and this call's own keys and
// values (for the cache).
func (a *Attention) Forward(g *blocks.Graph, x, mask *G.Node, past *KV) (out *G.Node, kv KV, err error) {
	err = g.Block(a.Prefix, func() error {
		w, err := g.Param(a.Prefix + ".c_attn.weight")
		if err != nil {
			return err
		}
		b, err := g.Param(a.Prefix + ".c_attn.bias")
		if err != nil {
			return err
		}
		// One product for W^Q, W^K, W^V side by side, then each read out by head.
		qkv, err := ops.Conv1D(x, w, b)
		if err != nil {
			return err
		}
		q, err := ops.SplitHeads(qkv, 0, 3, a.Heads)
		if err != nil {
			return err
		}
		if kv.K, err = ops.SplitHeads(qkv, 1, 3, a.Heads); err != nil {
			return err
		}
		if kv.V, err = ops.SplitHeads(qkv, 2, 3, a.Heads); err != nil {
			return err
		}
		k, v := kv.K, kv.V
		if past != nil {
			if k, err = ops.AppendSteps(past.K, kv.K); err != nil {
				return err
			}
			if v, err = ops.AppendSteps(past.V, kv.V); err != nil {
				return err
			}
		}
		ctx, _, err := blocks.ScaledDotProductAttention(g, q, k, v, mask, a.dropout)
		if err != nil {
			return err
		}
		merged, err := ops.MergeHeads(ctx)
		if err != nil {
			return err
		}
		out, err = a.CProj.Forward(g, merged)
		return err
	})
	return out, kv, err
}

// Layers returns the model's blocks.
func (m *Model) Layers() []*Block { return m.layers }

// Hidden adds h₀ = U·W_e + W_p and the n blocks to g for token ids and
// position ids (1-D tensor.Int nodes [B·T]) and returns h_n [B, T, d].
// mask is [B, T, T_k] (causal, see blocks.AttentionMask); cache, when not
// nil, holds each layer's past keys and values and the function returns each
// layer's new ones.
func (m *Model) Hidden(g *blocks.Graph, ids, pos, mask *G.Node, batch, steps int, cache []KV) (h *G.Node, kvs []KV, err error) {
	if cache != nil && len(cache) != len(m.layers) {
		return nil, nil, errors.Errorf("gpt: cache has %d layers, model has %d", len(cache), len(m.layers))
	}
	u, err := m.tokens.Forward(g, ids, batch, steps)
	if err != nil {
		return nil, nil, err
	}
	p, err := m.positions.Forward(g, pos, batch, steps)
	if err != nil {
		return nil, nil, err
	}
	if h, err = G.Add(u, p); err != nil {
		return nil, nil, err
	}
	if h, err = g.ApplyDropout(h, m.Config.EmbdPdrop); err != nil {
		return nil, nil, err
	}
	for i, b := range m.layers {
		var past *KV
		if cache != nil {
			past = &cache[i]
		}
		var kv KV
		if h, kv, err = b.Forward(g, h, mask, past); err != nil {
			return nil, nil, errors.Wrapf(err, "layer %d", i)
		}
		kvs = append(kvs, kv)
	}
	return h, kvs, nil
}

// Logits is h·W_eᵀ, the output layer tied to the token embedding: [.., V].
func (m *Model) Logits(g *blocks.Graph, h *G.Node) (y *G.Node, err error) {
	err = g.Block("lm_head", func() error {
		we, err := g.Param("tokens_embed.weight")
		if err != nil {
			return err
		}
		y, err = ops.Linear(h, we, nil)
		return err
	})
	return y, err
}
