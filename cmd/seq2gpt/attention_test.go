package main

import (
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seq2gpt/seq2gpt/gpt"
)

// TestAttentionPicture: lm attention draws every layer × head of a trained
// model's attention for a prompt; the weights it draws are the model's,
// sum to 1 over each query row and are 0 above the diagonal (a position
// attends to itself and those before it only).
func TestAttentionPicture(t *testing.T) {
	dir := t.TempDir()
	_, args := tinyRun(t, dir)
	out := filepath.Join(dir, "run")
	stdout, err := run(t, append(args, "--out", out, "--steps", "2", "--config", writeFile(t, dir, "cfg2.json",
		`{"n_positions": 16, "n_embd": 16, "n_head": 2, "n_layer": 2}`))...)
	require.NoError(t, err, stdout)
	best := filepath.Join(out, "best")
	pic := filepath.Join(dir, "att.png")
	stdout, err = run(t, "lm", "attention", "--model", best, "--prompt", "The people ask", "--out", pic)
	require.NoError(t, err)
	assert.Regexp(t, `att.png: 2 layers × 2 heads over \d+ tokens\n$`, stdout)
	f, err := os.Open(pic)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	t.Logf("%v", img.Bounds().Size())
	assert.Greater(t, img.Bounds().Dx(), 400)
	assert.Equal(t, img.Bounds().Dx(), img.Bounds().Dy(), "2 × 2 square panels")

	m, err := gpt.Load(best)
	require.NoError(t, err)
	tok, _, err := loadTokenizer(best)
	require.NoError(t, err)
	ids := tok.Encode("The people ask")
	alpha, err := attentionWeights(m, ids)
	require.NoError(t, err)
	labels, err := tokenLabels(tok, ids)
	require.NoError(t, err)
	assert.Equal(t, "·", labels[1][:len("·")], "a leading space shown")
	_, grids := attentionPlots(alpha, labels, []int{0, 1}, []int{0, 1})
	require.Len(t, grids, 2)
	for _, row := range grids {
		require.Len(t, row, 2)
		for _, g := range row {
			c, r := g.Dims()
			require.Equal(t, len(ids), c)
			for i := 0; i < r; i++ {
				sum := 0.0
				for j := 0; j < c; j++ {
					z := g.Z(j, i)
					sum += z
					if j > i {
						assert.Zero(t, z, "query %d cannot see key %d", i, j)
					} else {
						assert.Positive(t, z)
					}
				}
				assert.InDelta(t, 1, sum, 1e-5, "row %d", i)
			}
		}
	}

	_, err = run(t, "lm", "attention", "--model", best, "--prompt", "The", "--layers", "2", "--out", pic)
	assert.EqualError(t, err, "--layers 2: want an integer in [0, 2)")
	_, err = run(t, "lm", "attention", "--model", best, "--prompt", sentences(3, " "), "--out", pic)
	assert.ErrorContains(t, err, "more than the model's n_positions 16")
	_, err = run(t, "lm", "attention", "--model", best, "--prompt", "The", "--out", filepath.Join(dir, "att.gif"))
	assert.EqualError(t, err, "--out *.gif: want a .png, .svg or .pdf file")
}
