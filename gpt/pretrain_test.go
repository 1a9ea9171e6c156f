package gpt

import (
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/train"
)

// TestPretrainBeatsUnigramOnSOTU trains a tiny GPT on real text (the
// embedded State of the Union addresses, byte-level BPE trained on the
// training documents) and checks that validation loss falls below a
// unigram model's within a bounded number of steps.
func TestPretrainBeatsUnigramOnSOTU(t *testing.T) {
	docs, err := datasets.SOTU()
	require.NoError(t, err)
	// The addresses since 1990: ~9 train documents to one validation one.
	var trainText, validText strings.Builder
	k := 0
	for _, d := range docs {
		if d.Year < 1990 {
			continue
		}
		if k%10 == 9 {
			validText.WriteString(d.Text + "\n")
		} else {
			trainText.WriteString(d.Text + "\n")
		}
		k++
	}
	tok, err := datasets.TrainBPE([]string{trainText.String()}, datasets.BPEConfig{Merges: 128})
	require.NoError(t, err)
	trainIDs, validIDs := tok.Encode(trainText.String()), tok.Encode(validText.String())
	unigram, err := UnigramLoss(trainIDs, validIDs, tok.VocabSize())
	require.NoError(t, err)

	cfg := Tiny()
	cfg.VocabSize = tok.VocabSize()
	cfg.EmbdPdrop, cfg.AttnPdrop, cfg.ResidPdrop = 0, 0, 0
	m, err := New(cfg, 1)
	require.NoError(t, err)
	lm := LM{m}
	const steps, batch = 250, 16
	opt, err := train.NewAdamW(train.AdamConfig{Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 0.01, DecayMatricesOnly: true})
	require.NoError(t, err)
	sched, err := train.NewWarmupDecay(2e-3, 2e-4, 20, steps, train.Cosine)
	require.NoError(t, err)
	tr, err := train.New(lm, train.Config{Optimizer: opt, Schedule: sched, ClipNorm: 1, DropoutSeed: 1})
	require.NoError(t, err)
	defer tr.Close()

	tw, err := datasets.NewLMWindows(trainIDs, cfg.NPositions, 0)
	require.NoError(t, err)
	vw, err := datasets.NewLMWindows(validIDs, cfg.NPositions, 0)
	require.NoError(t, err)
	it, err := tw.Iterator(batch, 1)
	require.NoError(t, err)
	before, err := EvalLoss(tr, lm, vw, batch, 8)
	require.NoError(t, err)
	for s := 0; s < steps; s++ {
		mb := it.Next()
		b, err := lm.Batch(mb.B, mb.T, mb.Inputs, mb.Targets)
		require.NoError(t, err)
		r, err := tr.Step(b)
		require.NoError(t, err)
		if s%50 == 0 {
			t.Logf("step %d loss %.3f lr %.4g gnorm %.3f idx %v", s, r.Loss, r.LR, r.GradNorm, mb.Index[:3])
		}
	}
	after, err := EvalLoss(tr, lm, vw, batch, 8)
	require.NoError(t, err)
	t.Logf("vocab %d, train %d tokens, valid %d; validation loss %.3f → %.3f, unigram %.3f", tok.VocabSize(), len(trainIDs), len(validIDs), before, after, unigram)
	require.Greater(t, before, unigram, "an untrained model should be worse than unigram")
	require.Less(t, after, unigram, "validation loss after %d steps", steps)
}

// TestLMDataPadsShortBatch: 7 windows in batches of 3 make an epoch of
// 3, 3 and 1 windows; the short one is filled with 2 empty rows, so every
// micro-batch has the one key, and its weight counts only real targets.
func TestLMDataPadsShortBatch(t *testing.T) {
	cfg := Tiny()
	cfg.VocabSize, cfg.NPositions, cfg.NLayer = 30, 8, 1
	m, err := New(cfg, 1)
	require.NoError(t, err)
	tokens := make([]int, 7*4+1)
	for i := range tokens {
		tokens[i] = i % 30
	}
	w, err := datasets.NewLMWindows(tokens, 4, 0)
	require.NoError(t, err)
	require.Equal(t, 7, w.Len())
	data, err := LM{m}.NewLMData(w, 3, 1, 5)
	require.NoError(t, err)
	var weights []float64
	for range 3 {
		bs, err := data.Next()
		require.NoError(t, err)
		require.Len(t, bs, 1)
		assert.Equal(t, train.Key{Batch: 3, Len: 4}, bs[0].Key)
		weights = append(weights, bs[0].Weight)
	}
	sort.Float64s(weights)
	assert.Equal(t, []float64{4, 12, 12}, weights, "the short batch counts its one window")
}
