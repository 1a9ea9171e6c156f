package gpt

import (
	"testing"

	"github.com/pkg/errors"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
)

// TestHiddenReportsBadInputs: the model's graph functions turn every
// failure inside their blocks into an error naming the block it came from
// (never a panic), with shape errors findable by errors.As.
func TestHiddenReportsBadInputs(t *testing.T) {
	m, err := New(Tiny(), 1)
	require.NoError(t, err)
	const B, T = 2, 3
	for _, tc := range []struct {
		name                 string
		ids, mask            tensor.Shape
		cache                []KV
		wantPrefix, wantText string
		shape                bool
	}{
		{"ids too short", tensor.Shape{B*T - 1}, tensor.Shape{B, T, T}, nil, "tokens_embed: ", "want (6) (batch 2 × steps 3)", true},
		{"mask of the wrong width", tensor.Shape{B * T}, tensor.Shape{B, T, T + 1}, nil, "h.0.attn.sdpa: ", "attention mask has shape (2, 3, 4), want (2, 3, 3)", true},
		{"cache of the wrong depth", tensor.Shape{B * T}, tensor.Shape{B, T, T}, make([]KV, 1), "gpt: ", "cache has 1 layers", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := blocks.NewGraph(m.Store, blocks.Eval, 0)
			ids := blocks.Must(g.Input("ids", tc.ids, tensor.Int))
			pos := blocks.Must(g.Input("pos", tc.ids, tensor.Int))
			mask := blocks.Must(g.Input("mask", tc.mask))
			var h *G.Node
			require.NotPanics(t, func() { h, _, err = m.Hidden(g, ids, pos, mask, B, T, tc.cache) })
			require.Error(t, err)
			assert.Nil(t, h)
			assert.Contains(t, err.Error(), tc.wantText)
			assert.Equal(t, tc.wantPrefix, err.Error()[:len(tc.wantPrefix)], err.Error())
			var se *blocks.ShapeError
			assert.Equal(t, tc.shape, errors.As(err, &se))
		})
	}
}
