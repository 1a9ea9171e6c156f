package transformer

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/safetensors"
	"github.com/seq2gpt/seq2gpt/train"
)

var saveForTorch = flag.String("save-for-torch", "", "TestSaveLoadRoundTrip also saves its shared-tied model, with reference.json, into this directory (check it with gen_transformer.py --check DIR)")

// evalLogits runs the evaluation program on the fixture sources and
// targets and returns the batch and the logits.
func evalLogits(t *testing.T, m *Model, sources, targets [][]int) (train.Batch, []float32) {
	tr := Translator{m}
	b, err := tr.Batch(batchOf(sources, targets, m.Config.Pad))
	require.NoError(t, err)
	k := b.Key
	k.Mode = blocks.Eval
	p, err := train.Compile(tr, k, 0)
	require.NoError(t, err)
	defer p.Close()
	require.NoError(t, let(p, b.Inputs))
	require.NoError(t, p.Run())
	v, err := p.Output("logits")
	require.NoError(t, err)
	return b, append([]float32(nil), f32s(v)...)
}

// TestLoadTorchDirectory loads a model directory torch wrote (its full
// state dict, with the second names of the shared embedding and the tied
// generator) and gives torch's logits.
func TestLoadTorchDirectory(t *testing.T) {
	f := loadFixture(t, "model_pre_shared_tied_learned")
	m, err := Load(filepath.Join("testdata", "torch-shared-tied"))
	require.NoError(t, err)
	assert.Equal(t, f.Config, m.Config)
	_, logits := evalLogits(t, m, f.Sources, f.Targets)
	closeTo(t, f.get(t, "output:logits_eval"), tensorOf(logits), "logits of the torch-written directory")
}

// TestSaveLoadRoundTrip: Save then Load gives the same weights and
// logits, with each shared tensor saved once.
func TestSaveLoadRoundTrip(t *testing.T) {
	for _, name := range []string{"model_post", "model_pre_shared_tied_learned"} {
		f := loadFixture(t, name)
		m, err := New(f.Config, 1)
		require.NoError(t, err)
		f.load(t, m)
		dir := t.TempDir()
		if *saveForTorch != "" && f.Config.TieOutput {
			dir = *saveForTorch
		}
		require.NoError(t, m.Save(dir))
		back, err := Load(dir)
		require.NoError(t, err)
		assert.Equal(t, m.Config, back.Config)
		for _, n := range m.Store.Names() {
			a, _ := m.Store.Get(n)
			b, _ := back.Store.Get(n)
			assert.Equal(t, a.Data(), b.Data(), n)
		}
		ts, _, err := safetensors.Read(filepath.Join(dir, WeightsFile))
		require.NoError(t, err)
		assert.Len(t, ts, m.Store.Len(), "each tensor once")
		var cfg map[string]any
		b, err := os.ReadFile(filepath.Join(dir, ConfigFile))
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(b, &cfg))
		assert.Equal(t, "transformer", cfg["model_type"])
		assert.Equal(t, f.Config.DModel, int(cfg["d_model"].(float64)))
		batch, want := evalLogits(t, m, f.Sources, f.Targets)
		_, got := evalLogits(t, back, f.Sources, f.Targets)
		assert.Equal(t, want, got)
		if dir == *saveForTorch {
			ref, err := json.Marshal(map[string]any{"src": rows(batch.Inputs["src"].Data().([]int), batch.Key.Source),
				"tgt_in": rows(batch.Inputs["tgt_in"].Data().([]int), batch.Key.Len), "src_lengths": f.SrcLengths, "logits": want})
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(dir, "reference.json"), ref, 0o644))
		}
	}
}

func rows(ids []int, n int) [][]int {
	var out [][]int
	for i := 0; i < len(ids); i += n {
		out = append(out, ids[i:i+n])
	}
	return out
}

// TestLoadRefusesWhatDoesNotFit: another model's directory is refused by
// its model_type; weights of another configuration name every mismatch;
// a tied duplicate that differs is an error.
func TestLoadRefusesWhatDoesNotFit(t *testing.T) {
	_, err := Load(filepath.Join("..", "gpt", "testdata", "hf-gelu"))
	assert.ErrorContains(t, err, `model_type "openai-gpt" is not "transformer": this is not a Transformer model directory`)

	src := filepath.Join("testdata", "torch-shared-tied")
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join(src, ConfigFile))
	require.NoError(t, err)
	var cfg map[string]any
	require.NoError(t, json.Unmarshal(b, &cfg))
	write := func(name string, v any) {
		b, err := json.Marshal(v)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o644))
	}
	cfg["d_model"] = 16
	write(ConfigFile, cfg)
	w, err := os.ReadFile(filepath.Join(src, WeightsFile))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, WeightsFile), w, 0o644))
	_, err = Load(dir)
	assert.ErrorContains(t, err, "the config's model has 9293 weights, the file 3141", "refused from the header")
	cfg["d_model"], cfg["dim_feedforward"], cfg["num_decoder_layers"] = 8, 10, 1
	write(ConfigFile, cfg)
	_, err = Load(dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "encoder.layers.0.linear1.weight has shape (12, 8), the config needs (10, 8)")
	assert.Contains(t, err.Error(), "unexpected tensor decoder.layers.1.norm3.bias")

	cfg["dim_feedforward"], cfg["num_decoder_layers"] = 12, 2
	cfg["nhead"] = 3
	write(ConfigFile, cfg)
	_, err = Load(dir)
	assert.ErrorContains(t, err, "d_model 8 is not divisible by nhead 3")

	// The generator's copy of the tied table, changed.
	cfg["nhead"] = 2
	write(ConfigFile, cfg)
	ts, meta, err := safetensors.Read(filepath.Join(src, WeightsFile))
	require.NoError(t, err)
	g := ts["generator.weight"].Clone().(*denseT)
	g.Data().([]float32)[3] += 1
	ts["generator.weight"] = g
	require.NoError(t, safetensors.Write(filepath.Join(dir, WeightsFile), ts, meta))
	_, err = Load(dir)
	assert.ErrorContains(t, err, "generator.weight differs from src_embed.weight, which the config shares with it")
}

type denseT = tensor.Dense

func tensorOf(v []float32) *tensor.Dense {
	return tensor.New(tensor.WithShape(len(v)), tensor.WithBacking(v))
}

// TestNumParams: the count a config gives (used to refuse a config larger
// than its weights) is the store's.
func TestNumParams(t *testing.T) {
	for _, mod := range []func(*Config){
		func(*Config) {},
		func(c *Config) { c.ShareEmbeddings, c.TieOutput = true, true },
		func(c *Config) { c.Positions, c.TieOutput, c.NumDecoderLayers = Learned, true, 3 },
	} {
		c := testConfig()
		c.SrcVocabSize = 13
		mod(&c)
		m, err := New(c, 1)
		require.NoError(t, err)
		assert.Equal(t, float64(m.Store.NumElements()), c.NumParams())
	}
	assert.Equal(t, 63121544.0, Base().NumParams(), "the base model with a shared 37,000-token table (the paper counts 65M)")
}

// TestCheckpointIsAModelDirectory: a training run's checkpoint (config
// FileConfig) loads with Load and gives the trained model's logits.
func TestCheckpointIsAModelDirectory(t *testing.T) {
	f := loadFixture(t, "model_post")
	m, err := New(f.Config, 1)
	require.NoError(t, err)
	b, err := datasets.NewBatcher(f.Sources, f.Targets, datasets.BatchConfig{MaxTokens: 64, Pad: f.Config.Pad})
	require.NoError(t, err)
	data, err := m.NewData(b, 1)
	require.NoError(t, err)
	opt, err := train.NewAdam(train.AdamConfig{Beta1: 0.9, Beta2: 0.98, Eps: 1e-9})
	require.NoError(t, err)
	tr, err := train.New(Translator{m}, train.Config{Optimizer: opt, Schedule: train.Constant(1e-3)})
	require.NoError(t, err)
	defer tr.Close()
	dir := t.TempDir()
	_, err = train.Run(t.Context(), tr, data, nil, train.LoopConfig{Steps: 2, CheckpointDir: dir, Config: m.FileConfig()}, train.Hooks{})
	require.NoError(t, err)
	last, err := train.CheckpointPath(dir, "last")
	require.NoError(t, err)
	back, err := Load(last)
	require.NoError(t, err)
	_, want := evalLogits(t, m, f.Sources, f.Targets)
	_, got := evalLogits(t, back, f.Sources, f.Targets)
	assert.Equal(t, want, got)
}
