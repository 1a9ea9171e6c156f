package gpt

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"

	"github.com/seq2gpt/seq2gpt/blocks"
)

type reference struct {
	IDs     []int     `json:"ids"`
	Shape   []int     `json:"shape"`
	Logits  []float64 `json:"logits"`
	Prompts [][]int   `json:"prompts"`
	Greedy  [][]int   `json:"greedy"`
}

func loadReference(t *testing.T, dir string) reference {
	b, err := os.ReadFile(filepath.Join(dir, "reference.json"))
	require.NoError(t, err)
	var r reference
	require.NoError(t, json.Unmarshal(b, &r))
	return r
}

// forward runs an evaluation graph over ids [B, T] and returns the logits.
func forward(t *testing.T, m *Model, batch, steps int, ids []int) []float32 {
	t.Helper()
	lg, err := m.BuildLM(blocks.Eval, batch, steps, false, 0)
	require.NoError(t, err)
	require.NoError(t, lg.Feed(ids, nil))
	var v G.Value
	G.Read(lg.Logits, &v)
	vm := G.NewTapeMachine(lg.G)
	defer vm.Close()
	require.NoError(t, vm.RunAll())
	return append([]float32(nil), v.Data().([]float32)...)
}

// TestParityWithTorchHFLayout loads a torch-written openai-gpt directory
// and compares logits over 2 × 32 tokens and greedy continuations.
func TestParityWithTorchHFLayout(t *testing.T) {
	for _, name := range []string{"hf-gelu", "hf-gelu-new"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", name)
			ref := loadReference(t, dir)
			m, err := Load(dir)
			require.NoError(t, err)
			logits := forward(t, m, ref.Shape[0], ref.Shape[1], ref.IDs)
			require.Len(t, logits, len(ref.Logits))
			worst := 0.0
			for i, w := range ref.Logits {
				worst = math.Max(worst, math.Abs(float64(logits[i])-w)/math.Max(1, math.Abs(w)))
			}
			t.Logf("max logit difference from torch: %.2g", worst)
			assert.Less(t, worst, 1e-4, "max logit difference")

			gen := m.NewGenerator()
			defer gen.Close()
			for _, noCache := range []bool{false, true} {
				out, err := gen.Generate(ref.Prompts, GenerateConfig{MaxNewTokens: len(ref.Greedy[0]), NoCache: noCache})
				require.NoError(t, err)
				assert.Equal(t, ref.Greedy, out.Tokens, "greedy continuation, noCache=%v", noCache)
			}
		})
	}
}

// TestCachedAndUncachedLogitsAgree: the key/value cache gives the logits a
// full recomputation gives, at every step, for a batch of prompts of
// different lengths, including past the window (where both slide).
func TestCachedAndUncachedLogitsAgree(t *testing.T) {
	m, err := Load(filepath.Join("testdata", "hf-gelu-new"))
	require.NoError(t, err)
	gen := m.NewGenerator()
	defer gen.Close()
	prompts := [][]int{{1, 2, 3, 4, 5, 6, 7}, {9}}
	cfg := GenerateConfig{MaxNewTokens: 45, KeepLogits: true, Sampling: Sampling{Temperature: 0.8, TopK: 20, Seed: 3}}
	cached, err := gen.Generate(prompts, cfg)
	require.NoError(t, err)
	cfg.NoCache = true
	full, err := gen.Generate(prompts, cfg)
	require.NoError(t, err)
	assert.Equal(t, full.Tokens, cached.Tokens)
	for b := range prompts {
		require.Len(t, cached.Logits[b], 45)
		for s := range cached.Logits[b] {
			for i, v := range full.Logits[b][s] {
				require.InDelta(t, v, cached.Logits[b][s][i], 1e-4, "row %d step %d", b, s)
			}
		}
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	cfg := Tiny()
	cfg.VocabSize, cfg.NLayer = 40, 1
	m, err := New(cfg, 7)
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, m.Save(dir))
	back, err := Load(dir)
	require.NoError(t, err)
	assert.Equal(t, m.Config, back.Config)
	for _, n := range m.Store.Names() {
		a, _ := m.Store.Get(n)
		b, ok := back.Store.Get(n)
		require.True(t, ok, n)
		assert.Equal(t, a.Data(), b.Data(), n)
	}
	ids := make([]int, 2*8)
	for i := range ids {
		ids[i] = (i * 7) % 40
	}
	assert.Equal(t, forward(t, m, 2, 8, ids), forward(t, back, 2, 8, ids))
}

func TestConfigValidation(t *testing.T) {
	c := Tiny()
	c.NEmbd, c.NHead, c.AFN, c.AttnPdrop = 60, 7, "swish", 1
	err := c.Validate()
	require.Error(t, err)
	for _, want := range []string{"n_embd 60 is not divisible by n_head 7", `afn "swish"`, "attn_pdrop 1"} {
		assert.Contains(t, err.Error(), want)
	}
	_, err = Preset("huge")
	assert.Error(t, err)
	for _, p := range []string{"tiny", "small", "medium", "paper"} {
		c, err := Preset(p)
		require.NoError(t, err)
		require.NoError(t, c.Validate())
	}
}

func TestLoadReportsAllMismatches(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join("testdata", "hf-gelu")
	b, err := os.ReadFile(filepath.Join(src, "config.json"))
	require.NoError(t, err)
	var cfg map[string]any
	require.NoError(t, json.Unmarshal(b, &cfg))
	cfg["n_embd"], cfg["n_layer"] = 16, 3
	b, err = json.Marshal(cfg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644))
	w, err := os.ReadFile(filepath.Join(src, "model.safetensors"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "model.safetensors"), w, 0o644))
	_, err = Load(dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "transformer.tokens_embed.weight has shape (50, 32), the config needs (50, 16)")
	assert.Contains(t, err.Error(), "missing tensor h.2.ln_2.bias")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "model.safetensors"), w[:len(w)/2], 0o644))
	_, err = Load(dir)
	assert.Error(t, err)
}

func TestGenerateValidatesAndOverflows(t *testing.T) {
	cfg := Tiny()
	cfg.VocabSize, cfg.NPositions, cfg.NLayer = 30, 8, 1
	m, err := New(cfg, 1)
	require.NoError(t, err)
	gen := m.NewGenerator()
	defer gen.Close()
	_, err = gen.Generate([][]int{{1, 2}, {}}, GenerateConfig{MaxNewTokens: 3})
	assert.ErrorContains(t, err, "prompt 1 is empty")
	_, err = gen.Generate([][]int{{1, 30}}, GenerateConfig{MaxNewTokens: 3})
	assert.ErrorContains(t, err, "token 30 at position 1")
	_, err = gen.Generate([][]int{{1, 2, 3}}, GenerateConfig{MaxNewTokens: 6, Overflow: Error})
	assert.ErrorContains(t, err, "exceeds n_positions 8")
	out, err := gen.Generate([][]int{{1, 2, 3}}, GenerateConfig{MaxNewTokens: 20, Overflow: Slide, Sampling: Sampling{Temperature: 1, TopP: 0.9, Seed: 4}})
	require.NoError(t, err)
	assert.Len(t, out.Tokens[0], 20)
	again, err := gen.Generate([][]int{{1, 2, 3}}, GenerateConfig{MaxNewTokens: 20, Overflow: Slide, Sampling: Sampling{Temperature: 1, TopP: 0.9, Seed: 4}})
	require.NoError(t, err)
	assert.Equal(t, out.Tokens, again.Tokens, "same seed, same sample")
}

func TestSampling(t *testing.T) {
	logits := []float32{1, 5, 3, 4.9, -2}
	rng := newRNG(1)
	assert.Equal(t, 1, sample(logits, Sampling{}, rng))
	counts := map[int]int{}
	for i := 0; i < 2000; i++ {
		counts[sample(logits, Sampling{Temperature: 1, TopK: 2, Seed: 1}, rng)]++
	}
	assert.Len(t, counts, 2, "top-k 2 draws only tokens 1 and 3")
	assert.InDelta(t, 1/(1+math.Exp(-0.1)), float64(counts[1])/2000, 0.04)
	counts = map[int]int{}
	for i := 0; i < 2000; i++ {
		counts[sample(logits, Sampling{Temperature: 1, TopP: 0.45}, rng)]++
	}
	assert.Equal(t, map[int]int{1: 2000}, counts, "top-p 0.45: token 1 (p = 0.486) alone reaches it")
}
