package transformer

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/decode"
	"github.com/seq2gpt/seq2gpt/internal/benchmem"
	"github.com/seq2gpt/seq2gpt/ops"
	"github.com/seq2gpt/seq2gpt/train"
)

// benchConfig is the size bench/torch_transformer.py times:
// nn.Transformer 2 + 2 layers, d_model 128, 4 heads, d_ff 512, vocabulary
// 1,000 (separate source and target tables, untied generator, sinusoids,
// post-LN, ReLU, dropout 0.1).
func benchConfig() Config {
	c := Small()
	c.ShareEmbeddings, c.TieOutput = false, false
	return c
}

const benchBatch, benchLen = 32, 32

// benchSentences are benchBatch random sentences of benchLen tokens each
// (sources with their EOS, and targets).
func benchSentences(cfg Config, seed uint64) [][]int {
	rng := rand.New(rand.NewPCG(seed, 7))
	out := make([][]int, benchBatch)
	for i := range out {
		out[i] = make([]int, benchLen)
		for j := range out[i] {
			out[i][j] = 3 + rng.IntN(cfg.TgtVocabSize-3)
		}
	}
	return out
}

// BenchmarkTransformer times the size of bench/torch_transformer.py
// (BENCHMARKS.md records both sides, measured by the lead):
//
//	train    one Trainer step on 32 pairs of 32-token sources and targets:
//	         forward in training mode (dropout 0.1), cross-entropy with
//	         label smoothing 0.1, backward, Adam (β₂ 0.98, ε 1e-9),
//	         clipping to norm 1: target tok/s
//	greedy   greedy decoding of 32 sources of 32 tokens (31 and EOS), 32
//	         new tokens each (no end token), at batch 32, through
//	         decode.Greedy and the Decoder (encoder once, cross-attention
//	         keys and values once, a self-attention cache): sentences/s
//	greedy_nocache  the same recomputing the encoder and the whole prefix
//	         for every token (DecoderConfig.NoCache): sentences/s
//	build    Build + G.Grad + tape compile of the training program: ms
//
// Run with: go test -run '^$' -bench Transformer ./transformer/ (add
// -tags openblas and OPENBLAS_NUM_THREADS=1 for the OpenBLAS build).
func BenchmarkTransformer(b *testing.B) {
	cfg := benchConfig()
	b.Logf("%d+%d layers, d_model %d, %d heads, d_ff %d, vocabulary %d, batch %d, length %d, dropout %.1f, BLAS %s",
		cfg.NumEncoderLayers, cfg.NumDecoderLayers, cfg.DModel, cfg.NHead, cfg.DimFeedforward, cfg.TgtVocabSize,
		benchBatch, benchLen, cfg.Dropout, ops.BLASName)
	b.Run("train", func(b *testing.B) { benchTrain(b, cfg) })
	b.Run("greedy", func(b *testing.B) { benchGreedy(b, cfg, false) })
	b.Run("greedy_nocache", func(b *testing.B) { benchGreedy(b, cfg, true) })
	b.Run("build", func(b *testing.B) { benchBuild(b, cfg) })
}

func benchTrain(b *testing.B, cfg Config) {
	m, err := New(cfg, 1)
	require.NoError(b, err)
	opt, err := train.NewAdam(train.AdamConfig{Beta1: 0.9, Beta2: 0.98, Eps: 1e-9})
	require.NoError(b, err)
	tr, err := train.New(Translator{m}, train.Config{Optimizer: opt, Schedule: train.Constant(1e-4), ClipNorm: 1, DropoutSeed: 1})
	require.NoError(b, err)
	defer tr.Close()
	src := benchSentences(cfg, 1)
	for i := range src {
		src[i][benchLen-1] = cfg.EOS
	}
	tgt := benchSentences(cfg, 2)
	bt, err := Translator{m}.Batch(datasets.Batch{Source: padded(src, cfg.Pad, benchLen, benchBatch), Target: padded(tgt, cfg.Pad, benchLen, benchBatch)})
	require.NoError(b, err)
	_, err = tr.Step(bt) // compile outside the timing
	require.NoError(b, err)
	act, err := benchmem.TrainingActivations(Translator{m}, bt.Key)
	require.NoError(b, err)
	done := benchmem.Track(b, act)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := tr.Step(bt); err != nil {
			b.Fatal(err)
		}
	}
	done()
	b.ReportMetric(float64(benchBatch*benchLen*b.N)/b.Elapsed().Seconds(), "tok/s")
}

func benchGreedy(b *testing.B, cfg Config, noCache bool) {
	m, err := New(cfg, 1)
	require.NoError(b, err)
	dec, err := m.NewDecoder(DecoderConfig{NoCache: noCache})
	require.NoError(b, err)
	defer dec.Close()
	src := benchSentences(cfg, 1)
	for i := range src {
		src[i] = src[i][:benchLen-1] // Start appends EOS
	}
	lim := decode.Limits{MaxLen: benchLen}
	out, err := decode.Greedy(dec, src, lim) // compiles the programs
	require.NoError(b, err)
	require.Len(b, out.Tokens[0], benchLen)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := decode.Greedy(dec, src, lim); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(benchBatch*b.N)/b.Elapsed().Seconds(), "sentences/s")
}

func benchBuild(b *testing.B, cfg Config) {
	m, err := New(cfg, 1)
	require.NoError(b, err)
	key := train.Key{Mode: blocks.Train, Batch: benchBatch, Source: benchLen, Len: benchLen}
	nodes := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// What train.Trainer does for a new key: build, one G.Grad, compile.
		g := blocks.NewGraph(m.Store, blocks.Train, 1)
		built, err := Translator{m}.Build(g, key)
		if err != nil {
			b.Fatal(err)
		}
		_, params := g.Params()
		grads, err := G.Grad(built.Loss, params...)
		if err != nil {
			b.Fatal(err)
		}
		vals := make([]G.Value, len(grads))
		for j, n := range grads {
			G.Read(n, &vals[j])
		}
		nodes = len(g.G.AllNodes())
		G.NewTapeMachine(g.G).Close()
	}
	b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N), "ms")
	b.ReportMetric(float64(nodes), "nodes")
}
