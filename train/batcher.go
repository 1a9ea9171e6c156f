package train

import (
	"encoding/json"
	"math"

	"github.com/pkg/errors"

	"github.com/seq2gpt/seq2gpt/datasets"
)

// BatcherData feeds Run from a datasets.Batcher: each step takes accum of
// its batches, each made a Batch by convert (a model's own inputs), and a
// checkpoint saves the batcher's shuffled order as a position. The
// encoder–decoder models (seq2seq, transformer) use it.
type BatcherData struct {
	what    string
	it      *datasets.BatchIterator
	accum   int
	convert func(datasets.Batch) (Batch, error)
}

var _ Data = (*BatcherData)(nil)

// NewBatcherData returns the loop's data over b, accum batches per step;
// what names the model in errors.
func NewBatcherData(what string, b *datasets.Batcher, accum int, convert func(datasets.Batch) (Batch, error)) (*BatcherData, error) {
	if b == nil || accum <= 0 {
		return nil, errors.Errorf("%s: data needs a batcher and a positive accumulation, got %d", what, accum)
	}
	return &BatcherData{what: what, it: b.Iterator(), accum: accum, convert: convert}, nil
}

// Next implements Data.
func (d *BatcherData) Next() ([]Batch, error) {
	out := make([]Batch, d.accum)
	for i := range out {
		b, err := d.convert(d.it.Next())
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

// Position implements Data.
func (d *BatcherData) Position() (json.RawMessage, error) {
	b, err := json.Marshal(d.it.Position())
	return b, errors.Wrapf(err, "%s: data position", d.what)
}

// Restore implements Data.
func (d *BatcherData) Restore(pos json.RawMessage) error {
	var p datasets.Position
	if err := json.Unmarshal(pos, &p); err != nil {
		return errors.Wrapf(err, "%s: data position", d.what)
	}
	return d.it.Restore(p)
}

// BatcherLoss is the evaluation loss per counted target (the batches'
// weights) over every batch of valid in its fixed order, each made a
// Batch by convert; what names the model in errors.
func BatcherLoss(what string, t *Trainer, valid *datasets.Batcher, convert func(datasets.Batch) (Batch, error)) (float64, error) {
	var sum, n float64
	for _, idx := range valid.Plan(0) {
		b, err := convert(valid.Make(idx))
		if err != nil {
			return 0, err
		}
		r, err := t.Evaluate(b)
		if err != nil {
			return 0, err
		}
		sum += r.Loss * b.Weight
		n += b.Weight
	}
	if n == 0 {
		return 0, errors.Errorf("%s: no validation targets", what)
	}
	return sum / n, nil
}

// LossEvaluator returns the loop's validation metrics "loss" and
// "ppl" = exp(loss) from loss.
func LossEvaluator(loss func(*Trainer) (float64, error)) Evaluator {
	return func(t *Trainer) (map[string]float64, error) {
		l, err := loss(t)
		if err != nil {
			return nil, err
		}
		return map[string]float64{"loss": l, "ppl": math.Exp(l)}, nil
	}
}
