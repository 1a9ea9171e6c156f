package blocks

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/pkg/errors"
	"gorgonia.org/tensor"
)

// Store holds a model's parameters as named tensors that live outside any
// graph. Any number of graphs bind to the same tensors (sharing memory), so an
// optimizer step taken through one graph is seen by every other graph: the
// training graph, the evaluation graph, and graphs of other batch sizes or
// sequence-length buckets.
//
// Names follow the PyTorch state dict of the module each block mirrors, with
// dotted prefixes for nesting ("encoder.layers.0.self_attn.in_proj_weight").
//
// Initial values are deterministic: each parameter draws from a generator
// seeded by (seed, name), so a parameter's initial value does not depend on
// the order in which blocks are built.
type Store struct {
	dtype  tensor.Dtype
	seed   uint64
	order  []string
	tensor map[string]*tensor.Dense
}

// NewStore returns an empty store of the given element type (tensor.Float32
// for models, tensor.Float64 for gradient checks).
func NewStore(dtype tensor.Dtype, seed uint64) (*Store, error) {
	if dtype != tensor.Float32 && dtype != tensor.Float64 {
		return nil, errors.Errorf("blocks: store dtype must be Float32 or Float64, got %v", dtype)
	}
	return &Store{dtype: dtype, seed: seed, tensor: map[string]*tensor.Dense{}}, nil
}

// Dtype is the element type of every tensor in the store.
func (s *Store) Dtype() tensor.Dtype { return s.dtype }

// Seed is the seed the store draws initial values from.
func (s *Store) Seed() uint64 { return s.seed }

// MaxElements bounds one parameter's element count: 2⁴⁰ (4 TiB of
// float32), beyond any machine's memory, and far below where a shape's
// product could overflow an int or a byte count.
const MaxElements = 1 << 40

// Add creates the parameter name with the given shape, filled by init.
// Adding a name twice is an error: two blocks would silently share weights.
func (s *Store) Add(name string, shape tensor.Shape, init Init) (*tensor.Dense, error) {
	if name == "" {
		return nil, errors.New("blocks: parameter name is empty")
	}
	if _, ok := s.tensor[name]; ok {
		return nil, errors.Errorf("blocks: parameter %q already exists", name)
	}
	if len(shape) == 0 {
		return nil, errors.Errorf("blocks: parameter %q has an empty shape", name)
	}
	n := 1
	for _, d := range shape {
		if d <= 0 {
			return nil, errors.Errorf("blocks: parameter %q has shape %v with a non-positive size", name, shape)
		}
		// Checked before multiplying, so the product cannot wrap around.
		if d > MaxElements/n {
			return nil, errors.Errorf("blocks: parameter %q has shape %v, more than %d elements", name, shape, MaxElements)
		}
		n *= d
	}
	vals := init(s.rng(name), shape.Clone())
	if len(vals) != shape.TotalSize() {
		return nil, errors.Errorf("blocks: initialiser for %q gave %d values for shape %v", name, len(vals), shape)
	}
	t := tensor.New(tensor.Of(s.dtype), tensor.WithShape(shape.Clone()...))
	fill(t, vals)
	s.tensor[name] = t
	s.order = append(s.order, name)
	return t, nil
}

// rng is the generator for one parameter: PCG seeded by the store's seed and
// an FNV hash of the name.
func (s *Store) rng(name string) *rand.Rand {
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	return rand.New(rand.NewPCG(s.seed, h.Sum64()))
}

// Get returns the tensor named name.
func (s *Store) Get(name string) (*tensor.Dense, bool) {
	t, ok := s.tensor[name]
	return t, ok
}

// Names lists the parameters in the order they were added.
func (s *Store) Names() []string { return append([]string(nil), s.order...) }

// SortedNames lists the parameters in lexical order (state-dict files).
func (s *Store) SortedNames() []string {
	n := s.Names()
	sort.Strings(n)
	return n
}

// Len is the number of parameters.
func (s *Store) Len() int { return len(s.order) }

// NumElements is the total number of scalar weights.
func (s *Store) NumElements() int {
	n := 0
	for _, t := range s.tensor {
		n += t.Shape().TotalSize()
	}
	return n
}

// Set copies vals (row-major, in the store's layout) into parameter name.
func (s *Store) Set(name string, vals []float64) error {
	t, ok := s.tensor[name]
	if !ok {
		return errors.Errorf("blocks: no parameter %q", name)
	}
	if len(vals) != t.Shape().TotalSize() {
		return errors.Errorf("blocks: parameter %q has shape %v (%d values), got %d values",
			name, t.Shape(), t.Shape().TotalSize(), len(vals))
	}
	fill(t, vals)
	return nil
}

// SetTensor copies src into parameter name in the store's own element
// type: a float32 source into a float32 store element for element, float64
// into float32 rounding to nearest, float32 into float64 exactly. src must
// have the parameter's shape.
func (s *Store) SetTensor(name string, src *tensor.Dense) error {
	t, ok := s.tensor[name]
	if !ok {
		return errors.Errorf("blocks: no parameter %q", name)
	}
	if !src.Shape().Eq(t.Shape()) {
		return errors.Errorf("blocks: parameter %q has shape %v, the tensor %v", name, t.Shape(), src.Shape())
	}
	if src.IsMaterializable() { // a view or a lazy transpose
		src = src.Materialize().(*tensor.Dense)
	}
	switch d := t.Data().(type) {
	case []float32:
		switch v := src.Data().(type) {
		case []float32:
			copy(d, v)
			return nil
		case []float64:
			for i, x := range v {
				d[i] = float32(x)
			}
			return nil
		}
	case []float64:
		switch v := src.Data().(type) {
		case []float32:
			for i, x := range v {
				d[i] = float64(x)
			}
			return nil
		case []float64:
			copy(d, v)
			return nil
		}
	}
	return errors.Errorf("blocks: parameter %q is %v, the tensor %v (want float32 or float64)", name, t.Dtype(), src.Dtype())
}

// Float64s returns a copy of t's elements as float64, for float32, float64,
// int and int64 tensors.
func Float64s(t *tensor.Dense) ([]float64, error) {
	if t.IsMaterializable() { // a view or a lazy transpose
		t = t.Materialize().(*tensor.Dense)
	}
	switch d := t.Data().(type) {
	case []float32:
		return widen(d), nil
	case []float64:
		return append([]float64(nil), d...), nil
	case []int64:
		return widen(d), nil
	case []int:
		return widen(d), nil
	case float32:
		return []float64{float64(d)}, nil
	case float64:
		return []float64{d}, nil
	}
	return nil, errors.Errorf("blocks: cannot read a %v tensor as float64", t.Dtype())
}

func widen[T float32 | int64 | int](d []T) []float64 {
	out := make([]float64, len(d))
	for i, x := range d {
		out[i] = float64(x)
	}
	return out
}

// fill copies float64 values into a float32 or float64 tensor.
func fill(t *tensor.Dense, vals []float64) {
	switch d := t.Data().(type) {
	case []float32:
		for i, v := range vals {
			d[i] = float32(v)
		}
	case []float64:
		copy(d, vals)
	}
}

// Init fills a parameter of the given shape from rng, returning its values
// in row-major order.
type Init func(rng *rand.Rand, shape tensor.Shape) []float64

// Constant fills with c (LayerNorm gains 1, biases 0).
func Constant(c float64) Init {
	return func(_ *rand.Rand, shape tensor.Shape) []float64 {
		v := make([]float64, shape.TotalSize())
		for i := range v {
			v[i] = c
		}
		return v
	}
}

// Zeros fills with 0.
func Zeros() Init { return Constant(0) }

// Ones fills with 1.
func Ones() Init { return Constant(1) }

// Uniform draws from U(-bound, bound).
func Uniform(bound float64) Init {
	return func(rng *rand.Rand, shape tensor.Shape) []float64 {
		v := make([]float64, shape.TotalSize())
		for i := range v {
			v[i] = (2*rng.Float64() - 1) * bound
		}
		return v
	}
}

// Normal draws from N(mean, std²). GPT-1 initialises its weights with
// Normal(0, 0.02).
func Normal(mean, std float64) Init {
	return func(rng *rand.Rand, shape tensor.Shape) []float64 {
		v := make([]float64, shape.TotalSize())
		for i := range v {
			v[i] = mean + std*rng.NormFloat64()
		}
		return v
	}
}

// FanInUniform is PyTorch's default for nn.Linear's weight and bias:
// kaiming_uniform_(a=√5) reduces to U(-1/√fan_in, 1/√fan_in).
func FanInUniform(fanIn int) Init { return Uniform(1 / math.Sqrt(float64(fanIn))) }

// XavierUniform is torch.nn.init.xavier_uniform_ for a [fan_out, fan_in]
// matrix: U(-a, a) with a = √(6 / (fan_in + fan_out)).
// nn.MultiheadAttention initialises in_proj_weight this way.
func XavierUniform() Init {
	return func(rng *rand.Rand, shape tensor.Shape) []float64 {
		fanOut, fanIn := shape[0], 1
		for _, d := range shape[1:] {
			fanIn *= d
		}
		return Uniform(math.Sqrt(6/float64(fanIn+fanOut)))(rng, shape)
	}
}
