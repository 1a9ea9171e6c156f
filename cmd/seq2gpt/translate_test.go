package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seq2gpt/seq2gpt/datasets"
)

// enDe writes the first n pairs of the embedded en–de training split with
// at most 4 words a side (real sentences, short so that the programs stay
// few) as a TSV file and as two aligned files prefix.en, prefix.de.
func enDe(t *testing.T, dir string, n int) (tsv, prefix string) {
	t.Helper()
	all, err := datasets.LibreOfficeEnDe("train")
	require.NoError(t, err)
	var pairs []datasets.Pair
	for _, p := range all {
		if len(pairs) < n && len(strings.Fields(p.Source)) <= 4 && len(strings.Fields(p.Target)) <= 4 {
			pairs = append(pairs, p)
		}
	}
	require.Len(t, pairs, n)
	var b, en, de strings.Builder
	for _, p := range pairs {
		fmt.Fprintf(&b, "%s\t%s\n", p.Source, p.Target)
		en.WriteString(p.Source + "\n")
		de.WriteString(p.Target + "\n")
	}
	tsv, prefix = filepath.Join(dir, "pairs.tsv"), filepath.Join(dir, "pairs")
	require.NoError(t, os.WriteFile(tsv, []byte(b.String()), 0o644))
	require.NoError(t, os.WriteFile(prefix+".en", []byte(en.String()), 0o644))
	require.NoError(t, os.WriteFile(prefix+".de", []byte(de.String()), 0o644))
	return tsv, prefix
}

// tinyTranslate are flags of a model and run small enough for the suite.
var tinyTranslate = []string{"--embed", "8", "--hidden", "8", "--merges", "150", "--max-len", "16", "--max-tokens", "256",
	"--eval-sentences", "4", "--checkpoint-every", "0"}

// TestTranslateTrainEvalTranslate drives translate train, resume, eval and
// translate end to end on 200 real pairs.
func TestTranslateTrainEvalTranslate(t *testing.T) {
	dir := t.TempDir()
	tsv, prefix := enDe(t, dir, 200)
	out := filepath.Join(dir, "run")
	common := append([]string{"translate", "train", "--arch", "attention", "--train", tsv, "--out", out, "--eval-every", "3"}, tinyTranslate...)
	stdout, err := run(t, append(common, "--steps", "6")...)
	require.NoError(t, err, stdout)
	for _, want := range []string{
		"train: " + tsv + " (without every 20th pair), 190 pairs",
		"valid: " + tsv + " (every 20th pair, held out), 10 pairs",
		"tokenizer: joint byte-level BPE, 150 merges",
		"model: attention: bidirectional LSTM encoder, additive attention, 1 layer(s) of 8",
		"stopped (steps) at step 6", "best validation bleu ",
	} {
		assert.Contains(t, stdout, want)
	}
	assert.Regexp(t, `kept \d+ training and \d+ validation pairs; left out \d+ and \d+ with a side over 16 tokens`, stdout)
	for _, f := range []string{"run.json", "vocab.json", "merges.txt", "loss.png", "best/model.safetensors", "best/config.json", "best/vocab.json", "last/trainer.json"} {
		assert.FileExists(t, filepath.Join(out, f))
	}

	// The run remembers itself: a second start is refused, a resume takes
	// the run's settings (the data and model flags need not be repeated).
	_, err = run(t, append(common, "--steps", "8")...)
	assert.ErrorContains(t, err, "holds a run")
	_, err = run(t, "translate", "train", "--out", out, "--steps", "8", "--resume", "--hidden", "16")
	assert.ErrorContains(t, err, "--hidden 16 contradicts the run in "+out+", which has --hidden 8")
	stdout, err = run(t, "translate", "train", "--out", out, "--steps", "8", "--resume")
	require.NoError(t, err, stdout)
	assert.Contains(t, stdout, "resumed at step 6")
	assert.Contains(t, stdout, "stopped (steps) at step 8")

	// eval: BLEU and chrF with their signatures, on aligned files.
	hyps := filepath.Join(dir, "hyps.de")
	stdout, err = run(t, "translate", "eval", "--model", out, "--test", prefix, "--src-lang", "en", "--tgt-lang", "de",
		"--beam", "2", "--max-len-b", "4", "--max-len-a", "0", "--output", hyps)
	require.NoError(t, err, stdout)
	assert.Contains(t, stdout, "test: "+prefix+".en + "+prefix+".de, 200 pairs")
	assert.Regexp(t, `BLEU\|nrefs:1\|case:mixed\|eff:no\|tok:13a\|smooth:exp\|version:2\.6\.0 = \d+\.\d`, stdout)
	assert.Regexp(t, `chrF2\|nrefs:1\|case:mixed\|eff:yes\|nc:6\|nw:0\|space:no\|version:2\.6\.0 = \d+\.\d`, stdout)
	b, err := os.ReadFile(hyps)
	require.NoError(t, err)
	assert.Equal(t, 200, strings.Count(string(b), "\n"))

	// translate: from stdin (not a terminal), n-best, attention pictures.
	att := filepath.Join(dir, "att.png")
	stdout, _, err = runIn(t, "Select a language.\n\nClick OK.\n", "translate", "translate", "--model", filepath.Join(out, "last"),
		"--beam", "3", "--nbest", "2", "--max-len-b", "4", "--max-len-a", "0", "--attention", att)
	require.NoError(t, err, stdout)
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	require.Len(t, lines, 5, stdout)
	assert.Regexp(t, `^1 \|\|\| .* \|\|\| -\d+\.\d{4}$`, lines[0])
	assert.Empty(t, lines[2], "an empty line gives an empty line")
	assert.Regexp(t, `^3 \|\|\| `, lines[3])
	for _, p := range []string{"att-1.png", "att-3.png"} {
		png, err := os.ReadFile(filepath.Join(dir, p))
		require.NoError(t, err)
		assert.True(t, bytes.HasPrefix(png, []byte("\x89PNG")), p)
	}
}

func TestTranslateBadInput(t *testing.T) {
	dir := t.TempDir()
	tsv, prefix := enDe(t, dir, 60)
	short := filepath.Join(dir, "short")
	require.NoError(t, os.WriteFile(short+".en", []byte("One.\nTwo.\nThree.\n"), 0o644))
	require.NoError(t, os.WriteFile(short+".de", []byte("Eins.\nZwei.\n"), 0o644))
	blank := filepath.Join(dir, "blank.tsv")
	require.NoError(t, os.WriteFile(blank, []byte("One.\tEins.\n\t\nTwo.\tZwei.\n"), 0o644))
	gptDir := filepath.Join("..", "..", "gpt", "testdata", "hf-gelu")
	train := func(args ...string) []string {
		return append(append([]string{"translate", "train", "--out", filepath.Join(dir, "run-"+fmt.Sprint(len(args)))}, tinyTranslate...), args...)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"line counts", train("--train", short, "--src-lang", "en", "--tgt-lang", "de"),
			fmt.Sprintf("%s.en: has 3 lines but %s.de has 2; expected line-aligned files", short, short)},
		{"empty lines error", train("--train", blank, "--empty-lines", "error"), blank + ":2: empty source"},
		{"empty lines policy", train("--empty-lines", "drop"), `--empty-lines "drop": want skip or error`},
		{"one language", train("--train", prefix, "--src-lang", "en"), `--src-lang "en" and --tgt-lang "": give both`},
		{"no tsv", train("--train", prefix), "--train " + prefix + ": no such file"},
		{"arch", train("--arch", "rnn"), `--arch "rnn": want fixed, attention or transformer`},
		{"steps", train("--steps", "0"), "--steps 0: want an integer ≥ 1"},
		{"max tokens", train("--max-tokens", "20"), "--max-tokens 20: want an integer ≥ 2 × --max-len (32)"},
		{"dropout", train("--dropout", "1.5"), "--dropout 1.5: want a number in [0, 1)"},
		{"score", train("--score", "cosine"), `--score "cosine": want additive, dot or general`},
		{"metric", train("--metric", "bleu", "--eval-sentences", "0"), "--eval-sentences 0: want an integer ≥ 1 with --metric bleu"},
		{"dot bidirectional", train("--train", tsv, "--score", "dot", "--steps", "1"), "the dot score needs encoder states of the decoder's size 8"},
		{"resume nothing", train("--resume"), "holds no run (no run.json and no checkpoint)"},
		{"another model", []string{"translate", "eval", "--model", gptDir}, `holds a model_type "openai-gpt" model, which seq2gpt translate does not run (architectures: fixed, attention, transformer)`},
		{"not a model", []string{"translate", "translate", "--model", dir}, "is not a model directory: it has no config.json"},
		{"beam", []string{"translate", "translate", "--model", dir, "--beam", "0"}, "--beam 0: want 1 (greedy) to 100"},
		{"nbest", []string{"translate", "translate", "--model", dir, "--beam", "2", "--nbest", "3"}, "--nbest 3: want 1 to --beam 2"},
		{"picture name", []string{"translate", "translate", "--model", dir, "--attention", "a.jpg"}, "--attention a.jpg: the picture is a PNG"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runIn(t, "", tc.args...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}

	// Empty lines are skipped and counted by default; a fixed-context
	// model has no attention to draw.
	out := filepath.Join(dir, "fixed")
	stdout, err := run(t, append([]string{"translate", "train", "--arch", "fixed", "--train", blank, "--valid", blank, "--out", out,
		"--steps", "1", "--metric", "loss"}, tinyTranslate...)...)
	require.NoError(t, err, stdout)
	assert.Contains(t, stdout, "train: "+blank+", 2 pairs (1 with an empty side skipped)")
	assert.Contains(t, stdout, "model: fixed: reversed-source LSTM encoder, c = h_m")
	_, _, err = runIn(t, "One.\n", "translate", "translate", "--model", out, "--attention", filepath.Join(dir, "a.png"))
	assert.ErrorContains(t, err, "is a fixed model, which has no attention to draw")
}

// TestTranslateInterruptSavesCheckpoint: Ctrl-C (SIGINT) during translate
// train saves the last checkpoint, exits cleanly, and --resume continues.
func TestTranslateInterruptSavesCheckpoint(t *testing.T) {
	dir := t.TempDir()
	tsv, _ := enDe(t, dir, 100)
	out := filepath.Join(dir, "run")
	args := append([]string{"translate", "train", "--train", tsv, "--out", out, "--steps", "100000", "--eval-every", "0",
		"--metric", "loss"}, tinyTranslate...)
	saved := interruptChild(t, args, "model:")
	assert.FileExists(t, filepath.Join(out, "last", "trainer.json"))
	assert.FileExists(t, filepath.Join(out, "last", "vocab.json"))
	resumed, err := run(t, "translate", "train", "--out", out, "--resume", "--steps", fmt.Sprint(saved+2))
	require.NoError(t, err, resumed)
	assert.Contains(t, resumed, fmt.Sprintf("resumed at step %d", saved))
	assert.Contains(t, resumed, fmt.Sprintf("stopped (steps) at step %d", saved+2))
}
