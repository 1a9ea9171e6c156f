package gpt

import (
	"encoding/json"

	"github.com/pkg/errors"

	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/train"
)

// LMData feeds the training loop windows of a token stream: each step
// takes Accum micro-batches of Batch shuffled windows, and the data order
// is a seeded shuffle per epoch whose position a checkpoint saves. The
// short last batch of an epoch is filled with empty rows (every target
// ignored, no weight), so every step runs the one compiled program.
type LMData struct {
	lm           LM
	it           *datasets.LMIterator
	batch, accum int
}

var _ train.Data = (*LMData)(nil)

// NewLMData returns the loop's data over windows, batch windows per
// micro-batch and accum micro-batches per step, shuffled from seed.
func (l LM) NewLMData(w *datasets.LMWindows, batch, accum int, seed uint64) (*LMData, error) {
	if batch <= 0 || accum <= 0 {
		return nil, errors.Errorf("gpt: batch %d and accumulation %d must be positive", batch, accum)
	}
	if w.NCtx > l.Config.NPositions {
		return nil, errors.Errorf("gpt: windows of %d tokens exceed n_positions %d", w.NCtx, l.Config.NPositions)
	}
	it, err := w.Iterator(batch, seed)
	if err != nil {
		return nil, err
	}
	return &LMData{lm: l, it: it, batch: batch, accum: accum}, nil
}

// Next implements train.Data.
func (d *LMData) Next() ([]train.Batch, error) {
	out := make([]train.Batch, d.accum)
	for i := range out {
		mb := d.it.Next()
		ids, targets := mb.Inputs, mb.Targets
		for range d.batch - mb.B {
			ids = append(ids, make([]int, mb.T)...)
			for range mb.T {
				targets = append(targets, IgnoreIndex)
			}
		}
		b, err := d.lm.Batch(max(d.batch, mb.B), mb.T, ids, targets)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

// Position implements train.Data.
func (d *LMData) Position() (json.RawMessage, error) {
	b, err := json.Marshal(d.it.Position())
	return b, errors.Wrap(err, "gpt: data position")
}

// Restore implements train.Data.
func (d *LMData) Restore(pos json.RawMessage) error {
	var p datasets.Position
	if err := json.Unmarshal(pos, &p); err != nil {
		return errors.Wrap(err, "gpt: data position")
	}
	return d.it.Restore(p)
}

// Evaluator returns the loop's validation metrics: "loss" (nats per token)
// and "ppl" = exp(loss) over the first maxBatches batches of valid (0: all).
func (l LM) Evaluator(valid *datasets.LMWindows, batch, maxBatches int) train.Evaluator {
	return train.LossEvaluator(func(t *train.Trainer) (float64, error) { return EvalLoss(t, l, valid, batch, maxBatches) })
}
