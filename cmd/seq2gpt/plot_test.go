package main

import (
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/plot"
)

// labelled is the number of ticks with a label.
func labelled(ticks []plot.Tick) int {
	n := 0
	for _, t := range ticks {
		if t.Label != "" {
			n++
		}
	}
	return n
}

// TestLossCurveKeepsItsHistory: after --resume the loss curve shows the
// whole run (it once showed only the resumed part): each checkpoint
// carries the history up to its step, and the plot has every step and
// every evaluation, a readable number of y-ticks (once three), and room
// right of the last evaluation's marker (once cut off at the edge).
func TestLossCurveKeepsItsHistory(t *testing.T) {
	dir := t.TempDir()
	_, args := tinyRun(t, dir)
	out := filepath.Join(dir, "run")
	stdout, err := run(t, append(args, "--out", out, "--steps", "4")...)
	require.NoError(t, err, stdout)
	stdout, err = run(t, "lm", "train", "--out", out, "--resume", "--steps", "8")
	require.NoError(t, err, stdout)

	h, err := readHistory(filepath.Join(out, "last"), 8)
	require.NoError(t, err)
	assert.Equal(t, 0, h.First)
	assert.Len(t, h.Train, 8, "every step of both parts")
	var steps []int
	for _, e := range h.Evals {
		steps = append(steps, e.Step)
	}
	assert.Equal(t, []int{2, 4, 6, 8}, steps)
	// A checkpoint's history ends at its step.
	early, err := readHistory(filepath.Join(out, "last"), 5)
	require.NoError(t, err)
	assert.Len(t, early.Train, 5)
	assert.Len(t, early.Evals, 2)

	p, err := lossPlot(h)
	require.NoError(t, err)
	assert.Greater(t, p.X.Max, 8.0, "room right of the last marker")
	// The axis' range is set by the data when drawn: emulate with the
	// losses' own range.
	lo, hi := h.Train[0], h.Train[0]
	for _, l := range h.Train {
		lo, hi = min(lo, l), max(hi, l)
	}
	for _, r := range [][2]float64{{lo, hi}, {2.1, 5.6}, {0.51, 0.58}, {3, 300}} {
		n := labelled(p.Y.Tick.Marker.Ticks(r[0], r[1]))
		assert.True(t, n >= 4 && n <= 10, "%d labelled y-ticks over %v", n, r)
	}
	f, err := os.Open(filepath.Join(out, "loss.png"))
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	assert.Equal(t, 768, img.Bounds().Dx())
}
