// Package ops holds seq2gpt's own Gorgonia operations: the places where a
// stock op is wrong or slow (see ../shared/GORGONIA-NOTES.md) and a fused
// kernel with a hand-written backward pass is exact and faster.
//
// Every op here implements gorgonia.Op and gorgonia.SDOp, works on float32
// and float64, never overwrites its inputs, and has a finite-difference
// gradient test and a test against the equivalent composition of stock ops.
//
// Each op is described by a kernel (forward function, shape rule and the
// symbolic backward) wrapped by the generic op type below, so the Gorgonia
// boilerplate is written once.
//
// Every node keeps the tensors it returns and writes into them again on the
// next run while their shape is unchanged (see buffers), so a steady-state
// training step allocates almost nothing: a value a run returns is valid
// until the next run of its graph, and whoever keeps one copies it.
package ops

import (
	"fmt"
	"hash"
	"hash/fnv"
	"math"
	"reflect"

	"github.com/chewxy/hm"
	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// kernel is the part of an op that differs from op to op.
type kernel struct {
	// name and params are written into the op's hash and printout. Every
	// parameter must appear in params: Gorgonia merges nodes with equal
	// hashes and equal children, so a forgotten parameter makes two
	// different ops one.
	name   string
	params string
	// ranks of the inputs and the output; 0 is a scalar.
	inRanks []int
	outRank int
	// intIn marks the inputs that are tensor.Int (ids), not of the float
	// type the others and the output share.
	intIn []bool
	shape func(in []tensor.Shape) (tensor.Shape, error)
	// do computes the output, taking every tensor it returns or keeps for
	// the backward from buf (buf.like, or buf.dense when it writes every
	// element), so that a node reuses its tensors from run to run instead
	// of allocating them.
	do func(in []tensor.Tensor, buf *buffers) (G.Value, error)
	// diff says which inputs the op is differentiable with respect to;
	// grad builds their gradients (nil entries elsewhere). A nil grad
	// makes an op that is not differentiated (a backward op).
	diff []bool
	grad func(in G.Nodes, out, dOut *G.Node) (G.Nodes, error)
}

type op struct {
	k   kernel
	buf buffers
}

var (
	_ G.Op   = (*op)(nil)
	_ G.SDOp = (*op)(nil)
)

func apply(k kernel, in ...*G.Node) (*G.Node, error) {
	if len(in) != len(k.inRanks) {
		return nil, errors.Errorf("%s: want %d inputs, got %d", k.name, len(k.inRanks), len(in))
	}
	for i, n := range in {
		if n.Dims() != k.inRanks[i] {
			return nil, errors.Errorf("%s: input %d (%s) has shape %v, want rank %d", k.name, i, n.Name(), n.Shape(), k.inRanks[i])
		}
	}
	n, err := G.ApplyOp(&op{k: k}, in...)
	return n, errors.Wrap(err, k.name)
}

func (o *op) Arity() int { return len(o.k.inRanks) }

// Type is built afresh on every call: Gorgonia returns types to a pool and a
// cached one panics on second use.
func (o *op) Type() hm.Type {
	a := hm.TypeVariable('a')
	ts := make([]hm.Type, 0, len(o.k.inRanks)+1)
	for i, r := range append(append([]int(nil), o.k.inRanks...), o.k.outRank) {
		var of hm.Type = a
		if i < len(o.k.intIn) && o.k.intIn[i] {
			of = tensor.Int
		}
		if r == 0 {
			ts = append(ts, of)
		} else {
			ts = append(ts, G.TensorType{Dims: r, Of: of})
		}
	}
	return hm.NewFnType(ts...)
}

func (o *op) InferShape(ds ...G.DimSizer) (tensor.Shape, error) {
	shapes := make([]tensor.Shape, len(ds))
	for i, d := range ds {
		s, ok := d.(tensor.Shape)
		if !ok {
			return nil, errors.Errorf("%s: input %d has no shape (%T)", o.k.name, i, d)
		}
		shapes[i] = s
	}
	return o.k.shape(shapes)
}

func (o *op) Do(vs ...G.Value) (G.Value, error) {
	in := make([]tensor.Tensor, len(vs))
	for i, v := range vs {
		t, err := asTensor(v)
		if err != nil {
			return nil, errors.Wrapf(err, "%s: input %d", o.k.name, i)
		}
		in[i] = t
	}
	o.buf.next = 0
	return o.k.do(in, &o.buf)
}

// asTensor unwraps Gorgonia's dual values (unexported, embedding the
// primal value) and materialises non-contiguous views, so kernels can read
// raw row-major data.
func asTensor(v G.Value) (tensor.Tensor, error) {
	if t, ok := v.(tensor.Tensor); ok {
		if !t.IsNativelyAccessible() {
			return nil, errors.New("tensor is not in Go memory")
		}
		if t.RequiresIterator() {
			return tensor.Materialize(t), nil
		}
		return t, nil
	}
	if s, ok := v.(G.Scalar); ok {
		return tensor.New(tensor.FromScalar(s.Data())), nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer && rv.Elem().Kind() == reflect.Struct {
		if f := rv.Elem().FieldByName("Value"); f.IsValid() && f.CanInterface() {
			if inner, ok := f.Interface().(G.Value); ok {
				return asTensor(inner)
			}
		}
	}
	return nil, errors.Errorf("unsupported value %T", v)
}

func (o *op) ReturnsPtr() bool     { return false }
func (o *op) CallsExtern() bool    { return false }
func (o *op) OverwritesInput() int { return -1 }
func (o *op) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "seq2gpt.%s{%s}%v", o.k.name, o.k.params, o.k.inRanks)
}
func (o *op) Hashcode() uint32 {
	h := fnv.New32a()
	o.WriteHash(h)
	return h.Sum32()
}
func (o *op) String() string { return fmt.Sprintf("%s{%s}", o.k.name, o.k.params) }

func (o *op) DiffWRT(n int) []bool {
	if o.k.grad == nil || len(o.k.diff) != n {
		return make([]bool, n)
	}
	return append([]bool(nil), o.k.diff...)
}

func (o *op) SymDiff(in G.Nodes, out, dOut *G.Node) (G.Nodes, error) {
	if o.k.grad == nil {
		return nil, errors.Errorf("%s is not differentiable", o.k.name)
	}
	g, err := o.k.grad(in, out, dOut)
	if err != nil {
		return nil, errors.Wrapf(err, "%s backward", o.k.name)
	}
	if len(g) != len(in) {
		return nil, errors.Errorf("%s backward: %d gradients for %d inputs", o.k.name, len(g), len(in))
	}
	return g, nil
}

// backwardOp is a backward op of a fused op: a kernel writing a fresh
// tensor of shape out from its inputs, not itself differentiated.
func backwardOp(name string, out tensor.Shape, back func(t []tensor.Tensor, out *tensor.Dense), in ...*G.Node) (*G.Node, error) {
	ranks := make([]int, len(in))
	for i, n := range in {
		ranks[i] = n.Dims()
	}
	out = out.Clone()
	return apply(kernel{
		name: name, inRanks: ranks, outRank: len(out),
		shape: func([]tensor.Shape) (tensor.Shape, error) { return out.Clone(), nil },
		do: func(t []tensor.Tensor, buf *buffers) (G.Value, error) {
			if err := checkDtypes(name, t); err != nil {
				return nil, err
			}
			y := buf.like(t[0], out)
			back(t, y)
			return y, nil
		},
	}, in...)
}

// floats is the element types every kernel supports.
type floats interface{ ~float32 | ~float64 }

// buffers are the tensors one node's kernel returns or keeps, kept from run
// to run. Gorgonia's tape machine drops its registers on every Reset, so a
// kernel that allocated its output afresh reallocated every activation and
// gradient of a training step each step (82–84% of their bytes in
// BENCHMARKS.md); a node now writes into last run's tensors. A value a run
// returns is therefore valid until the next run of its program, as
// train.Program.Output documents: whoever keeps one copies it.
type buffers struct {
	ts   []*tensor.Dense
	next int // the index of the next like or dense during the current Do
}

// KeptBytes is the size of the tensors g's ops keep from run to run.
func KeptBytes(g *G.ExprGraph) int {
	total := 0
	for _, n := range g.AllNodes() {
		if o, ok := n.Op().(*op); ok {
			for _, t := range o.buf.ts {
				total += int(t.MemSize())
			}
		}
	}
	return total
}

// Release makes g's ops drop the tensors they keep, to be allocated again
// by the next run: for a program that will not run for a while. It frees
// nothing anyone still holds (a value read after a run stays valid).
func Release(g *G.ExprGraph) {
	for _, n := range g.AllNodes() {
		if o, ok := n.Op().(*op); ok {
			o.buf = buffers{}
		}
	}
}

// like returns a zeroed dense tensor of t's dtype and the given shape, for
// kernels that accumulate into their output or leave parts of it alone: the
// one this call (the same position in the kernel's sequence of calls)
// returned in the previous run when it still has that dtype and shape and
// its plain row-major layout (a stock Reshape or lazy transpose downstream
// may have changed its header in place), else a new one.
func (b *buffers) like(t tensor.Tensor, shape tensor.Shape) *tensor.Dense {
	y, kept := b.get(t, shape)
	if kept {
		switch d := y.Data().(type) {
		case []float32:
			clear(d)
		case []float64:
			clear(d)
		default:
			y.Zero()
		}
	}
	return y
}

// dense is like without the zeroing, for kernels that write every element
// of their output (a product with β = 0, an elementwise map, a copy): it
// holds last run's values. A new tensor is filled with NaN, so that a
// kernel that does not write every element shows it in its first run — in
// every test — rather than only from its second.
func (b *buffers) dense(t tensor.Tensor, shape tensor.Shape) *tensor.Dense {
	y, kept := b.get(t, shape)
	if !kept {
		switch d := y.Data().(type) {
		case []float32:
			nan := float32(math.NaN())
			for i := range d {
				d[i] = nan
			}
		case []float64:
			for i := range d {
				d[i] = math.NaN()
			}
		}
	}
	return y
}

// get returns the next kept tensor when it still fits (kept), else a new,
// zeroed one that it keeps.
func (b *buffers) get(t tensor.Tensor, shape tensor.Shape) (y *tensor.Dense, kept bool) {
	i := b.next
	b.next++
	if i < len(b.ts) {
		if y := b.ts[i]; y.Dtype() == t.Dtype() && y.Shape().Eq(shape) && !y.IsMaterializable() && !y.RequiresIterator() {
			return y, true
		}
	}
	y = newLike(t, shape)
	if i < len(b.ts) {
		b.ts[i] = y
	} else {
		b.ts = append(b.ts, y)
	}
	return y, false
}

// newLike returns a zeroed dense tensor of t's dtype and the given shape.
func newLike(t tensor.Tensor, shape tensor.Shape) *tensor.Dense {
	return tensor.New(tensor.Of(t.Dtype()), tensor.WithShape(shape.Clone()...))
}

// scalarOf wraps a float64 as a Gorgonia scalar of dtype dt.
func scalarOf(dt tensor.Dtype, v float64) (G.Value, error) {
	switch dt {
	case tensor.Float32:
		return G.NewF32(float32(v)), nil
	case tensor.Float64:
		return G.NewF64(v), nil
	}
	return nil, errors.Errorf("unsupported dtype %v", dt)
}

// scalarValue reads a scalar gradient (a 0-d tensor or a one-element one).
func scalarValue(t tensor.Tensor) (float64, error) {
	switch d := t.Data().(type) {
	case float32:
		return float64(d), nil
	case float64:
		return d, nil
	case []float32:
		if len(d) == 1 {
			return float64(d[0]), nil
		}
	case []float64:
		if len(d) == 1 {
			return d[0], nil
		}
	}
	return 0, errors.Errorf("want a scalar, got shape %v", t.Shape())
}

// sameShape is the shape rule of ops whose output has their first input's shape.
func sameShape(in []tensor.Shape) (tensor.Shape, error) { return in[0].Clone(), nil }

func checkDtypes(name string, in []tensor.Tensor) error {
	dt := in[0].Dtype()
	if dt != tensor.Float32 && dt != tensor.Float64 {
		return errors.Errorf("%s: unsupported dtype %v", name, dt)
	}
	for i, t := range in[1:] {
		if t.Dtype() != dt {
			return errors.Errorf("%s: input %d is %v, input 0 is %v", name, i+1, t.Dtype(), dt)
		}
	}
	return nil
}
