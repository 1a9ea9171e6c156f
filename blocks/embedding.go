package blocks

import (
	"fmt"
	"math"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/ops"
)

// Embedding is nn.Embedding: a lookup of rows of W [num, dim] ("weight") by
// token id, U·W_e in GPT-1's notation with U one-hot.
type Embedding struct {
	Prefix   string
	Num, Dim int
}

// NewEmbedding adds the table; init nil means nn.Embedding's N(0, 1).
func NewEmbedding(s *Store, prefix string, num, dim int, init Init) (*Embedding, error) {
	if err := positive("Embedding size", num, dim); err != nil {
		return nil, errors.Wrapf(err, "blocks: Embedding %q", prefix)
	}
	if init == nil {
		init = Normal(0, 1)
	}
	if _, err := s.Add(join(prefix, "weight"), tensor.Shape{num, dim}, init); err != nil {
		return nil, err
	}
	return &Embedding{Prefix: prefix, Num: num, Dim: dim}, nil
}

// Forward gathers rows for ids, a 1-D tensor.Int node [B·T] in row-major
// (batch, time) order, and returns [B, T, dim], through ops.Rows (the
// gather and its scatter-add gradient, writing [B, T, dim] directly: no
// stock Reshape, which rewrites its input's header in place).
func (e *Embedding) Forward(g *Graph, ids *G.Node, batch, steps int) (y *G.Node, err error) {
	err = g.Block(name(e.Prefix, "embedding"), func() error {
		if ids.Dtype() != tensor.Int {
			return errors.Errorf("token ids are %v, want Int", ids.Dtype())
		}
		if ids.Dims() != 1 || ids.Shape()[0] != batch*steps {
			return &ShapeError{What: "token id vector", Got: ids.Shape().Clone(),
				Want: fmt.Sprintf("(%d) (batch %d × steps %d)", batch*steps, batch, steps)}
		}
		y = Must(ops.Rows(g.param(e.Prefix, "weight"), ids, tensor.Shape{batch, steps, e.Dim}))
		return nil
	})
	return y, err
}

// IDs returns ids as the tensor.Int [len] value an Embedding's ids input
// takes, checking each against the vocabulary size.
func IDs(ids []int, vocab int) (*tensor.Dense, error) {
	for i, id := range ids {
		if id < 0 || id >= vocab {
			return nil, errors.Errorf("token id %d at position %d is outside the vocabulary [0, %d)", id, i, vocab)
		}
	}
	return tensor.New(tensor.WithShape(len(ids)), tensor.WithBacking(append([]int(nil), ids...))), nil
}

// PositionIDs is [0, 1, …, steps−1] repeated for each of batch rows,
// starting at offset (the number of positions already in a cache).
func PositionIDs(batch, steps, offset int) []int {
	p := make([]int, 0, batch*steps)
	for b := 0; b < batch; b++ {
		for t := 0; t < steps; t++ {
			p = append(p, offset+t)
		}
	}
	return p
}

// LearnedPositions is GPT-1's learned position embedding W_p
// [n_positions, d] ("weight"): h₀ = U·W_e + W_p.
type LearnedPositions struct{ *Embedding }

// NewLearnedPositions adds W_p; init nil means N(0, 0.02) as GPT-1.
func NewLearnedPositions(s *Store, prefix string, positions, dim int, init Init) (*LearnedPositions, error) {
	if init == nil {
		init = Normal(0, 0.02)
	}
	e, err := NewEmbedding(s, prefix, positions, dim, init)
	if err != nil {
		return nil, err
	}
	return &LearnedPositions{e}, nil
}

// SinusoidalTable is the fixed position encoding of Vaswani et al. (2017):
//
//	PE(pos, 2i) = sin(pos / 10000^(2i/d)),  PE(pos, 2i+1) = cos(pos / 10000^(2i/d))
//
// as a [maxLen, d] row-major table.
func SinusoidalTable(maxLen, d int) []float64 {
	pe := make([]float64, maxLen*d)
	for pos := 0; pos < maxLen; pos++ {
		for i := 0; 2*i < d; i++ {
			angle := float64(pos) / math.Pow(10000, float64(2*i)/float64(d))
			pe[pos*d+2*i] = math.Sin(angle)
			if 2*i+1 < d {
				pe[pos*d+2*i+1] = math.Cos(angle)
			}
		}
	}
	return pe
}

// AddSinusoidal returns x + PE[0:T] for x [B, T, d]. The table is a
// non-learned node of the graph (not in the store).
func AddSinusoidal(g *Graph, x *G.Node) (y *G.Node, err error) {
	err = g.Block("positions", func() error {
		if x.Dims() != 3 {
			return badShape("sinusoidal positions input", x.Shape(), "B", "T", "d")
		}
		t, d := x.Shape()[1], x.Shape()[2]
		pe := tensor.New(tensor.Of(g.Store.Dtype()), tensor.WithShape(t, d))
		switch v := pe.Data().(type) {
		case []float32:
			for i, f := range SinusoidalTable(t, d) {
				v[i] = float32(f)
			}
		case []float64:
			copy(v, SinusoidalTable(t, d))
		}
		node := G.NewTensor(g.G, pe.Dtype(), 2, G.WithShape(t, d), G.WithValue(pe), G.WithName(fmt.Sprintf("sinusoidal_%dx%d", t, d)))
		y = Must(G.BroadcastAdd(x, node, nil, []byte{0}))
		return nil
	})
	return y, err
}

// SinusoidalPositions is the fixed position encoding PE (SinusoidalTable)
// looked up by position id, as LearnedPositions looks up W_p: the same
// Forward, so a model switches between the two by configuration, and a
// decoder step reads each row's own position. The table [maxLen, d] is a
// fixed value of the graph (not a parameter, never trained), one node per
// graph however many blocks use it.
type SinusoidalPositions struct {
	MaxLen, Dim int
}

// NewSinusoidalPositions checks the sizes.
func NewSinusoidalPositions(maxLen, dim int) (*SinusoidalPositions, error) {
	if err := positive("SinusoidalPositions size", maxLen, dim); err != nil {
		return nil, errors.Wrap(err, "blocks: SinusoidalPositions")
	}
	return &SinusoidalPositions{MaxLen: maxLen, Dim: dim}, nil
}

// Forward gathers PE[pos] for position ids pos, a 1-D tensor.Int node
// [B·T], and returns [B, T, d]. An id at or past MaxLen fails when the
// graph runs, as an Embedding's does.
func (p *SinusoidalPositions) Forward(g *Graph, pos *G.Node, batch, steps int) (y *G.Node, err error) {
	err = g.Block("positions", func() error {
		if pos.Dtype() != tensor.Int || pos.Dims() != 1 || pos.Shape()[0] != batch*steps {
			return &ShapeError{What: "position id vector", Got: pos.Shape().Clone(),
				Want: fmt.Sprintf("(%d) Int (batch %d × steps %d)", batch*steps, batch, steps)}
		}
		name := fmt.Sprintf("sinusoidal_%dx%d", p.MaxLen, p.Dim)
		table, ok := g.InputNode(name)
		if !ok {
			t := tensor.New(tensor.Of(g.Store.Dtype()), tensor.WithShape(p.MaxLen, p.Dim))
			fill(t, SinusoidalTable(p.MaxLen, p.Dim))
			table = Must(g.Fixed(name, t))
		}
		y = Must(ops.Rows(table, pos, tensor.Shape{batch, steps, p.Dim}))
		return nil
	})
	return y, err
}
