// Package blocks holds the reusable pieces that seq2gpt's models are made
// of — embeddings and positions, masks, dropout, Linear, the LSTM, additive
// and scaled dot-product attention, multi-head attention, the position-wise
// feed-forward network and LayerNorm — each equal to its PyTorch counterpart
// on the same weights — and the key/value cache of incremental decoding
// (KVCache, CacheMask).
//
// A block is a validated config plus parameters in a Store; its Forward adds
// the block to a Graph. Parameters live in the Store, not in any graph, so
// the training graph, the evaluation graph and graphs of other shapes all
// bind the same tensors.
//
// A Forward body is written as its equations, each node under Must, inside
// Graph.Block, which turns the first failure into the error Forward
// returns (see Must). A wrong shape is a *ShapeError naming both shapes.
package blocks

import (
	"strings"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/ops"
)

// Mode says whether a graph trains (dropout on) or evaluates (dropout is
// left out of the graph, so evaluation is exactly the identity there).
type Mode int

const (
	Train Mode = iota
	Eval
)

func (m Mode) String() string {
	if m == Eval {
		return "eval"
	}
	return "train"
}

// Graph is one expression graph under construction: a Gorgonia graph, the
// store its parameters come from, its mode and its dropout state.
type Graph struct {
	G     *G.ExprGraph
	Store *Store
	Mode  Mode
	// Dropout is the random state of every dropout in this graph.
	Dropout *ops.DropoutRNG

	params map[string]*G.Node
	scope  []string // names of the blocks being built, outermost first
	order  []string
	inputs map[string]*G.Node
}

// NewGraph starts a graph over store. dropoutSeed seeds its dropout masks.
func NewGraph(store *Store, mode Mode, dropoutSeed uint64) *Graph {
	return &Graph{
		G:       G.NewGraph(),
		Store:   store,
		Mode:    mode,
		Dropout: &ops.DropoutRNG{Seed: dropoutSeed},
		params:  map[string]*G.Node{},
		inputs:  map[string]*G.Node{},
	}
}

// Param binds the store's tensor name into the graph, once: later calls
// return the same node, so a block applied at every time step shares one
// weight node. The node's value is the store's tensor itself.
func (g *Graph) Param(name string) (*G.Node, error) {
	if n, ok := g.params[name]; ok {
		return n, nil
	}
	t, ok := g.Store.Get(name)
	if !ok {
		return nil, errors.Errorf("blocks: no parameter %q in the store", name)
	}
	n := G.NewTensor(g.G, t.Dtype(), t.Dims(), G.WithShape(t.Shape().Clone()...),
		G.WithName(name), G.WithValue(t))
	g.params[name] = n
	g.order = append(g.order, name)
	return n, nil
}

// Params returns the bound parameter nodes in the order they were bound,
// with their names.
func (g *Graph) Params() ([]string, G.Nodes) {
	nodes := make(G.Nodes, len(g.order))
	for i, name := range g.order {
		nodes[i] = g.params[name]
	}
	return append([]string(nil), g.order...), nodes
}

// Input adds a named input node of the store's dtype (or dt if given) whose
// value is set per run with G.Let. Names are unique within a graph.
func (g *Graph) Input(name string, shape tensor.Shape, dt ...tensor.Dtype) (*G.Node, error) {
	if _, ok := g.inputs[name]; ok {
		return nil, errors.Errorf("blocks: input %q already exists", name)
	}
	d := g.Store.Dtype()
	if len(dt) > 0 {
		d = dt[0]
	}
	var n *G.Node
	if len(shape) == 0 {
		n = G.NewScalar(g.G, d, G.WithName(name))
	} else {
		n = G.NewTensor(g.G, d, len(shape), G.WithShape(shape.Clone()...), G.WithName(name))
	}
	g.inputs[name] = n
	return n, nil
}

// Fixed adds an input node whose value is set once, here, at build time:
// a value that depends only on the graph's shape (a causal mask, position
// ids) and so is the same on every run. It is not a per-run input (Let it
// never changes it again), and unlike a Gorgonia constant it is not merged
// with another of equal name or printout (GORGONIA-NOTES). Reshape it only
// through an op output: Reshape of an input overwrites it in place.
func (g *Graph) Fixed(name string, v tensor.Tensor) (*G.Node, error) {
	if v == nil {
		return nil, errors.Errorf("blocks: fixed value %q is nil", name)
	}
	n, err := g.Input(name, v.Shape(), v.Dtype())
	if err != nil {
		return nil, err
	}
	if err := G.Let(n, v); err != nil {
		return nil, errors.Wrapf(err, "blocks: fixed value %q", name)
	}
	return n, nil
}

// InputNode returns the input named name, if it exists.
func (g *Graph) InputNode(name string) (*G.Node, bool) {
	n, ok := g.inputs[name]
	return n, ok
}

// Block runs build and puts every node it added into the group name, so
// that a picture of the graph shows one box per block. Nested blocks keep
// the innermost name (Gorgonia sets a node's group once). A name that is
// not already under the enclosing block's is put under it, so the
// attention inside "h.0.attn" is "h.0.attn.sdpa" rather than a box shared
// by every layer.
//
// Block returns build's error, or the error a Must in build stopped it
// with, prefixed with the name of the innermost block it came from: an
// error from deep inside a model reads "h.0.attn.sdpa: attention K has
// shape …", once, not once per enclosing block.
func (g *Graph) Block(name string, build func() error) (err error) {
	if n := len(g.scope); n > 0 {
		if parent := g.scope[n-1]; name != parent && !strings.HasPrefix(name, parent+".") {
			name = parent + "." + name
		}
	}
	g.scope = append(g.scope, name)
	start := len(g.G.AllNodes())
	defer func() {
		g.scope = g.scope[:len(g.scope)-1]
		for _, n := range g.G.AllNodes()[start:] {
			G.WithGroupName(name)(n)
		}
		stopped(recover(), &err)
		err = inBlock(name, err)
	}()
	return build()
}

// ApplyDropout is x with dropout p in training graphs and x itself in
// evaluation graphs or when p is 0.
func (g *Graph) ApplyDropout(x *G.Node, p float64) (*G.Node, error) {
	if g.Mode == Eval || p == 0 {
		return x, nil
	}
	return ops.Dropout(x, p, g.Dropout)
}

// join makes a dotted parameter name.
func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

func positive(what string, vals ...int) error {
	for _, v := range vals {
		if v <= 0 {
			return errors.Errorf("%s must be positive, got %d", what, v)
		}
	}
	return nil
}

func checkDropout(p float64) error {
	if p < 0 || p >= 1 {
		return errors.Errorf("dropout %v is not in [0, 1)", p)
	}
	return nil
}

// name is a block's group name: its prefix, or its kind at the top level.
func name(prefix, kind string) string {
	if prefix == "" {
		return kind
	}
	return prefix
}
