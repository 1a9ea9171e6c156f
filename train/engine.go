package train

import (
	"fmt"
	"math"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
)

// Key identifies one compiled program: a graph's shape is fixed when it is
// built, so each (mode, batch size, length bucket) gets its own. Batches of
// one bucket are padded to Len, so a few buckets serve every length.
type Key struct {
	Mode  blocks.Mode
	Batch int
	Len   int
}

func (k Key) String() string { return fmt.Sprintf("%v/B%d/T%d", k.Mode, k.Batch, k.Len) }

// Built is what a Model adds to a graph.
type Built struct {
	// Loss is the scalar to minimise. Required in training programs;
	// optional in evaluation programs.
	Loss *G.Node
	// Inputs are the nodes each run sets with G.Let, by name: every batch
	// must give exactly these.
	Inputs map[string]*G.Node
	// Outputs are nodes read after each run (logits, attention weights).
	Outputs map[string]*G.Node
}

// Model builds a graph for a key over the parameters of its Store.
type Model interface {
	Store() *blocks.Store
	Build(g *blocks.Graph, key Key) (Built, error)
}

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
}

// Stats counts the work a Trainer did.
type Stats struct {
	Builds   int // graphs built (Model.Build and, for training, G.Grad)
	Compiles int // programs compiled into tape machines
	Runs     int // forward (and backward) passes
	Steps    int // optimizer updates
}

// StepResult describes one update.
type StepResult struct {
	Step     int     // updates taken so far, this one included
	Loss     float64 // Σ wᵢ·Lᵢ / Σ wᵢ over the micro-batches
	LR       float64 // learning rate of this update
	GradNorm float64 // global gradient norm before clipping
}

// Trainer trains a Model: it compiles one program per Key on first use and
// reuses it (each step only sets inputs and runs), accumulates gradients over
// micro-batches, clips them and applies the optimizer to the Store's tensors,
// which every program shares.
//
// A Trainer is not safe for concurrent use.
type Trainer struct {
	model    Model
	store    *blocks.Store
	cfg      Config
	programs map[Key]*program
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
	return &Trainer{
		model: model, store: model.Store(), cfg: cfg,
		programs: map[Key]*program{},
		grads:    map[string]*tensor.Dense{},
		touched:  map[string]bool{},
	}, nil
}

// Stats returns the counters.
func (t *Trainer) Stats() Stats { return t.stats }

// StepCount is the number of updates taken.
func (t *Trainer) StepCount() int { return t.step }

// DropoutCalls is the dropout random state: the number of masks drawn.
func (t *Trainer) DropoutCalls() uint64 { return t.dropout }

// program is one compiled graph.
type program struct {
	key     Key
	graph   *blocks.Graph
	built   Built
	forward int      // number of nodes Model.Build added
	names   []string // bound parameters
	grads   []*G.Value
	loss    *G.Value
	outputs map[string]*G.Value
	vm      G.VM
}

func (t *Trainer) program(key Key) (*program, error) {
	if p, ok := t.programs[key]; ok {
		return p, nil
	}
	if key.Batch <= 0 || key.Len <= 0 {
		return nil, errors.Errorf("train: key %v needs a positive batch size and length", key)
	}
	g := blocks.NewGraph(t.store, key.Mode, t.cfg.DropoutSeed)
	built, err := t.model.Build(g, key)
	if err != nil {
		return nil, errors.Wrapf(err, "train: building %v", key)
	}
	p := &program{key: key, graph: g, built: built, outputs: map[string]*G.Value{},
		forward: len(g.G.AllNodes())}
	if built.Loss != nil {
		if !built.Loss.IsScalar() {
			return nil, errors.Errorf("train: %v: loss has shape %v, want a scalar", key, built.Loss.Shape())
		}
		p.loss = new(G.Value)
		G.Read(built.Loss, p.loss)
	} else if key.Mode == blocks.Train {
		return nil, errors.Errorf("train: %v: the model built no loss", key)
	}
	if key.Mode == blocks.Train {
		names, nodes := g.Params()
		if len(nodes) == 0 {
			return nil, errors.Errorf("train: %v: the graph binds no parameters", key)
		}
		// One G.Grad call: a second one on the same graph returns the first
		// cost's gradients (GORGONIA-NOTES).
		gn, err := G.Grad(built.Loss, nodes...)
		if err != nil {
			return nil, errors.Wrapf(err, "train: %v: gradients", key)
		}
		p.names = names
		p.grads = make([]*G.Value, len(gn))
		for i, n := range gn {
			p.grads[i] = new(G.Value)
			G.Read(n, p.grads[i]) // .Value() of an intermediate can be clobbered
		}
	}
	for _, name := range sortedKeys(built.Outputs) {
		v := new(G.Value)
		G.Read(built.Outputs[name], v)
		p.outputs[name] = v
	}
	t.stats.Builds++
	p.vm = G.NewTapeMachine(g.G)
	t.stats.Compiles++
	t.programs[key] = p
	return p, nil
}

// run sets b's inputs and runs p once.
func (t *Trainer) run(p *program, b Batch) error {
	for name := range b.Inputs {
		if _, ok := p.built.Inputs[name]; !ok {
			return errors.Errorf("train: %v: batch has input %q, which the graph does not take (it takes %v)",
				p.key, name, sortedKeys(p.built.Inputs))
		}
	}
	for _, name := range sortedKeys(p.built.Inputs) {
		n := p.built.Inputs[name]
		v, ok := b.Inputs[name]
		if !ok {
			return errors.Errorf("train: %v: batch lacks input %q", p.key, name)
		}
		if !v.Shape().Eq(n.Shape()) || v.Dtype() != n.Dtype() {
			return errors.Errorf("train: %v: input %q is %v %v, the graph wants %v %v",
				p.key, name, v.Shape(), v.Dtype(), n.Shape(), n.Dtype())
		}
		if err := G.Let(n, v); err != nil {
			return errors.Wrapf(err, "train: %v: input %q", p.key, name)
		}
	}
	p.graph.Dropout.Calls = t.dropout
	p.vm.Reset()
	if err := p.vm.RunAll(); err != nil {
		return errors.Wrapf(err, "train: running %v", p.key)
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
// schedule's rate for this update. A NaN or infinite loss or gradient is an
// error that names the step and the first parameter affected, in store
// order (and the first non-finite weight, when that is another), and leaves
// the parameters unchanged: one bad update would spread NaN to every weight.
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
		l, err := scalar(*p.loss)
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
	if math.IsNaN(loss) || math.IsInf(loss, 0) || math.IsNaN(norm) || math.IsInf(norm, 0) {
		return StepResult{}, errors.Errorf("train: step %d: loss %v, gradient norm %v: not updating; %s",
			t.step+1, loss, norm, blame(params))
	}
	if t.cfg.ClipNorm > 0 {
		if _, err := ClipGradNorm(params, t.cfg.ClipNorm); err != nil {
			return StepResult{}, err
		}
	}
	lr := t.cfg.Schedule.LR(t.step + 1)
	if err := t.cfg.Optimizer.Step(lr, params); err != nil {
		return StepResult{}, errors.Wrapf(err, "train: step %d", t.step+1)
	}
	t.step++
	t.stats.Steps++
	return StepResult{Step: t.step, Loss: loss, LR: lr, GradNorm: norm}, nil
}

// blame names the first parameter, in store order, whose gradient or value
// holds a NaN or an infinity, with the element, and also the first whose
// value does when that is another parameter: a non-finite weight usually
// makes every gradient non-finite, so the first gradient alone would point
// at the wrong place.
func blame(params []Param) string {
	var first, weight string
	for _, p := range params {
		if weight == "" {
			if i, x, bad := firstNonFinite(p.Value); bad {
				weight = fmt.Sprintf("%q (value[%d] = %v)", p.Name, i, x)
				if first == "" {
					first = weight
				}
			}
		}
		if first == "" && p.Grad != nil {
			if i, x, bad := firstNonFinite(p.Grad); bad {
				first = fmt.Sprintf("%q (gradient[%d] = %v)", p.Name, i, x)
			}
		}
	}
	switch {
	case first == "":
		return "no parameter or gradient is NaN or infinite (look at the inputs)"
	case weight == "" || weight == first:
		return "first parameter affected (store order): " + first
	}
	return "first parameter affected (store order): " + first + "; first non-finite weight: " + weight
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
		addScaled(d, gt.Data().([]float32), float32(scale), first)
	case []float64:
		addScaled(d, gt.Data().([]float64), scale, first)
	}
	return nil
}

func addScaled[T float32 | float64](dst, src []T, s T, overwrite bool) {
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
	if p.loss != nil {
		if res.Loss, err = scalar(*p.loss); err != nil {
			return EvalResult{}, err
		}
	}
	for name, v := range p.outputs {
		tt, ok := (*v).(tensor.Tensor)
		if !ok {
			f, err := scalar(*v)
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
// pictures: see Dot).
func (t *Trainer) Graph(key Key) (*blocks.Graph, error) {
	p, err := t.program(key)
	if err != nil {
		return nil, err
	}
	return p.graph, nil
}

// Close releases the compiled programs.
func (t *Trainer) Close() error {
	var first error
	for k, p := range t.programs {
		if err := p.vm.Close(); err != nil && first == nil {
			first = errors.Wrapf(err, "train: closing %v", k)
		}
	}
	t.programs = map[Key]*program{}
	return first
}
