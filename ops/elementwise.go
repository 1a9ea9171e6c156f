package ops

import (
	"fmt"
	"math"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ReLU is max(x, 0) elementwise (nn.ReLU); its gradient passes ∂y where
// x > 0 and is 0 elsewhere, at 0 included, as torch's.
//
// Why an op of our own: Gorgonia's Rectify is x ⊙ (x ≥ 0), two stock ops
// each allocating a tensor every run: with the embedding scale below they
// were 18 of the 19 MB a Transformer training step still allocated once the
// other ops kept their outputs.
func ReLU(x *G.Node) (*G.Node, error) {
	xs := x.Shape().Clone()
	return apply(kernel{
		name: "ReLU", inRanks: []int{len(xs)}, outRank: len(xs),
		shape: func([]tensor.Shape) (tensor.Shape, error) { return xs.Clone(), nil },
		do: func(t []tensor.Tensor, buf *buffers) (G.Value, error) {
			if err := checkDtypes("ReLU", t); err != nil {
				return nil, err
			}
			y := buf.dense(t[0], t[0].Shape())
			switch d := t[0].Data().(type) {
			case []float32:
				relu(d, y.Data().([]float32))
			case []float64:
				relu(d, y.Data().([]float64))
			}
			return y, nil
		},
		diff: []bool{true},
		grad: func(_ G.Nodes, y, dy *G.Node) (G.Nodes, error) {
			dx, err := backwardOp("ReLUGrad", xs, func(t []tensor.Tensor, out *tensor.Dense) {
				switch d := t[0].Data().(type) {
				case []float32:
					reluGrad(d, t[1].Data().([]float32), out.Data().([]float32))
				case []float64:
					reluGrad(d, t[1].Data().([]float64), out.Data().([]float64))
				}
			}, y, dy)
			return G.Nodes{dx}, err
		},
	}, x)
}

func relu[T floats](x, y []T) {
	for i, v := range x {
		y[i] = max(v, 0)
	}
}

// reluGrad reads the sign from y = max(x, 0): y > 0 exactly where x > 0. It
// writes every element, through a bit mask rather than a branch on the
// sign, and gives 0 where y = 0 even for a NaN or infinite ∂y, as torch's
// threshold_backward does.
func reluGrad[T floats](y, dy, dx []T) {
	switch y := any(y).(type) {
	case []float32:
		dy, dx := any(dy).([]float32), any(dx).([]float32)
		for i, v := range y {
			dx[i] = math.Float32frombits(math.Float32bits(dy[i]) & -uint32(b2u(v > 0)))
		}
	case []float64:
		dy, dx := any(dy).([]float64), any(dx).([]float64)
		for i, v := range y {
			dx[i] = math.Float64frombits(math.Float64bits(dy[i]) & -uint64(b2u(v > 0)))
		}
	}
}

// Scale is c·x for a constant c: the Transformer's embeddings times
// √d_model (§3.4). Its gradient is c·∂y. An op of our own for the reason
// ReLU is: Gorgonia's scalar multiplication allocates every run.
func Scale(x *G.Node, c float64) (*G.Node, error) {
	xs := x.Shape().Clone()
	return apply(kernel{
		name: "Scale", params: fmt.Sprintf("c=%v", c), inRanks: []int{len(xs)}, outRank: len(xs),
		shape: func([]tensor.Shape) (tensor.Shape, error) { return xs.Clone(), nil },
		do: func(t []tensor.Tensor, buf *buffers) (G.Value, error) {
			if err := checkDtypes("Scale", t); err != nil {
				return nil, err
			}
			y := buf.dense(t[0], t[0].Shape())
			switch d := t[0].Data().(type) {
			case []float32:
				scaleBy(d, y.Data().([]float32), float32(c))
			case []float64:
				scaleBy(d, y.Data().([]float64), c)
			}
			return y, nil
		},
		diff: []bool{true},
		grad: func(_ G.Nodes, _, dy *G.Node) (G.Nodes, error) {
			dx, err := Scale(dy, c)
			return G.Nodes{dx}, err
		},
	}, x)
}

func scaleBy[T floats](x, y []T, c T) {
	for i, v := range x {
		y[i] = c * v
	}
}

// WeightedSum is c_b = Σ_t α_bt h_bt over weights α [B, T] and vectors h
// [B, T, D], giving [B, D]: the context vector c_i = Σ_j α_ij h_j of
// encoder–decoder attention (Bahdanau et al. 2015, eq. 5). Its gradients
// are ∂α_bt = ∂c_b · h_bt and ∂h_bt = α_bt ∂c_b.
//
// Why an op of our own: as a stock batched product [B, 1, T] × [B, T, D]
// it needs two reshapes and Gorgonia allocates its output every run; the
// seq2seq decoder computes one per target step.
func WeightedSum(alpha, h *G.Node) (*G.Node, error) {
	hs := h.Shape().Clone()
	if alpha.Dims() != 2 || h.Dims() != 3 || !alpha.Shape().Eq(tensor.Shape{hs[0], hs[1]}) {
		return nil, errors.Errorf("WeightedSum: weights %v and vectors %v; want (B, T) and (B, T, D)", alpha.Shape(), hs)
	}
	B, T, D := hs[0], hs[1], hs[2]
	as := tensor.Shape{B, T}
	return apply(kernel{
		name: "WeightedSum", inRanks: []int{2, 3}, outRank: 2,
		shape: func([]tensor.Shape) (tensor.Shape, error) { return tensor.Shape{B, D}, nil },
		do: func(t []tensor.Tensor, buf *buffers) (G.Value, error) {
			if err := checkDtypes("WeightedSum", t); err != nil {
				return nil, err
			}
			if !t[0].Shape().Eq(as) || !t[1].Shape().Eq(hs) {
				return nil, errors.Errorf("WeightedSum: inputs %v and %v, built for %v and %v", t[0].Shape(), t[1].Shape(), as, hs)
			}
			c := buf.like(t[0], tensor.Shape{B, D})
			switch d := t[0].Data().(type) {
			case []float32:
				weightedSum(d, t[1].Data().([]float32), c.Data().([]float32), T, D)
			case []float64:
				weightedSum(d, t[1].Data().([]float64), c.Data().([]float64), T, D)
			}
			return c, nil
		},
		diff: []bool{true, true},
		grad: func(in G.Nodes, _, dc *G.Node) (G.Nodes, error) {
			dalpha, err := backwardOp("WeightedSumGradWeights", as, func(t []tensor.Tensor, out *tensor.Dense) {
				switch d := t[0].Data().(type) {
				case []float32:
					weightedSumGradAlpha(d, t[1].Data().([]float32), out.Data().([]float32), T, D)
				case []float64:
					weightedSumGradAlpha(d, t[1].Data().([]float64), out.Data().([]float64), T, D)
				}
			}, in[1], dc)
			if err != nil {
				return nil, err
			}
			dh, err := backwardOp("WeightedSumGradVectors", hs, func(t []tensor.Tensor, out *tensor.Dense) {
				switch d := t[0].Data().(type) {
				case []float32:
					weightedSumGradH(d, t[1].Data().([]float32), out.Data().([]float32), T, D)
				case []float64:
					weightedSumGradH(d, t[1].Data().([]float64), out.Data().([]float64), T, D)
				}
			}, in[0], dc)
			return G.Nodes{dalpha, dh}, err
		},
	}, alpha, h)
}

func weightedSum[T floats](alpha, h, c []T, steps, D int) {
	for b := 0; b < len(c)/D; b++ {
		cb := c[b*D : (b+1)*D]
		for t := 0; t < steps; t++ {
			a, ht := alpha[b*steps+t], h[(b*steps+t)*D:(b*steps+t+1)*D]
			for d := range cb {
				cb[d] += a * ht[d]
			}
		}
	}
}

func weightedSumGradAlpha[T floats](h, dc, dalpha []T, steps, D int) {
	for i := range dalpha {
		b := i / steps
		ht, g := h[i*D:(i+1)*D], dc[b*D:(b+1)*D]
		var s T
		for d := range ht {
			s += ht[d] * g[d]
		}
		dalpha[i] = s
	}
}

func weightedSumGradH[T floats](alpha, dc, dh []T, steps, D int) {
	for i, a := range alpha {
		b := i / steps
		row, g := dh[i*D:(i+1)*D], dc[b*D:(b+1)*D]
		for d := range row {
			row[d] = a * g[d]
		}
	}
}
