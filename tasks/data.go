package tasks

import (
	"encoding/json"
	"io"
	"math"

	"github.com/pkg/errors"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/metrics"
	"github.com/seq2gpt/seq2gpt/train"
)

// DefaultBuckets are the lengths batches are padded to: 16, 32, 64, …
// below maxLen, and maxLen. Each bucket is one compiled program.
func DefaultBuckets(maxLen int) datasets.Buckets {
	var edges []int
	for e := 16; e < maxLen; e *= 2 {
		edges = append(edges, e)
	}
	b, _ := datasets.NewBuckets(append(edges, max(maxLen, 1))...)
	return b
}

// DataConfig configures a model's training data.
type DataConfig struct {
	Batch  int // examples per step (the paper: 32)
	Epochs int // passes over the data (the paper: 3); 0 never ends
	// Buckets are the lengths batches are padded to (zero:
	// DefaultBuckets of the body's MaxLen).
	Buckets datasets.Buckets
	Seed    uint64 // the shuffle of every epoch
}

// Data feeds the training loop with batches of Batch examples: each epoch
// is a seeded shuffle, grouped by length bucket, so a batch is padded
// little and every batch of a bucket runs one program (a short one gets
// empty rows that count for nothing). Its position (epoch and batch) is
// saved in checkpoints and restored exactly.
type Data struct {
	m                *Model
	inputs           []Input
	batcher          *datasets.Batcher
	it               *datasets.BatchIterator
	epochs, perEpoch int
}

var _ train.Data = (*Data)(nil)

// NewData returns the loop's data over inputs.
func (m *Model) NewData(inputs []Input, cfg DataConfig) (*Data, error) {
	if cfg.Batch <= 0 || cfg.Epochs < 0 {
		return nil, errors.Errorf("tasks: batch %d must be positive and epochs %d not negative", cfg.Batch, cfg.Epochs)
	}
	b, err := m.batcher(inputs, cfg.Batch, cfg.Buckets, true, cfg.Seed)
	if err != nil {
		return nil, err
	}
	return &Data{m: m, inputs: inputs, batcher: b, it: b.Iterator(), epochs: cfg.Epochs, perEpoch: len(b.Plan(0))}, nil
}

// batcher groups inputs by the bucket of their longest sequence, batch
// examples a batch.
func (m *Model) batcher(inputs []Input, batch int, buckets datasets.Buckets, shuffle bool, seed uint64) (*datasets.Batcher, error) {
	if len(inputs) == 0 {
		return nil, errors.New("tasks: no inputs")
	}
	if buckets.IsZero() {
		buckets = DefaultBuckets(m.Body.Template().MaxLen)
	}
	if buckets.Max() > m.Body.Template().MaxLen {
		return nil, errors.Errorf("tasks: the longest bucket %d is past the body's %d positions", buckets.Max(), m.Body.Template().MaxLen)
	}
	lens := make([][]int, len(inputs)) // the Batcher plans by length alone
	for i, in := range inputs {
		if len(in.Seqs) == 0 {
			return nil, errors.Errorf("tasks: input %d has no sequences", i)
		}
		lens[i] = make([]int, in.Longest())
	}
	return datasets.NewBatcher(lens, nil, datasets.BatchConfig{
		MaxTokens: batch * buckets.Max(), MaxRows: batch, Buckets: buckets, Seed: seed, Shuffle: shuffle})
}

// StepsPerEpoch is the number of batches in an epoch.
func (d *Data) StepsPerEpoch() int { return d.perEpoch }

// Steps is the number of steps of all the epochs (0 when endless).
func (d *Data) Steps() int { return d.epochs * d.perEpoch }

// Next implements train.Data; after the last epoch it returns io.EOF.
func (d *Data) Next() ([]train.Batch, error) {
	if p := d.it.Position(); d.epochs > 0 && (p.Epoch >= d.epochs || (p.Epoch == d.epochs-1 && p.Step >= d.perEpoch)) {
		return nil, io.EOF
	}
	pb := d.it.Next()
	b, err := d.m.Batch(pick(d.inputs, pb.Index), pb.Source.B, pb.Source.T, true)
	if err != nil {
		return nil, err
	}
	return []train.Batch{b}, nil
}

// Position implements train.Data.
func (d *Data) Position() (json.RawMessage, error) {
	b, err := json.Marshal(d.it.Position())
	return b, errors.Wrap(err, "tasks: data position")
}

// Restore implements train.Data.
func (d *Data) Restore(pos json.RawMessage) error {
	var p datasets.Position
	if err := json.Unmarshal(pos, &p); err != nil {
		return errors.Wrap(err, "tasks: data position")
	}
	return d.it.Restore(p)
}

func pick(inputs []Input, idx []int) []Input {
	out := make([]Input, len(idx))
	for i, j := range idx {
		out[i] = inputs[j]
	}
	return out
}

// Prediction is the model's output for one example.
type Prediction struct {
	// Label is the most likely label or choice (−1 for Regression).
	Label int
	// Score is a Regression's predicted value.
	Score float64
	// Logits are the head's outputs: one per label or choice (the value
	// itself for Regression).
	Logits []float64
}

// runner runs one batch through an evaluation program and returns its
// loss and logits.
type runner func(train.Batch) (float64, tensor.Tensor, error)

// predict runs inputs in batches of batch examples, in order of length,
// and returns one prediction per input and the mean task loss over the
// labelled ones (NaN when none is).
func (m *Model) predict(inputs []Input, batch int, run runner) ([]Prediction, float64, error) {
	if batch <= 0 {
		return nil, 0, errors.Errorf("tasks: batch %d is not positive", batch)
	}
	b, err := m.batcher(inputs, batch, datasets.Buckets{}, false, 0)
	if err != nil {
		return nil, 0, err
	}
	out := make([]Prediction, len(inputs))
	var loss, weight float64
	for _, idx := range b.Plan(0) {
		pb := b.Make(idx)
		tb, err := m.Batch(pick(inputs, idx), pb.Source.B, pb.Source.T, false)
		if err != nil {
			return nil, 0, err
		}
		l, logits, err := run(tb)
		if err != nil {
			return nil, 0, err
		}
		if labelled(pick(inputs, idx)) {
			loss += l * tb.Weight
			weight += tb.Weight
		}
		vals, err := blocks.Float64s(logits.(*tensor.Dense))
		if err != nil {
			return nil, 0, err
		}
		k := len(vals) / pb.Source.B
		for r, i := range idx {
			row := vals[r*k : (r+1)*k]
			p := Prediction{Label: argmax(row), Logits: append([]float64(nil), row...)}
			if m.Task.Kind == Regression {
				p.Label, p.Score = -1, row[0]
			}
			out[i] = p
		}
	}
	if weight == 0 {
		return out, math.NaN(), nil
	}
	return out, loss / weight, nil
}

func labelled(inputs []Input) bool {
	for _, in := range inputs {
		if in.Label >= 0 || !math.IsNaN(in.Score) {
			return true
		}
	}
	return false
}

func argmax(v []float64) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// Evaluate returns the model's predictions on inputs and their mean task
// loss (L₂), through t's evaluation programs (no dropout; t's state does
// not change).
func (m *Model) Evaluate(t *train.Trainer, inputs []Input, batch int) ([]Prediction, float64, error) {
	return m.predict(inputs, batch, func(b train.Batch) (float64, tensor.Tensor, error) {
		r, err := t.Evaluate(b)
		if err != nil {
			return 0, nil, err
		}
		return r.Loss, r.Outputs["logits"], nil
	})
}

// Evaluator is the training loop's validation: the task's metrics on the
// examples (and their inputs, as Encode made them) and "loss", the mean
// task loss. An undefined metric (the MCC of a model that predicts one
// label) counts as 0, as scikit-learn reports it.
func (m *Model) Evaluator(exs []Example, inputs []Input, batch int) train.Evaluator {
	return func(t *train.Trainer) (map[string]float64, error) {
		preds, loss, err := m.Evaluate(t, inputs, batch)
		if err != nil {
			return nil, err
		}
		scores, err := m.Task.Score(exs, preds)
		if err != nil {
			return nil, err
		}
		out := map[string]float64{"loss": loss}
		for _, s := range scores {
			out[s.Name] = s.Value
		}
		return out, nil
	}
}

// Predictor runs a model's evaluation programs outside training (eval
// and predict): one compiled program per batch shape, kept in a cache.
type Predictor struct {
	m     *Model
	cache *train.Cache
}

// NewPredictor returns a Predictor; Close it when done.
func (m *Model) NewPredictor() (*Predictor, error) {
	c, err := train.NewCache(0, func(k train.Key) (*train.Program, error) { return train.Compile(m, k, 0) })
	if err != nil {
		return nil, err
	}
	return &Predictor{m: m, cache: c}, nil
}

// Predict returns the predictions on inputs and their mean task loss
// (NaN when no input is labelled).
func (p *Predictor) Predict(inputs []Input, batch int) ([]Prediction, float64, error) {
	return p.m.predict(inputs, batch, func(b train.Batch) (float64, tensor.Tensor, error) {
		key := b.Key
		key.Mode = blocks.Eval
		prog, err := p.cache.Get(key)
		if err != nil {
			return 0, nil, err
		}
		for _, name := range prog.Inputs() {
			v, ok := b.Inputs[name]
			if !ok {
				return 0, nil, errors.Errorf("tasks: batch lacks input %q", name)
			}
			if err := prog.Let(name, v); err != nil {
				return 0, nil, err
			}
		}
		if err := prog.Run(); err != nil {
			return 0, nil, err
		}
		l, err := prog.Loss()
		if err != nil {
			return 0, nil, err
		}
		v, err := prog.Output("logits")
		if err != nil {
			return 0, nil, err
		}
		return l, v.(tensor.Tensor).Clone().(tensor.Tensor), nil
	})
}

// Score predicts and scores the examples with the task's metrics.
func (p *Predictor) Score(exs []Example, inputs []Input, batch int) (metrics.Scores, float64, error) {
	preds, loss, err := p.Predict(inputs, batch)
	if err != nil {
		return nil, 0, err
	}
	s, err := p.m.Task.Score(exs, preds)
	return s, loss, err
}

// Close releases the compiled programs.
func (p *Predictor) Close() error { return p.cache.Close() }
