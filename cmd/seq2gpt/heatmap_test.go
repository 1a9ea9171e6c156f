package main

import (
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAlignmentCellsAreSharp: each α is one flat cell. A rasterized heat
// map (one pixel per cell, scaled up bilinearly) smeared every alignment
// into its neighbours: on this identity alignment 22% of the picture's
// pixels were mid-greys (3.7% drawn as rectangles: text, seams and
// antialiased edges).
func TestAlignmentCellsAreSharp(t *testing.T) {
	n := 6
	a := alignment{alpha: make([][]float32, n)}
	for i := range n {
		a.src = append(a.src, "s")
		a.tgt = append(a.tgt, "t")
		a.alpha[i] = make([]float32, n)
		a.alpha[i][i] = 1
	}
	path := filepath.Join(t.TempDir(), "a.png")
	require.NoError(t, drawAttention(path, "identity", a))
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	b := img.Bounds()
	mid := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, _, _, _ := img.At(x, y).RGBA()
			if v := r >> 8; v > 40 && v < 215 {
				mid++
			}
		}
	}
	frac := float64(mid) / float64(b.Dx()*b.Dy())
	t.Logf("%d×%d px, %.2f%% mid-grey", b.Dx(), b.Dy(), 100*frac)
	require.Less(t, frac, 0.05, "the cells are blurred into each other")
}
