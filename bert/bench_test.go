package bert

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/ops"
	"github.com/seq2gpt/seq2gpt/train"
)

// BenchmarkBERT times the preset sizes as gpt's BenchmarkGPT times GPT's,
// on full rows of max_position_embeddings tokens:
//
//	train    one Trainer step of pre-training (MLM over the 15% chosen
//	         positions, forward, backward, AdamW, clip 1), dropout 0.1: tok/s
//	forward  the encoder alone (KindEncode): tok/s
//
// Run with: go test -run '^$' -bench BERT ./bert/
func BenchmarkBERT(b *testing.B) {
	for _, s := range []struct {
		name  string
		cfg   Config
		batch int
	}{{"tiny", Tiny(), 16}, {"small", Small(), 16}} {
		b.Run(s.name, func(b *testing.B) {
			b.Logf("%s: %d layers, d %d, %d heads, %d positions, vocab %d, batch %d, BLAS %s",
				s.name, s.cfg.NumHiddenLayers, s.cfg.HiddenSize, s.cfg.NumAttentionHeads, s.cfg.MaxPositionEmbeddings, s.cfg.VocabSize, s.batch, ops.BLASName)
			b.Run("train", func(b *testing.B) { benchTrain(b, s.cfg, s.batch) })
			b.Run("forward", func(b *testing.B) { benchForward(b, s.cfg, s.batch) })
		})
	}
}

// benchExamples are batch masked rows of random ordinary ids.
func benchExamples(b *testing.B, l MLM, batch int) []Example {
	rng := rand.New(rand.NewPCG(7, uint64(l.Config.HiddenSize)))
	T := l.Config.MaxPositionEmbeddings
	ex := make([]Example, batch)
	for r := range ex {
		text := make([]int, l.WindowTokens(T))
		for i := range text {
			text[i] = 4 + rng.IntN(l.Config.VocabSize-4)
		}
		ex[r] = l.Masker.Mask(rng, l.Masker.Single(text, 0))
	}
	return ex
}

func benchMLM(b *testing.B, cfg Config) MLM {
	m, err := New(cfg, 1)
	require.NoError(b, err)
	mk, err := NewMasker(BERTMasking(), Specials{PAD: 0, CLS: 1, SEP: 2, MASK: 3}, cfg.VocabSize, nil)
	require.NoError(b, err)
	return MLM{Model: m, Masker: mk}
}

func benchTrain(b *testing.B, cfg Config, batch int) {
	l := benchMLM(b, cfg)
	opt, err := train.NewAdamW(train.AdamConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01})
	require.NoError(b, err)
	tr, err := train.New(l, train.Config{Optimizer: opt, Schedule: train.Constant(1e-4), ClipNorm: 1, DropoutSeed: 1})
	require.NoError(b, err)
	defer tr.Close()
	bt, err := l.Batch(benchExamples(b, l, batch), batch, cfg.MaxPositionEmbeddings)
	require.NoError(b, err)
	_, err = tr.Step(bt) // compile outside the timing
	require.NoError(b, err)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := tr.Step(bt); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(batch*cfg.MaxPositionEmbeddings*b.N)/b.Elapsed().Seconds(), "tok/s")
}

func benchForward(b *testing.B, cfg Config, batch int) {
	l := benchMLM(b, cfg)
	T := cfg.MaxPositionEmbeddings
	p, err := train.Compile(l, train.Key{Mode: blocks.Eval, Kind: KindEncode, Batch: batch, Len: T}, 0)
	require.NoError(b, err)
	defer p.Close()
	ex := benchExamples(b, l, batch)
	seqs := make([]Sequence, batch)
	for i, e := range ex {
		seqs[i] = e.Sequence
	}
	r, err := l.Pad(seqs, batch, T)
	require.NoError(b, err)
	vals, err := l.Values(r)
	require.NoError(b, err)
	run := func() {
		for k, v := range vals {
			if err := p.Let(k, v); err != nil {
				b.Fatal(err)
			}
		}
		if err := p.Run(); err != nil {
			b.Fatal(err)
		}
	}
	run()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		run()
	}
	b.ReportMetric(float64(batch*T*b.N)/b.Elapsed().Seconds(), "tok/s")
}
