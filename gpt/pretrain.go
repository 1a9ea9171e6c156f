package gpt

import (
	"math"

	"github.com/pkg/errors"

	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/train"
)

// UnigramLoss is the cross-entropy (nats per token) on valid of a unigram
// model fitted to train with add-one smoothing: the loss a language model
// that ignores context would reach, the bar pre-training must clear.
func UnigramLoss(trainIDs, validIDs []int, vocab int) (float64, error) {
	if len(validIDs) == 0 {
		return 0, errors.New("gpt: no validation tokens")
	}
	counts := make([]float64, vocab)
	for _, id := range trainIDs {
		if id < 0 || id >= vocab {
			return 0, errors.Errorf("gpt: token %d outside the vocabulary [0, %d)", id, vocab)
		}
		counts[id]++
	}
	total := float64(len(trainIDs) + vocab)
	var nll float64
	for _, id := range validIDs {
		if id < 0 || id >= vocab {
			return 0, errors.Errorf("gpt: token %d outside the vocabulary [0, %d)", id, vocab)
		}
		nll -= math.Log((counts[id] + 1) / total)
	}
	return nll / float64(len(validIDs)), nil
}

// EvalLoss is the mean next-token loss over the windows (the first
// maxBatches batches of batch windows in order; 0 means all), weighted by
// targets. Perplexity is exp of it.
func EvalLoss(tr *train.Trainer, lm LM, w *datasets.LMWindows, batch, maxBatches int) (float64, error) {
	var sum, n float64
	for start, k := 0, 0; start+batch <= w.Len() && (maxBatches == 0 || k < maxBatches); start, k = start+batch, k+1 {
		idx := make([]int, batch)
		for i := range idx {
			idx[i] = start + i
		}
		mb := w.Make(idx)
		b, err := lm.Batch(mb.B, mb.T, mb.Inputs, mb.Targets)
		if err != nil {
			return 0, err
		}
		r, err := tr.Evaluate(b)
		if err != nil {
			return 0, err
		}
		sum += r.Loss * b.Weight
		n += b.Weight
	}
	if n == 0 {
		return 0, errors.Errorf("gpt: %d validation windows are fewer than one batch of %d", w.Len(), batch)
	}
	return sum / n, nil
}
