package seq2seq

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/decode"
	"github.com/seq2gpt/seq2gpt/internal/benchmem"
	"github.com/seq2gpt/seq2gpt/ops"
	"github.com/seq2gpt/seq2gpt/train"
)

// benchConfig is the benchmark model, as bench/torch_seq2seq.py
// builds it: LSTM + Bahdanau attention, a unidirectional one-layer encoder,
// embedding 128, hidden 256 (attention 256), vocabulary 1,000 on both
// sides, dropout 0.
func benchConfig() Config {
	return Config{Arch: Attention, SrcVocab: 1000, TgtVocab: 1000, Embed: 128, Hidden: 256, Layers: 1,
		Unidirectional: true, PadID: 0, BOSID: 1, EOSID: 2, SrcEOSID: 2}
}

const (
	benchBatch = 32
	benchLen   = 20 // source and target length, end token included
)

// benchSources are batch random sources of benchLen−1 tokens (Source adds
// the end token) and targets of benchLen−1 tokens (Target adds it).
func benchPairs(batch int) (src, tgt [][]int) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range batch {
		s, t := make([]int, benchLen-1), make([]int, benchLen-1)
		for i := range s {
			s[i], t[i] = 3+rng.IntN(997), 3+rng.IntN(997)
		}
		src, tgt = append(src, s), append(tgt, t)
	}
	return src, tgt
}

// BenchmarkSeq2Seq times the benchmark model as
// bench/torch_seq2seq.py times it in PyTorch (BENCHMARKS.md records both):
//
//	train   one Trainer step (teacher-forced forward, cross-entropy,
//	        backward, clip 1, Adam) on a batch of 32 pairs of length 20,
//	        the compiled program reused: target tokens/s
//	greedy  greedy decoding of the 32 sources, 20 new tokens each (no end
//	        token is chosen: MinLen 20): the encoder once, 20 decode steps,
//	        programs reused: sentences/s
//
// Run with: go test -run '^$' -bench Seq2Seq ./seq2seq/ (add -tags openblas
// and OPENBLAS_NUM_THREADS=1 for the OpenBLAS build).
func BenchmarkSeq2Seq(b *testing.B) {
	b.Logf("attention, unidirectional encoder, E 128, H 256, V 1000, batch %d, length %d, BLAS %s", benchBatch, benchLen, ops.BLASName)
	b.Run("train", func(b *testing.B) {
		m, err := New(benchConfig(), 1)
		require.NoError(b, err)
		src, tgt := benchPairs(benchBatch)
		for i := range src {
			src[i], tgt[i] = m.Source(src[i]), m.Target(tgt[i])
		}
		bt, err := datasets.NewBatcher(src, tgt, datasets.BatchConfig{MaxTokens: 1 << 20})
		require.NoError(b, err)
		idx := make([]int, benchBatch)
		for i := range idx {
			idx[i] = i
		}
		batch, err := m.Batch(bt.Make(idx))
		require.NoError(b, err)
		opt, err := train.NewAdam(train.AdamConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8})
		require.NoError(b, err)
		tr, err := train.New(m, train.Config{Optimizer: opt, Schedule: train.Constant(1e-3), ClipNorm: 1})
		require.NoError(b, err)
		defer tr.Close()
		_, err = tr.Step(batch) // compile outside the timing
		require.NoError(b, err)
		act, err := benchmem.TrainingActivations(m, batch.Key)
		require.NoError(b, err)
		done := benchmem.Track(b, act)
		b.ResetTimer()
		for range b.N {
			if _, err := tr.Step(batch); err != nil {
				b.Fatal(err)
			}
		}
		done()
		b.ReportMetric(float64(b.N)*batch.Weight/b.Elapsed().Seconds(), "tok/s")
	})
	b.Run("greedy", func(b *testing.B) {
		m, err := New(benchConfig(), 1)
		require.NoError(b, err)
		src, _ := benchPairs(benchBatch)
		dec, err := m.NewDecoder(DecoderConfig{SourceBucket: benchLen})
		require.NoError(b, err)
		defer dec.Close()
		lim := decode.Limits{MaxLen: benchLen, MinLen: benchLen, EOS: []int{2}}
		_, err = decode.Greedy(dec, src, lim)
		require.NoError(b, err)
		b.ResetTimer()
		for range b.N {
			if _, err := decode.Greedy(dec, src, lim); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "sentences/s")
	})
}
