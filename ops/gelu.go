package ops

import (
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/internal/vecmath"
)

// GELUForm picks the GELU formula.
type GELUForm int

const (
	// GELUTanh is the tanh approximation GPT-1 used (HF "gelu_new",
	// nn.GELU(approximate="tanh")):
	// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
	GELUTanh GELUForm = iota
	// GELUErf is the exact form x·Φ(x) = 0.5·x·(1 + erf(x/√2)) (HF "gelu",
	// nn.GELU()). Gorgonia has no erf op.
	GELUErf
)

func (f GELUForm) String() string {
	if f == GELUErf {
		return "erf"
	}
	return "tanh"
}

// GELU is the Gaussian error linear unit, elementwise. Float32 runs on
// internal/vecmath's vectorised kernels (a few ulp, the bounds in its
// documentation); float64, for gradient checks, on package math.
func GELU(x *G.Node, form GELUForm) (*G.Node, error) {
	return apply(kernel{
		name: "GELU", params: form.String(),
		inRanks: []int{x.Dims()}, outRank: x.Dims(),
		shape: sameShape,
		do: func(t []tensor.Tensor, buf *buffers) (G.Value, error) {
			if err := checkDtypes("GELU", t); err != nil {
				return nil, err
			}
			y := buf.dense(t[0], t[0].Shape())
			switch d := t[0].Data().(type) {
			case []float32:
				geluFwd32(d, y.Data().([]float32), form)
			case []float64:
				geluFwd(d, y.Data().([]float64), form)
			}
			return y, nil
		},
		diff: []bool{true},
		grad: func(in G.Nodes, _, dy *G.Node) (G.Nodes, error) {
			dx, err := apply(kernel{
				name: "GELUGrad", params: form.String(),
				inRanks: []int{in[0].Dims(), dy.Dims()}, outRank: in[0].Dims(),
				shape: sameShape,
				do: func(t []tensor.Tensor, buf *buffers) (G.Value, error) {
					dx := buf.dense(t[0], t[0].Shape())
					switch d := t[0].Data().(type) {
					case []float32:
						geluBack32(d, t[1].Data().([]float32), dx.Data().([]float32), form)
					case []float64:
						geluBack(d, t[1].Data().([]float64), dx.Data().([]float64), form)
					}
					return dx, nil
				},
			}, in[0], dy)
			return G.Nodes{dx}, err
		},
	}, x)
}

const (
	sqrt2OverPi = 0.7978845608028654 // √(2/π)
	invSqrt2    = 0.7071067811865476 // 1/√2
	invSqrt2Pi  = 0.3989422804014327 // 1/√(2π)
)

func geluFwd32(x, y []float32, form GELUForm) {
	if form == GELUErf {
		vecmath.GELU(y, x)
	} else {
		vecmath.GELUTanh(y, x)
	}
}

func geluBack32(x, dy, dx []float32, form GELUForm) {
	if form == GELUErf {
		vecmath.GELUGrad(dx, x, dy)
	} else {
		vecmath.GELUTanhGrad(dx, x, dy)
	}
}

func geluFwd[T floats](x, y []T, form GELUForm) {
	for i, v := range x {
		f := float64(v)
		if form == GELUErf {
			y[i] = T(0.5 * f * (1 + math.Erf(f*invSqrt2)))
		} else {
			y[i] = T(0.5 * f * (1 + math.Tanh(sqrt2OverPi*(f+0.044715*f*f*f))))
		}
	}
}

func geluBack[T floats](x, dy, dx []T, form GELUForm) {
	for i, v := range x {
		f := float64(v)
		var d float64
		if form == GELUErf {
			d = 0.5*(1+math.Erf(f*invSqrt2)) + f*invSqrt2Pi*math.Exp(-0.5*f*f)
		} else {
			u := sqrt2OverPi * (f + 0.044715*f*f*f)
			th := math.Tanh(u)
			d = 0.5*(1+th) + 0.5*f*(1-th*th)*sqrt2OverPi*(1+3*0.044715*f*f)
		}
		dx[i] = T(d * float64(dy[i]))
	}
}
