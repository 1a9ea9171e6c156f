package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seq2gpt/seq2gpt/datasets"
)

func writeFile(t *testing.T, dir, name, text string) string {
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	return path
}

// sentences is n sentences of ordinary words, joined by sep.
func sentences(n int, sep string) string {
	words := strings.Fields("the people of the united states ask the congress for a budget and we shall meet the challenge of peace")
	var parts []string
	for i := 0; i < n; i++ {
		var s []string
		for j := 0; j < 12; j++ {
			s = append(s, words[(i*7+j*3)%len(words)])
		}
		parts = append(parts, strings.Join(s, " ")+".")
	}
	return strings.Join(parts, sep)
}

// TestValidationSplit: the validation text is a fraction of the text by
// size, cut between words, or whole documents when there are many, or
// --valid's file. The split by lines it replaces refused a one-line file
// ("2 lines are too few"), gave a 12-line file 0 validation tokens and
// counted a 5-line file as 6 lines.
func TestValidationSplit(t *testing.T) {
	dir := t.TempDir()
	oneLine := writeFile(t, dir, "one.txt", sentences(2000, " "))
	twelve := writeFile(t, dir, "twelve.txt", sentences(12, "\n")+"\n")
	five := writeFile(t, dir, "five.txt", sentences(5, "\n")+"\n")
	docs := writeFile(t, dir, "docs.txt", sentences(40, "\n\n")+"\n")
	for _, c := range []struct {
		path     string
		fraction float64
		split    string
	}{
		{oneLine, 0.1, "validation: the last 10% of the text"},
		{twelve, 0.1, "validation: the last 10% of the text"},
		{five, 0.1, "validation: the last 10% of the text"},
		{five, 0.4, "validation: the last 40% of the text"},
		{docs, 0.1, "validation: 4 of 40 documents, evenly spread"},
		{docs, 0.25, "validation: 10 of 40 documents, evenly spread"},
	} {
		name := fmt.Sprintf("%s %g", filepath.Base(c.path), c.fraction)
		text, err := datasets.LoadText(c.path)
		require.NoError(t, err)
		cp, err := loadCorpus(c.path, "", c.fraction)
		require.NoError(t, err, name)
		assert.Contains(t, cp.split, c.split, name)
		assert.NotEmpty(t, cp.valid, name)
		assert.Equal(t, len(text), len(cp.train)+len(cp.valid), "%s: nothing lost", name)
		got := float64(len(cp.valid)) / float64(len(text))
		assert.InDelta(t, c.fraction, got, 0.05, "%s: the fraction by size", name)
		if strings.Contains(c.split, "of the text") {
			assert.Equal(t, text, cp.train+cp.valid, name)
			assert.NotEqual(t, " ", cp.train[len(cp.train)-1:], "%s: cut before the space, between words", name)
			assert.Equal(t, " ", cp.valid[:1], name)
		}
	}
	// Documents join back into the text exactly.
	text, err := datasets.LoadText(docs)
	require.NoError(t, err)
	assert.Equal(t, text, strings.Join(documents(text), ""))
	assert.Len(t, documents("\n\na b\n\n\nc\nd\n \n"), 2)

	cp, err := loadCorpus(five, twelve, 0.1)
	require.NoError(t, err)
	assert.Equal(t, "validation: "+twelve, cp.split)
	assert.Equal(t, sentences(5, "\n")+"\n", cp.train)
	_, err = loadCorpus("", twelve, 0.1)
	assert.ErrorContains(t, err, "--valid needs --data")
	_, err = loadCorpus(writeFile(t, dir, "word.txt", strings.Repeat("x", 500)), "", 0.1)
	assert.ErrorContains(t, err, "no break between words in its 501 bytes")

	// The embedded addresses: every tenth, as before.
	addrs, err := datasets.SOTU()
	require.NoError(t, err)
	var want strings.Builder
	for i, d := range addrs {
		if i%10 == 9 {
			want.WriteString(d.Text + "\n")
		}
	}
	cp, err = loadCorpus("", "", 0.1)
	require.NoError(t, err)
	assert.True(t, want.String() == cp.valid, "the embedded split is unchanged")
}

// TestTrainOnOneLineAndFewLines: lm train runs on a one-line file and on a
// 12-line file, each with validation tokens; a validation part shorter than
// one window says so and what to do.
func TestTrainOnOneLineAndFewLines(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "cfg.json", `{"n_positions": 8, "n_embd": 16, "n_head": 2, "n_layer": 1}`)
	common := []string{"lm", "train", "--config", cfg, "--merges", "20", "--batch", "2", "--steps", "2",
		"--eval-every", "2", "--samples", "0"}
	for i, text := range []string{sentences(400, " "), sentences(12, "\n") + "\n"} {
		data := writeFile(t, dir, fmt.Sprintf("data%d.txt", i), text)
		stdout, err := run(t, append(common, "--data", data, "--out", filepath.Join(dir, fmt.Sprint("run", i)))...)
		require.NoError(t, err, stdout)
		assert.Regexp(t, `— \d+ train and [1-9]\d* validation tokens \(validation: the last 10% of the text`, stdout)
		assert.Contains(t, stdout, "stopped (steps) at step 2")
	}
	data := writeFile(t, dir, "five.txt", sentences(5, "\n")+"\n")
	_, err := run(t, append(common, "--data", data, "--out", filepath.Join(dir, "run5"), "--valid-fraction", "0.01")...)
	assert.ErrorContains(t, err, "validation text: ")
	assert.ErrorContains(t, err, "tokens are fewer than one window of n_positions 8 + 1: give more text, a larger --valid-fraction or --valid FILE")
	stdout, err := run(t, append(common, "--data", data, "--out", filepath.Join(dir, "run5"))...)
	require.NoError(t, err, stdout)
	assert.NotContains(t, stdout, "6 lines")
}
