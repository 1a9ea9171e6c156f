package gpt

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/train"
)

func evalTrainer(t *testing.T, lm LM) *train.Trainer {
	opt, err := train.NewSGD(train.SGDConfig{})
	require.NoError(t, err)
	tr, err := train.New(lm, train.Config{Optimizer: opt, Schedule: train.Constant(0)})
	require.NoError(t, err)
	t.Cleanup(func() { tr.Close() })
	return tr
}

// TestEvalTokensScoresEveryToken: every token after the first is scored
// exactly once, whatever the length and the batch (the windows' tail and a
// partial last batch were dropped: 514,304 of 514,530 tokens at batch 8),
// and the loss does not depend on the batch size. On whole batches of
// whole windows it is EvalLoss's.
func TestEvalTokensScoresEveryToken(t *testing.T) {
	m, err := Load(filepath.Join("testdata", "hf-gelu")) // n_positions 40, vocabulary 50
	require.NoError(t, err)
	lm := LM{m}
	tr := evalTrainer(t, lm)
	stream := make([]int, 1000)
	for i := range stream {
		stream[i] = (i*i*7 + 3*i) % 50
	}
	for _, n := range []int{2, 30, 41, 42, 100, 401, 1000} {
		ids := stream[:n]
		var losses []float64
		for _, batch := range []int{1, 3, 8} {
			var calls, last int
			s, err := EvalTokens(tr, lm, ids, batch, func(done, _ int) { calls++; last = done })
			require.NoError(t, err, "n %d batch %d", n, batch)
			assert.Equal(t, n-1, s.Tokens, "n %d batch %d: every token after the first", n, batch)
			assert.InDelta(t, math.Exp(s.Loss), s.Perplexity, 1e-9)
			windows := (n-1)/40 + min(1, (n-1)%40)
			assert.Equal(t, (windows+batch-1)/batch, calls, "n %d batch %d: a progress call a batch", n, batch)
			assert.Equal(t, windows, last)
			losses = append(losses, s.Loss)
		}
		for _, l := range losses[1:] {
			assert.InDelta(t, losses[0], l, 1e-5, "n %d: the batch size changes nothing", n)
		}
	}
	// 8 whole windows in whole batches: EvalLoss's figure.
	ids := stream[:8*40+1]
	w, err := datasets.NewLMWindows(ids, 40, 0)
	require.NoError(t, err)
	want, err := EvalLoss(tr, lm, w, 4, 0)
	require.NoError(t, err)
	s, err := EvalTokens(tr, lm, ids, 4, nil)
	require.NoError(t, err)
	assert.InDelta(t, want, s.Loss, 1e-6)
	// EvalLoss over all windows counts a partial last batch too.
	part, err := EvalLoss(tr, lm, w, 3, 0)
	require.NoError(t, err)
	assert.InDelta(t, want, part, 1e-5)

	_, err = EvalTokens(tr, lm, stream[:1], 4, nil)
	assert.ErrorContains(t, err, "1 tokens: nothing to score")
}
