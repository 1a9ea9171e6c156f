package blocks

import (
	"fmt"
	"strings"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Must returns v when err is nil. Otherwise it stops the Graph.Block or
// Build body it is called from, and that Block returns err, wrapped with
// the block's name.
//
// Every node a block adds can fail to build (a shape that does not fit, a
// parameter missing from the store), so written out in full a Forward body
// is an `if err != nil` after every line and its equations are lost among
// them. Must lets the body be its equations:
//
//	err = g.Block("h", func() error { // GPT-1's block, post-LN
//		a := blocks.Must(attn.Forward(g, x, mask))
//		n := blocks.Must(ln1.Forward(g, blocks.Must(ops.Add(x, a))))
//		y = blocks.Must(ln2.Forward(g, blocks.Must(ops.Add(n, blocks.Must(mlp.Forward(g, n))))))
//		return nil
//	})
//
// The first Must that sees an error stops the body, so nothing after it
// runs on a nil node, and the Block returns the same error the long form
// would. This is how text/template and encoding/json report errors from
// deep inside their own recursion: a panic of a private type, recovered at
// the boundary and only for that type (any other panic goes on untouched).
// It costs nothing when the graph runs: it is build-time control flow and
// adds no node.
//
// The rule that keeps the panic private: call Must only inside a
// Graph.Block or Build body. Every exported Forward in this package and in
// the model packages wraps its body in one, so a caller only ever sees an
// error. A Must outside any Block panics, as template.Must does, with its
// error and a message naming the mistake: a programming error, loud and at
// once, never silent.
func Must[T any](v T, err error) T {
	if err != nil {
		panic(buildError{err})
	}
	return v
}

// Must2 is Must for a call with two results and an error, such as
// ScaledDotProductAttention or MultiHeadAttention.Forward.
func Must2[A, B any](a A, b B, err error) (A, B) {
	if err != nil {
		panic(buildError{err})
	}
	return a, b
}

// Must3 is Must for a call with three results and an error, such as
// MultiHeadAttention.SelfAttend.
func Must3[A, B, C any](a A, b B, c C, err error) (A, B, C) {
	if err != nil {
		panic(buildError{err})
	}
	return a, b, c
}

// Build runs build and returns its error or the error a Must in it stopped
// it with. It is Graph.Block without the grouping, for a function that adds
// several blocks but is not one box of the graph's picture itself, such as
// a model's whole forward pass.
func Build(build func() error) (err error) {
	defer func() { stopped(recover(), &err) }()
	return build()
}

// buildError carries a Must's error to the Block or Build that recovers it.
type buildError struct{ err error }

// Error is what a Must outside any Block or Build panics with.
func (e buildError) Error() string {
	return "blocks.Must called outside Graph.Block and blocks.Build: " + e.err.Error()
}

// stopped sets *err to the error of a Must's panic r; any other panic goes
// on. Call it as defer func() { stopped(recover(), &err) }(): recover only
// works called directly by the deferred function.
func stopped(r any, err *error) {
	if r == nil {
		return
	}
	be, ok := r.(buildError)
	if !ok {
		panic(r)
	}
	*err = be.err
}

// blockError is an error with the name of the block it stopped.
type blockError struct {
	block string
	err   error
}

func (e *blockError) Error() string { return e.block + ": " + e.err.Error() }
func (e *blockError) Unwrap() error { return e.err }
func (e *blockError) Cause() error  { return e.err } // for errors.Cause

// inBlock is err prefixed with the block's name, unless a block inside it
// has already named it (inner names extend the outer ones, see Block).
func inBlock(name string, err error) error {
	if err == nil {
		return nil
	}
	var inner *blockError
	if errors.As(err, &inner) && (inner.block == name || strings.HasPrefix(inner.block, name+".")) {
		return err
	}
	return &blockError{block: name, err: err}
}

// param is the parameter prefix.name as a node, for use under Must.
func (g *Graph) param(prefix, name string) *G.Node {
	return Must(g.Param(join(prefix, name)))
}

// ShapeError says that a node given to a block has the wrong shape. Want is
// written as a shape with symbols for the sizes the block leaves free, as
// "(B, T, 512)" or "(..., 64)". Callers find it with errors.As.
type ShapeError struct {
	What string       // the node: "MultiHeadAttention mask"
	Got  tensor.Shape // its shape
	Want string       // the shape the block wants
}

func (e *ShapeError) Error() string {
	return fmt.Sprintf("%s has shape %v, want %s", e.What, e.Got, e.Want)
}

// badShape is a ShapeError for what, whose shape got is not want: sizes
// (ints) and symbols (strings) such as "B" or "...".
func badShape(what string, got tensor.Shape, want ...any) *ShapeError {
	dims := make([]string, len(want))
	for i, w := range want {
		dims[i] = fmt.Sprint(w)
	}
	return &ShapeError{What: what, Got: got.Clone(), Want: "(" + strings.Join(dims, ", ") + ")"}
}
