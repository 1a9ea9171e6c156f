package main

import (
	"encoding/json"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/plot/vg"

	"github.com/seq2gpt/seq2gpt/train"
	"github.com/seq2gpt/seq2gpt/transformer"
)

// tinyTransformer are flags of a Transformer and a run small enough for the
// suite.
var tinyTransformer = []string{"--arch", "transformer", "--layers", "1", "--d-model", "16", "--heads", "2", "--d-ff", "32",
	"--merges", "150", "--max-len", "16", "--max-tokens", "256", "--eval-sentences", "4", "--checkpoint-every", "0"}

// pngSize is the width and height in pixels of a PNG file.
func pngSize(t *testing.T, path string) (w, h int) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	return img.Bounds().Dx(), img.Bounds().Dy()
}

// pixels is a length as gonum's PNG canvases draw it (96 dpi).
func pixels(l vg.Length) int { return int(float64(l/vg.Inch)*96 + 0.5) }

// TestTranslateTransformer drives translate train, resume, eval and
// translate with --arch transformer end to end on 100 real pairs: the
// preset's settings the flags do not give are recorded, the Noam rate
// peaks at the paper's (d_model·warmup)^−½, and the attention pictures
// are layers × heads of the map asked for, a cell per token.
func TestTranslateTransformer(t *testing.T) {
	dir := t.TempDir()
	tsv, _ := enDe(t, dir, 100)
	out := filepath.Join(dir, "run")
	stdout, err := run(t, append([]string{"translate", "train", "--train", tsv, "--out", out, "--steps", "4", "--eval-every", "2",
		"--schedule", "noam", "--warmup", "2", "--label-smoothing", "0.2"}, tinyTransformer...)...)
	require.NoError(t, err, stdout)
	for _, want := range []string{
		"model: transformer: 1+1 layers, d_model 16, 2 heads, d_ff 32, relu, post-LN, sinusoidal positions, shared embeddings, tied output, dropout 0.1, vocabularies ",
		"training: Adam (β₁ 0.9, β₂ 0.98, ε 1e-09), Noam schedule: linear warm-up over 2 steps to 0.17677",
		"stopped (steps) at step 4", "best validation bleu ",
	} {
		assert.Contains(t, stdout, want)
	}
	b, err := os.ReadFile(filepath.Join(out, RunFile))
	require.NoError(t, err)
	var rec runRecord
	require.NoError(t, json.Unmarshal(b, &rec))
	for flag, want := range map[string]string{"preset": "small", "layers": "1", "encoder-layers": "1", "decoder-layers": "1", "d-model": "16",
		"heads": "2", "d-ff": "32", "max-positions": "256", "activation": "relu", "positions": "sinusoidal", "norm-first": "false",
		"share-embeddings": "true", "tie-embeddings": "true", "dropout": "0.1", "schedule": "noam"} {
		assert.Equal(t, want, rec.Flags[flag], "run.json --%s", flag)
	}
	assert.True(t, strings.HasPrefix(rec.Flags["lr"], "0.17677"), "the paper's peak (16·2)^−½, recorded: %s", rec.Flags["lr"])
	cfg, err := transformer.ReadConfig(filepath.Join(out, "best"))
	require.NoError(t, err)
	assert.Equal(t, 0.2, cfg.LabelSmoothing)
	assert.Equal(t, []int{1, 1, 16, 2, 32}, []int{cfg.NumEncoderLayers, cfg.NumDecoderLayers, cfg.DModel, cfg.NHead, cfg.DimFeedforward})

	// A resume takes the resolved settings; another architecture or size
	// is refused by name.
	stdout, err = run(t, "translate", "train", "--out", out, "--steps", "6", "--resume")
	require.NoError(t, err, stdout)
	assert.Contains(t, stdout, "resumed at step 4")
	assert.Contains(t, stdout, "stopped (steps) at step 6")
	for flag, v := range map[string][2]string{"arch": {"attention", "transformer"}, "d-model": {"32", "16"}} {
		_, err = run(t, "translate", "train", "--out", out, "--steps", "8", "--resume", "--"+flag, v[0])
		assert.ErrorContains(t, err, "--"+flag+" "+v[0]+" contradicts the run in "+out+", which has --"+flag+" "+v[1])
	}
	_, err = run(t, "lm", "eval", "--model", filepath.Join(out, "best"), "--data", tsv)
	assert.ErrorContains(t, err, `model_type "transformer" is not "openai-gpt"`)

	stdout, err = run(t, "translate", "eval", "--model", out, "--test", tsv, "--beam", "2", "--max-len-b", "4", "--max-len-a", "0")
	require.NoError(t, err, stdout)
	assert.Contains(t, stdout, "model: transformer: 1+1 layers")
	assert.Regexp(t, `100 sentences, beam 2, length penalty 1\nBLEU\|nrefs:1\|case:mixed\|eff:no\|tok:13a\|smooth:exp\|version:2\.6\.0 = \d+\.\d`, stdout)

	// translate: n-best from stdin, and a picture of the encoder's
	// self-attention, 1 layer × 2 heads of source × source.
	last := filepath.Join(out, "last")
	tok, err := loadTokenizers(last)
	require.NoError(t, err)
	S := len(tok.src.Encode("Select a language.")) + 1 // and </s>
	att := filepath.Join(dir, "att.png")
	stdout, _, err = runIn(t, "Select a language.\n\nClick OK.\n", "translate", "translate", "--model", last,
		"--beam", "2", "--nbest", "2", "--max-len-b", "4", "--max-len-a", "0", "--attention", att, "--attention-map", "encoder")
	require.NoError(t, err, stdout)
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	require.Len(t, lines, 5, stdout)
	assert.Regexp(t, `^1 \|\|\| .* \|\|\| -\d+\.\d{4}$`, lines[0])
	assert.Empty(t, lines[2])
	cell, panelW, panelH := vg.Points(22), vg.Inch*1.6, vg.Inch*1.8
	w, h := pngSize(t, filepath.Join(dir, "att-1.png"))
	assert.Equal(t, pixels(2*(vg.Length(S)*cell+panelW)), w, "2 heads of %d source tokens", S)
	assert.Equal(t, pixels(vg.Length(S)*cell+panelH+vg.Points(28)), h, "1 layer of %d source tokens, under a title", S)
	assert.FileExists(t, filepath.Join(dir, "att-3.png"))

	// The cross-attention of head 1: the source's tokens across, at most
	// 4 translated tokens and an end token down.
	stdout, _, err = runIn(t, "Select a language.\n", "translate", "translate", "--model", last, "--beam", "1",
		"--max-len-b", "4", "--max-len-a", "0", "--attention", att, "--heads", "1")
	require.NoError(t, err, stdout)
	w, h = pngSize(t, att)
	assert.Equal(t, pixels(vg.Length(S)*cell+panelW), w)
	var heights []int
	for T := 1; T <= 5; T++ {
		heights = append(heights, pixels(vg.Length(T)*cell+panelH+vg.Points(28)))
	}
	assert.Contains(t, heights, h)
	T := slices.Index(heights, h) + 1

	// The decoder's self-attention of the same translation: T × T.
	stdout, _, err = runIn(t, "Select a language.\n", "translate", "translate", "--model", last, "--beam", "1",
		"--max-len-b", "4", "--max-len-a", "0", "--attention", att, "--attention-map", "decoder")
	require.NoError(t, err, stdout)
	w, h = pngSize(t, att)
	assert.Equal(t, pixels(2*(vg.Length(T)*cell+panelW)), w, "2 heads of %d tokens", T)
	assert.Equal(t, pixels(vg.Length(T)*cell+panelH+vg.Points(28)), h)

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--attention", att, "--layers", "1"}, "--layers 1: want an integer in [0, 1)"},
		{[]string{"--attention", att, "--heads", "0,2"}, "--heads 2: want an integer in [0, 2)"},
		{[]string{"--attention", att, "--attention-map", "self"}, `--attention-map "self": want cross, encoder or decoder`},
		{[]string{"--heads", "0"}, "choose what --attention draws: give --attention PATH.png"},
	} {
		_, _, err := runIn(t, "Click OK.\n", append([]string{"translate", "translate", "--model", last}, tc.args...)...)
		assert.ErrorContains(t, err, tc.want, tc.args)
	}
}

// TestTranslateTransformerBadFlags: a transformer flag out of its range,
// or sizes that do not fit together, are refused naming flag, value and
// range before any training.
func TestTranslateTransformerBadFlags(t *testing.T) {
	dir := t.TempDir()
	tsv, _ := enDe(t, dir, 40)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"preset", []string{"--preset", "huge"}, `--preset "huge": want tiny, small, base or big`},
		{"d-model", []string{"--d-model", "0"}, "--d-model 0: want an integer ≥ 1"},
		{"heads divide", []string{"--d-model", "16", "--heads", "3"}, "--heads 3: want a divisor of --d-model 16"},
		{"heads divide the preset's", []string{"--heads", "3"}, "--heads 3: want a divisor of --d-model 128"},
		{"activation", []string{"--activation", "tanh"}, `--activation "tanh": want relu or gelu`},
		{"positions", []string{"--positions", "rope"}, `--positions "rope": want sinusoidal or learned`},
		{"max positions", []string{"--max-positions", "32"}, "--max-len 64: want an integer ≤ --max-positions 32"},
		{"schedule", []string{"--schedule", "cyclic"}, `--schedule "cyclic": want warmup or noam`},
		{"noam warm-up", []string{"--schedule", "noam"}, "--warmup 0: want an integer ≥ 1 with --schedule noam"},
		{"noam min-lr", []string{"--schedule", "noam", "--warmup", "10", "--min-lr", "1e-5"}, "--min-lr 1e-05: want none with --schedule noam"},
		{"shared, two tokenizers", []string{"--bpe", "separate", "--share-embeddings", "--merges", "20"},
			"--share-embeddings: the source and target have a tokenizer each (--bpe separate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"translate", "train", "--arch", "transformer", "--train", tsv, "--out", filepath.Join(dir, tc.name)}, tc.args...)
			_, err := run(t, args...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.NoFileExists(t, filepath.Join(dir, tc.name, RunFile), "refused before the run is saved")
		})
	}
}

// TestTranslateSchedules: --schedule noam peaks at --lr at step --warmup
// and is the paper's d_model^−½ · min(step^−½, step · warmup^−3/2) when
// --lr is its default (d_model · warmup)^−½; --schedule warmup is a linear
// warm-up, then constant or a cosine decay to --min-lr.
func TestTranslateSchedules(t *testing.T) {
	paper, err := train.NewNoam(512, 4000, 1)
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		f    mtTrainFlags
		want map[int]float64 // step → rate
		line string
	}{
		{"noam", mtTrainFlags{schedule: "noam", warmup: 4, lr: 0.01}, map[int]float64{1: 0.0025, 2: 0.005, 4: 0.01, 16: 0.005},
			"Noam schedule: linear warm-up over 4 steps to 0.01, then ∝ step^−½"},
		{"noam, the paper's rate", mtTrainFlags{schedule: "noam", warmup: 4000, lr: 1 / math.Sqrt(512*4000)},
			map[int]float64{1: paper.LR(1), 1000: paper.LR(1000), 4000: paper.LR(4000), 100000: paper.LR(100000)}, "to 0.000698"},
		{"constant", mtTrainFlags{schedule: "warmup", lr: 1e-3, minLR: -1, steps: 100}, map[int]float64{1: 1e-3, 100: 1e-3, 1000: 1e-3},
			"learning rate 0.001"},
		{"warm-up, cosine", mtTrainFlags{schedule: "warmup", lr: 1e-3, minLR: 0, warmup: 10, steps: 110}, map[int]float64{5: 5e-4, 10: 1e-3, 60: 5e-4, 110: 0},
			"linear warm-up over 10 steps to 0.001, then a cosine decay to 0 at step 110"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, line, err := tc.f.lrSchedule()
			require.NoError(t, err)
			assert.Contains(t, line, tc.line)
			for step, want := range tc.want {
				assert.InDelta(t, want, s.LR(step), 1e-12*max(want, 1e-3), "step %d", step)
			}
		})
	}
}
