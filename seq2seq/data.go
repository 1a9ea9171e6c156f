package seq2seq

import (
	"encoding/json"
	"math"

	"github.com/pkg/errors"

	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/train"
)

// Data feeds train.Run: each step takes Accum batches of sentence pairs
// from a datasets.Batcher (sources in Source's form, targets in Target's),
// whose shuffled order per epoch a checkpoint saves as a position.
type Data struct {
	m     *Model
	it    *datasets.BatchIterator
	accum int
}

var _ train.Data = (*Data)(nil)

// NewData returns the loop's data over b, accum batches per step.
func (m *Model) NewData(b *datasets.Batcher, accum int) (*Data, error) {
	if b == nil || accum <= 0 {
		return nil, errors.Errorf("seq2seq: data needs a batcher and a positive accumulation, got %d", accum)
	}
	return &Data{m: m, it: b.Iterator(), accum: accum}, nil
}

// Next implements train.Data.
func (d *Data) Next() ([]train.Batch, error) {
	out := make([]train.Batch, d.accum)
	for i := range out {
		b, err := d.m.Batch(d.it.Next())
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

// Position implements train.Data.
func (d *Data) Position() (json.RawMessage, error) {
	b, err := json.Marshal(d.it.Position())
	return b, errors.Wrap(err, "seq2seq: data position")
}

// Restore implements train.Data.
func (d *Data) Restore(pos json.RawMessage) error {
	var p datasets.Position
	if err := json.Unmarshal(pos, &p); err != nil {
		return errors.Wrap(err, "seq2seq: data position")
	}
	return d.it.Restore(p)
}

// EvalLoss is the teacher-forced cross-entropy (nats per target token,
// end tokens included) over every batch of valid in its fixed order.
func (m *Model) EvalLoss(t *train.Trainer, valid *datasets.Batcher) (float64, error) {
	var sum, n float64
	for _, idx := range valid.Plan(0) {
		b, err := m.Batch(valid.Make(idx))
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
		return 0, errors.New("seq2seq: no validation targets")
	}
	return sum / n, nil
}

// LossEvaluator returns the loop's validation metrics "loss" and
// "ppl" = exp(loss) over valid (built with Shuffle false).
func (m *Model) LossEvaluator(valid *datasets.Batcher) train.Evaluator {
	return func(t *train.Trainer) (map[string]float64, error) {
		loss, err := m.EvalLoss(t, valid)
		if err != nil {
			return nil, err
		}
		return map[string]float64{"loss": loss, "ppl": math.Exp(loss)}, nil
	}
}
