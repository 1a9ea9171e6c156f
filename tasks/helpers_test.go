package tasks

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/gpt"
	"github.com/seq2gpt/seq2gpt/train"
)

// corpus is the text the test tokenizers are trained on.
const corpus = "the film was good . the film was bad . a great cast and a poor plot . " +
	"the cat sat on the mat . a dog ran in the park . it was not good at all ."

// wordTokenizer is a word-level tokenizer of corpus, whose ids read
// easily in layout tests.
func wordTokenizer(t *testing.T) *datasets.WordTokenizer {
	t.Helper()
	tok, err := datasets.NewWordTokenizer([]string{corpus}, datasets.VocabConfig{})
	require.NoError(t, err)
	return tok
}

// tinyConfig is a GPT small enough for gradient checks.
func tinyConfig(vocab int) gpt.Config {
	cfg := gpt.Tiny()
	cfg.VocabSize, cfg.NPositions, cfg.NEmbd, cfg.NHead, cfg.NLayer = vocab, 12, 8, 2, 1
	cfg.EmbdPdrop, cfg.AttnPdrop, cfg.ResidPdrop = 0, 0, 0
	cfg.InitializerRange = 0.3
	return cfg
}

// tinyBody is a GPT body of dtype dt over tok's vocabulary (specials
// added), with non-trivial LayerNorm gains and biases.
func tinyBody(t *testing.T, dt tensor.Dtype, tok datasets.Tokenizer, layers int) *GPT {
	t.Helper()
	cfg := tinyConfig(tok.VocabSize())
	cfg.NLayer = layers
	s, err := blocks.NewStore(dt, 3)
	require.NoError(t, err)
	m, err := gpt.NewIn(s, cfg)
	require.NoError(t, err)
	for i, n := range s.Names() {
		if v, _ := s.Get(n); v.Dims() == 1 {
			vals := make([]float64, v.Shape()[0])
			for j := range vals {
				vals[j] = 0.3 * math.Sin(float64(7*i+j))
			}
			require.NoError(t, s.Set(n, vals))
		}
	}
	b, err := NewGPT(m, tok, 4)
	require.NoError(t, err)
	return b
}

// run compiles the model's program for b (in mode) and runs it once.
func run(t *testing.T, m train.Model, b train.Batch, mode blocks.Mode) *train.Program {
	t.Helper()
	key := b.Key
	key.Mode = mode
	p, err := train.Compile(m, key, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	for name, v := range b.Inputs {
		require.NoError(t, p.Let(name, v))
	}
	require.NoError(t, p.Run())
	return p
}

// output is a program output's values as float64s.
func output(t *testing.T, p *train.Program, name string) []float64 {
	t.Helper()
	v, err := p.Output(name)
	require.NoError(t, err)
	if d, ok := v.(*tensor.Dense); ok {
		return floats(t, d)
	}
	switch x := v.(type) {
	case *G.F32:
		return []float64{float64(*x)}
	case *G.F64:
		return []float64{float64(*x)}
	}
	t.Fatalf("output %s is %T", name, v)
	return nil
}

// encode is Encode that must succeed.
func encode(t *testing.T, task Task, b Body, tok datasets.Tokenizer, exs ...Example) []Input {
	t.Helper()
	in, _, err := Encode(task, b.Template(), tok, exs)
	require.NoError(t, err)
	return in
}

// newGPT is a float32 GPT of cfg.
func newGPT(cfg gpt.Config) (*gpt.Model, error) { return gpt.New(cfg, 2) }

// get is a store's tensor, which must exist.
func get(t *testing.T, s *blocks.Store, name string) *tensor.Dense {
	t.Helper()
	v, ok := s.Get(name)
	require.True(t, ok, name)
	return v
}

// lmLogits is the language model's logits [T, V] for one sequence.
func lmLogits(t *testing.T, b *GPT, ids []int) []float64 {
	t.Helper()
	lm := gpt.LM{Model: b.Model}
	it, err := blocks.IDs(ids, b.Model.Config.VocabSize)
	require.NoError(t, err)
	p := run(t, lm, train.Batch{Key: train.Key{Kind: gpt.KindLogits, Batch: 1, Len: len(ids)},
		Inputs: map[string]G.Value{"ids": it}}, blocks.Eval)
	return output(t, p, "logits")
}

// batchOf is Model.Batch that must succeed.
func batchOf(t *testing.T, m *Model, in []Input, rows, steps int, training bool) train.Batch {
	t.Helper()
	b, err := m.Batch(in, rows, steps, training)
	require.NoError(t, err)
	return b
}

// floats is a tensor's values as float64s.
func floats(t *testing.T, d *tensor.Dense) []float64 {
	t.Helper()
	v, err := blocks.Float64s(d)
	require.NoError(t, err)
	return v
}
