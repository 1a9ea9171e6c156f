package gpt

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/train"
)

// hfKeys are the keys HuggingFace's config.json for openai-gpt holds:
// model_type, which AutoConfig requires to pick OpenAIGPTConfig
// (configuration_auto.py: "Should have a `model_type` key in its
// config.json"), architectures, which names the model class, and
// OpenAIGPTConfig's own arguments. The torch-written fixture has them all.
var hfKeys = []string{"model_type", "architectures", "vocab_size", "n_positions", "n_embd", "n_layer", "n_head",
	"afn", "resid_pdrop", "embd_pdrop", "attn_pdrop", "layer_norm_epsilon", "initializer_range"}

func readJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	return m
}

// checkHFConfig checks a config.json as HF's AutoConfig reads it: with
// transformers importable, by AutoConfig itself; in any case, by its keys.
func checkHFConfig(t *testing.T, dir string) {
	t.Helper()
	m := readJSON(t, filepath.Join(dir, ConfigFile))
	for _, k := range hfKeys {
		assert.Contains(t, m, k, "%s/config.json", dir)
	}
	assert.Equal(t, "openai-gpt", m["model_type"])
	assert.Equal(t, []any{"OpenAIGPTLMHeadModel"}, m["architectures"])
	if exec.Command("/usr/bin/python3", "-c", "import transformers").Run() == nil {
		out, err := exec.Command("/usr/bin/python3", "-c",
			"import sys, transformers as t; c = t.AutoConfig.from_pretrained(sys.argv[1]); print(type(c).__name__, c.n_embd)", dir).CombinedOutput()
		require.NoError(t, err, string(out))
		assert.Contains(t, string(out), "OpenAIGPTConfig")
	}
}

// TestEveryConfigJSONIsHuggingFaces: the config.json of Model.Save and of
// the training loop's best and last checkpoints have the keys HF needs,
// with the fixture's values, and load back.
func TestEveryConfigJSONIsHuggingFaces(t *testing.T) {
	fixture := readJSON(t, filepath.Join("testdata", "hf-gelu", ConfigFile))
	for _, k := range hfKeys {
		assert.Contains(t, fixture, k, "the fixture")
	}
	cfg, err := ReadConfig(filepath.Join("testdata", "hf-gelu"))
	require.NoError(t, err)
	m, err := New(cfg, 1)
	require.NoError(t, err)
	saved := t.TempDir()
	require.NoError(t, m.Save(saved))
	checkHFConfig(t, saved)
	got := readJSON(t, filepath.Join(saved, ConfigFile))
	for k, v := range fixture {
		assert.Equal(t, v, got[k], k)
	}

	lm := LM{Model: m}
	ids := make([]int, 400)
	for i := range ids {
		ids[i] = (7 * i) % cfg.VocabSize
	}
	w, err := datasets.NewLMWindows(ids, 8, 0)
	require.NoError(t, err)
	data, err := lm.NewLMData(w, 2, 1, 1)
	require.NoError(t, err)
	opt, err := train.NewSGD(train.SGDConfig{})
	require.NoError(t, err)
	tr, err := train.New(lm, train.Config{Optimizer: opt, Schedule: train.Constant(0.01)})
	require.NoError(t, err)
	defer tr.Close()
	root := t.TempDir()
	_, err = train.Run(context.Background(), tr, data, lm.Evaluator(w, 2, 1), train.LoopConfig{
		Steps: 2, EvalEvery: 2, CheckpointDir: root, Config: cfg}, train.Hooks{})
	require.NoError(t, err)
	for _, name := range []string{train.BestCheckpoint, train.LastCheckpoint} {
		dir := filepath.Join(root, name)
		checkHFConfig(t, dir)
		back, err := Load(dir)
		require.NoError(t, err, name)
		assert.Equal(t, cfg, back.Config)
	}
}

// TestHugeConfigsAreRefused: sizes that multiply past the integer range are
// a config error, and a config far larger than its weights file is refused
// from the file's header, before the model is allocated (it would need
// terabytes).
func TestHugeConfigsAreRefused(t *testing.T) {
	src := filepath.Join("testdata", "hf-gelu")
	weights, err := os.ReadFile(filepath.Join(src, WeightsFile))
	require.NoError(t, err)
	for _, c := range []struct {
		name, patch, want string
	}{
		{"overflow", `{"vocab_size": 4611686018427387904}`, "vocab_size 4611686018427387904, n_positions 40, n_embd 32 and n_layer 2 make more than 1099511627776 weights"},
		{"terabytes", `{"n_embd": 8192, "n_head": 8, "n_layer": 1000}`,
			"the config's model has 805413601280 weights, the file 28288; tokens_embed.weight has shape [50 32], the config needs [50 8192]; " +
				"positions_embed.weight has shape [40 32], the config needs [40 8192]; the file has 2 layers, the config 1000"},
		{"layers", `{"n_layer": 3}`, "the config's model has 40992 weights, the file 28288; the file has 2 layers, the config 3"},
	} {
		dir := t.TempDir()
		cfg := map[string]json.RawMessage{}
		b, err := os.ReadFile(filepath.Join(src, ConfigFile))
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(b, &cfg))
		require.NoError(t, json.Unmarshal([]byte(c.patch), &cfg)) // raw numbers, not float64
		b, err = json.Marshal(cfg)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, ConfigFile), b, 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(dir, WeightsFile), weights, 0o644))
		start := time.Now()
		_, err = Load(dir)
		assert.ErrorContains(t, err, c.want, c.name)
		if c.name != "overflow" {
			assert.ErrorContains(t, err, filepath.Join(dir, ConfigFile)+" does not fit "+filepath.Join(dir, WeightsFile))
		}
		assert.Less(t, time.Since(start), 5*time.Second, "%s: refused, not allocated", c.name)
	}
	// New itself refuses what overflows (Store.Add checks too).
	huge := Tiny()
	huge.VocabSize = 4611686018427387904
	_, err = New(huge, 1)
	assert.ErrorContains(t, err, "make more than")
}

// TestNumParamsCountsTheModel: the closed form equals the store the
// constructor builds.
func TestNumParamsCountsTheModel(t *testing.T) {
	for _, cfg := range []Config{Tiny(), Small(), func() Config { c := Tiny(); c.NLayer, c.NEmbd, c.NHead = 3, 48, 3; return c }()} {
		m, err := New(cfg, 1)
		require.NoError(t, err)
		n, err := cfg.NumParams()
		require.NoError(t, err)
		assert.Equal(t, m.Store.NumElements(), n)
	}
}
