package gpt

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seq2gpt/seq2gpt/blocks"
)

// TestConfigRefusesUnknownKeys: a key that is neither an OpenAIGPTConfig
// argument nor one transformers writes into every config.json is an error
// naming it and the nearest known key (a typo such as n_layers once
// trained the default model silently), both for ParseConfig (a user's
// --config) and ReadConfig (a model directory).
func TestConfigRefusesUnknownKeys(t *testing.T) {
	for _, c := range []struct {
		json, want string
	}{
		{`{"n_layers": 6, "n_embed": 128}`, `unknown key "n_embed" (did you mean "n_embd"?); unknown key "n_layers" (did you mean "n_layer"?)`},
		{`{"hidden_size": 128}`, `unknown key "hidden_size" (did you mean "n_embd"? HuggingFace's alias of it)`},
		{`{"num_hidden_layers": 2}`, `unknown key "num_hidden_layers" (did you mean "n_layer"? HuggingFace's alias of it)`},
		{`{"vocab": 10}`, `unknown key "vocab" (did you mean "vocab_size"?)`},
		{`{"zzzzzzzzzzzzzz": 1}`, `unknown key "zzzzzzzzzzzzzz"`},
		{`{"activation_function": "gelu"}`, `unknown key "activation_function" (did you mean "afn"? GPT-2's name of it)`},
		{`[1, 2]`, `json: cannot unmarshal array`},
		{`{"n_layer": "six"}`, `cannot unmarshal string into Go struct field`},
		{`{"tie_word_embeddings": false}`, `tie_word_embeddings false: GPT ties the output layer to the token embedding`},
	} {
		_, err := ParseConfig([]byte(c.json), Tiny())
		assert.ErrorContains(t, err, c.want, c.json)
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, ConfigFile), []byte(c.json), 0o644))
		_, err = ReadConfig(dir)
		assert.ErrorContains(t, err, c.want, c.json)
	}
	// The keys transformers writes for openai-gpt load (the hub's
	// openai-community/openai-gpt config.json, abridged to what it holds).
	hub := `{"afn": "gelu", "architectures": ["OpenAIGPTLMHeadModel"], "attn_pdrop": 0.1, "embd_pdrop": 0.1,
	  "initializer_range": 0.02, "layer_norm_epsilon": 1e-05, "model_type": "openai-gpt", "n_ctx": 512, "n_embd": 768,
	  "n_head": 12, "n_layer": 12, "n_positions": 512, "n_special": 0, "predict_special_tokens": true, "resid_pdrop": 0.1,
	  "summary_activation": null, "summary_first_dropout": 0.1, "summary_proj_to_labels": true, "summary_type": "cls_index",
	  "summary_use_proj": true, "task_specific_params": {"text-generation": {"do_sample": true, "max_length": 50}},
	  "vocab_size": 40478, "transformers_version": "4.38.0", "torch_dtype": "float32", "_name_or_path": "openai-gpt"}`
	cfg, err := ParseConfig([]byte(hub), Config{})
	require.NoError(t, err)
	assert.Equal(t, Paper(), cfg)
	// Over a base: absent keys keep the base's values.
	cfg, err = ParseConfig([]byte(`{"n_layer": 3}`), Tiny())
	require.NoError(t, err)
	want := Tiny()
	want.NLayer = 3
	assert.Equal(t, want, cfg)
}

// TestAFNMeansWhatHFMeans: afn names HF modeling_openai's ACT_FNS
// activations — its "gelu" is the tanh approximation (the torch parity of
// testdata/hf-gelu shows it), "silu" and "swish" are x·σ(x) (hf-silu) —
// and "gelu_new", which HF lacks, is read as "gelu" and written so.
func TestAFNMeansWhatHFMeans(t *testing.T) {
	for afn, want := range map[string]blocks.Activation{"gelu": blocks.GELU, "relu": blocks.ReLU, "silu": blocks.SiLU,
		"swish": blocks.SiLU, "gelu_erf": blocks.GELUExact, "gelu_new": blocks.GELU} {
		cfg, err := ParseConfig([]byte(`{"afn": "`+afn+`"}`), Tiny())
		require.NoError(t, err, afn)
		m, err := New(cfg, 1)
		require.NoError(t, err)
		assert.Equal(t, want, m.Layers()[0].MLP.Activation, afn)
		if afn == "gelu_new" {
			assert.Equal(t, "gelu", cfg.AFN)
		}
	}
	_, err := ParseConfig([]byte(`{"afn": "gelu_fast"}`), Tiny())
	assert.ErrorContains(t, err, `afn "gelu_fast" is not one of gelu, relu, silu, swish (HuggingFace's) or gelu_erf`)
}
