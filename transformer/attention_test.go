package transformer

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/decode"
)

// TestAttentionMaps: every attention of a sentence pair, by layer and
// head (3 encoder and 2 decoder layers): rows are distributions, the
// decoder's self-attention sees no later position, and the last layer's
// cross-attention averaged over the heads is the α the decoder reported
// while it produced the same tokens.
func TestAttentionMaps(t *testing.T) {
	m := randomModel(t, tensor.Float32, func(c *Config) { c.NumEncoderLayers = 3 })
	src := []int{5, 9, 14, 3}
	out, err := decode.Greedy(newDecoder(t, m, DecoderConfig{}), [][]int{src}, decode.Limits{MaxLen: 6})
	require.NoError(t, err)
	a, err := m.Attention(src, out.Tokens[0])
	require.NoError(t, err)
	S, T, H := len(src)+1, len(out.Tokens[0]), m.Config.NHead
	require.Len(t, a.EncoderSelf, 3)
	require.Len(t, a.DecoderSelf, 2)
	require.Len(t, a.Cross, 2)
	sums := func(rows [][]float32, cols int) {
		for _, r := range rows {
			require.Len(t, r, cols)
			var s float64
			for _, x := range r {
				s += float64(x)
			}
			assert.InDelta(t, 1, s, 1e-5)
		}
	}
	for l := range a.EncoderSelf {
		require.Len(t, a.EncoderSelf[l], H)
		for h := range a.EncoderSelf[l] {
			require.Len(t, a.EncoderSelf[l][h], S)
			sums(a.EncoderSelf[l][h], S)
		}
	}
	for l := range a.DecoderSelf {
		for h := 0; h < H; h++ {
			sums(a.DecoderSelf[l][h], T)
			sums(a.Cross[l][h], S)
			for i, r := range a.DecoderSelf[l][h] {
				for j := i + 1; j < T; j++ {
					assert.Zero(t, r[j], "layer %d head %d: query %d sees key %d", l, h, i, j)
				}
			}
		}
	}
	for i := 0; i < T; i++ {
		mean := make([]float32, S)
		for h := 0; h < H; h++ {
			for j := range mean {
				mean[j] += a.Cross[1][h][i][j] / float32(H)
			}
		}
		assert.InDeltaSlice(t, out.Attention[0][i], mean, 1e-5, "token %d", i)
	}
	_, err = m.Attention(src, nil)
	assert.ErrorContains(t, err, "empty target")
	_, err = m.Attention([]int{99}, []int{3})
	assert.ErrorContains(t, err, "source: token id 99 at position 0 is outside the vocabulary [0, 23)")
}
