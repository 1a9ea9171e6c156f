package transformer

import (
	"encoding/json"
	"math"

	"github.com/pkg/errors"

	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/train"
)

// Data feeds train.Run: each step takes Accum batches of sentence pairs
// from a datasets.Batcher (sources made by Model.Source, targets by
// Model.Target), whose shuffled order per epoch a checkpoint saves as a
// position.
type Data struct {
	t     Translator
	it    *datasets.BatchIterator
	accum int
}

var _ train.Data = (*Data)(nil)

// NewData returns the loop's data over b, accum batches per step.
func (m *Model) NewData(b *datasets.Batcher, accum int) (*Data, error) {
	if b == nil || accum <= 0 {
		return nil, errors.Errorf("transformer: data needs a batcher and a positive accumulation, got %d", accum)
	}
	return &Data{t: Translator{m}, it: b.Iterator(), accum: accum}, nil
}

// Next implements train.Data.
func (d *Data) Next() ([]train.Batch, error) {
	out := make([]train.Batch, d.accum)
	for i := range out {
		b, err := d.t.Batch(d.it.Next())
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
	return b, errors.Wrap(err, "transformer: data position")
}

// Restore implements train.Data.
func (d *Data) Restore(pos json.RawMessage) error {
	var p datasets.Position
	if err := json.Unmarshal(pos, &p); err != nil {
		return errors.Wrap(err, "transformer: data position")
	}
	return d.it.Restore(p)
}

// EvalLoss is the teacher-forced negative log-likelihood (nats per target
// token, end tokens included, no label smoothing) over every batch of
// valid in its fixed order.
func (m *Model) EvalLoss(t *train.Trainer, valid *datasets.Batcher) (float64, error) {
	tr := Translator{m}
	var sum, n float64
	for _, idx := range valid.Plan(0) {
		b, err := tr.Batch(valid.Make(idx))
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
		return 0, errors.New("transformer: no validation targets")
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
