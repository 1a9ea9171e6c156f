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
	"fmt"
	"maps"
	"math/bits"
	"reflect"
	"slices"
	"strings"

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
	// AFN is the FFN's activation, named as HuggingFace's modeling_openai
	// names them (its ACT_FNS): "gelu" is the tanh approximation
	// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) that the paper's code
	// used (HF's gelu_new function), "relu", and "silu" or "swish"
	// (x·σ(x)). "gelu_erf" is the exact x·Φ(x), a name HF refuses rather
	// than misreads; "gelu_new", which HF's table lacks, is read as "gelu".
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
	if _, ok := activations[c.AFN]; !ok {
		errs = append(errs, errors.Errorf("afn %q is not one of gelu, relu, silu, swish (HuggingFace's) or gelu_erf", c.AFN).Error())
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

// ParseConfig reads a JSON object of HuggingFace OpenAIGPTConfig keys over
// base (keys absent keep base's values) and validates the result. A key
// that is neither one of Config's nor one transformers writes into an
// openai-gpt config.json and that this package may ignore (model_type,
// architectures, n_ctx, the summary_* keys of the double-heads model,
// transformers_version, …) is an error naming it and the nearest key
// Config has: a misspelt "n_layers" does not train the default model.
func ParseConfig(b []byte, base Config) (Config, error) {
	c, err := parseConfig(b, base)
	return c, errors.Wrap(err, "gpt: config")
}

func parseConfig(b []byte, base Config) (Config, error) {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil {
		return Config{}, err
	}
	var problems []string
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if configKeys[k] || ignoredKeys[k] {
			continue
		}
		msg := fmt.Sprintf("unknown key %q", k)
		if alias, ok := keyAliases[k]; ok {
			msg += fmt.Sprintf(" (did you mean %q? %s)", alias.key, alias.why)
		} else if near := nearestKey(k); near != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", near)
		}
		problems = append(problems, msg)
	}
	if raw, ok := keys["model_type"]; ok {
		var mt string
		if err := json.Unmarshal(raw, &mt); err != nil || mt != ModelType {
			problems = append(problems, fmt.Sprintf("model_type %s is not %q", raw, ModelType))
		}
	}
	if raw, ok := keys["tie_word_embeddings"]; ok && string(raw) == "false" {
		problems = append(problems, "tie_word_embeddings false: GPT ties the output layer to the token embedding")
	}
	if len(problems) > 0 {
		return Config{}, errors.New(strings.Join(problems, "; "))
	}
	c := base
	if err := json.Unmarshal(b, (*plainConfig)(&c)); err != nil {
		return Config{}, err
	}
	if c.AFN == "gelu_new" {
		// What this package once wrote for the tanh form: the same
		// function under the name HF gives it, so it is written back so.
		c.AFN = "gelu"
	}
	return c, c.Validate()
}

// activations maps afn to the FFN's activation: HF modeling_openai's
// ACT_FNS ({"relu", "silu", "gelu": gelu_new, "swish": silu}) and
// gelu_erf, the exact GELU under a name HF refuses.
var activations = map[string]blocks.Activation{
	"gelu": blocks.GELU, "relu": blocks.ReLU, "silu": blocks.SiLU, "swish": blocks.SiLU, "gelu_erf": blocks.GELUExact,
}

// plainConfig is Config without its MarshalJSON.
type plainConfig Config

// configKeys are Config's JSON keys.
var configKeys = func() map[string]bool {
	m := map[string]bool{}
	t := reflect.TypeOf(Config{})
	for i := 0; i < t.NumField(); i++ {
		m[strings.Split(t.Field(i).Tag.Get("json"), ",")[0]] = true
	}
	return m
}()

// ignoredKeys are the keys transformers writes into an openai-gpt
// config.json that do not change the language model: PretrainedConfig's
// own (bookkeeping, generation defaults, labels, token ids),
// OpenAIGPTConfig's for the double-heads model (summary_*), and n_ctx and
// n_special of older releases.
var ignoredKeys = func() map[string]bool {
	m := map[string]bool{}
	for _, k := range strings.Fields(`model_type architectures transformers_version _name_or_path _commit_hash
		torch_dtype use_bfloat16 n_ctx n_special predict_special_tokens
		summary_type summary_use_proj summary_activation summary_proj_to_labels summary_first_dropout
		task_specific_params finetuning_task id2label label2id num_labels problem_type tokenizer_class prefix
		bos_token_id pad_token_id eos_token_id sep_token_id decoder_start_token_id
		return_dict output_hidden_states output_attentions torchscript pruned_heads tie_word_embeddings
		chunk_size_feed_forward is_encoder_decoder is_decoder add_cross_attention tie_encoder_decoder
		cross_attention_hidden_size gradient_checkpointing use_cache tf_legacy_loss
		max_length min_length do_sample early_stopping num_beams num_beam_groups diversity_penalty
		temperature top_k top_p typical_p repetition_penalty length_penalty no_repeat_ngram_size
		encoder_no_repeat_ngram_size bad_words_ids num_return_sequences output_scores return_dict_in_generate
		forced_bos_token_id forced_eos_token_id remove_invalid_values exponential_decay_length_penalty
		suppress_tokens begin_suppress_tokens`) {
		m[k] = true
	}
	return m
}()

// keyAliases are other models' names of Config's keys, which
// OpenAIGPTConfig does not read from config.json.
var keyAliases = map[string]struct{ key, why string }{
	"hidden_size":             {"n_embd", "HuggingFace's alias of it"},
	"num_hidden_layers":       {"n_layer", "HuggingFace's alias of it"},
	"num_attention_heads":     {"n_head", "HuggingFace's alias of it"},
	"max_position_embeddings": {"n_positions", "HuggingFace's alias of it"},
	"activation_function":     {"afn", "GPT-2's name of it"},
	"hidden_act":              {"afn", "BERT's name of it"},
	"layer_norm_eps":          {"layer_norm_epsilon", "BERT's name of it"},
	"hidden_dropout_prob":     {"resid_pdrop", "BERT's name of it"},
}

// nearestKey is the Config key closest to k in edit distance, when it is
// close enough to be a typo (at most a third of the longer name's length)
// or one name begins the other ("vocab", "vocab_size").
func nearestKey(k string) string {
	best, bestD := "", -1
	for _, c := range slices.Sorted(maps.Keys(configKeys)) {
		d := editDistance(k, c)
		if len(k) >= 3 && (strings.HasPrefix(c, k) || strings.HasPrefix(k, c)) {
			d = 1
		}
		if bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	if bestD*3 > max(len(k), len(best)) {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// MarshalJSON writes the configuration as HuggingFace's config.json for
// openai-gpt: the Config keys, model_type, architectures and n_ctx, so that
// every config.json written from a Config (Model.Save, the training loop's
// checkpoints) is one AutoConfig accepts.
func (c Config) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		plainConfig
		ModelType     string   `json:"model_type"`
		Architectures []string `json:"architectures"`
		NCtx          int      `json:"n_ctx"`
	}{plainConfig(c), ModelType, []string{Architecture}, c.NPositions})
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
