package seq2seq

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/internal/gradcheck"
	"github.com/seq2gpt/seq2gpt/train"
)

// tiny returns a small config of arch with specials 0, 1, 2.
func tiny(arch string) Config {
	return Config{Arch: arch, SrcVocab: 9, TgtVocab: 8, Embed: 3, Hidden: 4, Layers: 2, PadID: 0, BOSID: 1, EOSID: 2, SrcEOSID: 2}
}

// pairs is a padded batch: sources and targets in Source's and Target's
// forms, with a filler row (length 0) as the Batcher adds for buckets
// when filler is set.
func pairs(m *Model, filler bool) datasets.Batch {
	src := [][]int{m.Source([]int{3, 4, 5, 6}), m.Source([]int{7}), m.Source([]int{8, 3})}
	tgt := [][]int{m.Target([]int{3, 4}), m.Target([]int{5, 6, 7}), m.Target(nil)}
	if filler {
		src, tgt = append(src, nil), append(tgt, nil)
	}
	bt, err := datasets.NewBatcher(src[:3], tgt[:3], datasets.BatchConfig{MaxTokens: 1000})
	if err != nil {
		panic(err)
	}
	b := bt.Make([]int{0, 1, 2})
	if filler {
		b.Source = padRows(b.Source, 4, m.Config.PadID)
		b.Target = padRows(b.Target, 4, m.Config.PadID)
	}
	return b
}

// padRows adds empty rows up to rows.
func padRows(p datasets.Padded, rows, pad int) datasets.Padded {
	for p.B < rows {
		for range p.T {
			p.IDs = append(p.IDs, pad)
			p.Mask = append(p.Mask, 0)
		}
		p.Lengths = append(p.Lengths, 0)
		p.B++
	}
	return p
}

var variants = []struct {
	name string
	cfg  func() Config
}{
	{"fixed", func() Config { return tiny(Fixed) }},
	{"fixed_reverse_feed_tied", func() Config {
		c := tiny(Fixed)
		c.ReverseSource, c.FeedContext, c.TieEmbeddings = true, true, true
		return c
	}},
	{"attention", func() Config { return tiny(Attention) }},
	{"attention_general_tied", func() Config {
		c := tiny(Attention)
		c.Score, c.TieEmbeddings, c.Layers = blocks.General, true, 1
		return c
	}},
	{"attention_dot_uni", func() Config {
		c := tiny(Attention)
		c.Score, c.Unidirectional, c.Layers = blocks.Dot, true, 1
		return c
	}},
}

// lossGraph builds m's training program's graph for b and lets its inputs.
func lossGraph(t *testing.T, m *Model, b datasets.Batch, mode blocks.Mode) (*blocks.Graph, train.Built) {
	tb, err := m.Batch(b)
	require.NoError(t, err)
	g := blocks.NewGraph(m.Store(), mode, 0)
	tb.Key.Mode = mode
	built, err := m.Build(g, tb.Key)
	require.NoError(t, err)
	for k, v := range tb.Inputs {
		require.NoError(t, G.Let(built.Inputs[k], v))
	}
	return g, built
}

// TestGradient checks every parameter's gradient of the teacher-forced
// loss against central finite differences in float64, on a padded batch
// with a filler row, for every variant of both architectures.
func TestGradient(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			m, err := NewFloat64(v.cfg(), 5)
			require.NoError(t, err)
			m.LabelSmoothing = 0.1
			g, built := lossGraph(t, m, pairs(m, true), blocks.Train)
			_, params := g.Params()
			res, err := gradcheck.Check(g.G, []*G.Node{built.Loss}, params, gradcheck.Config{Tol: 1e-6, MaxProbes: 12})
			require.NoError(t, err)
			t.Logf("%d probes, max error %.2g", res.Probes, res.MaxErr)
			require.Greater(t, res.Probes, 100)
		})
	}
}

// runLoss evaluates the loss of m on b (evaluation mode).
func runLoss(t *testing.T, m *Model, b datasets.Batch) float64 {
	g, built := lossGraph(t, m, b, blocks.Eval)
	var loss G.Value
	G.Read(built.Loss, &loss)
	vm := G.NewTapeMachine(g.G)
	defer vm.Close()
	require.NoError(t, vm.RunAll())
	return loss.Data().(float64)
}

// TestPaddingIsInvisible: what sits in padded positions, and filler rows,
// change neither the loss nor where attention looks; α is zero on padding
// and sums to one over each row's real source tokens.
func TestPaddingIsInvisible(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			m, err := NewFloat64(v.cfg(), 5)
			require.NoError(t, err)
			b := pairs(m, false)
			want := runLoss(t, m, b)
			noisy := pairs(m, true)
			for i, keep := range noisy.Source.Mask {
				if keep == 0 {
					noisy.Source.IDs[i] = 5 // a real token where padding was
				}
			}
			for i, keep := range noisy.Target.Mask {
				if keep == 0 {
					noisy.Target.IDs[i] = 4
				}
			}
			got := runLoss(t, m, noisy)
			assert.InDelta(t, want, got, 1e-12, "loss with other padding and a filler row")

			if m.Config.Arch != Attention {
				return
			}
			tb, err := m.Batch(noisy)
			require.NoError(t, err)
			g := blocks.NewGraph(m.Store(), blocks.Eval, 0)
			in := map[string]*G.Node{}
			for k, val := range tb.Inputs {
				n, err := g.Input(k, val.Shape(), val.Dtype())
				require.NoError(t, err)
				require.NoError(t, G.Let(n, val))
				in[k] = n
			}
			B, S, T := tb.Key.Batch, tb.Key.Source, tb.Key.Len
			enc, err := m.Encode(g, in["src"], in["src_keep"], in["src_mask"], B, S)
			require.NoError(t, err)
			_, alpha, err := m.Decode(g, enc, in["tgt_in"], B, T)
			require.NoError(t, err)
			var av G.Value
			G.Read(alpha, &av)
			vm := G.NewTapeMachine(g.G)
			defer vm.Close()
			require.NoError(t, vm.RunAll())
			a := av.Data().([]float64) // [B, T, S]
			for r := range B {
				n := noisy.Source.Lengths[r]
				for i := range T {
					row := a[(r*T+i)*S : (r*T+i+1)*S]
					sum := 0.0
					for j, x := range row {
						if j >= n {
							require.Zero(t, x, "row %d step %d: α on padding %d", r, i, j)
						}
						sum += x
					}
					if n > 0 {
						require.InDelta(t, 1, sum, 1e-12, "row %d step %d", r, i)
					} else {
						require.Zero(t, sum, "a filler row attends nowhere")
					}
				}
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"arch", func(c *Config) { c.Arch = "transformer" }, `arch "transformer" is not "fixed" or "attention"`},
		{"sizes", func(c *Config) { c.Hidden, c.Layers = 0, -1 }, "hidden_size must be positive, got 0; num_layers must be positive, got -1"},
		{"dropout", func(c *Config) { c.Dropout = 1 }, "dropout 1 is not in [0, 1)"},
		{"specials", func(c *Config) { c.EOSID = 8 }, "eos_token_id 8 is outside its vocabulary [0, 8)"},
		{"fixed_with_score", func(c *Config) { c.Score = blocks.Dot }, "belong to the attention architecture"},
		{"attention_reversed", func(c *Config) { c.Arch, c.ReverseSource = Attention, true }, "belong to the fixed architecture"},
		{"dot_bidirectional", func(c *Config) { c.Arch, c.Score = Attention, blocks.Dot }, "the dot score needs encoder states of the decoder's size 4, but the bidirectional encoder's are 8"},
		{"score", func(c *Config) { c.Arch, c.Score = Attention, "cosine" }, `score "cosine" is not additive, dot or general`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tiny(Fixed)
			tc.edit(&c)
			_, err := New(c, 1)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestBadInput(t *testing.T) {
	m, err := New(tiny(Attention), 1)
	require.NoError(t, err)
	b := pairs(m, false)
	b.Target.IDs[0] = 99
	_, err = m.Batch(b)
	assert.ErrorContains(t, err, "target row 0: token 99 at 0 is outside the vocabulary [0, 8)")
	b = pairs(m, false)
	b.Source.IDs[1] = -1
	_, err = m.Batch(b)
	assert.ErrorContains(t, err, "token id -1 at position 1 is outside the vocabulary [0, 9)")

	dec, err := m.NewDecoder(DecoderConfig{})
	require.NoError(t, err)
	defer dec.Close()
	_, _, err = dec.Start([][]int{{3}, {4, 9}})
	assert.ErrorContains(t, err, "source 1: token 9 at position 1 is outside the vocabulary [0, 9)")
	_, _, err = dec.Start(nil)
	assert.ErrorContains(t, err, "no sources")
	st, _, err := dec.Start([][]int{{3}, {}})
	require.NoError(t, err, "an empty source is its end token alone")
	_, err = st.Next([]int{3})
	assert.ErrorContains(t, err, "1 tokens for 2 rows")
	_, err = st.Next([]int{3, 8})
	assert.ErrorContains(t, err, "row 1: token 8 is outside the vocabulary [0, 8)")
	assert.ErrorContains(t, st.Reorder([]int{0, 2}), "row 2 of 2")

	_, err = m.Build(blocks.NewGraph(m.Store(), blocks.Eval, 0), train.Key{Batch: 1, Source: 3, Len: 2, Kind: "logits"})
	assert.ErrorContains(t, err, `unknown program kind "logits"`)
	_, err = m.Build(blocks.NewGraph(m.Store(), blocks.Eval, 0), train.Key{Batch: 1, Len: 2})
	assert.ErrorContains(t, err, "no source length")
}

func TestSaveLoad(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			m, err := New(v.cfg(), 3)
			require.NoError(t, err)
			dir := t.TempDir()
			require.NoError(t, m.Save(dir))
			back, err := Load(dir)
			require.NoError(t, err)
			assert.Equal(t, m.Config, back.Config)
			for _, name := range m.Store().Names() {
				a, _ := m.Store().Get(name)
				b, ok := back.Store().Get(name)
				require.True(t, ok, name)
				assert.Equal(t, a.Data(), b.Data(), name)
			}
		})
	}
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, ConfigFile), []byte(`{"model_type": "openai-gpt", "n_embd": 64}`), 0o644))
	_, err := Load(dir)
	var wrong *WrongModelError
	require.ErrorAs(t, err, &wrong)
	assert.Equal(t, "openai-gpt", wrong.ModelType)
	assert.Contains(t, err.Error(), `is a model of type "openai-gpt", not "seq2seq"`)
}
