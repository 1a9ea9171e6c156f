// Package gpt is GPT-1 ("Improving Language Understanding by Generative
// Pre-Training", Radford et al. 2018): a decoder-only Transformer trained as a
// language model,
//
//	h₀ = U·W_e + W_p
//	h_l = transformer_block(h_{l−1})    l = 1…n
//	P(u) = softmax(h_n·W_eᵀ)
//
// with masked multi-head self-attention and a position-wise FFN in each
// block, post-LayerNorm as in the paper (n = LN(x + attn(x)),
// h = LN(n + mlp(n))), and the output projection tied to the token
// embedding W_e.
//
// Parameters carry HuggingFace's openai-gpt names and layouts
// (tokens_embed.weight, h.{i}.attn.c_attn.weight [d, 3d], …), so a
// model directory moves between this package and transformers'
// OpenAIGPTLMHeadModel unchanged.
package gpt

import (
	"encoding/json"
	"math/bits"

	"github.com/pkg/errors"

	"github.com/seq2gpt/seq2gpt/blocks"
)

// What HuggingFace's AutoConfig and pipelines read from config.json to pick
// the classes: AutoConfig requires model_type.
const (
	ModelType    = "openai-gpt"
	Architecture = "OpenAIGPTLMHeadModel"
)

// Config is GPT's configuration, with the keys of HuggingFace's
// OpenAIGPTConfig (config.json).
type Config struct {
	VocabSize  int `json:"vocab_size"`
	NPositions int `json:"n_positions"`
	NEmbd      int `json:"n_embd"`
	NLayer     int `json:"n_layer"`
	NHead      int `json:"n_head"`
	// AFN is the FFN's activation: "gelu" (exact, erf), "gelu_new" (the tanh
	// approximation the paper's code used) or "relu".
	AFN              string  `json:"afn"`
	LayerNormEpsilon float64 `json:"layer_norm_epsilon"`
	EmbdPdrop        float64 `json:"embd_pdrop"`
	AttnPdrop        float64 `json:"attn_pdrop"`
	ResidPdrop       float64 `json:"resid_pdrop"`
	// InitializerRange is the standard deviation of the N(0, σ²) weight
	// initialisation (0.02 in the paper).
	InitializerRange float64 `json:"initializer_range"`
}

// Validate reports every problem with the configuration at once.
func (c Config) Validate() error {
	var errs []string
	pos := func(name string, v int) {
		if v <= 0 {
			errs = append(errs, errors.Errorf("%s must be positive, got %d", name, v).Error())
		}
	}
	pos("vocab_size", c.VocabSize)
	pos("n_positions", c.NPositions)
	pos("n_embd", c.NEmbd)
	pos("n_layer", c.NLayer)
	pos("n_head", c.NHead)
	if c.NHead > 0 && c.NEmbd%c.NHead != 0 {
		errs = append(errs, errors.Errorf("n_embd %d is not divisible by n_head %d", c.NEmbd, c.NHead).Error())
	}
	switch c.AFN {
	case "gelu", "gelu_new", "relu":
	default:
		errs = append(errs, errors.Errorf("afn %q is not one of gelu, gelu_new, relu", c.AFN).Error())
	}
	if c.LayerNormEpsilon <= 0 {
		errs = append(errs, errors.Errorf("layer_norm_epsilon must be positive, got %v", c.LayerNormEpsilon).Error())
	}
	for name, p := range map[string]float64{"embd_pdrop": c.EmbdPdrop, "attn_pdrop": c.AttnPdrop, "resid_pdrop": c.ResidPdrop} {
		if p < 0 || p >= 1 {
			errs = append(errs, errors.Errorf("%s %v is not in [0, 1)", name, p).Error())
		}
	}
	if c.InitializerRange <= 0 {
		errs = append(errs, errors.Errorf("initializer_range must be positive, got %v", c.InitializerRange).Error())
	}
	if len(errs) == 0 {
		if _, err := c.NumParams(); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		msg := "gpt: invalid config"
		for _, e := range errs {
			msg += "; " + e
		}
		return errors.New(msg)
	}
	return nil
}

// NumParams is the number of weights of the model,
//
//	(vocab_size + n_positions)·d + n_layer·(12d² + 13d),   d = n_embd
//
// (each layer: W^Q, W^K, W^V and W^O with biases, 4d² + 4d; the FFN d → 4d →
// d with biases, 8d² + 5d; two LayerNorms, 4d). It is an error when the
// count passes blocks.MaxElements (or would overflow).
func (c Config) NumParams() (int, error) {
	d := uint64(c.NEmbd)
	if c.VocabSize < 0 || c.NPositions < 0 || c.NEmbd < 0 || c.NLayer < 0 {
		return 0, errors.Errorf("gpt: negative sizes in %+v", c)
	}
	// Every product and sum is checked: a config is user input.
	var overflow bool
	mul := func(a, b uint64) uint64 {
		hi, lo := bits.Mul64(a, b)
		overflow = overflow || hi != 0
		return lo
	}
	add := func(a, b uint64) uint64 {
		s, carry := bits.Add64(a, b, 0)
		overflow = overflow || carry != 0
		return s
	}
	embed := mul(add(uint64(c.VocabSize), uint64(c.NPositions)), d)
	layer := add(mul(12, mul(d, d)), mul(13, d))
	n := add(embed, mul(uint64(c.NLayer), layer))
	if overflow || n > blocks.MaxElements {
		return 0, errors.Errorf("vocab_size %d, n_positions %d, n_embd %d and n_layer %d make more than %d weights",
			c.VocabSize, c.NPositions, c.NEmbd, c.NLayer, uint64(blocks.MaxElements))
	}
	return int(n), nil
}

// MarshalJSON writes the configuration as HuggingFace's config.json for
// openai-gpt: the Config keys, model_type, architectures and n_ctx, so that
// every config.json written from a Config (Model.Save, the training loop's
// checkpoints) is one AutoConfig accepts.
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config // the same fields, without this method
	return json.Marshal(struct {
		plain
		ModelType     string   `json:"model_type"`
		Architectures []string `json:"architectures"`
		NCtx          int      `json:"n_ctx"`
	}{plain(c), ModelType, []string{Architecture}, c.NPositions})
}

// Paper is the configuration of the paper: 12 layers, 768 wide, 12 heads,
// context 512, the 40,478-token BPE vocabulary, dropout 0.1.
func Paper() Config {
	return Config{VocabSize: 40478, NPositions: 512, NEmbd: 768, NLayer: 12, NHead: 12,
		AFN: "gelu", LayerNormEpsilon: 1e-5, EmbdPdrop: 0.1, AttnPdrop: 0.1, ResidPdrop: 0.1, InitializerRange: 0.02}
}

func preset(layers, d, heads, ctx, vocab int) Config {
	c := Paper()
	c.NLayer, c.NEmbd, c.NHead, c.NPositions, c.VocabSize = layers, d, heads, ctx, vocab
	return c
}

// Tiny is 2 layers, d 64, 2 heads, context 32, vocabulary 256.
func Tiny() Config { return preset(2, 64, 2, 32, 256) }

// Small is 4 layers, d 128, 4 heads, context 64, vocabulary 1000.
func Small() Config { return preset(4, 128, 4, 64, 1000) }

// Medium is 6 layers, d 256, 8 heads, context 128, vocabulary 4000.
func Medium() Config { return preset(6, 256, 8, 128, 4000) }

// Preset returns a named configuration: "tiny", "small", "medium" or "paper".
func Preset(name string) (Config, error) {
	switch name {
	case "tiny":
		return Tiny(), nil
	case "small":
		return Small(), nil
	case "medium":
		return Medium(), nil
	case "paper", "gpt1":
		return Paper(), nil
	}
	return Config{}, errors.Errorf("gpt: unknown preset %q (want tiny, small, medium or paper)", name)
}
