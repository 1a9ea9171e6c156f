package bert

import (
	"fmt"
	"math/rand/v2"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/ops"
)

// activations maps hidden_act to the blocks' activation.
var activations = map[string]blocks.Activation{"gelu": blocks.GELUExact, "gelu_new": blocks.GELU, "relu": blocks.ReLU}

// geluForms maps an activation to ops' GELU form, for the MLM transform.
var geluForms = map[blocks.Activation]ops.GELUForm{blocks.GELUExact: ops.GELUErf, blocks.GELU: ops.GELUTanh}

// Encoder is the prefix of BertModel's parameters inside
// BertForPreTraining and the fine-tuning models (BertForSequenceClassification,
// BertForMultipleChoice), as HF saves them.
const Encoder = "bert"

// Model is a BERT: its configuration, its weights, the encoder (BertModel:
// embeddings, layers, pooler) and the pre-training heads (the MLM head,
// and the NSP head when Config.NSP).
type Model struct {
	Config Config
	Store  *blocks.Store
	act    blocks.Activation

	words, positions, segments *blocks.Embedding // E_tok, E_pos, E_seg
	embLN                      *blocks.LayerNorm
	layers                     []*Layer
	pooler                     *blocks.Linear // W_p, b_p
	transform                  *blocks.Linear // the MLM head's W_t, b_t
	transformLN                *blocks.LayerNorm
	nsp                        *blocks.Linear // nil unless Config.NSP
}

// New builds a model with freshly initialised weights, as HF's
// BertPreTrainedModel initialises them: N(0, σ²) weights and embeddings
// (σ = initializer_range), zero biases, unit LayerNorm gains, the padding
// token's embedding row zero; deterministic for a seed.
func New(cfg Config, seed uint64) (*Model, error) { return build(cfg, seed, true) }

// NewEncoder builds the encoder alone, HF's BertModel — embeddings,
// layers, pooler, no pre-training heads (Config.NSP is ignored) — as a
// fine-tuned model has it: its graph functions are Encode and Pool, and
// MLMLogits is an error.
func NewEncoder(cfg Config, seed uint64) (*Model, error) {
	cfg.NSP = false
	return build(cfg, seed, false)
}

// NewEncoderIn builds the encoder (as NewEncoder) with its weights in s,
// which must be empty: a float64 store for gradient checks, say.
func NewEncoderIn(s *blocks.Store, cfg Config) (*Model, error) {
	if s == nil || s.Len() != 0 {
		return nil, errors.New("bert: NewEncoderIn needs an empty store")
	}
	cfg.NSP = false
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return newModel(cfg, s, false)
}

func build(cfg Config, seed uint64, heads bool) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s, err := blocks.NewStore(tensor.Float32, seed)
	if err != nil {
		return nil, err
	}
	return newModel(cfg, s, heads)
}

func newModel(cfg Config, s *blocks.Store, heads bool) (*Model, error) {
	d := cfg.HiddenSize
	w, zero := blocks.Normal(0, cfg.InitializerRange), blocks.Zeros()
	lin := func(prefix string, in, out int) (*blocks.Linear, error) {
		return blocks.NewLinear(s, prefix, blocks.LinearConfig{In: in, Out: out, WeightInit: w, BiasInit: zero})
	}
	ln := func(prefix string) (*blocks.LayerNorm, error) {
		return blocks.NewLayerNorm(s, prefix, d, cfg.LayerNormEps)
	}
	m := &Model{Config: cfg, Store: s, act: activations[cfg.HiddenAct]}
	emb := Encoder + ".embeddings."
	var err error
	if m.words, err = blocks.NewEmbedding(s, emb+"word_embeddings", cfg.VocabSize, d, zeroRow(w, cfg.PadTokenID)); err != nil {
		return nil, err
	}
	if m.positions, err = blocks.NewEmbedding(s, emb+"position_embeddings", cfg.MaxPositionEmbeddings, d, w); err != nil {
		return nil, err
	}
	if m.segments, err = blocks.NewEmbedding(s, emb+"token_type_embeddings", cfg.TypeVocabSize, d, w); err != nil {
		return nil, err
	}
	if m.embLN, err = ln(emb + "LayerNorm"); err != nil {
		return nil, err
	}
	for i := range cfg.NumHiddenLayers {
		l, err := newLayer(s, fmt.Sprintf("%s.encoder.layer.%d", Encoder, i), cfg, m.act, w)
		if err != nil {
			return nil, err
		}
		m.layers = append(m.layers, l)
	}
	if m.pooler, err = lin(Encoder+".pooler.dense", d, d); err != nil {
		return nil, err
	}
	if !heads {
		return m, nil
	}
	if m.transform, err = lin("cls.predictions.transform.dense", d, d); err != nil {
		return nil, err
	}
	if m.transformLN, err = ln("cls.predictions.transform.LayerNorm"); err != nil {
		return nil, err
	}
	// The decoder's weight is the word embedding (tied); its bias is its own.
	if _, err = s.Add("cls.predictions.bias", tensor.Shape{cfg.VocabSize}, zero); err != nil {
		return nil, err
	}
	if cfg.NSP {
		if m.nsp, err = lin("cls.seq_relationship", d, 2); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// zeroRow is init with row pad zero: nn.Embedding(padding_idx=pad).
func zeroRow(init blocks.Init, pad int) blocks.Init {
	return func(rng *rand.Rand, shape tensor.Shape) []float64 {
		v := init(rng, shape)
		clear(v[pad*shape[1] : (pad+1)*shape[1]])
		return v
	}
}

// HasMLMHead reports whether the model has the masked-LM head (New, Load)
// or is an encoder alone (NewEncoder, LoadEncoder).
func (m *Model) HasMLMHead() bool { return m.transform != nil }

// Layers returns the encoder layers.
func (m *Model) Layers() []*Layer { return m.layers }

// Layer is one encoder layer (HF's BertLayer), post-LayerNorm as in the
// Transformer:
//
//	a = LN₁(x + dropout(SelfAttention(x)))                 attention.output.LayerNorm
//	h = LN₂(a + dropout(W₂·GELU(W₁·a + b₁) + b₂))           output.LayerNorm
//
// with W₁ = intermediate.dense [d_ff, d] and W₂ = output.dense [d, d_ff].
type Layer struct {
	Prefix string
	Attn   *SelfAttention
	AttnLN *blocks.LayerNorm   // attention.output.LayerNorm
	FFN    *blocks.FeedForward // intermediate.dense, output.dense
	OutLN  *blocks.LayerNorm   // output.LayerNorm
	// dropout is hidden_dropout_prob, after the attention's output
	// projection and after the FFN (HF's BertSelfOutput and BertOutput).
	dropout float64
}

func newLayer(s *blocks.Store, prefix string, cfg Config, act blocks.Activation, w blocks.Init) (*Layer, error) {
	l := &Layer{Prefix: prefix, dropout: cfg.HiddenDropoutProb}
	var err error
	if l.Attn, err = newSelfAttention(s, prefix+".attention", cfg, w); err != nil {
		return nil, err
	}
	if l.AttnLN, err = blocks.NewLayerNorm(s, prefix+".attention.output.LayerNorm", cfg.HiddenSize, cfg.LayerNormEps); err != nil {
		return nil, err
	}
	// BertIntermediate has no dropout; BertOutput's comes after W₂.
	if l.FFN, err = blocks.NewFeedForward(s, prefix, blocks.FeedForwardConfig{
		DModel: cfg.HiddenSize, DFF: cfg.IntermediateSize, Activation: act,
		Names: [2]string{"intermediate.dense", "output.dense"}, WeightInit: w, BiasInit: blocks.Zeros(),
	}); err != nil {
		return nil, err
	}
	if l.OutLN, err = blocks.NewLayerNorm(s, prefix+".output.LayerNorm", cfg.HiddenSize, cfg.LayerNormEps); err != nil {
		return nil, err
	}
	return l, nil
}

// Forward applies the layer to x [B, T, d] with the padding mask
// [B, T, T] (the equations above).
func (l *Layer) Forward(g *blocks.Graph, x, mask *G.Node) (h *G.Node, err error) {
	err = g.Block(l.Prefix, func() error {
		att := blocks.Must(g.ApplyDropout(blocks.Must(l.Attn.Forward(g, x, mask)), l.dropout))
		a := blocks.Must(l.AttnLN.Forward(g, blocks.Must(ops.Add(x, att))))
		f := blocks.Must(g.ApplyDropout(blocks.Must(l.FFN.Forward(g, a)), l.dropout))
		h = blocks.Must(l.OutLN.Forward(g, blocks.Must(ops.Add(a, f))))
		return nil
	})
	return h, err
}

// SelfAttention is BERT's bidirectional multi-head self-attention (HF's
// BertSelfAttention and the output projection of BertSelfOutput), with
// HF's layout: attention.self.query, .key and .value are nn.Linear [d, d]
// each, attention.output.dense is W^O.
type SelfAttention struct {
	Prefix        string // "….attention"
	D, Heads      int
	Query, Key    *blocks.Linear
	Value, Output *blocks.Linear
	dropout       float64
	qkvW, qkvB    [3]string // the projections' parameter names
}

func newSelfAttention(s *blocks.Store, prefix string, cfg Config, w blocks.Init) (*SelfAttention, error) {
	d := cfg.HiddenSize
	a := &SelfAttention{Prefix: prefix, D: d, Heads: cfg.NumAttentionHeads, dropout: cfg.AttentionProbsDropoutProb}
	lin := func(name string) (*blocks.Linear, error) {
		return blocks.NewLinear(s, prefix+"."+name, blocks.LinearConfig{In: d, Out: d, WeightInit: w, BiasInit: blocks.Zeros()})
	}
	var err error
	for i, p := range []**blocks.Linear{&a.Query, &a.Key, &a.Value} {
		name := "self." + [3]string{"query", "key", "value"}[i]
		if *p, err = lin(name); err != nil {
			return nil, err
		}
		a.qkvW[i], a.qkvB[i] = prefix+"."+name+".weight", prefix+"."+name+".bias"
	}
	if a.Output, err = lin("output.dense"); err != nil {
		return nil, err
	}
	return a, nil
}

// Forward is self-attention over x [B, T, d] with the additive padding
// mask M [B, T, T] (0 where key j is a token, −∞ where it is padding; no
// causal part: every token sees every other, both ways):
//
//	[Q K V] = x·[W^Q; W^K; W^V]ᵀ + [b^Q; b^K; b^V]    (one product)
//	head_i = softmax(Q_i·K_iᵀ/√d_k + M)·V_i
//	out = Concat(head_1, …, head_h)·W^Oᵀ + b^O
//
// The three [d, d] projections are stacked into one [3d, d] matrix in the
// graph, so Q, K and V come from one product, as with a packed in_proj,
// while the store keeps HF's three tensors.
func (a *SelfAttention) Forward(g *blocks.Graph, x, mask *G.Node) (out *G.Node, err error) {
	err = g.Block(a.Prefix, func() error {
		if x.Dims() != 3 || x.Shape()[2] != a.D {
			return &blocks.ShapeError{What: "BERT self-attention input", Got: x.Shape().Clone(), Want: fmt.Sprintf("(B, T, %d)", a.D)}
		}
		p := func(name string) *G.Node { return blocks.Must(g.Param(name)) }
		w := blocks.Must(G.Concat(0, p(a.qkvW[0]), p(a.qkvW[1]), p(a.qkvW[2])))
		b := blocks.Must(G.Concat(0, p(a.qkvB[0]), p(a.qkvB[1]), p(a.qkvB[2])))
		qkv := blocks.Must(ops.Linear(x, w, b))
		head := func(part int) *G.Node { return blocks.Must(ops.SplitHeads(qkv, part, 3, a.Heads)) }
		ctx, _ := blocks.Must2(blocks.ScaledDotProductAttention(g, head(0), head(1), head(2), mask, a.dropout))
		out = blocks.Must(a.Output.Forward(g, blocks.Must(ops.MergeHeads(ctx))))
		return nil
	})
	return out, err
}

// Inputs are the input nodes of a batch of B rows of T tokens.
type Inputs struct {
	Batch, Len int
	IDs        *G.Node // "ids": tensor.Int [B·T], row-major
	Segments   *G.Node // "segments": tensor.Int [B·T], token type ids (0 or 1)
	Mask       *G.Node // "mask": [B, T, T], additive, −∞ at padded keys (PaddingMask)
	Positions  *G.Node // "positions": tensor.Int [B·T], 0…T−1 in each row, fixed
}

// Nodes returns the per-run inputs by name, for train.Built.Inputs.
func (in Inputs) Nodes() map[string]*G.Node {
	return map[string]*G.Node{"ids": in.IDs, "segments": in.Segments, "mask": in.Mask}
}

// NewInputs adds the inputs of B rows of T tokens to g: token ids, segment
// ids and the padding mask (set per run, see Rows.Values), and the
// position ids (fixed).
func (m *Model) NewInputs(g *blocks.Graph, batch, steps int) (Inputs, error) {
	in := Inputs{Batch: batch, Len: steps}
	if batch <= 0 || steps <= 0 || steps > m.Config.MaxPositionEmbeddings {
		return in, errors.Errorf("bert: %d rows of %d tokens: need positive sizes and at most max_position_embeddings %d", batch, steps, m.Config.MaxPositionEmbeddings)
	}
	err := blocks.Build(func() error {
		in.IDs = blocks.Must(g.Input("ids", tensor.Shape{batch * steps}, tensor.Int))
		in.Segments = blocks.Must(g.Input("segments", tensor.Shape{batch * steps}, tensor.Int))
		in.Mask = blocks.Must(g.Input("mask", tensor.Shape{batch, steps, steps}))
		pos := tensor.New(tensor.WithShape(batch*steps), tensor.WithBacking(blocks.PositionIDs(batch, steps, 0)))
		in.Positions = blocks.Must(g.Fixed("positions", pos))
		return nil
	})
	return in, err
}

// Embed is the input representation (§3, Figure 2), HF's BertEmbeddings:
//
//	h₀ = dropout(LN(E_tok[x_i] + E_pos[i] + E_seg[s_i]))    [B, T, d]
func (m *Model) Embed(g *blocks.Graph, in Inputs) (h *G.Node, err error) {
	err = g.Block(Encoder+".embeddings", func() error {
		tok := blocks.Must(m.words.Forward(g, in.IDs, in.Batch, in.Len))
		pos := blocks.Must(m.positions.Forward(g, in.Positions, in.Batch, in.Len))
		seg := blocks.Must(m.segments.Forward(g, in.Segments, in.Batch, in.Len))
		sum := blocks.Must(ops.Add(blocks.Must(ops.Add(tok, pos)), seg))
		h = blocks.Must(g.ApplyDropout(blocks.Must(m.embLN.Forward(g, sum)), m.Config.HiddenDropoutProb))
		return nil
	})
	return h, err
}

// Encode is the encoder (HF's BertModel without the pooler): h₀ = Embed,
// h_l = Layer_l(h_{l−1}); it returns h_L [B, T, d], the last hidden state.
func (m *Model) Encode(g *blocks.Graph, in Inputs) (h *G.Node, err error) {
	err = blocks.Build(func() error {
		h = blocks.Must(m.Embed(g, in))
		for _, l := range m.layers {
			h = blocks.Must(l.Forward(g, h, in.Mask))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return h, nil
}

// Pool is BERT's pooler: the hidden state of the first token, [CLS],
// through a dense layer and tanh, the input of every sentence-level head:
//
//	pooled = tanh(h_L,0·W_pᵀ + b_p)    [B, d]
func (m *Model) Pool(g *blocks.Graph, h *G.Node) (pooled *G.Node, err error) {
	err = g.Block(Encoder+".pooler", func() error {
		if h.Dims() != 3 || h.Shape()[2] != m.Config.HiddenSize {
			return &blocks.ShapeError{What: "pooler input", Got: h.Shape().Clone(), Want: fmt.Sprintf("(B, T, %d)", m.Config.HiddenSize)}
		}
		cls := blocks.Must(ops.Select(h, 1, 0))
		pooled = blocks.Must(G.Tanh(blocks.Must(m.pooler.Forward(g, cls))))
		return nil
	})
	return pooled, err
}

// MLMLogits is the masked-LM head (HF's BertLMPredictionHead) on hidden
// states h [..., d]: a transform, then the decoder tied to the word
// embedding with a bias of its own,
//
//	t = LN(GELU(h·W_tᵀ + b_t))
//	logits = t·E_tokᵀ + b     [..., V]
func (m *Model) MLMLogits(g *blocks.Graph, h *G.Node) (logits *G.Node, err error) {
	if !m.HasMLMHead() {
		return nil, errors.New("bert: the model is an encoder without the MLM head (NewEncoder, LoadEncoder)")
	}
	err = g.Block("cls.predictions", func() error {
		t := blocks.Must(m.transform.Forward(g, h))
		if f, ok := geluForms[m.act]; ok {
			t = blocks.Must(ops.GELU(t, f))
		} else {
			t = blocks.Must(ops.ReLU(t))
		}
		t = blocks.Must(m.transformLN.Forward(g, t))
		e := blocks.Must(g.Param(m.words.Prefix + ".weight"))
		logits = blocks.Must(ops.Linear(t, e, blocks.Must(g.Param("cls.predictions.bias"))))
		return nil
	})
	return logits, err
}

// NSPLogits is the next-sentence head on the pooled output, [B, 2]:
// column 0 scores "B follows A" (HF's label 0), column 1 "B is random".
func (m *Model) NSPLogits(g *blocks.Graph, pooled *G.Node) (logits *G.Node, err error) {
	if m.nsp == nil {
		return nil, errors.New("bert: the model has no next-sentence head (Config.NSP is off)")
	}
	err = g.Block("cls.seq_relationship", func() error {
		logits = blocks.Must(m.nsp.Forward(g, pooled))
		return nil
	})
	return logits, err
}
