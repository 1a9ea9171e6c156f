package gpt

import (
	"math"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seq2gpt/seq2gpt/blocks"
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

// TestAttentionWeightsMatchTorch: the KindAttention program outputs each
// layer's softmax weights, which equal torch's for the same prompt, sum to
// 1 over each row and are 0 above the diagonal.
func TestAttentionWeightsMatchTorch(t *testing.T) {
	for _, name := range []string{"hf-gelu", "hf-silu"} {
		dir := filepath.Join("testdata", name)
		ref := loadReference(t, dir)
		m, err := Load(dir)
		require.NoError(t, err)
		T := len(ref.Prompts[0])
		p, err := train.Compile(LM{m}, train.Key{Mode: blocks.Eval, Kind: KindAttention, Batch: 1, Len: T}, 0)
		require.NoError(t, err)
		defer p.Close()
		it, err := blocks.IDs(ref.Prompts[0], m.Config.VocabSize)
		require.NoError(t, err)
		require.NoError(t, p.Let("ids", it))
		require.NoError(t, p.Run())
		require.Len(t, ref.Attention, m.Config.NLayer)
		for l := range ref.Attention {
			v, err := p.Output("attention." + strconv.Itoa(l))
			require.NoError(t, err)
			assert.Equal(t, []int{1, m.Config.NHead, T, T}, []int(v.Shape()))
			got := v.Data().([]float32)
			require.Len(t, got, len(ref.Attention[l]))
			for i, w := range ref.Attention[l] {
				assert.InDelta(t, w, float64(got[i]), 1e-6, "%s layer %d weight %d", name, l, i)
			}
			for h := 0; h < m.Config.NHead; h++ {
				for i := 0; i < T; i++ {
					sum := 0.0
					for j := 0; j < T; j++ {
						a := float64(got[(h*T+i)*T+j])
						sum += a
						if j > i {
							assert.Zero(t, a, "causal: position %d does not see %d", i, j)
						}
					}
					assert.InDelta(t, 1, sum, 1e-6)
				}
			}
		}
	}
}
