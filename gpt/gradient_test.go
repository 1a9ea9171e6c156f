package gpt

import (
	"testing"

	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/internal/gradcheck"
	"github.com/seq2gpt/seq2gpt/train"
)

// TestGradientWholeModel checks every parameter's gradient of the LM loss
// of a small float64 GPT against finite differences.
func TestGradientWholeModel(t *testing.T) {
	cfg := Tiny()
	cfg.VocabSize, cfg.NPositions, cfg.NEmbd, cfg.NHead, cfg.NLayer = 11, 6, 8, 2, 2
	cfg.InitializerRange = 0.3
	s, err := blocks.NewStore(tensor.Float64, 5)
	require.NoError(t, err)
	m, err := newModel(cfg, s)
	require.NoError(t, err)
	for _, n := range s.Names() { // non-trivial LayerNorm gains and biases
		if v, _ := s.Get(n); v.Dims() == 1 {
			require.NoError(t, s.Set(n, gradcheck.Tensor(uint64(len(n)), 0.3, v.Shape()[0]).Data().([]float64)))
		}
	}
	lm := LM{m}
	g := blocks.NewGraph(s, blocks.Eval, 0)
	built, err := lm.Build(g, train.Key{Mode: blocks.Eval, Batch: 2, Len: 5})
	require.NoError(t, err)
	b, err := lm.Batch(2, 5, []int{1, 4, 4, 9, 0, 3, 10, 2, 7, 5}, []int{4, 4, 9, 0, IgnoreIndex, 10, 2, 7, 5, 1})
	require.NoError(t, err)
	for name, n := range built.Inputs {
		require.NoError(t, G.Let(n, b.Inputs[name]))
	}
	_, params := g.Params()
	_, err = gradcheck.Check(g.G, []*G.Node{built.Loss}, params, gradcheck.Config{Tol: 1e-5})
	require.NoError(t, err)
}
