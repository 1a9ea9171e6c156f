package train

import (
	"math"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/internal/vecmath"
)

// Batch is one run's inputs. Key.Mode is set by the Trainer (Train in Step,
// Eval in Evaluate).
type Batch struct {
	Key    Key
	Inputs map[string]G.Value
	// Weight is the batch's share of an accumulated step, normally its
	// number of target tokens; 0 means 1.
	Weight float64
}

// Config configures a Trainer.
type Config struct {
	Optimizer Optimizer
	Schedule  Schedule
	// ClipNorm, if positive, clips the global gradient norm (ClipGradNorm).
	ClipNorm float64
	// DropoutSeed seeds every training graph's dropout masks.
	DropoutSeed uint64
	// MaxPrograms caps the compiled programs kept (least recently used
	// is evicted; 0 means DefaultMaxPrograms). Each is a build, a G.Grad
	// and a compile: bucket batch lengths (datasets.Buckets) so a few
	// keys serve every batch.
	MaxPrograms int
}

// Stats counts the work a Trainer did.
type Stats struct {
	Builds    int // programs built and compiled (Model.Build, for training G.Grad, the tape machine)
	Evictions int // programs closed to keep at most Config.MaxPrograms
	Runs      int // forward (and backward) passes
	Steps     int // optimizer updates
}

// StepResult describes one update.
type StepResult struct {
	Step     int     // updates taken so far, this one included
	Loss     float64 // Σ wᵢ·Lᵢ / Σ wᵢ over the micro-batches
	LR       float64 // learning rate of this update
	GradNorm float64 // global gradient norm before clipping
}

// Trainer trains a Model: it compiles one program per Key on first use and
// keeps it in a Cache of at most Config.MaxPrograms (each step only sets
// inputs and runs), accumulates gradients over micro-batches, clips them
// and applies the optimizer to the Store's tensors, which every program
// shares.
//
// A Trainer is not safe for concurrent use.
type Trainer struct {
	model    Model
	store    *blocks.Store
	cfg      Config
	programs *Cache
	grads    map[string]*tensor.Dense
	touched  map[string]bool
	step     int
	dropout  uint64 // the shared DropoutRNG call counter
	stats    Stats
	loop     loopState // Run's best-evaluation state, saved in checkpoints
}

// New returns a Trainer for model.
func New(model Model, cfg Config) (*Trainer, error) {
	if model == nil || model.Store() == nil {
		return nil, errors.New("train: model or its store is nil")
	}
	if cfg.Optimizer == nil {
		return nil, errors.New("train: Config.Optimizer is nil")
	}
	if cfg.Schedule == nil {
		return nil, errors.New("train: Config.Schedule is nil")
	}
	if cfg.ClipNorm < 0 || math.IsNaN(cfg.ClipNorm) || math.IsInf(cfg.ClipNorm, 0) {
		return nil, errors.Errorf("train: clip norm %v is not non-negative and finite", cfg.ClipNorm)
	}
	if cfg.MaxPrograms < 0 {
		return nil, errors.Errorf("train: MaxPrograms %d is negative (0 means the default %d)", cfg.MaxPrograms, DefaultMaxPrograms)
	}
	t := &Trainer{
		model: model, store: model.Store(), cfg: cfg,
		grads:   map[string]*tensor.Dense{},
		touched: map[string]bool{},
	}
	var err error
	t.programs, err = NewCache(cfg.MaxPrograms, func(k Key) (*Program, error) { return Compile(model, k, cfg.DropoutSeed) })
	return t, err
}

// Stats returns the counters.
func (t *Trainer) Stats() Stats {
	s := t.stats
	cs := t.programs.Stats()
	s.Builds, s.Evictions = cs.Builds, cs.Evictions
	return s
}

// Programs lists the keys of the programs held, most recently used first.
func (t *Trainer) Programs() []Key { return t.programs.Keys() }

// StepCount is the number of updates taken.
func (t *Trainer) StepCount() int { return t.step }

// DropoutCalls is the dropout random state: the number of masks drawn.
func (t *Trainer) DropoutCalls() uint64 { return t.dropout }

// program returns key's program from the cache, building it if needed.
func (t *Trainer) program(key Key) (*Program, error) { return t.programs.Get(key) }

// run sets b's inputs, which must be exactly the program's, and runs p once.
func (t *Trainer) run(p *Program, b Batch) error {
	for name := range b.Inputs {
		if _, ok := p.inputs[name]; !ok {
			return errors.Errorf("train: %v: batch has input %q, which the graph does not take (it takes %v)",
				p.key, name, p.Inputs())
		}
	}
	for _, name := range p.order {
		v, ok := b.Inputs[name]
		if !ok {
			return errors.Errorf("train: %v: batch lacks input %q", p.key, name)
		}
		if err := p.Let(name, v); err != nil {
			return err
		}
	}
	p.graph.Dropout.Calls = t.dropout
	if err := p.Run(); err != nil {
		return err
	}
	t.dropout = p.graph.Dropout.Calls
	t.stats.Runs++
	return nil
}

// Step takes one optimizer update from the micro-batches: it runs each
// forward and backward, accumulates
//
//	∇ = Σᵢ wᵢ·∇Lᵢ / Σᵢ wᵢ
//
// (with wᵢ the batches' weights, so micro-batches weighted by their token
// counts give the gradient of the mean over all tokens, as one large batch
// would), clips ∇ to Config.ClipNorm and applies the optimizer with the
// schedule's rate for this update. A NaN or infinite loss or gradient is a
// *NonFiniteError that names the step and the first parameter affected, in
// store order (and the first non-finite weight, when that is another), and
// leaves the parameters unchanged: one bad update would spread NaN to every
// weight.
func (t *Trainer) Step(micro ...Batch) (StepResult, error) {
	if len(micro) == 0 {
		return StepResult{}, errors.New("train: Step needs at least one batch")
	}
	var total float64
	for i, b := range micro {
		w := b.Weight
		if w == 0 {
			w = 1
		}
		if !(w > 0) || math.IsInf(w, 0) {
			return StepResult{}, errors.Errorf("train: batch %d has weight %v", i, b.Weight)
		}
		total += w
	}
	clear(t.touched)
	var loss float64
	for i, b := range micro {
		key := b.Key
		key.Mode = blocks.Train
		p, err := t.program(key)
		if err != nil {
			return StepResult{}, err
		}
		if err := t.run(p, b); err != nil {
			return StepResult{}, errors.Wrapf(err, "micro-batch %d", i)
		}
		w := b.Weight
		if w == 0 {
			w = 1
		}
		l, err := p.Loss()
		if err != nil {
			return StepResult{}, err
		}
		loss += w / total * l
		for j, name := range p.names {
			if err := t.accumulate(name, *p.grads[j], w/total); err != nil {
				return StepResult{}, errors.Wrapf(err, "train: %v", p.key)
			}
		}
	}
	params := t.params()
	norm := GradNorm(params)
	if !isFinite(loss) || !isFinite(norm) {
		return StepResult{}, nonFinite(t.step+1, loss, norm, params)
	}
	coef := 1.0
	if t.cfg.ClipNorm > 0 {
		var err error
		if coef, err = ClipCoefficient(norm, t.cfg.ClipNorm); err != nil {
			return StepResult{}, err
		}
	}
	lr := t.cfg.Schedule.LR(t.step + 1)
	// A ScaledOptimizer clips in its own pass; others get clipped gradients.
	var err error
	if so, ok := t.cfg.Optimizer.(ScaledOptimizer); ok {
		err = so.StepScaled(lr, coef, params)
	} else {
		ScaleGrads(params, coef)
		err = t.cfg.Optimizer.Step(lr, params)
	}
	if err != nil {
		return StepResult{}, errors.Wrapf(err, "train: step %d", t.step+1)
	}
	t.step++
	t.stats.Steps++
	return StepResult{Step: t.step, Loss: loss, LR: lr, GradNorm: norm}, nil
}

// firstNonFinite finds the first NaN or infinite element of a float tensor.
func firstNonFinite(t *tensor.Dense) (int, float64, bool) {
	if t == nil {
		return 0, 0, false
	}
	switch d := t.Data().(type) {
	case []float32:
		for i, x := range d {
			if f := float64(x); math.IsNaN(f) || math.IsInf(f, 0) {
				return i, f, true
			}
		}
	case []float64:
		for i, x := range d {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return i, x, true
			}
		}
	}
	return 0, 0, false
}

// accumulate adds scale·g to the gradient buffer of name, starting it from
// zero on the step's first touch.
func (t *Trainer) accumulate(name string, g G.Value, scale float64) error {
	w, ok := t.store.Get(name)
	if !ok {
		return errors.Errorf("parameter %q is not in the store", name)
	}
	gt, ok := g.(tensor.Tensor)
	if !ok || !gt.Shape().Eq(w.Shape()) || gt.Dtype() != w.Dtype() {
		return errors.Errorf("gradient of %q is %v, want %v %v", name, g, w.Shape(), w.Dtype())
	}
	if d, ok := gt.(*tensor.Dense); ok && d.IsView() {
		gt = d.Materialize()
	}
	buf, ok := t.grads[name]
	if !ok {
		buf = tensor.New(tensor.Of(w.Dtype()), tensor.WithShape(w.Shape().Clone()...))
		t.grads[name] = buf
	}
	first := !t.touched[name]
	t.touched[name] = true
	switch d := buf.Data().(type) {
	case []float32:
		if first {
			vecmath.Affine(d, gt.Data().([]float32), float32(scale), 0)
		} else {
			vecmath.AXPY(d, float32(scale), gt.Data().([]float32), d)
		}
	case []float64:
		addScaled(d, gt.Data().([]float64), scale, first)
	}
	return nil
}

func addScaled(dst, src []float64, s float64, overwrite bool) {
	if overwrite {
		for i, x := range src {
			dst[i] = s * x
		}
		return
	}
	for i, x := range src {
		dst[i] += s * x
	}
}

// params lists the store's parameters with this step's gradients (nil for
// those no micro-batch touched).
func (t *Trainer) params() []Param {
	names := t.store.Names()
	ps := make([]Param, len(names))
	for i, name := range names {
		w, _ := t.store.Get(name)
		ps[i] = Param{Name: name, Value: w}
		if t.touched[name] {
			ps[i].Grad = t.grads[name]
		}
	}
	return ps
}

// EvalResult is what Evaluate returns.
type EvalResult struct {
	Loss    float64 // NaN when the model built no loss
	Outputs map[string]tensor.Tensor
}

// Evaluate runs b through the evaluation program of its key (no dropout, no
// gradients) and returns the loss and copies of the outputs.
func (t *Trainer) Evaluate(b Batch) (EvalResult, error) {
	key := b.Key
	key.Mode = blocks.Eval
	p, err := t.program(key)
	if err != nil {
		return EvalResult{}, err
	}
	if err := t.run(p, b); err != nil {
		return EvalResult{}, err
	}
	res := EvalResult{Loss: math.NaN(), Outputs: map[string]tensor.Tensor{}}
	if p.HasLoss() {
		if res.Loss, err = p.Loss(); err != nil {
			return EvalResult{}, err
		}
	}
	for _, name := range p.Outputs() {
		v, err := p.Output(name)
		if err != nil {
			return EvalResult{}, err
		}
		tt, ok := v.(tensor.Tensor)
		if !ok {
			f, err := scalar(v)
			if err != nil {
				return EvalResult{}, errors.Wrapf(err, "output %q", name)
			}
			tt = tensor.New(tensor.WithShape(1), tensor.WithBacking([]float64{f}))
		}
		res.Outputs[name] = tt.Clone().(tensor.Tensor)
	}
	return res, nil
}

// Graph returns the graph of key's program, building it if needed (for
// pictures: see package viz).
func (t *Trainer) Graph(key Key) (*blocks.Graph, error) {
	p, err := t.program(key)
	if err != nil {
		return nil, err
	}
	return p.graph, nil
}

// Close releases the compiled programs.
func (t *Trainer) Close() error { return t.programs.Close() }
