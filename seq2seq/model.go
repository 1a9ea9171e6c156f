package seq2seq

import (
	"fmt"
	"math"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/ops"
)

// Model is an LSTM encoder–decoder of either architecture: its
// configuration, its parameters in a Store (named as the torch module of
// testdata/gen_seq2seq.py names them) and its blocks.
type Model struct {
	Config Config
	// LabelSmoothing ε is the training loss's label smoothing (evaluation
	// programs report the plain cross-entropy). Set it before the first
	// training program is built.
	LabelSmoothing float64

	store              *blocks.Store
	srcEmbed, tgtEmbed *blocks.Embedding
	encoder, decoder   *blocks.LSTM
	attention          blocks.Attention // nil: fixed context
	bridge             *blocks.Linear   // s_0 from the encoder (attention)
	outProj            *blocks.Linear   // o_i → E before a tied projection, when their sizes differ
	out                *blocks.Linear   // W_out, b_out (untied)
}

// Parameter names (torch state-dict names of the module in
// testdata/gen_seq2seq.py).
const (
	srcEmbedName  = "src_embed"
	tgtEmbedName  = "tgt_embed"
	encoderName   = "encoder"
	decoderName   = "decoder"
	attentionName = "attention"
	bridgeName    = "bridge"
	outProjName   = "out_proj"
	outName       = "out"
)

// New validates cfg and creates a model with freshly initialised weights
// drawn from seed: embeddings U(−0.1, 0.1) (fairseq's LSTM embeddings),
// LSTMs, attention and linear layers as torch initialises them.
func New(cfg Config, seed uint64) (*Model, error) {
	return newModel(cfg, seed, tensor.Float32)
}

// NewFloat64 is New in float64, for gradient checks.
func NewFloat64(cfg Config, seed uint64) (*Model, error) {
	return newModel(cfg, seed, tensor.Float64)
}

func newModel(cfg Config, seed uint64, dt tensor.Dtype) (*Model, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s, err := blocks.NewStore(dt, seed)
	if err != nil {
		return nil, err
	}
	m := &Model{Config: cfg, store: s}
	E, H, L := cfg.Embed, cfg.Hidden, cfg.Layers
	emb := blocks.Uniform(0.1)
	if m.srcEmbed, err = blocks.NewEmbedding(s, srcEmbedName, cfg.SrcVocab, E, emb); err != nil {
		return nil, err
	}
	if m.tgtEmbed, err = blocks.NewEmbedding(s, tgtEmbedName, cfg.TgtVocab, E, emb); err != nil {
		return nil, err
	}
	decIn := E
	switch {
	case cfg.Arch == Attention && !cfg.Unidirectional:
		m.encoder, err = blocks.NewBiLSTM(s, encoderName, E, H, L)
	default:
		m.encoder, err = blocks.NewLSTM(s, encoderName, E, H, L)
	}
	if err != nil {
		return nil, err
	}
	if cfg.Arch == Attention {
		decIn += cfg.EncoderDim()
		if m.attention, err = blocks.NewAttention(s, attentionName, cfg.Score, H, cfg.EncoderDim(), cfg.AttentionDim); err != nil {
			return nil, err
		}
		if m.bridge, err = blocks.NewLinear(s, bridgeName, blocks.LinearConfig{In: H, Out: L * H}); err != nil {
			return nil, err
		}
	} else if cfg.FeedContext {
		decIn += H
	}
	if m.decoder, err = blocks.NewLSTM(s, decoderName, decIn, H, L); err != nil {
		return nil, err
	}
	m.encoder.Dropout, m.decoder.Dropout = cfg.Dropout, cfg.Dropout
	dOut := cfg.OutputDim()
	if cfg.TieEmbeddings {
		if dOut != E {
			if m.outProj, err = blocks.NewLinear(s, outProjName, blocks.LinearConfig{In: dOut, Out: E, NoBias: true}); err != nil {
				return nil, err
			}
		}
		if _, err := s.Add(outName+".bias", tensor.Shape{cfg.TgtVocab}, blocks.FanInUniform(E)); err != nil {
			return nil, err
		}
	} else if m.out, err = blocks.NewLinear(s, outName, blocks.LinearConfig{In: dOut, Out: cfg.TgtVocab}); err != nil {
		return nil, err
	}
	return m, nil
}

// Store holds the parameters; it implements train.Model with Build.
func (m *Model) Store() *blocks.Store { return m.store }

// Encoded is what the encoder hands the decoder.
type Encoded struct {
	// H are the encoder states h_j [B, S, d_h] and Keys their attention
	// keys (U·h_j, computed once per source); attention model only.
	H    *G.Node
	Keys blocks.Keys
	// Mask is the additive padding mask [B, S] over h_j (attention).
	Mask *G.Node
	// Context is c = h_m [B, H] (fixed context).
	Context *G.Node
	// S0 and C0 are the decoder's initial state, one [B, H] per layer.
	S0, C0 []*G.Node
}

// Encode reads the source ids src [B·S] (Source's form: the sentence, or
// it reversed, then its end token; padded) with keep, the encoder's step
// mask [B, S, H] (blocks.StepMask of the source lengths), and mask, the
// additive padding mask [B, S] (attention only; nil for fixed context):
//
//	x_j = E_src[x_j]                                  (dropout p)
//	fixed:      h_j, (h_m, c_m) = LSTM(x_1 … x_m)          (each row to its own m)
//	            c = h_m;   s_0 = h_m, cell 0 = c_m (every layer: the decoder starts where the encoder stopped)
//	attention:  h→_j, h←_j = BiLSTM(x_1 … x_m);  h_j = [h→_j; h←_j]
//	            s_0 = tanh(W_s h←_1 + b_s)  (every layer's part of it),  cell 0 = 0
//	            keys U·h_j, once for every decoder step
//
// Bahdanau et al. (2015, appendix A.2.2) initialise s_0 from h←_1, the
// backward state that has read the whole sentence; a unidirectional
// encoder uses h→_m.
func (m *Model) Encode(g *blocks.Graph, src, keep, mask *G.Node, batch, steps int) (enc Encoded, err error) {
	err = g.Block(encoderName, func() error {
		cfg := m.Config
		x := blocks.Must(g.ApplyDropout(blocks.Must(m.srcEmbed.Forward(g, src, batch, steps)), cfg.Dropout))
		out := blocks.Must(m.encoder.Forward(g, x, keep, nil, nil))
		L, H := cfg.Layers, cfg.Hidden
		if m.attention == nil {
			enc.Context = out.H[L-1] // c = h_m of the top layer
			enc.S0, enc.C0 = out.H, out.C
			return nil
		}
		if mask == nil || !mask.Shape().Eq(tensor.Shape{batch, steps}) {
			return errors.Errorf("the attention model needs a source padding mask [%d, %d]", batch, steps)
		}
		enc.H, enc.Mask = out.Out, mask
		enc.Keys = blocks.Must(m.attention.Precompute(g, enc.H))
		summary := out.H[len(out.H)-1] // h←_1 of the top layer (h→_m when unidirectional)
		s0 := blocks.Must(G.Tanh(blocks.Must(m.bridge.Forward(g, summary))))
		for l := range L {
			enc.S0 = append(enc.S0, blocks.Must(ops.Narrow(s0, 1, l*H, (l+1)*H)))
			enc.C0 = append(enc.C0, m.zeros(g, fmt.Sprintf("decoder.cell0_%d", l), batch, H))
		}
		return nil
	})
	return enc, err
}

// zeros is a [rows, cols] node of zeros named name.
func (m *Model) zeros(g *blocks.Graph, name string, rows, cols int) *G.Node {
	z := tensor.New(tensor.Of(m.store.Dtype()), tensor.WithShape(rows, cols))
	return G.NewTensor(g.G, z.Dtype(), 2, G.WithShape(rows, cols), G.WithValue(z),
		G.WithName(fmt.Sprintf("%s_%dx%d", name, rows, cols)))
}

// Decode is the teacher-forced decoder over yIn [B·T] (the start token,
// then the target shifted right): it returns the logits [B, T, V] of
// P(y_i | y_<i, x) and, with attention, the weights α [B, T, S].
//
//	fixed:      s_i = LSTM(s_{i−1}, E_tgt[y_{i−1}])                  o_i = s_i
//	 feed c:    s_i = LSTM(s_{i−1}, [E_tgt[y_{i−1}]; c])             o_i = [s_i; c]
//	attention:  c_i, α_i = attend(s_{i−1}, h)   (see Step)
//	            s_i = LSTM(s_{i−1}, [E_tgt[y_{i−1}]; c_i])           o_i = [s_i; c_i]
//	logits_i = Readout(o_i)
//
// The fixed-context decoder runs over all T steps at once (nn.LSTM over
// the sequence); the attention decoder step by step, since c_i depends on
// s_{i−1}.
func (m *Model) Decode(g *blocks.Graph, enc Encoded, yIn *G.Node, batch, steps int) (logits, alpha *G.Node, err error) {
	err = g.Block(decoderName, func() error {
		cfg := m.Config
		y := blocks.Must(g.ApplyDropout(blocks.Must(m.tgtEmbed.Forward(g, yIn, batch, steps)), cfg.Dropout))
		var o *G.Node
		if m.attention == nil {
			in := y
			if cfg.FeedContext {
				c := repeat(enc.Context, steps) // c at every step, [B, T, H]
				in = blocks.Must(ops.Concat(2, y, c))
				o = blocks.Must(ops.Concat(2, blocks.Must(m.decoder.Forward(g, in, nil, enc.S0, enc.C0)).Out, c))
			} else {
				o = blocks.Must(m.decoder.Forward(g, in, nil, enc.S0, enc.C0)).Out
			}
		} else {
			h, c := enc.S0, enc.C0
			os, alphas := make(G.Nodes, steps), make(G.Nodes, steps)
			for i := range steps {
				var oi, ai *G.Node
				oi, h, c, ai = m.step(g, blocks.Must(ops.Select(y, 1, i)), h, c, enc)
				os[i], alphas[i] = unsqueeze1(oi), unsqueeze1(ai)
			}
			o, alpha = concat1(os), concat1(alphas)
		}
		logits = blocks.Must(m.Readout(g, o))
		return nil
	})
	return logits, alpha, err
}

// Step is one decoder step from the previous token's embedding y [B, E]
// and the decoder state s_{i−1} (h, c: one [B, H] per layer): it returns
// the output features o_i, the new state and, with attention, α_i [B, S].
//
//	attention:  e_ij = score(s_{i−1}, h_j)    (additive: vᵀ tanh(W s_{i−1} + U h_j))
//	            α_ij = softmax_j(e_ij)         (over the source's real tokens)
//	            c_i = Σ_j α_ij h_j
//	            s_i = LSTM(s_{i−1}, [y_{i−1}; c_i]),   o_i = [s_i; c_i]
//	fixed:      s_i = LSTM(s_{i−1}, y_{i−1} or [y_{i−1}; c]),   o_i = s_i or [s_i; c]
//
// s_{i−1} in the score is the top layer's h.
func (m *Model) Step(g *blocks.Graph, y *G.Node, h, c []*G.Node, enc Encoded) (o *G.Node, hNew, cNew []*G.Node, alpha *G.Node, err error) {
	err = g.Block(decoderName, func() error {
		o, hNew, cNew, alpha = m.step(g, y, h, c, enc)
		return nil
	})
	return o, hNew, cNew, alpha, err
}

// step is Step's body, for use under Must.
func (m *Model) step(g *blocks.Graph, y *G.Node, h, c []*G.Node, enc Encoded) (o *G.Node, hNew, cNew []*G.Node, alpha *G.Node) {
	ctx := enc.Context
	if m.attention != nil {
		ctx, alpha = blocks.Must2(m.attention.Attend(g, h[len(h)-1], enc.Keys, enc.Mask))
	}
	in := y
	if ctx != nil {
		in = blocks.Must(ops.Concat(1, y, ctx))
	}
	s, hNew, cNew, err := m.decoder.Step(g, in, h, c)
	blocks.Must(s, err)
	o = s
	if ctx != nil {
		o = blocks.Must(ops.Concat(1, s, ctx))
	}
	return o, hNew, cNew, alpha
}

// Readout is the output layer, on o [..., d_o]:
//
//	logits = W_out · dropout(o) + b_out                      (untied)
//	logits = E_tgt · (W_p · dropout(o)) + b_out              (tied; W_p only when d_o ≠ E)
//
// Why this output layer and not Bahdanau's maxout readout (t̃_i = U_o
// s_{i−1} + V_o E y_{i−1} + C_o c_i, t_i = maxout(t̃_i), logits = W_o
// t_i): the linear readout of [s_i; c_i] is what fairseq, OpenNMT and the
// PyTorch tutorials use, a PyTorch user rebuilds it in one nn.Linear, and
// it has the same inputs (the embedding of y_{i−1} enters through s_i).
// The maxout is Goodfellow et al.'s regulariser, not the attention
// mechanism this package exists to show.
func (m *Model) Readout(g *blocks.Graph, o *G.Node) (logits *G.Node, err error) {
	err = g.Block(outName, func() error {
		x := blocks.Must(g.ApplyDropout(o, m.Config.Dropout))
		if m.out != nil {
			logits = blocks.Must(m.out.Forward(g, x))
			return nil
		}
		if m.outProj != nil {
			x = blocks.Must(m.outProj.Forward(g, x))
		}
		logits = blocks.Must(ops.Linear(x, blocks.Must(g.Param(tgtEmbedName+".weight")), blocks.Must(g.Param(outName+".bias"))))
		return nil
	})
	return logits, err
}

// repeat is x [B, D] at every one of T steps: [B, T, D].
func repeat(x *G.Node, T int) *G.Node {
	r := unsqueeze1(x)
	if T == 1 {
		return r
	}
	rs := make(G.Nodes, T)
	for i := range rs {
		rs[i] = r
	}
	return blocks.Must(ops.Concat(1, rs...))
}

// unsqueeze1 is x [B, D] as [B, 1, D].
func unsqueeze1(x *G.Node) *G.Node {
	return blocks.Must(G.Reshape(x, tensor.Shape{x.Shape()[0], 1, x.Shape()[1]}))
}

// concat1 joins [B, 1, D] steps into [B, T, D].
func concat1(xs G.Nodes) *G.Node {
	if len(xs) == 1 {
		return xs[0]
	}
	return blocks.Must(ops.Concat(1, xs...))
}

// Source is how a source sentence's tokens enter the encoder: reversed
// when Config.ReverseSource (Sutskever et al.), then the end token, as
// fairseq appends it, so that the encoder sees where the sentence ends
// and attention has a place to look when the decoder ends its own.
func (m *Model) Source(tokens []int) []int {
	out := make([]int, 0, len(tokens)+1)
	if m.Config.ReverseSource {
		for i := len(tokens) - 1; i >= 0; i-- {
			out = append(out, tokens[i])
		}
	} else {
		out = append(out, tokens...)
	}
	return append(out, m.Config.SrcEOSID)
}

// Target is a target sentence as the decoder learns it: its tokens, then
// the end token.
func (m *Model) Target(tokens []int) []int {
	return append(append(make([]int, 0, len(tokens)+1), tokens...), m.Config.EOSID)
}

// NumParams is the number of scalar weights.
func (m *Model) NumParams() int { return m.store.NumElements() }

// negInf is the additive mask value of a padded position.
var negInf = math.Inf(-1)
