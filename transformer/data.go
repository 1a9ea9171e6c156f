package transformer

import (
	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/train"
)

// NewData returns the loop's data over b, accum batches of sentence pairs
// per step (sources made by Model.Source, targets by Model.Target); a
// checkpoint saves the batcher's shuffled order as a position.
func (m *Model) NewData(b *datasets.Batcher, accum int) (*train.BatcherData, error) {
	return train.NewBatcherData("transformer", b, accum, Translator{m}.Batch)
}

// EvalLoss is the teacher-forced negative log-likelihood (nats per target
// token, end tokens included, no label smoothing) over every batch of
// valid in its fixed order.
func (m *Model) EvalLoss(t *train.Trainer, valid *datasets.Batcher) (float64, error) {
	return train.BatcherLoss("transformer", t, valid, Translator{m}.Batch)
}

// LossEvaluator returns the loop's validation metrics "loss" and
// "ppl" = exp(loss) over valid (built with Shuffle false).
func (m *Model) LossEvaluator(valid *datasets.Batcher) train.Evaluator {
	return train.LossEvaluator(func(t *train.Trainer) (float64, error) { return m.EvalLoss(t, valid) })
}
