package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runIn executes the command line in-process with stdin and returns its
// standard output and standard error.
func runIn(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	root := newRoot()
	var out, errOut bytes.Buffer
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), errOut.String(), err
}

func writeLines(t *testing.T, path string, lines []string) string {
	t.Helper()
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
	return path
}

// TestBLEUMatchesSacreBLEU runs seq2gpt bleu with each set of options that
// metrics/testdata/gen_sacrebleu.py ran the sacrebleu 2.6.0 command with,
// on the same files, and compares the standard output byte for byte.
func TestBLEUMatchesSacreBLEU(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "metrics", "testdata", "sacrebleu.json"))
	require.NoError(t, err)
	var fix struct {
		Corpus struct {
			Hyps []string   `json:"hyps"`
			Refs [][]string `json:"refs"`
		} `json:"corpus"`
		CLI []struct {
			NLines    int      `json:"nlines"`
			NRefs     int      `json:"nrefs"`
			Tabbed    bool     `json:"tabbed"`
			Input     bool     `json:"input"`
			SacreBLEU []string `json:"sacrebleu"`
			Seq2GPT   []string `json:"seq2gpt"`
			Stdout    string   `json:"stdout"`
		} `json:"cli"`
	}
	require.NoError(t, json.Unmarshal(b, &fix))
	require.Len(t, fix.CLI, 22)
	dir := t.TempDir()
	for _, tc := range fix.CLI {
		t.Run(strings.Join(tc.SacreBLEU, " "), func(t *testing.T) {
			hyps := fix.Corpus.Hyps[:tc.NLines]
			hypFile := writeLines(t, filepath.Join(dir, "hyp.txt"), hyps)
			var refFiles []string
			if tc.Tabbed {
				rows := make([]string, tc.NLines)
				for i := range rows {
					cols := make([]string, tc.NRefs)
					for k := range cols {
						cols[k] = fix.Corpus.Refs[k][i]
					}
					rows[i] = strings.Join(cols, "\t")
				}
				refFiles = append(refFiles, writeLines(t, filepath.Join(dir, "refs.tsv"), rows))
			} else {
				for k := 0; k < tc.NRefs; k++ {
					refFiles = append(refFiles, writeLines(t, filepath.Join(dir, fmt.Sprintf("ref%d.txt", k+1)), fix.Corpus.Refs[k][:tc.NLines]))
				}
			}
			args := append([]string{"bleu"}, refFiles...)
			args = append(args, tc.Seq2GPT...)
			stdin := strings.Join(hyps, "\n") + "\n"
			if tc.Input {
				args = append(args, "--input", hypFile)
				stdin = ""
			}
			stdout, _, err := runIn(t, stdin, args...)
			require.NoError(t, err)
			assert.Equal(t, tc.Stdout, stdout)
		})
	}
}

func TestBLEUCommandInput(t *testing.T) {
	dir := t.TempDir()
	ref := writeLines(t, filepath.Join(dir, "ref.txt"), []string{"The dog bit the man.", "It was not unexpected."})

	// Windows line endings and a lone \r on stdin are line ends (Python's
	// universal newlines); trailing whitespace is stripped.
	a, _, err := runIn(t, "The dog bit the man.\r\nIt was not unexpected.  \r\n", "bleu", ref, "-b")
	require.NoError(t, err)
	assert.Equal(t, "100.0\n", a)
	c, _, err := runIn(t, "The dog bit the man.\rIt was not unexpected.", "bleu", ref, "-b", "-w", "2")
	require.NoError(t, err)
	assert.Equal(t, "100.00\n", c)

	// A gzip-compressed reference.
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	_, _ = w.Write([]byte("The dog bit the man.\nIt was not unexpected.\n"))
	require.NoError(t, w.Close())
	gzRef := filepath.Join(dir, "ref.txt.gz")
	require.NoError(t, os.WriteFile(gzRef, gz.Bytes(), 0o644))
	d, _, err := runIn(t, "The dog bit the man.\nIt was not unexpected.\n", "bleu", gzRef, "-m", "bleu,chrf", "-b")
	require.NoError(t, err)
	assert.Equal(t, "100.0\n100.0\n", d)

	// Many hypotheses ending in " ." draw sacreBLEU's warning, unless --force.
	many := strings.Repeat("a b c d .\n", 120)
	refs := writeLines(t, filepath.Join(dir, "many.txt"), strings.Split(strings.TrimSuffix(strings.Repeat("a b c d.\n", 120), "\n"), "\n"))
	_, stderr, err := runIn(t, many, "bleu", refs)
	require.NoError(t, err)
	assert.Contains(t, stderr, "120 lines end in a tokenized period")
	_, stderr, err = runIn(t, many, "bleu", refs, "--force")
	require.NoError(t, err)
	assert.Empty(t, stderr)
}

func TestBLEUCommandErrors(t *testing.T) {
	dir := t.TempDir()
	ref := writeLines(t, filepath.Join(dir, "ref.txt"), []string{"a b c", "d e f", "g h i"})
	ref2 := writeLines(t, filepath.Join(dir, "ref2.txt"), []string{"a b c", "d e f"})
	hyp := writeLines(t, filepath.Join(dir, "hyp.txt"), []string{"a b c", "d e f"})
	bad := filepath.Join(dir, "bad.txt")
	require.NoError(t, os.WriteFile(bad, []byte("a b c\nd \xff e\ng\n"), 0o644))
	tsv := writeLines(t, filepath.Join(dir, "refs.tsv"), []string{"a\tb", "c"})
	three := "x\ny\nz\n"
	for _, tc := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{three, []string{"bleu"}, "give at least one reference file"},
		{"a\nb\n", []string{"bleu", ref}, "line counts differ: hypotheses (stdin): 2 lines; " + ref + ": 3 lines"},
		{"", []string{"bleu", ref, ref2, "--input", hyp}, "line counts differ: hypotheses (" + hyp + "): 2 lines; " + ref + ": 3 lines; " + ref2 + ": 2 lines"},
		{three, []string{"bleu", filepath.Join(dir, "missing.txt")}, "reference: open " + filepath.Join(dir, "missing.txt") + ": no such file or directory"},
		{"", []string{"bleu", ref, "--input", filepath.Join(dir, "nohyp.txt")}, "open " + filepath.Join(dir, "nohyp.txt") + ": no such file or directory"},
		{three, []string{"bleu", ref, "--tokenize", "ja-mecab"}, `--tokenize: tokenizer "ja-mecab" is not supported (it needs MeCab or SentencePiece models); supported: none, zh, 13a, intl, char`},
		{three, []string{"bleu", ref, "--tokenize", "moses"}, `--tokenize: unknown tokenizer "moses"; supported: none, zh, 13a, intl, char`},
		{three, []string{"bleu", ref, "--smooth-method", "laplace"}, `--smooth-method "laplace": allowed: none, floor, add-k, exp`},
		{three, []string{"bleu", ref, "--smooth-value", "0.5"}, "--smooth-value applies to floor and add-k smoothing, not --smooth-method exp"},
		{three, []string{"bleu", ref, "-s", "floor", "--smooth-value", "-1"}, "--smooth-value: BLEU: floor smoothing value -1 must be a finite number ≥ 0"},
		{three, []string{"bleu", ref, "--metrics", "bleu,ter"}, "--metrics ter: TER is not supported; allowed: bleu, chrf"},
		{three, []string{"bleu", ref, "--metrics", "rouge"}, `--metrics "rouge": allowed: bleu, chrf`},
		{three, []string{"bleu", ref, "--sentence-level", "-m", "bleu,chrf"}, "--sentence-level scores one metric; --metrics has bleu, chrf"},
		{three, []string{"bleu", ref, "--width", "-1"}, "--width -1: must be in [0, 20]"},
		{three, []string{"bleu", ref, "--format", "latex"}, `--format "latex": allowed: text, json`},
		{three, []string{"bleu", ref, "--chrf-char-order", "0", "-m", "chrf"}, "--chrf-char-order 0: must be at least 1"},
		{three, []string{"bleu", ref, "--num-refs", "2", ref2}, "--num-refs 2 reads tab-separated references from one file; 2 reference files were given"},
		{"a\nb\n", []string{"bleu", tsv, "--num-refs", "2"}, tsv + " line 2: 1 tab-separated references, --num-refs wants 2"},
		{"x\ny\tz\nw\n", []string{"bleu", ref}, "stdin line 2 has a tab"},
		{"", []string{"bleu", ref, "--input", bad}, bad + " line 2 is not valid UTF-8"},
		{"", []string{"bleu", bad}, bad + " line 2 is not valid UTF-8"},
		{"", []string{"bleu", writeLines(t, filepath.Join(dir, "empty.txt"), nil)}, "nothing to score: the hypotheses (stdin) and the references are empty"},
	} {
		_, _, err := runIn(t, tc.stdin, tc.args...)
		require.Error(t, err, "%v", tc.args)
		assert.Contains(t, err.Error(), tc.want, "%v", tc.args)
	}
}
