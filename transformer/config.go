// Package transformer is the Transformer of "Attention is all you need"
// (Vaswani et al. 2017): an encoder–decoder with no recurrence, as torch's
// nn.Transformer builds it.
//
//	x₀ = Dropout(E_src[x]·√d_model + PE)      y₀ = Dropout(E_tgt[y]·√d_model + PE)
//	encoder layer:  x = LN(x + Dropout(SelfAttn(x)))                     (Q = K = V = x)
//	                x = LN(x + Dropout(FFN(x)))
//	memory = LN_enc(x_N)
//	decoder layer:  y = LN(y + Dropout(MaskedSelfAttn(y)))               (Q = K = V = y, causal)
//	                y = LN(y + Dropout(CrossAttn(y, memory)))            (Q = y, K = V = memory)
//	                y = LN(y + Dropout(FFN(y)))
//	P(y_t | y_<t, x) = softmax(LN_dec(y_N)·W_genᵀ + b_gen)
//
// with FFN(x) = W₂·Dropout(act(W₁x + b₁)) + b₂ and multi-head attention of h
// heads of d_k = d_model/h. That is the paper's post-LayerNorm layout
// (torch's default); NormFirst moves each LayerNorm to the sub-layer's input,
// x = x + Dropout(Sublayer(LN(x))), which trains without a warm-up at depth.
// LN_enc and LN_dec are the LayerNorms torch's nn.Transformer applies after
// each stack (encoder.norm, decoder.norm) in both layouts.
//
// # Parameters
//
// The stacks carry nn.Transformer's state-dict names and layouts, so they
// load into nn.Transformer(batch_first=True) unchanged:
//
//	encoder.layers.{i}.self_attn.in_proj_weight [3d, d]  (rows W^Q, W^K, W^V), .in_proj_bias [3d]
//	encoder.layers.{i}.self_attn.out_proj.weight [d, d], .out_proj.bias
//	encoder.layers.{i}.linear1.weight [d_ff, d], .bias; .linear2.weight [d, d_ff], .bias
//	encoder.layers.{i}.norm1.weight, .bias; .norm2.*
//	encoder.norm.weight, .bias
//	decoder.layers.{i}.self_attn.*, .multihead_attn.* (cross-attention), .linear1, .linear2, .norm1, .norm2, .norm3
//	decoder.norm.weight, .bias
//
// and around them
//
//	src_embed.weight [V_src, d]   E_src (also the target's with ShareEmbeddings)
//	tgt_embed.weight [V_tgt, d]   E_tgt (absent with ShareEmbeddings)
//	pos_embed.weight [max_positions, d]  learned positions (absent with sinusoidal ones)
//	generator.weight [V_tgt, d]   W_gen (absent with TieOutput: W_gen = E_tgt)
//	generator.bias [V_tgt]        b_gen
//
// which is the state dict of this torch module (transformer/testdata/
// gen_transformer.py builds it for the parity fixtures):
//
//	class Translator(nn.Transformer):  # batch_first=True
//	    def __init__(self, cfg):
//	        super().__init__(d_model, nhead, num_encoder_layers, num_decoder_layers,
//	                         dim_feedforward, dropout, activation, batch_first=True, norm_first=…)
//	        self.src_embed = nn.Embedding(V_src, d_model)
//	        self.tgt_embed = self.src_embed if share_embeddings else nn.Embedding(V_tgt, d_model)
//	        self.generator = nn.Linear(d_model, V_tgt)
//	        if tie_output: self.generator.weight = self.tgt_embed.weight
//
// Save writes a directory of config.json and model.safetensors; Load reads
// one back.
//
// # Training and decoding
//
// Translator is the model's one adapter to the engine (train.Model). A
// sentence pair is Model.Source(x) (x, then EOS) and Model.Target(y) (y,
// then EOS); Batch turns a datasets.Batcher's padded batch of them into the
// teacher-forced program's inputs (BOS before the target; padding counts in
// no loss and no attention). The training loss is cross-entropy with label
// smoothing ε_ls (Config.LabelSmoothing, 0.1 as the paper), the evaluation
// loss the plain negative log-likelihood; train it as the paper does with
// train.NewNoam(d_model, 4000, 1) and Adam(β₁ 0.9, β₂ 0.98, ε 1e-9). Decoder
// is a decode.Model for greedy decoding, sampling and beam search: the
// encoder runs once per source, each decoder layer's cross-attention K and
// V are computed once from its output, and each layer's self-attention
// keys and values are cached, so a new token costs O(t). Model.Attention
// gives every attention map of a sentence pair.
package transformer

import (
	"strings"

	"github.com/pkg/errors"
)

// ModelType is config.json's model_type.
const ModelType = "transformer"

// The position encodings.
const (
	Sinusoidal = "sinusoidal" // the paper's fixed PE(pos, 2i) = sin(pos/10000^(2i/d)), PE(pos, 2i+1) = cos(…)
	Learned    = "learned"    // a trained table pos_embed.weight, as GPT and BERT
)

// Config is the Transformer's configuration: nn.Transformer's arguments
// under their names, plus the vocabularies, positions, sharing and special
// tokens a translation model needs. It is config.json.
type Config struct {
	SrcVocabSize int `json:"src_vocab_size"`
	TgtVocabSize int `json:"tgt_vocab_size"`
	// DModel is d_model, the width of every layer.
	DModel int `json:"d_model"`
	// NHead is h, the attention heads (d_k = d_v = d_model/h).
	NHead            int `json:"nhead"`
	NumEncoderLayers int `json:"num_encoder_layers"`
	NumDecoderLayers int `json:"num_decoder_layers"`
	// DimFeedforward is d_ff, the FFN's inner width.
	DimFeedforward int `json:"dim_feedforward"`
	// Dropout is P_drop, applied as nn.Transformer does: to the embeddings
	// plus positions, each sub-layer's output, the attention weights and
	// inside the FFN.
	Dropout float64 `json:"dropout"`
	// Activation is the FFN's nonlinearity: "relu" (the paper) or "gelu"
	// (exact, erf, as torch's F.gelu).
	Activation   string  `json:"activation"`
	LayerNormEps float64 `json:"layer_norm_eps"`
	// NormFirst puts each LayerNorm before its sub-layer (pre-LN).
	NormFirst bool `json:"norm_first"`
	// MaxPositions bounds source and target lengths (the table of learned
	// positions, or of the sinusoids).
	MaxPositions int `json:"max_position_embeddings"`
	// Positions is Sinusoidal or Learned.
	Positions string `json:"positions"`
	// ShareEmbeddings uses one table for source and target (a joint
	// vocabulary: SrcVocabSize = TgtVocabSize), as the paper does.
	ShareEmbeddings bool `json:"share_embeddings"`
	// TieOutput uses the target embedding as the generator's weight
	// (the paper's "same weight matrix … and the pre-softmax linear
	// transformation"; fairseq's share_decoder_input_output_embed).
	TieOutput bool `json:"tie_output"`
	// LabelSmoothing is ε_ls of the training loss (0.1 in the paper). The
	// evaluation loss is the plain negative log-likelihood.
	LabelSmoothing float64 `json:"label_smoothing"`
	// BOS starts every target (the decoder's first input); EOS ends one;
	// Pad fills padded positions. Ids of the target vocabulary.
	BOS int `json:"bos_token_id"`
	EOS int `json:"eos_token_id"`
	Pad int `json:"pad_token_id"`
}

// Validate reports every problem with the configuration at once.
func (c Config) Validate() error {
	var errs []string
	add := func(format string, args ...any) { errs = append(errs, errors.Errorf(format, args...).Error()) }
	for _, f := range []struct {
		name string
		v    int
	}{{"src_vocab_size", c.SrcVocabSize}, {"tgt_vocab_size", c.TgtVocabSize}, {"d_model", c.DModel}, {"nhead", c.NHead},
		{"num_encoder_layers", c.NumEncoderLayers}, {"num_decoder_layers", c.NumDecoderLayers},
		{"dim_feedforward", c.DimFeedforward}} {
		if f.v <= 0 {
			add("%s must be positive, got %d", f.name, f.v)
		}
	}
	if c.MaxPositions < 2 {
		add("max_position_embeddings must be at least 2, got %d", c.MaxPositions)
	}
	if c.NHead > 0 && c.DModel%c.NHead != 0 {
		add("d_model %d is not divisible by nhead %d", c.DModel, c.NHead)
	}
	if c.Dropout < 0 || c.Dropout >= 1 {
		add("dropout %v is not in [0, 1)", c.Dropout)
	}
	if c.Activation != "relu" && c.Activation != "gelu" {
		add("activation %q is not relu or gelu", c.Activation)
	}
	if !(c.LayerNormEps > 0) {
		add("layer_norm_eps must be positive, got %v", c.LayerNormEps)
	}
	if c.Positions != Sinusoidal && c.Positions != Learned {
		add("positions %q is not %s or %s", c.Positions, Sinusoidal, Learned)
	}
	if c.ShareEmbeddings && c.SrcVocabSize != c.TgtVocabSize {
		add("share_embeddings needs one vocabulary, got src_vocab_size %d and tgt_vocab_size %d", c.SrcVocabSize, c.TgtVocabSize)
	}
	if c.LabelSmoothing < 0 || c.LabelSmoothing >= 1 {
		add("label_smoothing %v is not in [0, 1)", c.LabelSmoothing)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"bos_token_id", c.BOS}, {"eos_token_id", c.EOS}, {"pad_token_id", c.Pad}} {
		if c.TgtVocabSize > 0 && (f.v < 0 || f.v >= c.TgtVocabSize) {
			add("%s %d is outside the target vocabulary [0, %d)", f.name, f.v, c.TgtVocabSize)
		}
	}
	if len(errs) > 0 {
		return errors.New("transformer: invalid config; " + strings.Join(errs, "; "))
	}
	return nil
}

// NumParams is the number of weights of the model the config describes
// (as a float64: a config read from a file may describe an impossibly
// large one, which must be refused, not overflow).
func (c Config) NumParams() float64 {
	d, ff := float64(c.DModel), float64(c.DimFeedforward)
	src, tgt := float64(c.SrcVocabSize), float64(c.TgtVocabSize)
	attn := 4*d*d + 4*d
	ffn := 2*d*ff + ff + d
	n := src*d + tgt + 4*d // embeddings, generator bias, final LayerNorms
	n += float64(c.NumEncoderLayers) * (attn + ffn + 4*d)
	n += float64(c.NumDecoderLayers) * (2*attn + ffn + 6*d)
	if !c.ShareEmbeddings {
		n += tgt * d
	}
	if !c.TieOutput {
		n += tgt * d
	}
	if c.Positions == Learned {
		n += 2 * float64(c.MaxPositions) * d
	}
	return n
}

// DK is d_k = d_model/h.
func (c Config) DK() int { return c.DModel / c.NHead }

// Base is the paper's base model (Table 3): N = 6 layers each side,
// d_model 512, h 8, d_ff 2048, P_drop 0.1, ε_ls 0.1, sinusoidal positions,
// one shared 37,000-token vocabulary with the embeddings and the output
// projection tied. Set the vocabulary and special ids to the tokenizer's.
func Base() Config {
	return Config{
		SrcVocabSize: 37000, TgtVocabSize: 37000, DModel: 512, NHead: 8,
		NumEncoderLayers: 6, NumDecoderLayers: 6, DimFeedforward: 2048,
		Dropout: 0.1, Activation: "relu", LayerNormEps: 1e-5, MaxPositions: 1024,
		Positions: Sinusoidal, ShareEmbeddings: true, TieOutput: true, LabelSmoothing: 0.1,
		BOS: 1, EOS: 2, Pad: 0,
	}
}

// Big is the paper's big model: d_model 1024, h 16, d_ff 4096, P_drop 0.3.
func Big() Config {
	c := Base()
	c.DModel, c.NHead, c.DimFeedforward, c.Dropout = 1024, 16, 4096, 0.3
	return c
}

// Small is 2 + 2 layers, d_model 128, h 4, d_ff 512, vocabulary 1,000:
// the size of the benchmarks, and one that trains on two CPU cores in
// minutes.
func Small() Config {
	c := Base()
	c.SrcVocabSize, c.TgtVocabSize, c.DModel, c.NHead = 1000, 1000, 128, 4
	c.NumEncoderLayers, c.NumDecoderLayers, c.DimFeedforward, c.MaxPositions = 2, 2, 512, 256
	return c
}

// Tiny is 2 + 2 layers, d_model 64, h 2, d_ff 256, vocabulary 500.
func Tiny() Config {
	c := Small()
	c.SrcVocabSize, c.TgtVocabSize, c.DModel, c.NHead, c.DimFeedforward = 500, 500, 64, 2, 256
	return c
}

// Preset returns a named configuration: "tiny", "small", "base" or "big".
func Preset(name string) (Config, error) {
	switch name {
	case "tiny":
		return Tiny(), nil
	case "small":
		return Small(), nil
	case "base":
		return Base(), nil
	case "big":
		return Big(), nil
	}
	return Config{}, errors.Errorf("transformer: unknown preset %q (want tiny, small, base or big)", name)
}
