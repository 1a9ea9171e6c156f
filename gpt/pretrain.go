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
// maxBatches batches of batch windows in order, 0 meaning all; a last
// batch short of windows is filled with empty rows), weighted by targets.
// Perplexity is exp of it. (EvalTokens scores a text's every token.)
func EvalLoss(tr *train.Trainer, lm LM, w *datasets.LMWindows, batch, maxBatches int) (float64, error) {
	var sum, n float64
	for start, k := 0, 0; start < w.Len() && (maxBatches == 0 || k < maxBatches); start, k = start+batch, k+1 {
		var ids, targets []int
		for i := start; i < min(start+batch, w.Len()); i++ {
			in, tg := w.At(i)
			ids, targets = append(ids, in...), append(targets, tg...)
		}
		l, wt, err := evalRows(tr, lm, batch, w.NCtx, ids, targets)
		if err != nil {
			return 0, err
		}
		sum, n = sum+l*wt, n+wt
	}
	if n == 0 {
		return 0, errors.Errorf("gpt: %d validation windows: nothing to evaluate", w.Len())
	}
	return sum / n, nil
}

// evalRows evaluates rows of steps ids and targets, filled up to batch
// rows with empty ones (every target ignored), and returns the mean loss
// and the number of targets it counted.
func evalRows(tr *train.Trainer, lm LM, batch, steps int, ids, targets []int) (loss, weight float64, err error) {
	for len(ids) < batch*steps {
		ids = append(ids, 0)
		targets = append(targets, IgnoreIndex)
	}
	b, err := lm.Batch(batch, steps, ids, targets)
	if err != nil {
		return 0, 0, err
	}
	r, err := tr.Evaluate(b)
	if err != nil {
		return 0, 0, err
	}
	return r.Loss, b.Weight, nil
}

// Scored is the result of EvalTokens.
type Scored struct {
	// Loss is the mean next-token loss in nats; Perplexity is exp(Loss).
	Loss, Perplexity float64
	// Tokens is the number of tokens scored: every token but the first.
	Tokens int
}

// EvalTokens scores every token of ids after the first, once: windows of
// n_positions tokens side by side, then, for the tail shorter than a
// window, one window ending at the last token whose already-scored
// targets are ignored (so the tail keeps a full context), or for a text
// shorter than a window one window filled with empty positions. Batches
// of batch windows, the last filled with empty rows, so every batch runs
// the one compiled program. progress, when not nil, is called after each
// batch with the windows done and their total.
func EvalTokens(tr *train.Trainer, lm LM, ids []int, batch int, progress func(done, total int)) (Scored, error) {
	T := lm.Config.NPositions
	if len(ids) < 2 {
		return Scored{}, errors.Errorf("gpt: %d tokens: nothing to score (a token is scored from those before it)", len(ids))
	}
	if batch < 1 {
		return Scored{}, errors.Errorf("gpt: batch %d must be positive", batch)
	}
	type window struct{ ids, targets []int }
	var windows []window
	covered := 0 // targets ids[1..covered] are scored
	for s := 0; s+T+1 <= len(ids); s += T {
		windows = append(windows, window{ids[s : s+T], ids[s+1 : s+T+1]})
		covered = s + T
	}
	if covered < len(ids)-1 {
		s := max(0, len(ids)-1-T)
		in := append([]int(nil), ids[s:len(ids)-1]...)
		tg := append([]int(nil), ids[s+1:]...)
		for i := range tg {
			if s+1+i <= covered {
				tg[i] = IgnoreIndex
			}
		}
		for len(in) < T {
			in, tg = append(in, 0), append(tg, IgnoreIndex)
		}
		windows = append(windows, window{in, tg})
	}
	var sum, n float64
	for start := 0; start < len(windows); start += batch {
		var in, tg []int
		for _, w := range windows[start:min(start+batch, len(windows))] {
			in, tg = append(in, w.ids...), append(tg, w.targets...)
		}
		l, wt, err := evalRows(tr, lm, batch, T, in, tg)
		if err != nil {
			return Scored{}, err
		}
		sum, n = sum+l*wt, n+wt
		if progress != nil {
			progress(min(start+batch, len(windows)), len(windows))
		}
	}
	loss := sum / n
	return Scored{Loss: loss, Perplexity: math.Exp(loss), Tokens: int(n)}, nil
}
