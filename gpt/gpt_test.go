package gpt

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/decode"
	"github.com/seq2gpt/seq2gpt/train"
)

type reference struct {
	IDs       []int       `json:"ids"`
	Shape     []int       `json:"shape"`
	Logits    []float64   `json:"logits"`
	Prompts   [][]int     `json:"prompts"`
	Greedy    [][]int     `json:"greedy"`
	Attention [][]float64 `json:"attention"`
}

func loadReference(t *testing.T, dir string) reference {
	b, err := os.ReadFile(filepath.Join(dir, "reference.json"))
	require.NoError(t, err)
	var r reference
	require.NoError(t, json.Unmarshal(b, &r))
	return r
}

// forward runs a KindLogits program over ids [B, T] and returns the logits.
func forward(t *testing.T, m *Model, batch, steps int, ids []int) []float32 {
	t.Helper()
	p, err := train.Compile(LM{m}, train.Key{Mode: blocks.Eval, Kind: KindLogits, Batch: batch, Len: steps}, 0)
	require.NoError(t, err)
	defer p.Close()
	it, err := blocks.IDs(ids, m.Config.VocabSize)
	require.NoError(t, err)
	require.NoError(t, p.Let("ids", it))
	require.NoError(t, p.Run())
	v, err := p.Output("logits")
	require.NoError(t, err)
	return append([]float32(nil), v.Data().([]float32)...)
}

// newDecoder is m's decoder, closed with the test.
func newDecoder(t *testing.T, m *Model, cfg DecoderConfig) *Decoder {
	d, err := m.NewDecoder(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, d.Close()) })
	return d
}

// TestParityWithTorchHFLayout loads a torch-written openai-gpt directory
// and compares logits over 2 × 32 tokens and greedy continuations.
func TestParityWithTorchHFLayout(t *testing.T) {
	for _, name := range []string{"hf-gelu", "hf-silu"} {
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

			for _, noCache := range []bool{false, true} {
				out, err := decode.Greedy(newDecoder(t, m, DecoderConfig{NoCache: noCache}), ref.Prompts, decode.Limits{MaxLen: len(ref.Greedy[0])})
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
	m, err := Load(filepath.Join("testdata", "hf-gelu"))
	require.NoError(t, err)
	prompts := [][]int{{1, 2, 3, 4, 5, 6, 7}, {9}}
	cfg := decode.GenerateConfig{Limits: decode.Limits{MaxLen: 45}, KeepLogits: true, Sampling: decode.Sampling{Temperature: 0.8, TopK: 20, Seed: 3}}
	cached, err := decode.Generate(newDecoder(t, m, DecoderConfig{}), prompts, cfg)
	require.NoError(t, err)
	full, err := decode.Generate(newDecoder(t, m, DecoderConfig{NoCache: true}), prompts, cfg)
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
	c.NEmbd, c.NHead, c.AFN, c.AttnPdrop = 60, 7, "tanh", 1
	err := c.Validate()
	require.Error(t, err)
	for _, want := range []string{"n_embd 60 is not divisible by n_head 7", `afn "tanh" is not one of gelu, relu, silu, swish (HuggingFace's) or gelu_erf`, "attn_pdrop 1"} {
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
	dec := newDecoder(t, m, DecoderConfig{})
	lim := decode.Limits{MaxLen: 3}
	_, err = decode.Greedy(dec, [][]int{{1, 2}, {}}, lim)
	assert.ErrorContains(t, err, "prompt 1 is empty")
	_, err = decode.Greedy(dec, [][]int{{1, 30}}, lim)
	assert.ErrorContains(t, err, "prompt 0: token 30 at position 1")
	// 3 + 6 tokens: the last is never fed, so 8 positions are enough.
	strict := newDecoder(t, m, DecoderConfig{Overflow: Error})
	out, err := decode.Greedy(strict, [][]int{{1, 2, 3}}, decode.Limits{MaxLen: 6})
	require.NoError(t, err)
	assert.Len(t, out.Tokens[0], 6)
	for _, noCache := range []bool{false, true} {
		strict := newDecoder(t, m, DecoderConfig{Overflow: Error, NoCache: noCache})
		_, err = decode.Greedy(strict, [][]int{{1, 2, 3}}, decode.Limits{MaxLen: 7})
		assert.ErrorContains(t, err, "row 0 has 9 tokens, which exceeds n_positions 8", "noCache=%v", noCache)
		_, err = decode.Greedy(strict, [][]int{{1, 2, 3, 4, 5, 6, 7, 8, 9}}, lim)
		assert.ErrorContains(t, err, "exceeds n_positions 8", "a prompt past the window")
	}
	sc := decode.GenerateConfig{Limits: decode.Limits{MaxLen: 20}, Sampling: decode.Sampling{Temperature: 1, TopP: 0.9, Seed: 4}}
	out, err = decode.Generate(dec, [][]int{{1, 2, 3}}, sc)
	require.NoError(t, err)
	assert.Len(t, out.Tokens[0], 20)
	again, err := decode.Generate(dec, [][]int{{1, 2, 3}}, sc)
	require.NoError(t, err)
	assert.Equal(t, out.Tokens, again.Tokens, "same seed, same sample")
	_, err = m.NewDecoder(DecoderConfig{Overflow: 3})
	assert.ErrorContains(t, err, "unknown overflow 3")
}

// TestGenerationIdsUnchanged pins generation through decode/ to the ids the
// generator it replaced gave (gpt.Generator at commit b314e47, recorded in
// testdata/generate-b314e47.json), with and without the cache: greedy and
// sampled, past the window (sliding), with stop tokens, and prompts of
// different lengths. Sampling from prompts of different lengths draws in
// another order now (each step samples every row's next token in turn,
// where the old generator interleaved rows by absolute position), so only
// greedy runs are pinned for those.
func TestGenerationIdsUnchanged(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "generate-b314e47.json"))
	require.NoError(t, err)
	var want map[string][][]int
	require.NoError(t, json.Unmarshal(b, &want))
	hf, err := Load(filepath.Join("testdata", "hf-gelu"))
	require.NoError(t, err)
	cfg := Tiny()
	cfg.VocabSize, cfg.NPositions, cfg.NLayer = 30, 8, 1
	small, err := New(cfg, 1)
	require.NoError(t, err)
	for _, c := range []struct {
		name    string
		m       *Model
		prompts [][]int
		cfg     decode.GenerateConfig
	}{
		{"hf-mixed-greedy", hf, [][]int{{1, 2, 3, 4, 5, 6, 7}, {9}}, decode.GenerateConfig{Limits: decode.Limits{MaxLen: 45}}},
		{"hf-equal-sample", hf, [][]int{{1, 2, 3}, {4, 5, 6}, {1, 2, 3}},
			decode.GenerateConfig{Limits: decode.Limits{MaxLen: 45}, Sampling: decode.Sampling{Temperature: 0.9, TopK: 20, TopP: 0.9, Seed: 5}}},
		{"small-slide-sample", small, [][]int{{1, 2, 3}}, decode.GenerateConfig{Limits: decode.Limits{MaxLen: 20}, Sampling: decode.Sampling{Temperature: 1, TopP: 0.9, Seed: 4}}},
		{"small-slide-mixed-greedy", small, [][]int{{1, 2, 3}, {7, 8, 9, 10, 11}}, decode.GenerateConfig{Limits: decode.Limits{MaxLen: 20}}},
	} {
		for _, noCache := range []bool{false, true} {
			name := c.name
			if noCache {
				name += "-nocache"
			}
			out, err := decode.Generate(newDecoder(t, c.m, DecoderConfig{NoCache: noCache}), c.prompts, c.cfg)
			require.NoError(t, err)
			require.Contains(t, want, name)
			assert.Equal(t, want[name], out.Tokens, name)
		}
	}
	// Stop tokens end rows (kept), the others go on.
	out, err := decode.Generate(newDecoder(t, small, DecoderConfig{}), [][]int{{1, 2, 3}, {4, 5, 6}},
		decode.GenerateConfig{Limits: decode.Limits{MaxLen: 20, EOS: []int{want["small-slide-mixed-greedy"][0][0]}}})
	require.NoError(t, err)
	assert.Len(t, out.Tokens[0], 1)
}

// TestDecoderCompilesFewPrograms: a decoder keeps its step programs across
// calls: one per cache capacity of the doubling series, and one window.
func TestDecoderCompilesFewPrograms(t *testing.T) {
	m, err := Load(filepath.Join("testdata", "hf-gelu"))
	require.NoError(t, err)
	dec := newDecoder(t, m, DecoderConfig{})
	for range 3 {
		_, err := decode.Greedy(dec, [][]int{{1, 2}, {3}}, decode.Limits{MaxLen: 45})
		require.NoError(t, err)
	}
	// n_positions 40: capacities 16, 32, 39, then the sliding window.
	assert.Equal(t, 4, dec.Stats().Builds)
	assert.Zero(t, dec.Stats().Evictions)
}

// TestBeamSearchOnGPT runs decode's beam search on a real (tiny, random)
// GPT. Without end tokens and two new tokens, a beam as wide as the
// vocabulary is exact: its n-best list is the exhaustive ranking of all
// V² continuations, computed here from full-window forward passes, for
// two prompts of different lengths in one batch. Beam 1 is greedy.
func TestBeamSearchOnGPT(t *testing.T) {
	m, err := Load(filepath.Join("testdata", "hf-gelu"))
	require.NoError(t, err)
	V := m.Config.VocabSize
	prompts := [][]int{{5, 9, 2}, {17}}
	hyps, err := decode.BeamSearch(newDecoder(t, m, DecoderConfig{}), prompts,
		decode.BeamConfig{Limits: decode.Limits{MaxLen: 2}, Beam: V, NBest: 10})
	require.NoError(t, err)
	for i, p := range prompts {
		// log P(y₁ | p) from p, and log P(y₂ | p y₁) for every y₁ in one batch.
		lp1 := logSoftmax(lastRow(forward(t, m, 1, len(p), p), V))
		ids := make([]int, 0, V*(len(p)+1))
		for y := range V {
			ids = append(append(ids, p...), y)
		}
		all := forward(t, m, V, len(p)+1, ids)
		type seq struct {
			y      [2]int
			logits float64
		}
		var want []seq
		for y1 := range V {
			lp2 := logSoftmax(all[(y1*(len(p)+1)+len(p))*V : (y1*(len(p)+1)+len(p)+1)*V])
			for y2 := range V {
				want = append(want, seq{[2]int{y1, y2}, lp1[y1] + lp2[y2]})
			}
		}
		sort.SliceStable(want, func(a, b int) bool { return want[a].logits > want[b].logits })
		require.Len(t, hyps[i], 10)
		for k, h := range hyps[i] {
			assert.InDelta(t, want[k].logits, h.LogProb, 1e-4, "prompt %d rank %d", i, k)
			if want[k].logits-want[k+1].logits > 1e-3 && (k == 0 || want[k-1].logits-want[k].logits > 1e-3) {
				assert.Equal(t, want[k].y[:], h.Tokens, "prompt %d rank %d", i, k)
			}
		}
		t.Logf("prompt %d: best %v log p %.4f", i, hyps[i][0].Tokens, hyps[i][0].LogProb)
	}
	// Greedy equals beam 1, here with an end token.
	lim := decode.Limits{MaxLen: 12, EOS: []int{9}}
	g, err := decode.Greedy(newDecoder(t, m, DecoderConfig{}), prompts, lim)
	require.NoError(t, err)
	one, err := decode.BeamSearch(newDecoder(t, m, DecoderConfig{}), prompts, decode.BeamConfig{Limits: lim, Beam: 1})
	require.NoError(t, err)
	for i := range prompts {
		want := g.Tokens[i]
		if want[len(want)-1] != 9 {
			want = append(slices.Clone(want), 9)
		}
		assert.Equal(t, want, one[i][0].Tokens, "prompt %d", i)
	}
}

func lastRow(logits []float32, vocab int) []float32 { return logits[len(logits)-vocab:] }

func logSoftmax(l []float32) []float64 {
	m := math.Inf(-1)
	for _, x := range l {
		m = math.Max(m, float64(x))
	}
	var s float64
	for _, x := range l {
		s += math.Exp(float64(x) - m)
	}
	out := make([]float64, len(l))
	for i, x := range l {
		out[i] = float64(x) - m - math.Log(s)
	}
	return out
}

// TestDecoderFloat64: a float64 model decodes through the same programs;
// the cache gives the window's logits.
func TestDecoderFloat64(t *testing.T) {
	cfg := Tiny()
	cfg.VocabSize, cfg.NPositions, cfg.NLayer = 30, 20, 2
	s, err := blocks.NewStore(tensor.Float64, 2)
	require.NoError(t, err)
	m, err := newModel(cfg, s)
	require.NoError(t, err)
	gc := decode.GenerateConfig{Limits: decode.Limits{MaxLen: 25}, KeepLogits: true}
	prompts := [][]int{{3, 1, 4, 1, 5}, {9, 2}}
	cached, err := decode.Generate(newDecoder(t, m, DecoderConfig{}), prompts, gc)
	require.NoError(t, err)
	full, err := decode.Generate(newDecoder(t, m, DecoderConfig{NoCache: true}), prompts, gc)
	require.NoError(t, err)
	assert.Equal(t, full.Tokens, cached.Tokens)
	for b := range prompts {
		for s := range full.Logits[b] {
			assert.InDeltaSlice(t, full.Logits[b][s], cached.Logits[b][s], 1e-6, "row %d step %d", b, s)
		}
	}
}
