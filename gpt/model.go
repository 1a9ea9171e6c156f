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

// NewIn adds a model's parameters to s, initialised as New does: a store
// of another dtype (Float64 for gradient checks), or one that other
// parameters (a task head) share.
func NewIn(s *blocks.Store, cfg Config) (*Model, error) {
	if s == nil {
		return nil, errors.New("gpt: NewIn needs a store")
	}
	if err := cfg.Validate(); err != nil {
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
	act := activations[cfg.AFN]
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

// Forward applies the block to x [B, T, d] (the equations above). past,
// when not nil, holds the cached keys and values of earlier positions (see
// Attention.Forward).
func (b *Block) Forward(g *blocks.Graph, x, mask *G.Node, past *KV) (h *G.Node, kv KV, err error) {
	h, kv, _, err = b.forward(g, x, mask, past)
	return h, kv, err
}

// forward is Forward that also returns the attention weights α
// [B, h, T, T_k].
func (b *Block) forward(g *blocks.Graph, x, mask *G.Node, past *KV) (h *G.Node, kv KV, alpha *G.Node, err error) {
	err = g.Block(b.Prefix, func() error {
		var a *G.Node
		a, kv, alpha = must3(b.Attn.attend(g, x, mask, past))
		a = blocks.Must(g.ApplyDropout(a, b.resid))
		n := blocks.Must(b.LN1.Forward(g, blocks.Must(ops.Add(x, a))))
		m := blocks.Must(g.ApplyDropout(blocks.Must(b.MLP.Forward(g, n)), b.resid))
		h = blocks.Must(b.LN2.Forward(g, blocks.Must(ops.Add(n, m))))
		return nil
	})
	return h, kv, alpha, err
}

// must3 is blocks.Must2 for three results.
func must3[A, B, C any](a A, b B, c C, err error) (A, B, C) {
	blocks.Must(struct{}{}, err)
	return a, b, c
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

// Forward is masked self-attention over x [B, T, d] with mask [B, T, T_k]:
//
//	[Q K V] = x·[W^Q W^K W^V] + b         (one product, c_attn)
//	K, V = [K_past; K], [V_past; V]       (with a cache)
//	out = Concat(head_1, …, head_h)·W^O + b^O,  head_i = Attention(Q_i, K_i, V_i)
//
// Without past, T_k = T. With past (a key/value cache of P earlier
// positions, [B, h, P, d_k]), the new keys and values are appended, so
// T_k = P + T. It returns the output [B, T, d] and this call's own keys and
// values (for the cache).
func (a *Attention) Forward(g *blocks.Graph, x, mask *G.Node, past *KV) (out *G.Node, kv KV, err error) {
	out, kv, _, err = a.attend(g, x, mask, past)
	return out, kv, err
}

// attend is Forward that also returns the attention weights
// α = softmax(Q·Kᵀ/√d_k + mask) [B, h, T, T_k], before dropout.
func (a *Attention) attend(g *blocks.Graph, x, mask *G.Node, past *KV) (out *G.Node, kv KV, alpha *G.Node, err error) {
	err = g.Block(a.Prefix, func() error {
		w := blocks.Must(g.Param(a.Prefix + ".c_attn.weight"))
		b := blocks.Must(g.Param(a.Prefix + ".c_attn.bias"))
		qkv := blocks.Must(ops.Conv1D(x, w, b))
		head := func(part int) *G.Node { return blocks.Must(ops.SplitHeads(qkv, part, 3, a.Heads)) }
		q, k, v := head(0), head(1), head(2)
		kv = KV{K: k, V: v}
		if past != nil {
			k, v = blocks.Must(ops.AppendSteps(past.K, k)), blocks.Must(ops.AppendSteps(past.V, v))
		}
		var ctx *G.Node
		ctx, alpha = blocks.Must2(blocks.ScaledDotProductAttention(g, q, k, v, mask, a.dropout))
		out = blocks.Must(a.CProj.Forward(g, blocks.Must(ops.MergeHeads(ctx))))
		return nil
	})
	return out, kv, alpha, err
}

// Layers returns the model's blocks.
func (m *Model) Layers() []*Block { return m.layers }

// Hidden adds h₀ = U·W_e + W_p and the n blocks to g for token ids and
// position ids (1-D tensor.Int nodes [B·T]) and returns h_n [B, T, d].
// mask is [B, T, T_k] (causal, see blocks.AttentionMask); cache, when not
// nil, holds each layer's past keys and values and the function returns each
// layer's new ones.
func (m *Model) Hidden(g *blocks.Graph, ids, pos, mask *G.Node, batch, steps int, cache []KV) (h *G.Node, kvs []KV, err error) {
	h, kvs, _, err = m.hidden(g, ids, pos, mask, batch, steps, cache)
	return h, kvs, err
}

// hidden is Hidden that also returns each layer's attention weights.
func (m *Model) hidden(g *blocks.Graph, ids, pos, mask *G.Node, batch, steps int, cache []KV) (h *G.Node, kvs []KV, alphas []*G.Node, err error) {
	if cache != nil && len(cache) != len(m.layers) {
		return nil, nil, nil, errors.Errorf("gpt: cache has %d layers, model has %d", len(cache), len(m.layers))
	}
	err = blocks.Build(func() error {
		u := blocks.Must(m.tokens.Forward(g, ids, batch, steps))
		p := blocks.Must(m.positions.Forward(g, pos, batch, steps))
		h = blocks.Must(g.ApplyDropout(blocks.Must(ops.Add(u, p)), m.Config.EmbdPdrop))
		kvs = make([]KV, len(m.layers))
		alphas = make([]*G.Node, len(m.layers))
		for i, b := range m.layers {
			var past *KV
			if cache != nil {
				past = &cache[i]
			}
			h, kvs[i], alphas[i] = must3(b.forward(g, h, mask, past))
		}
		return nil
	})
	if err != nil {
		return nil, nil, nil, err
	}
	return h, kvs, alphas, nil
}

// Logits is h·W_eᵀ, the output layer tied to the token embedding: [.., V].
func (m *Model) Logits(g *blocks.Graph, h *G.Node) (y *G.Node, err error) {
	err = g.Block("lm_head", func() error {
		y = blocks.Must(ops.Linear(h, blocks.Must(g.Param("tokens_embed.weight")), nil))
		return nil
	})
	return y, err
}
