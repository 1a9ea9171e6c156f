package bert

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/train"
)

// sotu is the addresses since 1990, nine documents in ten for training and
// the tenth for validation, as gpt's pre-training test splits them.
func sotu(t *testing.T) (trainText, validText string) {
	docs, err := datasets.SOTU()
	require.NoError(t, err)
	var tr, va strings.Builder
	k := 0
	for _, d := range docs {
		if d.Year < 1990 {
			continue
		}
		if k%10 == 9 {
			va.WriteString(d.Text + "\n")
		} else {
			tr.WriteString(d.Text + "\n")
		}
		k++
	}
	return tr.String(), va.String()
}

// unigramLoss is the cross-entropy (nats per target) on the targets of ex
// of a unigram model fitted to ids with add-one smoothing, and the
// accuracy of always predicting the most frequent token: what a masked LM
// that ignores the context would reach.
func unigramLoss(ids []int, vocab int, ex []Example) (loss, acc float64) {
	counts := make([]float64, vocab)
	for _, id := range ids {
		counts[id]++
	}
	top := argmax(counts)
	total := float64(len(ids) + vocab)
	var nll float64
	n, right := 0, 0
	for _, e := range ex {
		for _, t := range e.Targets {
			nll -= math.Log((counts[t] + 1) / total)
			if t == top {
				right++
			}
			n++
		}
	}
	return nll / float64(n), float64(right) / float64(n)
}

// TestPretrainBeatsUnigramOnSOTU pre-trains a tiny BERT on real text (the
// embedded State of the Union addresses, a byte-level BPE trained on the
// training documents with BERT's four special tokens added) and checks that
// the masked-LM loss on held-out addresses falls below a unigram model's,
// and the masked-token accuracy rises above always guessing the most
// frequent token, within a bounded number of steps. That much a model can
// reach without reading the context, by copying the targets left as they
// were (10%): at the [MASK]s themselves (logged) 300 steps are still
// short of the most frequent token's accuracy. TestMLMLearnsContext shows
// the context being read.
func TestPretrainBeatsUnigramOnSOTU(t *testing.T) {
	trainText, validText := sotu(t)
	tok, err := datasets.TrainBPE([]string{trainText}, datasets.BPEConfig{Merges: 128})
	require.NoError(t, err)
	sp, err := AddSpecials(tok)
	require.NoError(t, err)
	trainIDs, validIDs := tok.Encode(trainText), tok.Encode(validText)

	cfg := Tiny()
	cfg.VocabSize, cfg.PadTokenID = tok.VocabSize(), sp.PAD
	cfg.HiddenDropoutProb, cfg.AttentionProbsDropoutProb = 0, 0
	m, err := New(cfg, 1)
	require.NoError(t, err)
	mk, err := NewMasker(BERTMasking(), sp, tok.VocabSize(), tok.IsSpecial)
	require.NoError(t, err)
	l := MLM{Model: m, Masker: mk}
	const steps, batch, T = 300, 16, 32
	lr := 2e-3
	opt, err := train.NewAdamW(train.AdamConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, WeightDecay: 0.01, DecayMatricesOnly: true})
	require.NoError(t, err)
	sched, err := train.NewWarmupDecay(lr, lr/10, 20, steps, train.Linear)
	require.NoError(t, err)
	tr, err := train.New(l, train.Config{Optimizer: opt, Schedule: sched, ClipNorm: 1, DropoutSeed: 1})
	require.NoError(t, err)
	defer tr.Close()

	tw, err := datasets.NewLMWindows(trainIDs, l.WindowTokens(T), 0)
	require.NoError(t, err)
	vw, err := datasets.NewLMWindows(validIDs, l.WindowTokens(T), 0)
	require.NoError(t, err)
	valid := l.Examples(vw, 0, 99)[:256]
	uniLoss, uniAcc := unigramLoss(trainIDs, tok.VocabSize(), valid)
	data, err := l.NewPretrainData(tw, batch, 1, 1)
	require.NoError(t, err)
	before, err := l.Evaluate(tr, valid, batch)
	require.NoError(t, err)
	for s := 0; s < steps; s++ {
		bs, err := data.Next()
		require.NoError(t, err)
		r, err := tr.Step(bs...)
		require.NoError(t, err)
		if s%50 == 0 {
			t.Logf("step %d loss %.3f lr %.4g gnorm %.3f", s, r.Loss, r.LR, r.GradNorm)
		}
	}
	after, err := l.Evaluate(tr, valid, batch)
	require.NoError(t, err)
	t.Logf("vocab %d; %d validation targets: loss %.3f → %.3f (unigram %.3f), accuracy %.3f → %.3f, at [MASK]s %.3f → %.3f (most frequent token %.3f)",
		tok.VocabSize(), after.Targets, before.Loss, after.Loss, uniLoss, before.Accuracy, after.Accuracy, before.MaskAccuracy, after.MaskAccuracy, uniAcc)
	require.Greater(t, before.Loss, uniLoss, "an untrained model is worse than unigram")
	assert.Less(t, after.Loss, uniLoss, "validation MLM loss after %d steps", steps)
	assert.Greater(t, after.Accuracy, uniAcc, "validation accuracy after %d steps", steps)
	assert.Equal(t, 2, tr.Stats().Builds, "one training program for every step, one evaluation program")
}

// stream is a seeded random stream of n ordinary ids of a vocabulary of
// 40 whose first four ids are BERT's specials.
func stream(n int) []int {
	rng := rand.New(rand.NewPCG(uint64(n), 1))
	s := make([]int, n)
	for i := range s {
		s[i] = 4 + rng.IntN(36)
	}
	return s
}

func testMLM(t *testing.T, nsp bool) MLM {
	cfg := Tiny()
	cfg.VocabSize, cfg.NumHiddenLayers, cfg.MaxPositionEmbeddings, cfg.NSP = 40, 1, 16, nsp
	m, err := New(cfg, 1)
	require.NoError(t, err)
	return MLM{Model: m, Masker: testMasker(t, 40)}
}

// TestPretrainDataPadsShortBatchAndResumes: 7 windows in batches of 3 make
// an epoch of 3, 3 and 1; the short batch is filled with empty rows (one
// key for every batch, weight only its targets); each epoch masks the
// windows afresh; and restoring a saved position gives the same batches.
func TestPretrainDataPadsShortBatchAndResumes(t *testing.T) {
	l := testMLM(t, false)
	w, err := datasets.NewLMWindows(stream(7*10+1), l.WindowTokens(12), 0)
	require.NoError(t, err)
	require.Equal(t, 7, w.Len())
	data, err := l.NewPretrainData(w, 3, 1, 5)
	require.NoError(t, err)
	assert.Equal(t, 12, data.Steps())
	var epoch0 []train.Batch
	for range 3 {
		bs, err := data.Next()
		require.NoError(t, err)
		require.Len(t, bs, 1)
		assert.Equal(t, train.Key{Batch: 3, Len: 12}, bs[0].Key)
		epoch0 = append(epoch0, bs[0])
	}
	weights := []float64{epoch0[0].Weight, epoch0[1].Weight, epoch0[2].Weight}
	assert.ElementsMatch(t, []float64{3 * 2, 3 * 2, 2}, weights, "PerRow(10) = 2 targets per window")
	pos, err := data.Position()
	require.NoError(t, err)
	next, err := data.Next()
	require.NoError(t, err)
	require.NoError(t, data.Restore(pos))
	again, err := data.Next()
	require.NoError(t, err)
	assert.Equal(t, next, again, "a restored position gives the same batch")
	assert.Equal(t, l.Example(w, 3, 1, 5), l.Example(w, 3, 1, 5))
	assert.NotEqual(t, l.Example(w, 3, 0, 5).Positions, l.Example(w, 3, 1, 5).Positions, "each epoch masks afresh")

	_, err = l.NewPretrainData(w, 0, 1, 5)
	assert.ErrorContains(t, err, "batch 0 and accumulation 1 must be positive")
	long, err := datasets.NewLMWindows(stream(100), 15, 0)
	require.NoError(t, err)
	_, err = l.NewPretrainData(long, 2, 1, 5)
	assert.ErrorContains(t, err, "examples of 17, more than max_position_embeddings 16")
}

// TestNSPExamples: with NSP an example is [CLS] A [SEP] B [SEP], A in
// segment 0 and B in segment 1, B the continuation of A about half the
// time (label 0) and the start of another window otherwise (label 1).
func TestNSPExamples(t *testing.T) {
	l := testMLM(t, true)
	s := stream(400*13 + 1)
	w, err := datasets.NewLMWindows(s, l.WindowTokens(16), 0)
	require.NoError(t, err)
	sp := l.Masker.Specials
	random := 0
	for i := range w.Len() {
		ex := l.Example(w, i, 0, 3)
		require.Len(t, ex.IDs, 16)
		assert.Equal(t, sp.CLS, ex.IDs[0])
		assert.Equal(t, sp.SEP, ex.IDs[15])
		orig := append([]int(nil), ex.IDs...)
		for k, p := range ex.Positions {
			orig[p] = ex.Targets[k]
		}
		sep := 0
		for j := 1; j < 15; j++ {
			if orig[j] == sp.SEP {
				sep = j
			}
		}
		require.Positive(t, sep, "a [SEP] between A and B")
		for j, sg := range ex.Segments {
			assert.Equal(t, map[bool]int{false: 0, true: 1}[j > sep], sg, "window %d position %d", i, j)
		}
		text, _ := w.At(i)
		assert.Equal(t, text[:sep-1], orig[1:sep], "A is the start of the window")
		if ex.NextLabel == 0 {
			assert.Equal(t, text[sep-1:], orig[sep+1:15], "B continues A")
		} else {
			random++
			assert.NotEqual(t, text[sep-1:], orig[sep+1:15])
		}
	}
	assert.InDelta(t, 0.5, float64(random)/float64(w.Len()), 0.08)

	b, err := l.Batch([]Example{l.Example(w, 0, 0, 3)}, 2, 16)
	require.NoError(t, err)
	assert.Equal(t, []float32{float32(l.Example(w, 0, 0, 3).NextLabel), IgnoreIndex}, b.Inputs["nsp_labels"].Data())
	tr, err := train.New(l, train.Config{Optimizer: mustSGD(t), Schedule: train.Constant(0)})
	require.NoError(t, err)
	defer tr.Close()
	met, err := l.Evaluator(l.Examples(w, 0, 1)[:8], 4, 0)(tr)
	require.NoError(t, err)
	for _, k := range []string{"loss", "ppl", "accuracy", "nsp_accuracy"} {
		assert.Contains(t, met, k)
	}
	assert.InDelta(t, math.Exp(met["loss"]), met["ppl"], 1e-9)
}

func mustSGD(t *testing.T) train.Optimizer {
	o, err := train.NewSGD(train.SGDConfig{})
	require.NoError(t, err)
	return o
}

// TestMLMLearnsContext: on a constructed stream in which every token comes
// twice in a row ("x x y y …"), a token under [MASK] can be told only from
// its neighbours. A tiny BERT's accuracy at the [MASK]s, 1/36 by chance,
// passes 70% within 600 steps: the bidirectional attention learns to read
// the context (after a plateau at the unigram solution, which real text at
// this size stays on far longer).
func TestMLMLearnsContext(t *testing.T) {
	doubled := func(n int, seed uint64) []int {
		rng := rand.New(rand.NewPCG(seed, 1))
		var s []int
		for range n {
			x := 4 + rng.IntN(36)
			s = append(s, x, x)
		}
		return s
	}
	cfg := Tiny()
	cfg.VocabSize, cfg.MaxPositionEmbeddings, cfg.PadTokenID = 40, 16, 0
	cfg.HiddenDropoutProb, cfg.AttentionProbsDropoutProb = 0, 0
	m, err := New(cfg, 1)
	require.NoError(t, err)
	l := MLM{Model: m, Masker: testMasker(t, 40)}
	w, err := datasets.NewLMWindows(doubled(20000, 1), l.WindowTokens(16), 0)
	require.NoError(t, err)
	vw, err := datasets.NewLMWindows(doubled(1500, 2), l.WindowTokens(16), 0)
	require.NoError(t, err)
	data, err := l.NewPretrainData(w, 16, 1, 1)
	require.NoError(t, err)
	opt, err := train.NewAdamW(train.AdamConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, WeightDecay: 0.01, DecayMatricesOnly: true})
	require.NoError(t, err)
	const steps = 600
	sched, err := train.NewWarmupDecay(2e-3, 2e-4, 20, steps, train.Linear)
	require.NoError(t, err)
	tr, err := train.New(l, train.Config{Optimizer: opt, Schedule: sched, ClipNorm: 1, DropoutSeed: 1})
	require.NoError(t, err)
	defer tr.Close()
	valid := l.Examples(vw, 0, 5) // a stream of its own
	for range steps {
		bs, err := data.Next()
		require.NoError(t, err)
		_, err = tr.Step(bs...)
		require.NoError(t, err)
	}
	met, err := l.Evaluate(tr, valid, 16)
	require.NoError(t, err)
	t.Logf("after %d steps: loss %.3f, accuracy %.3f, at [MASK]s %.3f", steps, met.Loss, met.Accuracy, met.MaskAccuracy)
	assert.Greater(t, met.MaskAccuracy, 0.7)
}
