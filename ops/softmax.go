package ops

import (
	"fmt"
	"math"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/internal/vecmath"
)

// SoftMax is the attention softmax over the last axis:
//
//	y = softmax(scale·x + mask)
//
// mask is additive (0 where attention is allowed, -Inf where it is not) and
// may be nil. It has x's shape, or x's shape without axis 1, in which case it
// is shared by every head: x [B, h, T_q, T_k] with mask [B, T_q, T_k].
// A row whose every position is masked gives zeros (and a zero gradient),
// not NaN.
//
// Why an op of our own: the stock last-axis SoftMax seeds every row's
// maximum with the tensor's first element and returns NaN once a row sits
// ~90 below it; this one subtracts each row's own maximum. Fusing the scale
// and the mask also saves two nodes and a broadcast copy per attention.
// Float32 runs on internal/vecmath's vectorised kernels (e^x within 1 ulp,
// sums in float64); float64, for gradient checks, on package math.
func SoftMax(x, mask *G.Node, scale float64) (*G.Node, error) {
	in := []*G.Node{x}
	ranks := []int{x.Dims()}
	if mask != nil {
		in = append(in, mask)
		ranks = append(ranks, mask.Dims())
	}
	k := kernel{
		name:    "SoftMax",
		params:  fmt.Sprintf("scale=%v,mask=%v", scale, mask != nil),
		inRanks: ranks,
		outRank: x.Dims(),
		shape: func(s []tensor.Shape) (tensor.Shape, error) {
			if len(s) == 2 {
				if _, err := maskLayout(s[0], s[1]); err != nil {
					return nil, err
				}
			}
			return s[0].Clone(), nil
		},
		do: func(t []tensor.Tensor, buf *buffers) (G.Value, error) {
			if err := checkDtypes("SoftMax", t); err != nil {
				return nil, err
			}
			xs := t[0].Shape()
			n := xs[len(xs)-1]
			mrow := func(r int) int { return r }
			var md any
			if len(t) == 2 {
				l, err := maskLayout(xs, t[1].Shape())
				if err != nil {
					return nil, err
				}
				mrow, md = l, t[1].Data()
			}
			y := buf.dense(t[0], xs)
			switch d := t[0].Data().(type) {
			case []float32:
				m, _ := md.([]float32)
				softmaxRows32(d, m, y.Data().([]float32), n, float32(scale), mrow)
			case []float64:
				m, _ := md.([]float64)
				softmaxRows(d, m, y.Data().([]float64), n, scale, mrow)
			}
			return y, nil
		},
		diff: append([]bool{true}, make([]bool, len(in)-1)...),
		grad: func(in G.Nodes, y, dy *G.Node) (G.Nodes, error) {
			dx, err := softmaxGrad(y, dy, scale)
			if err != nil {
				return nil, err
			}
			return append(G.Nodes{dx}, make(G.Nodes, len(in)-1)...), nil
		},
	}
	return apply(k, in...)
}

// maskLayout maps a row of x to its row of the mask.
func maskLayout(xs, ms tensor.Shape) (func(int) int, error) {
	bad := errors.Errorf("SoftMax: mask shape %v does not fit input shape %v (want the input's shape, or it without axis 1)", ms, xs)
	switch {
	case xs.Eq(ms):
		return func(r int) int { return r }, nil
	case len(xs) >= 3 && len(ms) == len(xs)-1:
		if ms[0] != xs[0] {
			return nil, bad
		}
		for i := 1; i < len(ms); i++ {
			if ms[i] != xs[i+1] {
				return nil, bad
			}
		}
		heads := xs[1]
		inner := ms.TotalSize() / ms[0] / ms[len(ms)-1] // rows per batch entry in the mask
		return func(r int) int {
			b := r / (heads * inner)
			return b*inner + r%inner
		}, nil
	}
	return nil, bad
}

// softmaxRows32 is softmaxRows on vecmath: y = scale·x + mask in one
// rounding, then the row's softmax in place.
func softmaxRows32(x, mask, y []float32, n int, scale float32, mrow func(int) int) {
	for r := 0; r < len(x)/n; r++ {
		xr, yr := x[r*n:(r+1)*n], y[r*n:(r+1)*n]
		if mask != nil {
			m := mrow(r)
			vecmath.AXPY(yr, scale, xr, mask[m*n:(m+1)*n])
		} else {
			vecmath.Affine(yr, xr, scale, 0)
		}
		vecmath.Softmax(yr, yr)
	}
}

func softmaxRows[T floats](x, mask, y []T, n int, scale T, mrow func(int) int) {
	rows := len(x) / n
	for r := 0; r < rows; r++ {
		xr, yr := x[r*n:(r+1)*n], y[r*n:(r+1)*n]
		var mr []T
		if mask != nil {
			m := mrow(r)
			mr = mask[m*n : (m+1)*n]
		}
		maxv := T(math.Inf(-1))
		for j, v := range xr {
			v *= scale
			if mr != nil {
				v += mr[j]
			}
			yr[j] = v
			if v > maxv {
				maxv = v
			}
		}
		if math.IsInf(float64(maxv), -1) {
			clear(yr)
			continue
		}
		var sum float64
		for j, v := range yr {
			e := T(math.Exp(float64(v - maxv)))
			yr[j] = e
			sum += float64(e)
		}
		inv := T(1 / sum)
		for j := range yr {
			yr[j] *= inv
		}
	}
}

// softmaxGrad is ∂L/∂x = scale · y ⊙ (dy − Σ_j dy_j y_j).
func softmaxGrad(y, dy *G.Node, scale float64) (*G.Node, error) {
	return apply(kernel{
		name: "SoftMaxGrad", params: fmt.Sprintf("scale=%v", scale),
		inRanks: []int{y.Dims(), dy.Dims()}, outRank: y.Dims(),
		shape: sameShape,
		do: func(t []tensor.Tensor, buf *buffers) (G.Value, error) {
			ys := t[0].Shape()
			n := ys[len(ys)-1]
			dx := buf.dense(t[0], ys)
			switch d := t[0].Data().(type) {
			case []float32:
				softmaxBack32(d, t[1].Data().([]float32), dx.Data().([]float32), n, float32(scale))
			case []float64:
				softmaxBack(d, t[1].Data().([]float64), dx.Data().([]float64), n, scale)
			}
			return dx, nil
		},
	}, y, dy)
}

func softmaxBack32(y, dy, dx []float32, n int, scale float32) {
	for r := 0; r < len(y); r += n {
		vecmath.SoftmaxGrad(dx[r:r+n], y[r:r+n], dy[r:r+n], scale)
	}
}

func softmaxBack[T floats](y, dy, dx []T, n int, scale T) {
	for r := 0; r < len(y); r += n {
		yr, gr, dr := y[r:r+n], dy[r:r+n], dx[r:r+n]
		var dot T
		for j := range yr {
			dot += yr[j] * gr[j]
		}
		for j := range yr {
			dr[j] = scale * yr[j] * (gr[j] - dot)
		}
	}
}

// LogSoftMax is log softmax(x) over the last axis, computed as
// x − max − log Σ exp(x − max) with each row's own maximum (the stock op
// returns Inf rows on real logits; see SoftMax).
func LogSoftMax(x *G.Node) (*G.Node, error) {
	return apply(kernel{
		name: "LogSoftMax", inRanks: []int{x.Dims()}, outRank: x.Dims(),
		shape: sameShape,
		do: func(t []tensor.Tensor, buf *buffers) (G.Value, error) {
			if err := checkDtypes("LogSoftMax", t); err != nil {
				return nil, err
			}
			xs := t[0].Shape()
			y := buf.dense(t[0], xs)
			switch d := t[0].Data().(type) {
			case []float32:
				logSoftmaxRows32(d, y.Data().([]float32), xs[len(xs)-1])
			case []float64:
				logSoftmaxRows(d, y.Data().([]float64), xs[len(xs)-1])
			}
			return y, nil
		},
		diff: []bool{true},
		grad: func(_ G.Nodes, y, dy *G.Node) (G.Nodes, error) {
			dx, err := apply(kernel{
				name: "LogSoftMaxGrad", inRanks: []int{y.Dims(), dy.Dims()}, outRank: y.Dims(),
				shape: sameShape,
				do: func(t []tensor.Tensor, buf *buffers) (G.Value, error) {
					ys := t[0].Shape()
					dx := buf.dense(t[0], ys)
					switch d := t[0].Data().(type) {
					case []float32:
						logSoftmaxBack32(d, t[1].Data().([]float32), dx.Data().([]float32), ys[len(ys)-1])
					case []float64:
						logSoftmaxBack(d, t[1].Data().([]float64), dx.Data().([]float64), ys[len(ys)-1])
					}
					return dx, nil
				},
			}, y, dy)
			return G.Nodes{dx}, err
		},
	}, x)
}

func logSoftmaxRows32(x, y []float32, n int) {
	for r := 0; r < len(x); r += n {
		vecmath.LogSoftmax(y[r:r+n], x[r:r+n])
	}
}

func logSoftmaxRows[T floats](x, y []T, n int) {
	for r := 0; r < len(x); r += n {
		xr, yr := x[r:r+n], y[r:r+n]
		lse := logSumExp(xr)
		for j, v := range xr {
			yr[j] = v - lse
		}
	}
}

// logSumExp is log Σ exp(x) with the row's own maximum subtracted.
func logSumExp[T floats](x []T) T {
	maxv := x[0]
	for _, v := range x[1:] {
		if v > maxv {
			maxv = v
		}
	}
	var sum float64
	for _, v := range x {
		sum += math.Exp(float64(v - maxv))
	}
	return maxv + T(math.Log(sum))
}

func logSoftmaxBack32(y, dy, dx []float32, n int) {
	for r := 0; r < len(y); r += n {
		vecmath.LogSoftmaxGrad(dx[r:r+n], y[r:r+n], dy[r:r+n])
	}
}

// logSoftmaxBack is ∂L/∂x = dy − exp(y) Σ_j dy_j.
func logSoftmaxBack[T floats](y, dy, dx []T, n int) {
	for r := 0; r < len(y); r += n {
		var s T
		for _, g := range dy[r : r+n] {
			s += g
		}
		for j := r; j < r+n; j++ {
			dx[j] = dy[j] - T(math.Exp(float64(y[j])))*s
		}
	}
}
