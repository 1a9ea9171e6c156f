package ops

import (
	"fmt"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Concat joins xs along axis (torch.cat): every input has the output's
// shape but along axis, where the sizes add up. A decoder step's input
// [y_{i−1}; c_i] is Concat(1, y, c); a bidirectional layer's output
// [h→_t; h←_t] is Concat(2, fwd, bwd).
//
// Why an op of our own: G.Concat's backward takes each input's part of the
// gradient as a strided view and copies it out through tensor iterators,
// element by element. Here the forward and each input's gradient are
// plain block copies: read as [outer, n_k, inner], input k's rows are one
// contiguous run of n_k·inner values per outer index, in x and in y alike.
func Concat(axis int, xs ...*G.Node) (*G.Node, error) {
	if len(xs) == 0 {
		return nil, errors.New("Concat: no inputs")
	}
	first := xs[0].Shape()
	if axis < 0 || axis >= len(first) {
		return nil, errors.Errorf("Concat: axis %d out of range for shape %v", axis, first)
	}
	if len(xs) == 1 {
		return xs[0], nil
	}
	ys := first.Clone()
	ys[axis] = 0
	sizes := make([]int, len(xs))
	ranks := make([]int, len(xs))
	for k, x := range xs {
		s := x.Shape()
		if len(s) != len(first) {
			return nil, errors.Errorf("Concat: input %d has shape %v, input 0 %v: ranks differ", k, s, first)
		}
		for i := range s {
			if i != axis && s[i] != first[i] {
				return nil, errors.Errorf("Concat: input %d has shape %v, input 0 %v: they may differ only on axis %d", k, s, first, axis)
			}
		}
		sizes[k], ranks[k] = s[axis], len(s)
		ys[axis] += s[axis]
	}
	outer, inner := ys[:axis].TotalSize(), ys[axis+1:].TotalSize()
	if axis == 0 {
		outer = 1
	}
	if axis == len(ys)-1 {
		inner = 1
	}
	n := ys[axis]
	starts := make([]int, len(xs)+1)
	for k, s := range sizes {
		starts[k+1] = starts[k] + s
	}
	params := fmt.Sprintf("axis=%d,%v", axis, sizes)
	return apply(kernel{
		name: "Concat", params: params, inRanks: ranks, outRank: len(ys),
		shape: func([]tensor.Shape) (tensor.Shape, error) { return ys.Clone(), nil },
		do: func(t []tensor.Tensor, buf *buffers) (G.Value, error) {
			if err := checkDtypes("Concat", t); err != nil {
				return nil, err
			}
			for k, x := range t {
				if want := xs[k].Shape(); !x.Shape().Eq(want) {
					return nil, errors.Errorf("Concat: input %d has shape %v, built for %v", k, x.Shape(), want)
				}
			}
			y := buf.dense(t[0], ys)
			for k, x := range t {
				switch d := x.Data().(type) {
				case []float32:
					moveRange(y.Data().([]float32), d, outer, n, inner, starts[k], starts[k+1], true)
				case []float64:
					moveRange(y.Data().([]float64), d, outer, n, inner, starts[k], starts[k+1], true)
				}
			}
			return y, nil
		},
		diff: diffAll(len(xs)),
		grad: func(in G.Nodes, _, dy *G.Node) (G.Nodes, error) {
			grads := make(G.Nodes, len(in))
			for k := range in {
				lo, hi, xs := starts[k], starts[k+1], in[k].Shape().Clone()
				var err error
				grads[k], err = apply(kernel{
					name: "ConcatGrad", params: fmt.Sprintf("%s,part=%d:%d", params, lo, hi),
					inRanks: []int{dy.Dims()}, outRank: len(xs),
					shape: func([]tensor.Shape) (tensor.Shape, error) { return xs.Clone(), nil },
					do: func(t []tensor.Tensor, buf *buffers) (G.Value, error) {
						dx := buf.dense(t[0], xs)
						switch d := t[0].Data().(type) {
						case []float32:
							moveRange(d, dx.Data().([]float32), outer, n, inner, lo, hi, false)
						case []float64:
							moveRange(d, dx.Data().([]float64), outer, n, inner, lo, hi, false)
						}
						return dx, nil
					},
				}, dy)
				if err != nil {
					return nil, err
				}
			}
			return grads, nil
		},
	}, xs...)
}
