package ops

import (
	"fmt"

	"github.com/pkg/errors"
	"github.com/seq2gpt/seq2gpt/internal/vecmath"
	"gonum.org/v1/gonum/blas"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Linear is nn.Linear on a tensor of any rank: y = x·Wᵀ + b, with x [..., in],
// W [out, in] (PyTorch's layout) and b [out] or nil.
//
// Why an op of our own: Gorgonia's Mul has no 3-D × 2-D case, flattening an
// input with Reshape overwrites the input in place, and a broadcast bias-add
// copies the bias into a full matrix (Repeat) on every step. This op reads x
// as a [N, in] matrix, calls the BLAS that Gorgonia uses (G.Use switches it),
// and adds the bias in the same pass.
func Linear(x, w, b *G.Node) (*G.Node, error) { return linear(x, w, b, false) }

// Conv1D is HuggingFace's Conv1D, the projection GPT-1's checkpoints use:
// y = x·W + b with W stored [in, out] (the transpose of nn.Linear's layout).
// Storing the weight as HF does lets a GPT state dict load without copies.
func Conv1D(x, w, b *G.Node) (*G.Node, error) { return linear(x, w, b, true) }

// linear is y = x·Wᵀ + b, or y = x·W + b when inOut (W [in, out]).
func linear(x, w, b *G.Node, inOut bool) (*G.Node, error) {
	name := "Linear"
	if inOut {
		name = "Conv1D"
	}
	if w.Dims() != 2 {
		return nil, errors.Errorf("%s: weight has shape %v, want a matrix", name, w.Shape())
	}
	if x.Dims() < 1 {
		return nil, errors.Errorf("Linear: input is a scalar")
	}
	in := []*G.Node{x, w}
	ranks := []int{x.Dims(), 2}
	if b != nil {
		in = append(in, b)
		ranks = append(ranks, 1)
	}
	// wOut and wIn index the weight's out and in axes.
	wOut, wIn := 0, 1
	ta := blas.Trans
	if inOut {
		wOut, wIn, ta = 1, 0, blas.NoTrans
	}
	k := kernel{
		name:    name,
		params:  boolStr(b != nil),
		inRanks: ranks,
		outRank: x.Dims(),
		shape: func(s []tensor.Shape) (tensor.Shape, error) {
			xs, ws := s[0], s[1]
			if xs[len(xs)-1] != ws[wIn] {
				return nil, errors.Errorf("%s: input shape %v does not match weight shape %v (want [..., %d])", name, xs, ws, ws[wIn])
			}
			if len(s) == 3 && (len(s[2]) != 1 || s[2][0] != ws[wOut]) {
				return nil, errors.Errorf("%s: bias shape %v does not match weight shape %v", name, s[2], ws)
			}
			out := xs.Clone()
			out[len(out)-1] = ws[wOut]
			return out, nil
		},
		do: func(t []tensor.Tensor, buf *buffers) (G.Value, error) {
			if err := checkDtypes(name, t); err != nil {
				return nil, err
			}
			xs, ws := t[0].Shape(), t[1].Shape()
			nOut, nIn := ws[wOut], ws[wIn]
			if xs[len(xs)-1] != nIn {
				return nil, errors.Errorf("%s: input shape %v does not match weight shape %v", name, xs, ws)
			}
			rows := xs.TotalSize() / nIn
			outShape := xs.Clone()
			outShape[len(outShape)-1] = nOut
			y := buf.dense(t[0], outShape)
			if len(t) == 3 {
				broadcastRows(y, t[2], rows, nOut)
			}
			beta := 0.0
			if len(t) == 3 {
				beta = 1
			}
			// y[rows,out] = x[rows,in] · op(W) + beta·y
			gemm(blas.NoTrans, ta, rows, nOut, nIn, t[0], t[1], beta, y)
			return y, nil
		},
		diff: diffAll(len(in)),
		grad: func(in G.Nodes, _, dy *G.Node) (G.Nodes, error) {
			dx, err := linearGradX(dy, in[1], in[0].Shape(), inOut)
			if err != nil {
				return nil, err
			}
			dw, err := linearGradW(dy, in[0], in[1].Shape(), inOut)
			if err != nil {
				return nil, err
			}
			g := G.Nodes{dx, dw}
			if len(in) == 3 {
				db, err := SumRows(dy)
				if err != nil {
					return nil, err
				}
				g = append(g, db)
			}
			return g, nil
		},
	}
	return apply(k, in...)
}

// linearGradX is ∂L/∂x = ∂L/∂y · W (· Wᵀ for [in, out] weights), in x's
// shape.
func linearGradX(dy, w *G.Node, xShape tensor.Shape, inOut bool) (*G.Node, error) {
	xs := xShape.Clone()
	tb := blas.NoTrans
	if inOut {
		tb = blas.Trans
	}
	return apply(kernel{
		name: "LinearGradX", params: fmt.Sprintf("%v,inOut=%v", []int(xs), inOut),
		inRanks: []int{dy.Dims(), 2}, outRank: len(xs),
		shape: func([]tensor.Shape) (tensor.Shape, error) { return xs.Clone(), nil },
		do: func(t []tensor.Tensor, buf *buffers) (G.Value, error) {
			nIn := xs[len(xs)-1]
			nOut := t[1].Shape().TotalSize() / nIn
			rows := t[0].Shape().TotalSize() / nOut
			dx := buf.dense(t[0], xs)
			gemm(blas.NoTrans, tb, rows, nIn, nOut, t[0], t[1], 0, dx)
			return dx, nil
		},
	}, dy, w)
}

// linearGradW is ∂L/∂W = (∂L/∂y)ᵀ · x over all leading axes ([out, in]),
// or xᵀ · ∂L/∂y for [in, out] weights.
func linearGradW(dy, x *G.Node, wShape tensor.Shape, inOut bool) (*G.Node, error) {
	ws := wShape.Clone()
	return apply(kernel{
		name: "LinearGradW", params: fmt.Sprintf("%v,inOut=%v", []int(ws), inOut),
		inRanks: []int{dy.Dims(), x.Dims()}, outRank: 2,
		shape: func([]tensor.Shape) (tensor.Shape, error) { return ws.Clone(), nil },
		do: func(t []tensor.Tensor, buf *buffers) (G.Value, error) {
			dw := buf.dense(t[0], ws)
			if inOut {
				rows := t[1].Shape().TotalSize() / ws[0]
				gemm(blas.Trans, blas.NoTrans, ws[0], ws[1], rows, t[1], t[0], 0, dw)
			} else {
				rows := t[0].Shape().TotalSize() / ws[0]
				gemm(blas.Trans, blas.NoTrans, ws[0], ws[1], rows, t[0], t[1], 0, dw)
			}
			return dw, nil
		},
	}, dy, x)
}

// SumRows sums a tensor [..., n] over every axis but the last, giving [n]:
// the gradient of a bias broadcast over rows.
func SumRows(x *G.Node) (*G.Node, error) {
	n := x.Shape()[x.Dims()-1]
	return apply(kernel{
		name: "SumRows", inRanks: []int{x.Dims()}, outRank: 1,
		shape: func([]tensor.Shape) (tensor.Shape, error) { return tensor.Shape{n}, nil },
		do: func(t []tensor.Tensor, buf *buffers) (G.Value, error) {
			out := buf.like(t[0], tensor.Shape{n})
			switch d := t[0].Data().(type) {
			case []float32:
				sumRows(d, out.Data().([]float32), n)
			case []float64:
				sumRows(d, out.Data().([]float64), n)
			default:
				return nil, errors.Errorf("SumRows: unsupported dtype %v", t[0].Dtype())
			}
			return out, nil
		},
	}, x)
}

func sumRows[T floats](x, out []T, n int) {
	if o, ok := any(out).([]float32); ok {
		x := any(x).([]float32)
		for r := 0; r < len(x); r += n {
			vecmath.AXPY(o, 1, x[r:r+n], o) // 1·x + out: exact, vectorised
		}
		return
	}
	for r := 0; r < len(x); r += n {
		for j, v := range x[r : r+n] {
			out[j] += v
		}
	}
}

func broadcastRows(y *tensor.Dense, b tensor.Tensor, rows, n int) {
	switch d := y.Data().(type) {
	case []float32:
		bb := b.Data().([]float32)
		for r := 0; r < rows; r++ {
			copy(d[r*n:(r+1)*n], bb)
		}
	case []float64:
		bb := b.Data().([]float64)
		for r := 0; r < rows; r++ {
			copy(d[r*n:(r+1)*n], bb)
		}
	}
}

// gemm computes c = op(a)·op(b) + beta·c on row-major data with Gorgonia's
// BLAS. m, n, k are the sizes of op(a) [m,k] and op(b) [k,n].
func gemm(ta, tb blas.Transpose, m, n, k int, a, b tensor.Tensor, beta float64, c *tensor.Dense) {
	lda, ldb := k, n
	if ta == blas.Trans {
		lda = m
	}
	if tb == blas.Trans {
		ldb = k
	}
	impl := G.WhichBLAS()
	switch cd := c.Data().(type) {
	case []float32:
		impl.Sgemm(ta, tb, m, n, k, 1, a.Data().([]float32), lda, b.Data().([]float32), ldb, float32(beta), cd, n)
	case []float64:
		impl.Dgemm(ta, tb, m, n, k, 1, a.Data().([]float64), lda, b.Data().([]float64), ldb, beta, cd, n)
	}
}

func diffAll(n int) []bool {
	d := make([]bool, n)
	for i := range d {
		d[i] = true
	}
	return d
}

func boolStr(b bool) string {
	if b {
		return "bias"
	}
	return "nobias"
}
