package ops

import (
	"fmt"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Narrow is x[…, start:end, …] along axis, which stays (torch.narrow with
// length end − start): an LSTM's gate i out of its four packed gates
// [B, 4H] is Narrow(gates, 1, i·H, (i+1)·H).
//
// Why an op of our own: Gorgonia v0.9.18's G.Slice hashes its bounds
// truncated to a byte, and Gorgonia merges nodes with equal hashes, equal
// children and equal shapes, so x[0:128] and x[256:384] of one node are
// one node and the second silently reads the first's part (an LSTM with
// 128 hidden units computed its g gate from i's rows). This op writes its
// bounds in full. It also copies its part into a contiguous tensor in one
// pass, where a stock slice is a strided view that the next op reads
// through an iterator.
func Narrow(x *G.Node, axis, start, end int) (*G.Node, error) {
	return narrow(x, axis, start, end, false)
}

// Select is x[…, i, …] with axis removed (torch.select): step t of a
// batch-first sequence [B, T, D] is Select(x, 1, t), [B, D]. See Narrow for
// why it is an op of its own.
func Select(x *G.Node, axis, i int) (*G.Node, error) {
	return narrow(x, axis, i, i+1, true)
}

func narrow(x *G.Node, axis, start, end int, drop bool) (*G.Node, error) {
	name := "Narrow"
	if drop {
		name = "Select"
	}
	xs := x.Shape().Clone()
	if x.Dims() < 1 || axis < 0 || axis >= x.Dims() || start < 0 || end > xs[axis] || start >= end {
		return nil, errors.Errorf("%s: cannot take [%d:%d] of axis %d of shape %v", name, start, end, axis, xs)
	}
	if drop && x.Dims() < 2 {
		return nil, errors.Errorf("Select: input has shape %v, want at least 2 axes", xs)
	}
	ys := xs.Clone()
	ys[axis] = end - start
	if drop {
		ys = append(ys[:axis:axis], xs[axis+1:]...)
	}
	outer, inner := xs[:axis].TotalSize(), xs[axis+1:].TotalSize()
	if axis == 0 {
		outer = 1
	}
	if axis == len(xs)-1 {
		inner = 1
	}
	n := xs[axis]
	params := fmt.Sprintf("axis=%d,%d:%d", axis, start, end)
	return apply(kernel{
		name: name, params: params,
		inRanks: []int{len(xs)}, outRank: len(ys),
		shape: func([]tensor.Shape) (tensor.Shape, error) { return ys.Clone(), nil },
		do: func(t []tensor.Tensor, buf *buffers) (G.Value, error) {
			if err := checkDtypes(name, t); err != nil {
				return nil, err
			}
			y := buf.dense(t[0], ys)
			switch d := t[0].Data().(type) {
			case []float32:
				moveRange(d, y.Data().([]float32), outer, n, inner, start, end, false)
			case []float64:
				moveRange(d, y.Data().([]float64), outer, n, inner, start, end, false)
			}
			return y, nil
		},
		diff: []bool{true},
		grad: func(_ G.Nodes, _, dy *G.Node) (G.Nodes, error) {
			dx, err := apply(kernel{
				name: name + "Grad", params: params + fmt.Sprintf(",in=%v", xs),
				inRanks: []int{len(ys)}, outRank: len(xs),
				shape: func([]tensor.Shape) (tensor.Shape, error) { return xs.Clone(), nil },
				do: func(t []tensor.Tensor, buf *buffers) (G.Value, error) {
					dx := buf.like(t[0], xs)
					switch d := t[0].Data().(type) {
					case []float32:
						moveRange(dx.Data().([]float32), d, outer, n, inner, start, end, true)
					case []float64:
						moveRange(dx.Data().([]float64), d, outer, n, inner, start, end, true)
					}
					return dx, nil
				},
			}, dy)
			return G.Nodes{dx}, err
		},
	}, x)
}

// moveRange copies between x, read as [outer, n, inner], and its part
// y [outer, end − start, inner]: x → y, or y → x when back.
func moveRange[T floats](x, y []T, outer, n, inner, start, end int, back bool) {
	w := (end - start) * inner
	for o := 0; o < outer; o++ {
		src := x[(o*n+start)*inner : (o*n+start)*inner+w]
		dst := y[o*w : (o+1)*w]
		if back {
			copy(src, dst)
		} else {
			copy(dst, src)
		}
	}
}
