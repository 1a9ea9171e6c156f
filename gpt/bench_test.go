package gpt

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/decode"
	"github.com/seq2gpt/seq2gpt/internal/benchmem"
	"github.com/seq2gpt/seq2gpt/ops"
	"github.com/seq2gpt/seq2gpt/train"
)

// BenchmarkGPT times the three preset sizes as bench/torch_gpt.py times
// them in PyTorch (BENCHMARKS.md, section GPT-1, records both sides):
//
//	train     one Trainer step (forward, backward, AdamW, clip 1) on a full
//	          window batch, dropout 0.1, compiled program reused: tok/s,
//	          bytes allocated per step (B/op) and, beside them, the bytes of
//	          the step's activations and gradients (act-B: every non-input
//	          node of the training graph) and their ratio (alloc-%)
//	forward   the eval program (KindLogits, no loss) on the same batch: tok/s
//	generate  greedy generation at batch 1 with the key/value cache, from a
//	          1-token prompt to n_positions tokens (ctx−1 new): tok/s
//	build     Build + G.Grad + tape compile of the training program (what
//	          the Trainer does once per key): ms
//
// Run with: go test -run '^$' -bench GPT ./gpt/ (add -tags openblas and
// OPENBLAS_NUM_THREADS=1 for the OpenBLAS build).
func BenchmarkGPT(b *testing.B) {
	sizes := []struct {
		name  string
		cfg   Config
		batch int
	}{
		{"tiny", Tiny(), 16},
		{"small", Small(), 16},
		{"medium", Medium(), 8},
	}
	for _, s := range sizes {
		b.Run(s.name, func(b *testing.B) {
			b.Logf("%s: %d layers, d %d, %d heads, ctx %d, vocab %d, batch %d, dropout %.1f, BLAS %s",
				s.name, s.cfg.NLayer, s.cfg.NEmbd, s.cfg.NHead, s.cfg.NPositions, s.cfg.VocabSize, s.batch, s.cfg.ResidPdrop, ops.BLASKernel())
			// One model and Trainer for every b.N the framework tries: the
			// process then holds one model, as torch_gpt.py's does (the
			// peak RSS of GPT/medium/train is issue 14's memory row).
			var tr *trainSetup
			b.Cleanup(func() {
				if tr != nil {
					tr.Close()
				}
			})
			b.Run("train", func(b *testing.B) {
				if tr == nil {
					tr = newTrainSetup(b, s.cfg, s.batch)
				}
				tr.bench(b)
			})
			b.Run("forward", func(b *testing.B) { benchForward(b, s.cfg, s.batch) })
			b.Run("generate", func(b *testing.B) { benchGenerate(b, s.cfg) })
			b.Run("build", func(b *testing.B) { benchBuild(b, s.cfg, s.batch) })
		})
	}
}

// benchWindows returns batch windows of random ids and their next tokens.
func benchWindows(cfg Config, batch int) (ids, targets []int) {
	rng := rand.New(rand.NewPCG(7, uint64(cfg.NEmbd)))
	T := cfg.NPositions
	ids, targets = make([]int, batch*T), make([]int, batch*T)
	for r := 0; r < batch; r++ {
		row := make([]int, T+1)
		for i := range row {
			row[i] = rng.IntN(cfg.VocabSize)
		}
		copy(ids[r*T:], row[:T])
		copy(targets[r*T:], row[1:])
	}
	return ids, targets
}

func benchTrainer(b *testing.B, lm LM) *train.Trainer {
	opt, err := train.NewAdamW(train.AdamConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01})
	require.NoError(b, err)
	tr, err := train.New(lm, train.Config{Optimizer: opt, Schedule: train.Constant(1e-4), ClipNorm: 1, DropoutSeed: 1})
	require.NoError(b, err)
	return tr
}

// trainSetup is a model, its Trainer and a batch, compiled by one step.
type trainSetup struct {
	*train.Trainer
	batch train.Batch
	act   int // the step's activation bytes
	toks  int // tokens per step
}

func newTrainSetup(b *testing.B, cfg Config, batch int) *trainSetup {
	m, err := New(cfg, 1)
	require.NoError(b, err)
	lm := LM{m}
	tr := benchTrainer(b, lm)
	ids, targets := benchWindows(cfg, batch)
	bt, err := lm.Batch(batch, cfg.NPositions, ids, targets)
	require.NoError(b, err)
	_, err = tr.Step(bt) // compile outside the timing
	require.NoError(b, err)
	act, err := benchmem.TrainingActivations(lm, bt.Key)
	require.NoError(b, err)
	return &trainSetup{Trainer: tr, batch: bt, act: act, toks: batch * cfg.NPositions}
}

func (s *trainSetup) bench(b *testing.B) {
	done := benchmem.Track(b, s.act)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Step(s.batch); err != nil {
			b.Fatal(err)
		}
	}
	done()
	b.ReportMetric(float64(s.toks*b.N)/b.Elapsed().Seconds(), "tok/s")
}

func benchForward(b *testing.B, cfg Config, batch int) {
	m, err := New(cfg, 1)
	require.NoError(b, err)
	p, err := train.Compile(LM{m}, train.Key{Mode: blocks.Eval, Kind: KindLogits, Batch: batch, Len: cfg.NPositions}, 0)
	require.NoError(b, err)
	defer p.Close()
	ids, _ := benchWindows(cfg, batch)
	it, err := blocks.IDs(ids, cfg.VocabSize)
	require.NoError(b, err)
	run := func() {
		if err := p.Let("ids", it); err != nil {
			b.Fatal(err)
		}
		if err := p.Run(); err != nil {
			b.Fatal(err)
		}
	}
	run()
	logits, err := p.Output("logits")
	require.NoError(b, err)
	require.Equal(b, []int{batch, cfg.NPositions, cfg.VocabSize}, []int(logits.Shape()))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		run()
	}
	b.ReportMetric(float64(batch*cfg.NPositions*b.N)/b.Elapsed().Seconds(), "tok/s")
}

func benchGenerate(b *testing.B, cfg Config) {
	m, err := New(cfg, 1)
	require.NoError(b, err)
	dec, err := m.NewDecoder(DecoderConfig{Overflow: Error})
	require.NoError(b, err)
	defer dec.Close()
	n := cfg.NPositions - 1 // 1 prompt token + n new = n_positions: the cache never slides
	lim := decode.Limits{MaxLen: n}
	out, err := decode.Greedy(dec, [][]int{{1}}, lim) // compiles the decode programs
	require.NoError(b, err)
	require.Len(b, out.Tokens[0], n)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := decode.Greedy(dec, [][]int{{1}}, lim); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "tok/s")
}

func benchBuild(b *testing.B, cfg Config, batch int) {
	m, err := New(cfg, 1)
	require.NoError(b, err)
	lm := LM{m}
	key := train.Key{Mode: blocks.Train, Batch: batch, Len: cfg.NPositions}
	nodes := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// What train.Trainer does for a new key: build, one G.Grad, compile.
		g := blocks.NewGraph(m.Store, blocks.Train, 1)
		built, err := lm.Build(g, key)
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
		vm := G.NewTapeMachine(g.G)
		vm.Close()
	}
	b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N), "ms")
	b.ReportMetric(float64(nodes), "nodes")
}
