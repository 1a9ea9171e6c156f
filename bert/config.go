// Package bert is BERT ("BERT: Pre-training of Deep Bidirectional
// Transformers for Language Understanding", Devlin, Chang, Lee & Toutanova
// 2018): the Transformer's encoder — self-attention that sees the whole
// input, masked only where it is padding — pre-trained as a cloze test,
//
//	h₀ = LN(E_tok[x] + E_pos[i] + E_seg[s]),  dropout
//	h_l = Layer(h_{l−1})                       l = 1…L
//	P(x_i | x_{\M}) = softmax(LN(GELU(h_L,i·W_t + b_t))·E_tokᵀ + b)   i ∈ M
//
// where M is the 15% of positions the masking chose (see Masking). Each
// layer is post-LayerNorm, as the Transformer and BERT have it, with the
// exact (erf) GELU in its feed-forward network; the pooler is
// tanh(h_L,[CLS]·W_p + b_p), the input of sentence-level heads.
//
// GPT reads left to right and predicts the next token; BERT reads both
// ways and predicts the tokens that were hidden. So BERT cannot continue a
// prompt — there is no next position to predict — but it can fill in a
// masked word from both sides (FillMask).
//
// Parameters carry HuggingFace's BertForPreTraining names and layouts
// ("bert.embeddings.word_embeddings.weight",
// "bert.encoder.layer.{i}.attention.self.query.weight" [d, d] as nn.Linear,
// "cls.predictions.transform.dense.weight", "cls.predictions.bias", …), and
// config.json is HF's BertConfig, so a model directory moves between this
// package and transformers' BertForPreTraining, BertForMaskedLM or BertModel.
// The MLM decoder is tied to the word embeddings, as in HF.
//
// Pre-training, as "seq2gpt mlm train" does it:
//
//	tok, _ := datasets.TrainBPE(texts, datasets.BPEConfig{Merges: 1000})
//	sp, _ := bert.AddSpecials(tok)                  // [PAD] [CLS] [SEP] [MASK]
//	cfg := bert.Tiny()
//	cfg.VocabSize, cfg.PadTokenID = tok.VocabSize(), sp.PAD
//	m, _ := bert.New(cfg, seed)
//	mk, _ := bert.NewMasker(bert.BERTMasking(), sp, tok.VocabSize(), tok.IsSpecial)
//	l := bert.MLM{Model: m, Masker: mk}            // the engine's adapter (train.Model)
//	w, _ := datasets.NewLMWindows(ids, l.WindowTokens(32), 0)
//	data, _ := l.NewPretrainData(w, 16, 1, seed)   // train.Data: masked afresh each epoch
//	eval := l.Evaluator(l.Examples(validWindows, 0, seed), 16, 0)
//	// train.Run(ctx, trainer, data, eval, …); m.Save(dir)
//
// For fine-tuning, NewEncoder and LoadEncoder give the encoder alone
// (HF's BertModel): Encode and Pool are its graph functions, and the task
// layer (tasks.BERT) puts a head on the pooled [CLS].
package bert

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

// What config.json says to transformers' AutoConfig and AutoModel.
const (
	ModelType    = "bert"
	Architecture = "BertForPreTraining"
)

// Config is BERT's configuration, with the keys of HuggingFace's BertConfig
// (config.json).
type Config struct {
	VocabSize         int `json:"vocab_size"`
	HiddenSize        int `json:"hidden_size"` // d
	NumHiddenLayers   int `json:"num_hidden_layers"`
	NumAttentionHeads int `json:"num_attention_heads"`
	IntermediateSize  int `json:"intermediate_size"` // d_ff
	// HiddenAct is the activation of the FFN and of the MLM transform:
	// "gelu" (exact, erf: BERT's), "gelu_new" (tanh approximation) or "relu".
	HiddenAct                 string  `json:"hidden_act"`
	HiddenDropoutProb         float64 `json:"hidden_dropout_prob"`
	AttentionProbsDropoutProb float64 `json:"attention_probs_dropout_prob"`
	MaxPositionEmbeddings     int     `json:"max_position_embeddings"`
	TypeVocabSize             int     `json:"type_vocab_size"` // segments
	// InitializerRange is the σ of the N(0, σ²) weight initialisation.
	InitializerRange float64 `json:"initializer_range"`
	LayerNormEps     float64 `json:"layer_norm_eps"`
	PadTokenID       int     `json:"pad_token_id"`
	// PositionEmbeddingType must be "absolute" (learned positions, BERT's).
	PositionEmbeddingType string `json:"position_embedding_type"`
	// NSP adds the next-sentence-prediction head (cls.seq_relationship).
	// Off by default: RoBERTa (Liu et al. 2019) found it does not help.
	// Not a BertConfig key (HF's BertForPreTraining always has the head);
	// Load sets it when the weights have the head.
	NSP bool `json:"next_sentence_prediction,omitempty"`
}

// Validate reports every problem with the configuration at once.
func (c Config) Validate() error {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, errors.Errorf(format, args...).Error()) }
	for _, f := range []struct {
		name string
		v    int
	}{
		{"vocab_size", c.VocabSize}, {"hidden_size", c.HiddenSize}, {"num_hidden_layers", c.NumHiddenLayers},
		{"num_attention_heads", c.NumAttentionHeads}, {"intermediate_size", c.IntermediateSize},
		{"max_position_embeddings", c.MaxPositionEmbeddings}, {"type_vocab_size", c.TypeVocabSize},
	} {
		if f.v <= 0 {
			bad("%s must be positive, got %d", f.name, f.v)
		}
	}
	if c.NumAttentionHeads > 0 && c.HiddenSize%c.NumAttentionHeads != 0 {
		bad("hidden_size %d is not divisible by num_attention_heads %d", c.HiddenSize, c.NumAttentionHeads)
	}
	if _, ok := activations[c.HiddenAct]; !ok {
		bad("hidden_act %q is not one of gelu, gelu_new, relu", c.HiddenAct)
	}
	for _, p := range []struct {
		name string
		v    float64
	}{{"hidden_dropout_prob", c.HiddenDropoutProb}, {"attention_probs_dropout_prob", c.AttentionProbsDropoutProb}} {
		if p.v < 0 || p.v >= 1 {
			bad("%s %v is not in [0, 1)", p.name, p.v)
		}
	}
	if c.InitializerRange <= 0 {
		bad("initializer_range must be positive, got %v", c.InitializerRange)
	}
	if c.LayerNormEps <= 0 {
		bad("layer_norm_eps must be positive, got %v", c.LayerNormEps)
	}
	if c.VocabSize > 0 && (c.PadTokenID < 0 || c.PadTokenID >= c.VocabSize) {
		bad("pad_token_id %d is outside the vocabulary [0, %d)", c.PadTokenID, c.VocabSize)
	}
	if c.PositionEmbeddingType != "absolute" {
		bad("position_embedding_type %q is not supported (only \"absolute\")", c.PositionEmbeddingType)
	}
	if len(errs) == 0 {
		if _, err := c.NumParams(); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return errors.New("bert: invalid config; " + strings.Join(errs, "; "))
	}
	return nil
}

// NumParams is the number of weights of the model,
//
//	(V + P + S)·d + 2d                     embeddings and their LayerNorm
//	+ L·(4d² + 2·d·d_ff + 9d + d_ff)       layers
//	+ 2d² + 4d + V                         pooler, MLM transform, output bias
//	(+ 2d + 2 with NSP)
//
// (each layer: W^Q, W^K, W^V, W^O with biases, 4d² + 4d; the FFN with
// biases, 2·d·d_ff + d_ff + d; two LayerNorms, 4d). It is an error when the
// count passes blocks.MaxElements (or would overflow).
func (c Config) NumParams() (int, error) { return c.numParams(true) }

// numParams counts the encoder's weights and, when heads, the
// pre-training heads'.
func (c Config) numParams(heads bool) (int, error) {
	if c.VocabSize < 0 || c.MaxPositionEmbeddings < 0 || c.TypeVocabSize < 0 || c.HiddenSize < 0 || c.NumHiddenLayers < 0 || c.IntermediateSize < 0 {
		return 0, errors.Errorf("bert: negative sizes in %+v", c)
	}
	// Every product and sum is checked: a config is user input.
	var overflow bool
	mul := func(a, b uint64) uint64 {
		hi, lo := bits.Mul64(a, b)
		overflow = overflow || hi != 0
		return lo
	}
	add := func(xs ...uint64) uint64 {
		var s uint64
		for _, x := range xs {
			var carry uint64
			s, carry = bits.Add64(s, x, 0)
			overflow = overflow || carry != 0
		}
		return s
	}
	d, ff, V := uint64(c.HiddenSize), uint64(c.IntermediateSize), uint64(c.VocabSize)
	embed := add(mul(add(V, uint64(c.MaxPositionEmbeddings), uint64(c.TypeVocabSize)), d), 2*d)
	layer := add(mul(4, mul(d, d)), mul(2, mul(d, ff)), mul(9, d), ff)
	pooler := add(mul(d, d), d)
	var mlm uint64
	if heads {
		mlm = add(mul(d, d), mul(3, d), V)
		if c.NSP {
			mlm = add(mlm, mul(2, d), 2)
		}
	}
	n := add(embed, mul(uint64(c.NumHiddenLayers), layer), pooler, mlm)
	if overflow || n > blocks.MaxElements {
		return 0, errors.Errorf("vocab_size %d, max_position_embeddings %d, hidden_size %d, intermediate_size %d and num_hidden_layers %d make more than %d weights",
			c.VocabSize, c.MaxPositionEmbeddings, c.HiddenSize, c.IntermediateSize, c.NumHiddenLayers, uint64(blocks.MaxElements))
	}
	return int(n), nil
}

// MarshalJSON writes the configuration as HuggingFace's config.json for
// BERT: the BertConfig keys, model_type and architectures, so that
// AutoConfig and AutoModelForPreTraining read a model directory or a
// checkpoint (whose config.json is the Config as given to the loop).
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config // the same fields, without this method
	return json.Marshal(struct {
		plain
		ModelType     string   `json:"model_type"`
		Architectures []string `json:"architectures"`
	}{plain(c), ModelType, []string{Architecture}})
}

// Base is BERT-base: 12 layers, 768 wide, 12 heads, d_ff 3072, 512
// positions, 2 segments, the 30,522-token WordPiece vocabulary, dropout 0.1
// (HF's BertConfig defaults). BERT-base has GPT-1's size on purpose, so the
// two can be compared.
func Base() Config {
	return Config{VocabSize: 30522, HiddenSize: 768, NumHiddenLayers: 12, NumAttentionHeads: 12,
		IntermediateSize: 3072, HiddenAct: "gelu", HiddenDropoutProb: 0.1, AttentionProbsDropoutProb: 0.1,
		MaxPositionEmbeddings: 512, TypeVocabSize: 2, InitializerRange: 0.02, LayerNormEps: 1e-12,
		PositionEmbeddingType: "absolute"}
}

// Large is BERT-large: 24 layers, 1024 wide, 16 heads, d_ff 4096.
func Large() Config {
	c := Base()
	c.NumHiddenLayers, c.HiddenSize, c.NumAttentionHeads, c.IntermediateSize = 24, 1024, 16, 4096
	return c
}

func preset(layers, d, heads, positions, vocab int) Config {
	c := Base()
	c.NumHiddenLayers, c.HiddenSize, c.NumAttentionHeads, c.IntermediateSize = layers, d, heads, 4*d
	c.MaxPositionEmbeddings, c.VocabSize = positions, vocab
	return c
}

// The laptop presets have the sizes of gpt's presets of the same name
// (layers, width, heads, context, vocabulary), so that a BERT and a GPT of
// one preset have the same encoder and differ by BERT's heads (pooler, MLM
// transform and output bias) and its segment embeddings.

// Tiny is 2 layers, d 64, 2 heads, 32 positions, vocabulary 256.
func Tiny() Config { return preset(2, 64, 2, 32, 256) }

// Small is 4 layers, d 128, 4 heads, 64 positions, vocabulary 1000.
func Small() Config { return preset(4, 128, 4, 64, 1000) }

// Medium is 6 layers, d 256, 8 heads, 128 positions, vocabulary 4000.
func Medium() Config { return preset(6, 256, 8, 128, 4000) }

// Preset returns a named configuration: "tiny", "small", "medium", "base"
// or "large".
func Preset(name string) (Config, error) {
	switch name {
	case "tiny":
		return Tiny(), nil
	case "small":
		return Small(), nil
	case "medium":
		return Medium(), nil
	case "base":
		return Base(), nil
	case "large":
		return Large(), nil
	}
	return Config{}, errors.Errorf("bert: unknown preset %q (want tiny, small, medium, base or large)", name)
}

// ParseConfig reads a config.json (or a --config file of BertConfig keys)
// over base. A key that is neither one of Config's nor one transformers
// writes into a BERT config.json that this package may ignore
// (architectures, id2label, classifier_dropout, transformers_version, …)
// is an error naming it — with GPT's name of a BERT key ("n_embd" for
// "hidden_size") the key to write instead — so that a misspelt
// "num_layers" does not train the default model.
func ParseConfig(b []byte, base Config) (Config, error) {
	c, err := parseConfig(b, base)
	return c, errors.Wrap(err, "bert: config")
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
			msg += fmt.Sprintf(" (GPT's name: BERT's is %q)", alias)
		}
		problems = append(problems, msg)
	}
	if raw, ok := keys["model_type"]; ok {
		var mt string
		if err := json.Unmarshal(raw, &mt); err != nil || mt != ModelType {
			problems = append(problems, fmt.Sprintf("model_type %s is not %q", raw, ModelType))
		}
	}
	if len(problems) > 0 {
		return Config{}, errors.New(strings.Join(problems, "; "))
	}
	c := base
	if err := json.Unmarshal(b, (*plainConfig)(&c)); err != nil {
		return Config{}, err
	}
	return c, c.Validate()
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

// ignoredKeys are the keys transformers writes into a BERT config.json
// that do not change the encoder or its pre-training heads:
// PretrainedConfig's own (bookkeeping, generation defaults, labels, token
// ids) and BertConfig's use_cache and classifier_dropout (a task head's).
var ignoredKeys = func() map[string]bool {
	m := map[string]bool{}
	for _, k := range strings.Fields(`model_type architectures transformers_version _name_or_path _commit_hash
		torch_dtype use_bfloat16 classifier_dropout use_cache gradient_checkpointing
		task_specific_params finetuning_task id2label label2id num_labels problem_type tokenizer_class prefix
		bos_token_id eos_token_id sep_token_id decoder_start_token_id
		return_dict output_hidden_states output_attentions torchscript pruned_heads tie_word_embeddings
		chunk_size_feed_forward is_encoder_decoder is_decoder add_cross_attention tie_encoder_decoder
		cross_attention_hidden_size tf_legacy_loss`) {
		m[k] = true
	}
	return m
}()

// keyAliases are GPT's (OpenAIGPTConfig's) names of Config's keys.
var keyAliases = map[string]string{
	"n_embd": "hidden_size", "n_layer": "num_hidden_layers", "n_head": "num_attention_heads",
	"n_positions": "max_position_embeddings", "n_ctx": "max_position_embeddings", "afn": "hidden_act",
	"layer_norm_epsilon": "layer_norm_eps", "resid_pdrop": "hidden_dropout_prob", "embd_pdrop": "hidden_dropout_prob",
	"attn_pdrop": "attention_probs_dropout_prob",
}
