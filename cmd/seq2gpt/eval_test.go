package main

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seq2gpt/seq2gpt/datasets"
)

// TestEvalScoresEveryToken: lm eval scores every token after the first,
// the tail and a partial last batch included (it once dropped both: 514,304
// of 514,530 tokens at --batch 8), and reports progress as it goes.
func TestEvalScoresEveryToken(t *testing.T) {
	dir := t.TempDir()
	_, args := tinyRun(t, dir)
	out := filepath.Join(dir, "run")
	stdout, err := run(t, append(args, "--out", out, "--steps", "2")...)
	require.NoError(t, err, stdout)
	tok, ok, err := loadTokenizer(filepath.Join(out, "best"))
	require.NoError(t, err)
	require.True(t, ok)
	// A text with a tail shorter than a window (n_positions 16) and a
	// partial last batch of 8.
	var data string
	var n, windows int
	for k := 0; ; k++ {
		data = writeFile(t, dir, "eval.txt", sentences(60+k, " "))
		text, err := datasets.LoadText(data)
		require.NoError(t, err)
		n = len(tok.Encode(text))
		windows = (n - 1 + 15) / 16
		if (n-1)%16 != 0 && windows%8 != 0 {
			break
		}
	}

	stdout, err = run(t, "lm", "eval", "--model", filepath.Join(out, "best"), "--data", data, "--batch", "8")
	require.NoError(t, err)
	assert.Contains(t, stdout, fmt.Sprintf("%s: %d tokens, %d scored (every token after the first)\n", data, n, n-1))
	assert.Contains(t, stdout, fmt.Sprintf("scoring %d windows: %d/%d (100%%)\n", windows, windows, windows))
	tenths := regexp.MustCompile(`scoring \d+ windows: \d+/\d+ \((\d+)%\)`).FindAllStringSubmatch(stdout, -1)
	assert.GreaterOrEqual(t, len(tenths), 5, "a line at each tenth")
	prev := 0
	for _, m := range tenths {
		p, _ := strconv.Atoi(m[1])
		assert.Greater(t, p, prev)
		prev = p
	}
}
