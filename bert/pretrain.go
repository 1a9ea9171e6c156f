package bert

import (
	"encoding/json"
	"math"
	"math/rand/v2"

	"github.com/pkg/errors"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/train"
)

// Batch lays examples out as the KindMLM batch of rows rows (≥
// len(examples); the rest are empty, with no targets) of steps tokens (≥
// the longest example: a length bucket), weighted by its number of
// targets. Every target must be an id of the vocabulary at a position
// inside its example.
func (l MLM) Batch(examples []Example, rows, steps int) (train.Batch, error) {
	if l.Masker == nil {
		return train.Batch{}, errors.New("bert: MLM.Batch needs a Masker")
	}
	seqs := make([]Sequence, len(examples))
	for i, e := range examples {
		seqs[i] = e.Sequence
	}
	r, err := l.Pad(seqs, rows, steps)
	if err != nil {
		return train.Batch{}, err
	}
	vals, err := l.Values(r)
	if err != nil {
		return train.Batch{}, err
	}
	P := rows * l.Masker.PerRow(steps)
	pos, tg := make([]int, P), make([]float64, P)
	for i := range tg {
		tg[i] = IgnoreIndex
	}
	labels := make([]float64, rows)
	n := 0
	for b, e := range examples {
		if len(e.Positions) != len(e.Targets) {
			return train.Batch{}, errors.Errorf("bert: example %d has %d positions and %d targets", b, len(e.Positions), len(e.Targets))
		}
		for k, i := range e.Positions {
			if i < 0 || i >= len(e.IDs) {
				return train.Batch{}, errors.Errorf("bert: example %d: position %d is outside its %d tokens", b, i, len(e.IDs))
			}
			if t := e.Targets[k]; t < 0 || t >= l.Config.VocabSize {
				return train.Batch{}, errors.Errorf("bert: example %d: target %d at position %d is outside the vocabulary [0, %d)", b, t, i, l.Config.VocabSize)
			}
			if n == P {
				return train.Batch{}, errors.Errorf("bert: %d rows of %d tokens hold at most %d targets (%d per row); the examples have more", rows, steps, P, P/rows)
			}
			pos[n], tg[n] = b*steps+i, float64(e.Targets[k])
			n++
		}
		if e.NextLabel != 0 && e.NextLabel != 1 {
			return train.Batch{}, errors.Errorf("bert: example %d: next-sentence label %d is not 0 or 1", b, e.NextLabel)
		}
		labels[b] = float64(e.NextLabel)
	}
	for b := len(examples); b < rows; b++ {
		labels[b] = IgnoreIndex
	}
	dt := l.Model.Store.Dtype()
	vals["mlm_positions"] = tensor.New(tensor.WithShape(P), tensor.WithBacking(pos))
	vals["mlm_targets"] = floats(dt, tg)
	if l.Config.NSP {
		vals["nsp_labels"] = floats(dt, labels)
	}
	return train.Batch{Key: train.Key{Batch: rows, Len: steps}, Inputs: vals, Weight: float64(n)}, nil
}

// floats is v as a 1-D tensor of dtype dt.
func floats(dt tensor.Dtype, v []float64) *tensor.Dense {
	if dt == tensor.Float64 {
		return tensor.New(tensor.WithShape(len(v)), tensor.WithBacking(v))
	}
	w := make([]float32, len(v))
	for i, x := range v {
		w[i] = float32(x)
	}
	return tensor.New(tensor.WithShape(len(v)), tensor.WithBacking(w))
}

// WindowTokens is the number of text tokens in a pre-training example of
// steps tokens: steps − 2 ([CLS] … [SEP]), or steps − 3 with NSP
// ([CLS] A [SEP] B [SEP]). Cut the token stream into windows of this many
// tokens (datasets.NewLMWindows) for NewPretrainData.
func (l MLM) WindowTokens(steps int) int {
	if l.Config.NSP {
		return steps - 3
	}
	return steps - 2
}

// Example is the pre-training example of window i of w, masked afresh for
// each epoch (dynamic masking, as RoBERTa: every pass over the text hides
// other tokens) from a generator seeded by (seed, epoch, i), so an epoch's
// examples are a pure function of these and a resumed run sees exactly
// the examples an uninterrupted one would. Without NSP the example is
// [CLS] window [SEP]. With NSP the window is cut at a random point into A
// and its continuation B; half the time B is replaced by as many tokens
// from the start of another random window (NextLabel 1).
func (l MLM) Example(w *datasets.LMWindows, i, epoch int, seed uint64) Example {
	rng := rand.New(rand.NewPCG(seed, uint64(epoch)<<32^uint64(i)^0x5eed_b3e7))
	text, _ := w.At(i)
	sp := l.Masker.Specials
	if !l.Config.NSP || len(text) < 2 {
		return l.Masker.Mask(rng, sp.Single(text, 0))
	}
	cut := 1 + rng.IntN(len(text)-1)
	a, b, label := text[:cut], text[cut:], 0
	if w.Len() > 1 && rng.IntN(2) == 1 {
		j := rng.IntN(w.Len() - 1)
		if j >= i {
			j++
		}
		other, _ := w.At(j)
		b, label = other[:len(text)-cut], 1
	}
	ex := l.Masker.Mask(rng, sp.Pair(a, b, 0))
	ex.NextLabel = label
	return ex
}

// Examples returns the examples of every window of w for one epoch: a
// validation set masked once, the same at every evaluation.
func (l MLM) Examples(w *datasets.LMWindows, epoch int, seed uint64) []Example {
	out := make([]Example, w.Len())
	for i := range out {
		out[i] = l.Example(w, i, epoch, seed)
	}
	return out
}

// PretrainData feeds the training loop pre-training examples from the
// windows of a token stream: each step takes Accum micro-batches of Batch
// shuffled windows, each masked for its epoch (see Example). The data
// order and masking are seeded; a checkpoint saves the position. An
// epoch's short last batch is filled with empty rows, so every step runs
// the one compiled program.
type PretrainData struct {
	l            MLM
	w            *datasets.LMWindows
	it           *datasets.LMIterator
	batch, accum int
	steps        int
	seed         uint64
}

var _ train.Data = (*PretrainData)(nil)

// NewPretrainData returns the loop's data over the windows of w (of
// WindowTokens(T) tokens each, for examples of T tokens), batch windows per
// micro-batch and accum micro-batches per step, shuffled and masked from
// seed.
func (l MLM) NewPretrainData(w *datasets.LMWindows, batch, accum int, seed uint64) (*PretrainData, error) {
	if l.Masker == nil {
		return nil, errors.New("bert: pre-training data needs a Masker")
	}
	if batch <= 0 || accum <= 0 {
		return nil, errors.Errorf("bert: batch %d and accumulation %d must be positive", batch, accum)
	}
	steps := w.NCtx + 2
	if l.Config.NSP {
		steps++
	}
	if steps > l.Config.MaxPositionEmbeddings {
		return nil, errors.Errorf("bert: windows of %d tokens make examples of %d, more than max_position_embeddings %d", w.NCtx, steps, l.Config.MaxPositionEmbeddings)
	}
	it, err := w.Iterator(batch, seed)
	if err != nil {
		return nil, err
	}
	return &PretrainData{l: l, w: w, it: it, batch: batch, accum: accum, steps: steps, seed: seed}, nil
}

// Steps is the length of every example, T.
func (d *PretrainData) Steps() int { return d.steps }

// Next implements train.Data.
func (d *PretrainData) Next() ([]train.Batch, error) {
	out := make([]train.Batch, d.accum)
	for k := range out {
		idx := d.it.Next().Index
		epoch := d.it.Position().Epoch // the epoch of the batch just returned
		ex := make([]Example, len(idx))
		for r, i := range idx {
			ex[r] = d.l.Example(d.w, i, epoch, d.seed)
		}
		b, err := d.l.Batch(ex, d.batch, d.steps)
		if err != nil {
			return nil, err
		}
		out[k] = b
	}
	return out, nil
}

// Position implements train.Data.
func (d *PretrainData) Position() (json.RawMessage, error) {
	b, err := json.Marshal(d.it.Position())
	return b, errors.Wrap(err, "bert: data position")
}

// Restore implements train.Data.
func (d *PretrainData) Restore(pos json.RawMessage) error {
	var p datasets.Position
	if err := json.Unmarshal(pos, &p); err != nil {
		return errors.Wrap(err, "bert: data position")
	}
	return d.it.Restore(p)
}

// Metrics are MLM's validation figures.
type Metrics struct {
	// Loss is the masked-LM cross-entropy per target, nats; Accuracy the
	// fraction of targets whose most likely token is the original.
	Loss, Accuracy float64
	Targets        int
	// MaskAccuracy is Accuracy over the targets whose input is [MASK]
	// (80% of them): there the token is hidden, so only the context can
	// tell it. At a target left as it was (10%) copying the input is
	// right, which a model that ignores the context learns first.
	MaskAccuracy float64
	// NSPAccuracy is the next-sentence accuracy (NaN without NSP).
	NSPAccuracy float64
}

// Evaluate scores the examples (in order, batch rows per run, all padded to
// the longest) with the trainer's evaluation program.
func (l MLM) Evaluate(tr *train.Trainer, examples []Example, batch int) (Metrics, error) {
	return l.evaluate(tr, examples, batch, 0)
}

func (l MLM) evaluate(tr *train.Trainer, examples []Example, batch, maxBatches int) (Metrics, error) {
	met := Metrics{NSPAccuracy: math.NaN()}
	if len(examples) == 0 || batch <= 0 {
		return met, errors.Errorf("bert: evaluating %d examples in batches of %d", len(examples), batch)
	}
	steps := 0
	for _, e := range examples {
		steps = max(steps, len(e.IDs))
	}
	var nll float64
	var right, nspRight, rows, masked, maskedRight int
	for start, k := 0, 0; start < len(examples) && (maxBatches == 0 || k < maxBatches); start, k = start+batch, k+1 {
		ex := examples[start:min(start+batch, len(examples))]
		b, err := l.Batch(ex, batch, steps)
		if err != nil {
			return met, err
		}
		res, err := tr.Evaluate(b)
		if err != nil {
			return met, err
		}
		logits := res.Outputs["mlm_logits"]
		V := logits.Shape()[1]
		z := asFloat64s(logits)
		n := 0
		for _, e := range ex {
			for k, t := range e.Targets {
				row := z[n*V : (n+1)*V]
				lse, best := logSumExp(row), argmax(row)
				nll += lse - row[t]
				if best == t {
					right++
				}
				if e.IDs[e.Positions[k]] == l.Masker.MASK {
					masked++
					if best == t {
						maskedRight++
					}
				}
				n++
			}
		}
		met.Targets += n
		if l.Config.NSP {
			nz := asFloat64s(res.Outputs["nsp_logits"])
			for r, e := range ex {
				if argmax(nz[2*r:2*r+2]) == e.NextLabel {
					nspRight++
				}
			}
			rows += len(ex)
		}
	}
	if met.Targets == 0 {
		return met, errors.New("bert: the examples have no MLM targets")
	}
	met.Loss, met.Accuracy = nll/float64(met.Targets), float64(right)/float64(met.Targets)
	met.MaskAccuracy = math.NaN()
	if masked > 0 {
		met.MaskAccuracy = float64(maskedRight) / float64(masked)
	}
	if rows > 0 {
		met.NSPAccuracy = float64(nspRight) / float64(rows)
	}
	return met, nil
}

// Evaluator returns the loop's validation metrics over the first
// maxBatches batches of valid (0: all): "loss" (masked-LM nats per
// target), "ppl" = exp(loss), "accuracy" (targets predicted exactly),
// "mask_accuracy" (the same at [MASK]s alone) and, with NSP,
// "nsp_accuracy".
func (l MLM) Evaluator(valid []Example, batch, maxBatches int) train.Evaluator {
	return func(t *train.Trainer) (map[string]float64, error) {
		m, err := l.evaluate(t, valid, batch, maxBatches)
		if err != nil {
			return nil, err
		}
		out := map[string]float64{"loss": m.Loss, "ppl": math.Exp(m.Loss), "accuracy": m.Accuracy, "mask_accuracy": m.MaskAccuracy}
		if l.Config.NSP {
			out["nsp_accuracy"] = m.NSPAccuracy
		}
		return out, nil
	}
}

func logSumExp(x []float64) float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = math.Max(m, v)
	}
	var s float64
	for _, v := range x {
		s += math.Exp(v - m)
	}
	return m + math.Log(s)
}

func argmax(x []float64) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// asFloat64s is t's data as float64s.
func asFloat64s(t tensor.Tensor) []float64 {
	switch d := t.Data().(type) {
	case []float32:
		out := make([]float64, len(d))
		for i, v := range d {
			out[i] = float64(v)
		}
		return out
	case []float64:
		return d
	case []int64:
		out := make([]float64, len(d))
		for i, v := range d {
			out[i] = float64(v)
		}
		return out
	}
	return nil
}
