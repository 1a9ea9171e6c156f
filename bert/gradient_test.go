package bert

import (
	"testing"

	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/internal/gradcheck"
	"github.com/seq2gpt/seq2gpt/train"
)

// TestGradientWholeModel checks every parameter's gradient of the
// pre-training loss (MLM over the chosen positions plus NSP) of a small
// float64 BERT on a padded batch with two segments against central finite
// differences.
func TestGradientWholeModel(t *testing.T) {
	for _, act := range []string{"gelu", "relu"} {
		t.Run(act, func(t *testing.T) {
			cfg := Tiny()
			cfg.VocabSize, cfg.MaxPositionEmbeddings, cfg.HiddenSize, cfg.NumAttentionHeads = 13, 8, 8, 2
			cfg.NumHiddenLayers, cfg.IntermediateSize, cfg.HiddenAct, cfg.NSP = map[string]int{"gelu": 2, "relu": 1}[act], 12, act, true
			cfg.InitializerRange, cfg.LayerNormEps = 0.4, 1e-5
			s, err := blocks.NewStore(tensor.Float64, 5)
			require.NoError(t, err)
			m, err := newModel(cfg, s, true)
			require.NoError(t, err)
			for _, n := range s.Names() { // non-trivial gains and biases
				if v, _ := s.Get(n); v.Dims() == 1 {
					require.NoError(t, s.Set(n, gradcheck.Tensor(uint64(len(n)), 0.3, v.Shape()[0]).Data().([]float64)))
				}
			}
			mk, err := NewMasker(BERTMasking(), Specials{PAD: 0, CLS: 1, SEP: 2, MASK: 3}, cfg.VocabSize, nil)
			require.NoError(t, err)
			l := MLM{Model: m, Masker: mk}
			const B, T = 3, 8 // room for 3 targets: PerRow(8) = 1 per row
			g := blocks.NewGraph(s, blocks.Eval, 0)
			built, err := l.Build(g, train.Key{Mode: blocks.Eval, Batch: B, Len: T})
			require.NoError(t, err)
			sp := mk.Specials
			ex := []Example{
				{Sequence: sp.Pair([]int{5, 6, 3}, []int{9, 12}, 0), Positions: []int{1, 3}, Targets: []int{7, 8}, NextLabel: 0},
				{Sequence: sp.Single([]int{4, 3, 10}, 0), Positions: []int{2}, Targets: []int{11}, NextLabel: 1},
				{Sequence: sp.Pair([]int{8}, []int{6, 6}, 0), NextLabel: 1}, // no MLM target
			}
			b, err := l.Batch(ex, B, T)
			require.NoError(t, err)
			for name, n := range built.Inputs {
				require.NoError(t, G.Let(n, b.Inputs[name]), name)
			}
			_, params := g.Params()
			_, err = gradcheck.Check(g.G, []*G.Node{built.Loss}, params, gradcheck.Config{Tol: 1e-5})
			require.NoError(t, err)
		})
	}
}
