package transformer

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/internal/gradcheck"
)

// testConfig is a model small enough for finite differences: 2 + 2
// layers, d_model 8, 2 heads, d_ff 12, vocabularies of 11 and 13.
func testConfig() Config {
	c := Tiny()
	c.SrcVocabSize, c.TgtVocabSize, c.DModel, c.NHead, c.DimFeedforward, c.MaxPositions = 11, 13, 8, 2, 12, 16
	c.ShareEmbeddings, c.TieOutput, c.Dropout = false, false, 0
	c.BOS, c.EOS, c.Pad = 1, 2, 0
	return c
}

// newModel64 is cfg's model in float64 with every LayerNorm gain and
// bias away from 1 and 0, so their gradients are seen.
func newModel64(t testing.TB, cfg Config, seed uint64) *Model {
	s, err := blocks.NewStore(tensor.Float64, seed)
	require.NoError(t, err)
	m, err := NewWithStore(cfg, s)
	require.NoError(t, err)
	for i, n := range s.Names() {
		if v, _ := s.Get(n); v.Dims() == 1 {
			require.NoError(t, s.Set(n, gradcheck.Tensor(uint64(i+1), 0.3, v.Shape()[0]).Data().([]float64)))
		}
	}
	return m
}

// padded pads seqs with pad to t ids each, plus empty rows up to rows.
func padded(seqs [][]int, pad, t, rows int) datasets.Padded {
	p := datasets.Padded{B: rows, T: t, IDs: make([]int, rows*t), Lengths: make([]int, rows), Mask: make([]float32, rows*t)}
	for b := 0; b < rows; b++ {
		for i := 0; i < t; i++ {
			p.IDs[b*t+i] = pad
			if b < len(seqs) && i < len(seqs[b]) {
				p.IDs[b*t+i], p.Mask[b*t+i] = seqs[b][i], 1
			}
		}
		if b < len(seqs) {
			p.Lengths[b] = len(seqs[b])
		}
	}
	return p
}

// testBatch is three sources of lengths 5, 3 and 1 (S 5) and targets of
// lengths 4, 2 and 3 (T 4), and an empty row.
func testBatch(cfg Config) datasets.Batch {
	src := [][]int{{3, 4, 5, 6, 7}, {8, 9, 10}, {5}}
	tgt := [][]int{{3, 4, 5, 2}, {6, 2}, {7, 12, 2}}
	return datasets.Batch{Index: []int{0, 1, 2}, Source: padded(src, cfg.Pad, 5, 4), Target: padded(tgt, cfg.Pad, 4, 4)}
}

// TestGradientWholeModel checks every parameter's gradient of the
// training loss (label smoothing 0.1, a padded batch with an empty row)
// against finite differences, in both layouts and with every sharing and
// position option; one case trains with dropout, its masks pinned.
func TestGradientWholeModel(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(*Config)
	}{
		{"post-ln", func(*Config) {}},
		{"pre-ln-gelu-learned", func(c *Config) { c.NormFirst, c.Activation, c.Positions = true, "gelu", Learned }},
		{"shared-tied", func(c *Config) { c.SrcVocabSize, c.ShareEmbeddings, c.TieOutput = 13, true, true }},
		{"dropout", func(c *Config) { c.Dropout = 0.1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.LabelSmoothing = 0.1
			tc.modify(&cfg)
			m := newModel64(t, cfg, 5)
			tr := Translator{m}
			b, err := tr.Batch(testBatch(cfg))
			require.NoError(t, err)
			g := blocks.NewGraph(m.Store, blocks.Train, 3)
			built, err := tr.Build(g, b.Key)
			require.NoError(t, err)
			for name, n := range built.Inputs {
				require.NoError(t, G.Let(n, b.Inputs[name]))
			}
			names, params := g.Params()
			require.Equal(t, m.Store.SortedNames(), sorted(names), "the graph binds every parameter")
			_, err = gradcheck.Check(g.G, []*G.Node{built.Loss}, params, gradcheck.Config{
				Tol: 1e-5, MaxProbes: 8, BeforeRun: func() { g.Dropout.Calls = 0 }})
			require.NoError(t, err)
		})
	}
}

// TestGradientLayers checks an encoder and a decoder layer, parameters
// and inputs (x, y and the memory), with padding and the causal mask.
func TestGradientLayers(t *testing.T) {
	for _, normFirst := range []bool{false, true} {
		cfg := testConfig()
		cfg.NormFirst = normFirst
		m := newModel64(t, cfg, 2)
		g := blocks.NewGraph(m.Store, blocks.Eval, 0)
		x := input(t, g, "x", gradcheck.Tensor(1, 1, 2, 4, 8))
		y := input(t, g, "y", gradcheck.Tensor(2, 1, 2, 3, 8))
		srcMask, memMask, err := SourceMasks(tensor.Float64, []int{4, 2}, 4, 3)
		require.NoError(t, err)
		causal, err := blocks.AttentionMask(tensor.Float64, 2, 3, 3, nil, true)
		require.NoError(t, err)
		enc, _, err := m.Encoder[0].Forward(g, x, input(t, g, "src_mask", srcMask))
		require.NoError(t, err)
		kv, err := m.Decoder[1].CrossAttn.KeysValues(g, enc)
		require.NoError(t, err)
		dec, _, err := m.Decoder[1].Forward(g, y, nil, kv, input(t, g, "causal", causal), input(t, g, "mem_mask", memMask))
		require.NoError(t, err)
		_, params := g.Params()
		_, err = gradcheck.Check(g.G, []*G.Node{enc, dec}, append(params, x, y), gradcheck.Config{Tol: 1e-6})
		require.NoError(t, err, "norm_first=%v", normFirst)
	}
}

func input(t *testing.T, g *blocks.Graph, name string, v *tensor.Dense) *G.Node {
	n, err := g.Input(name, v.Shape(), v.Dtype())
	require.NoError(t, err)
	require.NoError(t, G.Let(n, v))
	return n
}

func sorted(names []string) []string {
	out := slices.Clone(names)
	slices.Sort(out)
	return out
}
