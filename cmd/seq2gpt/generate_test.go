package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writes records each Write, to show output that streams.
type writes struct{ parts []string }

func (w *writes) Write(p []byte) (int, error) {
	w.parts = append(w.parts, string(p))
	return len(p), nil
}

func (w *writes) String() string { return strings.Join(w.parts, "") }

// runIO executes the command line in-process with stdin and a stdout of
// the caller's.
func runIO(t *testing.T, stdin string, out io.Writer, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var errb bytes.Buffer
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err := root.Execute()
	return errb.String(), err
}

// TestGenerateStreams: lm generate writes each token as it comes (it once
// wrote nothing until the end), and what it writes is what it wrote
// before: the greedy ids torch gives, the prompt and its continuation.
func TestGenerateStreams(t *testing.T) {
	hf := filepath.Join("..", "..", "gpt", "testdata", "hf-gelu")
	b, err := os.ReadFile(filepath.Join(hf, "reference.json"))
	require.NoError(t, err)
	var ref struct {
		Prompts [][]int `json:"prompts"`
		Greedy  [][]int `json:"greedy"`
	}
	require.NoError(t, json.Unmarshal(b, &ref))
	var w writes
	_, err = runIO(t, "", &w, "lm", "generate", "--model", hf, "--ids", joinIDs(ref.Prompts[0]), "--temperature", "0", "--max-new-tokens", "12")
	require.NoError(t, err)
	assert.Equal(t, joinIDs(ref.Greedy[0])+"\n", w.String())
	assert.Len(t, w.parts, 12+1, "one write a token, then the newline")

	dir := t.TempDir()
	_, args := tinyRun(t, dir)
	out := filepath.Join(dir, "run")
	stdout, err := run(t, append(args, "--out", out, "--steps", "2")...)
	require.NoError(t, err, stdout)
	best := filepath.Join(out, "best")
	w = writes{}
	_, err = runIO(t, "", &w, "lm", "generate", "--model", best, "--prompt", "The people", "--max-new-tokens", "8", "--seed", "3")
	require.NoError(t, err)
	assert.Len(t, w.parts, 1+8+1, "the prompt, a write a token, the newline")
	assert.True(t, strings.HasPrefix(w.String(), "The people"))
	// The same text as the ids decoded whole.
	ids, err := run(t, "lm", "generate", "--model", best, "--prompt", "The people", "--max-new-tokens", "8", "--seed", "3", "--print-ids")
	require.NoError(t, err)
	lines := strings.Split(ids, "\n")
	tok, _, err := loadTokenizer(best)
	require.NoError(t, err)
	gen, err := parseIDs(lines[0])
	require.NoError(t, err)
	text, err := tok.Decode(append(tok.Encode("The people"), gen...))
	require.NoError(t, err)
	assert.Equal(t, text+"\n", w.String())
	assert.Equal(t, text, lines[1], "--print-ids streams the ids, then the text")

	// Several samples: each when all are done.
	stdout, err = run(t, "lm", "generate", "--model", best, "--prompt", "The people", "--max-new-tokens", "4", "--num-samples", "2")
	require.NoError(t, err)
	assert.Regexp(t, `^--- sample 1\nThe people.*\n--- sample 2\nThe people.*\n$`, stdout)
}

// TestGeneratePromptsFromAPipe: without --prompt, lm generate continues
// each line of standard input; ":name value" lines set sampling flags for
// the prompts after them, refused values name the setting, its value, the
// allowed range and the line.
func TestGeneratePromptsFromAPipe(t *testing.T) {
	dir := t.TempDir()
	_, args := tinyRun(t, dir)
	out := filepath.Join(dir, "run")
	stdout, err := run(t, append(args, "--out", out, "--steps", "2")...)
	require.NoError(t, err, stdout)
	best := filepath.Join(out, "best")
	one := func(extra ...string) string {
		s, err := run(t, append([]string{"lm", "generate", "--model", best, "--prompt", "The people", "--seed", "5"}, extra...)...)
		require.NoError(t, err)
		return s
	}
	want := one("--max-new-tokens", "6") + one("--max-new-tokens", "6") + one("--temperature", "0", "--max-new-tokens", "3")
	var w writes
	stderr, err := runIO(t, "The people\nThe people\n\n:temperature 0\n:max-new-tokens 3\nThe people\n", &w,
		"lm", "generate", "--model", best, "--seed", "5", "--max-new-tokens", "6")
	require.NoError(t, err, stderr)
	assert.Equal(t, want, w.String())
	assert.NotContains(t, stderr, "> ", "no prompt off a terminal")

	_, err = runIO(t, "The people\n:temperature NaN\n", &w, "lm", "generate", "--model", best)
	assert.EqualError(t, err, "standard input, line 2: :temperature NaN: want a finite number ≥ 0")
	_, err = runIO(t, ":top-p 2\n", &w, "lm", "generate", "--model", best)
	assert.EqualError(t, err, "standard input, line 1: :top-p 2: want a number in [0, 1]")
	_, err = runIO(t, ":stop-id 999999\n", &w, "lm", "generate", "--model", best)
	assert.ErrorContains(t, err, "standard input, line 1: :stop-id 999999: want an integer in [0, ")
	_, err = runIO(t, ":warp 9\n", &w, "lm", "generate", "--model", best)
	assert.EqualError(t, err, `standard input, line 1: ":warp 9": not a setting (:help lists them)`)
	hf := filepath.Join("..", "..", "gpt", "testdata", "hf-gelu")
	_, err = runIO(t, "hi\n", &w, "lm", "generate", "--model", hf)
	assert.ErrorContains(t, err, "has no tokenizer files: give the prompt as --ids")
}
