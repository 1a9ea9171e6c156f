package tasks

import (
	"math"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/ops"
	"github.com/seq2gpt/seq2gpt/train"
)

// IgnoreIndex marks a label that does not count (an empty row of a
// short batch, an unlabelled example), as PyTorch's ignore_index.
const IgnoreIndex = -100

// Config is a task model's head and objective.
type Config struct {
	// HeadDropout is the dropout on the feature before the linear head
	// (0.1 in the paper).
	HeadDropout float64 `json:"head_dropout"`
	// LMCoef is λ in L₃ = L₂ + λ·L₁, L₁ the body's auxiliary loss (GPT's
	// language-model loss on the same sequences): 0.5 in the paper, 0
	// turns it off. A BERT body has no L₁: it must be 0 there.
	LMCoef float64 `json:"lm_coef"`
}

// DefaultConfig is the paper's: head dropout 0.1, λ 0.5.
func DefaultConfig() Config { return Config{HeadDropout: 0.1, LMCoef: 0.5} }

// Validate checks the ranges.
func (c Config) Validate() error {
	if !(c.HeadDropout >= 0 && c.HeadDropout < 1) {
		return errors.Errorf("tasks: head dropout %v is not in [0, 1)", c.HeadDropout)
	}
	if !(c.LMCoef >= 0) || math.IsInf(c.LMCoef, 0) {
		return errors.Errorf("tasks: LM coefficient λ %v is not a finite number ≥ 0", c.LMCoef)
	}
	return nil
}

// Model is a task head on a body, and the one adapter from the pair to
// the engine (train.Model). For a batch of B examples its graph is
//
//	h = Body.Features(sequences)                  [N, d], N = B, 2B or B·C
//	h = h_AB + h_BA                               a symmetric pair read both ways
//	y = dropout(h)·W_yᵀ (+ b)                     [B, K], [B·C, 1] → [B, C], or [B]
//	L₂ = −Σ log softmax(y)[label] / B             or Σ (y − score)² / B (Regression)
//	L₃ = L₂ + λ·L₁                                in training, when the body has L₁
//
// (GPT-1 §3.2: P(y | x¹…x^m) = softmax(h_l^m·W_y), L₃(C) = L₂(C) + λ·L₁(C)).
// Evaluation programs compute L₂ alone, so validation losses compare
// across λ.
type Model struct {
	Body   Body
	Task   Task
	Config Config
	head   *blocks.Linear
}

var _ train.Model = (*Model)(nil)

// New puts the task's head on body: a linear layer named and shaped as
// Body.Head says, from N(0, 0.02) with a zero bias, added to the body's
// store — or, when the store holds it already (a fine-tuned model
// loaded), the one there.
func New(body Body, task Task, cfg Config) (*Model, error) {
	if body == nil || body.Store() == nil {
		return nil, errors.New("tasks: New needs a body with a store")
	}
	if err := task.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if _, ok := body.(*BERT); ok && cfg.LMCoef != 0 {
		// Refused rather than ignored: the run would record a λ that did
		// nothing.
		return nil, errors.Errorf("tasks: λ (LMCoef) %v: a BERT body has no auxiliary loss — BERT is fine-tuned on the task's loss alone (Devlin et al. §4) — so λ has no effect: set it to 0", cfg.LMCoef)
	}
	lay := body.Head(task.Kind)
	s, d, k := body.Store(), body.Width(), task.Outputs()
	var head *blocks.Linear
	if w, ok := s.Get(lay.Prefix + ".weight"); ok {
		if !w.Shape().Eq(tensor.Shape{k, d}) {
			return nil, errors.Errorf("tasks: the head %s.weight has shape %v, task %s needs (%d, %d)", lay.Prefix, w.Shape(), task.Name, k, d)
		}
		if _, ok := s.Get(lay.Prefix + ".bias"); ok != lay.Bias {
			return nil, errors.Errorf("tasks: the head %s has a bias: %v, the layout wants %v", lay.Prefix, ok, lay.Bias)
		}
		head = &blocks.Linear{Prefix: lay.Prefix, In: d, Out: k, Bias: lay.Bias}
	} else {
		var err error
		head, err = blocks.NewLinear(s, lay.Prefix, blocks.LinearConfig{In: d, Out: k, NoBias: !lay.Bias,
			WeightInit: blocks.Normal(0, 0.02), BiasInit: blocks.Zeros()})
		if err != nil {
			return nil, err
		}
	}
	return &Model{Body: body, Task: task, Config: cfg, head: head}, nil
}

// Store implements train.Model.
func (m *Model) Store() *blocks.Store { return m.Body.Store() }

// HeadLayout is the head's parameter prefix and bias.
func (m *Model) HeadLayout() HeadLayout { return HeadLayout{Prefix: m.head.Prefix, Bias: m.head.Bias} }

// perExample is the number of sequences one example of the key has.
func (m *Model) perExample(key train.Key) int {
	switch {
	case m.Task.Kind == MultipleChoice:
		return key.Choices
	case m.Task.Kind.symmetric() && m.Body.Template().BothOrders:
		return 2
	}
	return 1
}

// aux says whether the key's program adds the auxiliary loss.
func (m *Model) aux(mode blocks.Mode) bool { return mode == blocks.Train && m.Config.LMCoef > 0 }

func (m *Model) checkKey(key train.Key) error {
	if key.Kind != "" || key.Source != 0 || key.Cache != 0 {
		return errors.Errorf("tasks: key %v: a task model has one program kind, with no source or cache", key)
	}
	if key.Len < 1 || key.Len > m.Body.Template().MaxLen {
		return errors.Errorf("tasks: key %v: length %d is not in [1, %d]", key, key.Len, m.Body.Template().MaxLen)
	}
	if mc := m.Task.Kind == MultipleChoice; mc != (key.Choices > 0) || (mc && key.Choices < 2) {
		return errors.Errorf("tasks: key %v: a %s task wants choices %v", key, m.Task.Kind, map[bool]string{true: "≥ 2", false: "0"}[mc])
	}
	return nil
}

// Build implements train.Model: the graph above for key.Batch examples of
// key.Len tokens (key.Choices sequences each for multiple choice). Inputs:
// the body's, and "labels" [B] (label or choice indices as floats,
// IgnoreIndex where none), or for Regression "targets" [B] and "weights"
// [B] (1/n on the n rows that count, 0 elsewhere). Outputs: "logits"
// ([B, K]; [B, C] for multiple choice; [B] for Regression), "task_loss"
// (L₂) and, in training with λ > 0, "aux_loss" (L₁).
func (m *Model) Build(g *blocks.Graph, key train.Key) (train.Built, error) {
	var b train.Built
	if err := m.checkKey(key); err != nil {
		return b, err
	}
	B, per := key.Batch, m.perExample(key)
	aux := m.aux(key.Mode)
	bg, err := m.Body.Features(g, B*per, key.Len, aux)
	if err != nil {
		return b, err
	}
	b.Inputs = map[string]*G.Node{}
	for name, n := range bg.Inputs {
		b.Inputs[name] = n
	}
	var y *G.Node
	err = g.Block("head", func() error {
		h := bg.Features
		if m.Task.Kind.symmetric() && per == 2 {
			h = blocks.Must(G.Add(blocks.Must(ops.Narrow(h, 0, 0, B)), blocks.Must(ops.Narrow(h, 0, B, 2*B))))
		}
		y = blocks.Must(m.head.Forward(g, blocks.Must(g.ApplyDropout(h, m.Config.HeadDropout))))
		switch m.Task.Kind {
		case MultipleChoice:
			y = blocks.Must(G.Reshape(y, tensor.Shape{B, per}))
		case Regression:
			y = blocks.Must(G.Reshape(y, tensor.Shape{B}))
		}
		return nil
	})
	if err != nil {
		return b, err
	}
	var l2 *G.Node
	err = g.Block("loss", func() error {
		if m.Task.Kind == Regression {
			t := blocks.Must(g.Input("targets", tensor.Shape{B}))
			w := blocks.Must(g.Input("weights", tensor.Shape{B}))
			b.Inputs["targets"], b.Inputs["weights"] = t, w
			// L₂ = Σ_i w_i (y_i − t_i)², w_i = 1/n on the n rows that count.
			l2 = blocks.Must(G.Sum(blocks.Must(G.HadamardProd(w, blocks.Must(G.Square(blocks.Must(G.Sub(y, t))))))))
			return nil
		}
		labels := blocks.Must(g.Input("labels", tensor.Shape{B}))
		b.Inputs["labels"] = labels
		l2 = blocks.Must(ops.CrossEntropy(y, labels, IgnoreIndex, 0))
		return nil
	})
	if err != nil {
		return b, err
	}
	b.Outputs = map[string]*G.Node{"logits": y, "task_loss": l2}
	b.Loss = l2
	if aux && bg.Aux != nil {
		b.Outputs["aux_loss"] = bg.Aux
		err = g.Block("loss", func() error {
			lambda := G.NewScalar(g.G, g.Store.Dtype(), G.WithName("lm_coef"), G.WithValue(scalarOf(g.Store.Dtype(), m.Config.LMCoef)))
			b.Loss = blocks.Must(G.Add(l2, blocks.Must(G.Mul(lambda, bg.Aux))))
			return nil
		})
	}
	return b, err
}

// scalarOf is v as a scalar value of dtype dt.
func scalarOf(dt tensor.Dtype, v float64) G.Value {
	if dt == tensor.Float64 {
		return G.NewF64(v)
	}
	return G.NewF32(float32(v))
}

// Key is the program key of a batch of rows examples of steps tokens.
func (m *Model) Key(rows, steps, choices int) train.Key {
	k := train.Key{Batch: rows, Len: steps}
	if m.Task.Kind == MultipleChoice {
		k.Choices = choices
	}
	return k
}

// Batch makes the engine's batch of inputs, padded to rows examples of
// steps tokens (rows past len(inputs) are empty and count for nothing).
// training says the batch is for a training step, whose program also
// takes the auxiliary objective's targets. Its weight is the number of
// examples that count.
func (m *Model) Batch(inputs []Input, rows, steps int, training bool) (train.Batch, error) {
	if len(inputs) == 0 || len(inputs) > rows {
		return train.Batch{}, errors.Errorf("tasks: %d inputs for a batch of %d rows", len(inputs), rows)
	}
	per := len(inputs[0].Seqs)
	var seqs []Sequence
	for i, in := range inputs {
		if len(in.Seqs) != per {
			return train.Batch{}, errors.Errorf("tasks: input %d has %d sequences, input 0 has %d", i, len(in.Seqs), per)
		}
		for _, s := range in.Seqs {
			if len(s.IDs) > steps {
				return train.Batch{}, errors.Errorf("tasks: input %d has a sequence of %d tokens, the batch's length is %d", i, len(s.IDs), steps)
			}
		}
		seqs = append(seqs, in.Seqs...)
	}
	key := m.Key(rows, steps, per)
	if want := m.perExample(key); per != want {
		return train.Batch{}, errors.Errorf("tasks: inputs have %d sequences each, a %s task on this body reads %d", per, m.Task.Kind, want)
	}
	if m.Task.Kind.symmetric() && per == 2 {
		// The graph adds row b of the first half to row b of the second:
		// all A $ B sequences first, then all B $ A.
		seqs = seqs[:0]
		for _, in := range inputs {
			seqs = append(seqs, in.Seqs[0])
		}
		seqs = append(seqs, make([]Sequence, rows-len(inputs))...)
		for _, in := range inputs {
			seqs = append(seqs, in.Seqs[1])
		}
		seqs = append(seqs, make([]Sequence, rows-len(inputs))...)
	}
	vals, err := m.Body.Feed(seqs, rows*per, steps, training && m.Config.LMCoef > 0)
	if err != nil {
		return train.Batch{}, err
	}
	dt := m.Store().Dtype()
	n := 0
	if m.Task.Kind == Regression {
		t, w := make([]float64, rows), make([]float64, rows)
		for i, in := range inputs {
			if !math.IsNaN(in.Score) {
				t[i] = in.Score
				n++
			}
		}
		for i, in := range inputs {
			if !math.IsNaN(in.Score) {
				w[i] = 1 / float64(n)
			}
		}
		vals["targets"], vals["weights"] = denseOf(dt, t), denseOf(dt, w)
	} else {
		l := make([]float64, rows)
		for i := range l {
			l[i] = IgnoreIndex
		}
		for i, in := range inputs {
			if in.Label >= 0 {
				l[i] = float64(in.Label)
				n++
			}
		}
		vals["labels"] = denseOf(dt, l)
	}
	if n == 0 {
		n = 1 // an unlabelled batch (prediction): weight 1, loss 0
	}
	return train.Batch{Key: key, Inputs: vals, Weight: float64(n)}, nil
}

// denseOf is v as a 1-D tensor of dtype dt.
func denseOf(dt tensor.Dtype, v []float64) *tensor.Dense {
	if dt == tensor.Float64 {
		return tensor.New(tensor.WithShape(len(v)), tensor.WithBacking(v))
	}
	w := make([]float32, len(v))
	for i, x := range v {
		w[i] = float32(x)
	}
	return tensor.New(tensor.WithShape(len(v)), tensor.WithBacking(w))
}
