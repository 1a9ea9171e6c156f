package train

import (
	"fmt"
	"strings"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/ops"
)

// Key identifies one compiled program. A graph's shape is fixed when it is
// built, so a program is built for every size its graph depends on: the
// mode, which of the model's graph functions (Kind), the rows, and the
// lengths or counts that model needs. A model reads the fields it uses and
// leaves the others zero; batches padded up to a few bucket lengths (see
// datasets.Buckets) keep the number of keys, and so of programs, small.
type Key struct {
	Mode blocks.Mode
	// Kind names the graph function that builds the program: "" is the
	// model's training and evaluation graph; a model may name others
	// ("logits", "decode", "encode").
	Kind string
	// Batch is B, the rows.
	Batch int
	// Len is T: a language model's window, an encoder–decoder's target
	// length, an encoder's input length, the new tokens of a decode step.
	Len int
	// Source is S, an encoder–decoder's source length (0: no source).
	Source int
	// Choices is C, the choices of a multiple-choice example, each of
	// length Len (0: not a multiple-choice program).
	Choices int
	// Cache is N, the cached positions a decode step attends to besides
	// its own (0: no cache).
	Cache int
}

// String shows the mode, the kind when set, and the sizes that are set:
// "train/B8/S24/T16", "eval/decode/B1/T1/N32".
func (k Key) String() string {
	var b strings.Builder
	b.WriteString(k.Mode.String())
	if k.Kind != "" {
		b.WriteString("/" + k.Kind)
	}
	fmt.Fprintf(&b, "/B%d", k.Batch)
	for _, f := range []struct {
		tag string
		n   int
	}{{"C", k.Choices}, {"S", k.Source}, {"T", k.Len}, {"N", k.Cache}} {
		if f.n != 0 {
			fmt.Fprintf(&b, "/%s%d", f.tag, f.n)
		}
	}
	return b.String()
}

func (k Key) validate() error {
	if k.Batch <= 0 || k.Len < 0 || k.Source < 0 || k.Choices < 0 || k.Cache < 0 || k.Len+k.Source == 0 {
		return errors.Errorf("train: key %v needs a positive batch size and length (and no negative size)", k)
	}
	return nil
}

// Built is what a Model adds to a graph.
type Built struct {
	// Loss is the scalar to minimise. Required in training programs;
	// optional in evaluation programs.
	Loss *G.Node
	// Inputs are the nodes each run sets (Program.Let), by name: every
	// batch must give exactly these. Values fixed at build time
	// (blocks.Graph.Fixed) are not inputs.
	Inputs map[string]*G.Node
	// Outputs are nodes read after each run (logits, attention weights,
	// a decode step's new keys and values).
	Outputs map[string]*G.Node
}

// Model builds a graph for a key over the parameters of its Store. It is
// the one adapter a model package writes to the engine: the Trainer's
// steps and evaluations and a model's decoding all run the programs it
// builds.
type Model interface {
	Store() *blocks.Store
	Build(g *blocks.Graph, key Key) (Built, error)
}

// Program is one compiled graph: the graph, its tape machine, its named
// inputs and outputs and, in a training program, the loss's gradients.
// Each run sets the inputs (Let, which checks shape and dtype), runs
// (Run) and reads the outputs (Output, Loss). Parameters are bound from
// the Store, so every program of a model shares its weights.
//
// The values Output and Loss return belong to the program: they are valid
// until its next Run. Copy what must outlive it.
//
// A Program is not safe for concurrent use.
type Program struct {
	key     Key
	graph   *blocks.Graph
	forward int // number of nodes Model.Build added
	inputs  map[string]*G.Node
	order   []string        // input names, sorted
	set     map[string]bool // inputs given a value since compiling
	outputs map[string]*G.Value
	loss    *G.Value
	names   []string // bound parameters (training programs)
	grads   []*G.Value
	vm      G.VM
	ran     bool
}

// Compile builds key's graph with m and compiles it. A training program
// (key.Mode Train) needs a loss and gets the gradients of every parameter
// the graph binds; dropoutSeed seeds its dropout masks.
func Compile(m Model, key Key, dropoutSeed uint64) (*Program, error) {
	if m == nil || m.Store() == nil {
		return nil, errors.New("train: model or its store is nil")
	}
	if err := key.validate(); err != nil {
		return nil, err
	}
	g := blocks.NewGraph(m.Store(), key.Mode, dropoutSeed)
	built, err := m.Build(g, key)
	if err != nil {
		return nil, errors.Wrapf(err, "train: building %v", key)
	}
	p := &Program{key: key, graph: g, inputs: map[string]*G.Node{}, set: map[string]bool{},
		outputs: map[string]*G.Value{}, forward: len(g.G.AllNodes())}
	for name, n := range built.Inputs {
		if n == nil {
			return nil, errors.Errorf("train: %v: input %q is nil", key, name)
		}
		p.inputs[name] = n
	}
	p.order = sortedKeys(p.inputs)
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
		if built.Outputs[name] == nil {
			return nil, errors.Errorf("train: %v: output %q is nil", key, name)
		}
		v := new(G.Value)
		G.Read(built.Outputs[name], v)
		p.outputs[name] = v
	}
	p.vm = G.NewTapeMachine(g.G)
	return p, nil
}

// Key is the key the program was built for.
func (p *Program) Key() Key { return p.key }

// Graph is the program's graph (for pictures and gradient checks).
func (p *Program) Graph() *blocks.Graph { return p.graph }

// Inputs are the names of the per-run inputs, sorted.
func (p *Program) Inputs() []string { return append([]string(nil), p.order...) }

// Outputs are the names of the outputs, sorted.
func (p *Program) Outputs() []string { return sortedKeys(p.outputs) }

// Let sets input name for the next runs. The value must have the node's
// shape and dtype exactly; it stays set until the next Let.
func (p *Program) Let(name string, v G.Value) error {
	n, ok := p.inputs[name]
	if !ok {
		return errors.Errorf("train: %v: no input %q (the graph takes %v)", p.key, name, p.Inputs())
	}
	if v == nil {
		return errors.Errorf("train: %v: input %q is nil", p.key, name)
	}
	if !v.Shape().Eq(n.Shape()) || v.Dtype() != n.Dtype() {
		return errors.Errorf("train: %v: input %q is %v %v, the graph wants %v %v",
			p.key, name, v.Shape(), v.Dtype(), n.Shape(), n.Dtype())
	}
	if err := G.Let(n, v); err != nil {
		return errors.Wrapf(err, "train: %v: input %q", p.key, name)
	}
	p.set[name] = true
	return nil
}

// Run runs the program once on the inputs set. Every input must have been
// set at least once.
func (p *Program) Run() error {
	if p.vm == nil {
		return errors.Errorf("train: %v: the program is closed", p.key)
	}
	for _, name := range p.order {
		if !p.set[name] {
			return errors.Errorf("train: %v: input %q was never set", p.key, name)
		}
	}
	p.vm.Reset()
	if err := p.vm.RunAll(); err != nil {
		return errors.Wrapf(err, "train: running %v", p.key)
	}
	p.ran = true
	return nil
}

// Output is the value of output name after the last run. It is the
// program's own value, valid until the next Run.
func (p *Program) Output(name string) (G.Value, error) {
	v, ok := p.outputs[name]
	if !ok {
		return nil, errors.Errorf("train: %v: no output %q (the graph has %v)", p.key, name, p.Outputs())
	}
	if !p.ran || *v == nil {
		return nil, errors.Errorf("train: %v: output %q before any run", p.key, name)
	}
	return *v, nil
}

// Release drops the tensors the program's ops keep from run to run (every
// activation and gradient of a training step; its next run allocates them
// again). Cache calls it on a program when another one runs, so that an
// idle program holds only its outputs.
func (p *Program) Release() { ops.Release(p.graph.G) }

// HasLoss says whether the program computes a loss.
func (p *Program) HasLoss() bool { return p.loss != nil }

// Loss is the loss of the last run.
func (p *Program) Loss() (float64, error) {
	if p.loss == nil {
		return 0, errors.Errorf("train: %v: the program has no loss", p.key)
	}
	if !p.ran {
		return 0, errors.Errorf("train: %v: loss before any run", p.key)
	}
	return scalar(*p.loss)
}

// Close releases the tape machine; the program cannot run again.
func (p *Program) Close() error {
	if p.vm == nil {
		return nil
	}
	err := p.vm.Close()
	p.vm = nil
	return errors.Wrapf(err, "train: closing %v", p.key)
}
