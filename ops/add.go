package ops

import (
	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/internal/vecmath"
)

// Add is a + b for two tensors of one shape: the residual connections
// x + Sublayer(x) of the Transformer, GPT and BERT, and the sum of token and
// position embeddings. Its gradient is ∂y for both.
//
// Why an op of our own: Gorgonia's Add returns a fresh tensor every run (a
// clone of a), and in a GPT training step the residual sums were most of
// what was still allocated once every op of ours kept its outputs
// (4.1 of 5.9 MB per GPT-small step).
func Add(a, b *G.Node) (*G.Node, error) {
	as := a.Shape().Clone()
	if a.Dims() != b.Dims() || !as.Eq(b.Shape()) {
		return nil, errors.Errorf("Add: %s has shape %v and %s %v; want one shape", a.Name(), as, b.Name(), b.Shape())
	}
	return apply(kernel{
		name: "Add", inRanks: []int{len(as), len(as)}, outRank: len(as),
		shape: func([]tensor.Shape) (tensor.Shape, error) { return as.Clone(), nil },
		do: func(t []tensor.Tensor, buf *buffers) (G.Value, error) {
			if err := checkDtypes("Add", t); err != nil {
				return nil, err
			}
			if !t[0].Shape().Eq(as) || !t[1].Shape().Eq(as) {
				return nil, errors.Errorf("Add: inputs %v and %v, built for %v", t[0].Shape(), t[1].Shape(), as)
			}
			y := buf.dense(t[0], as)
			switch d := y.Data().(type) {
			case []float32:
				vecmath.AXPY(d, 1, t[0].Data().([]float32), t[1].Data().([]float32)) // 1·a + b is exact
			case []float64:
				x, z := t[0].Data().([]float64), t[1].Data().([]float64)
				for i := range d {
					d[i] = x[i] + z[i]
				}
			}
			return y, nil
		},
		diff: []bool{true, true},
		grad: func(_ G.Nodes, _, dy *G.Node) (G.Nodes, error) { return G.Nodes{dy, dy}, nil },
	}, a, b)
}
