package ops

import (
	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/internal/vecmath"
)

// AdditiveScores are the scores of Bahdanau attention, fused:
//
//	e_bt = vᵀ tanh(W s_b + U h_bt) = Σ_a v_a · tanh(uh[b, t, a] + ws[b, a])
//
// from the keys uh = U h [B, T, A], the projected decoder state ws = W s
// [B, A] and v [1, A] (nn.Linear(A, 1).weight), giving e [B, T].
//
// Why an op of our own: composed from stock ops the sum broadcasts ws over
// T by copying it (Repeat) into a [B, T, A] tensor, runs Gorgonia's scalar
// float32 tanh, and multiplies by v as a [B·T, A] × [A, 1] product; its
// backward sums the copy back over T and keeps the tanh output alive. Fused,
// the forward reads ws in place and the backward recomputes tanh (on
// internal/vecmath in float32; package math in float64).
func AdditiveScores(uh, ws, v *G.Node) (*G.Node, error) {
	us := uh.Shape().Clone()
	// Dims first: Shape.Eq calls (A) and (1, A) equal.
	if uh.Dims() != 3 || ws.Dims() != 2 || v.Dims() != 2 ||
		!ws.Shape().Eq(tensor.Shape{us[0], us[2]}) || !v.Shape().Eq(tensor.Shape{1, us[2]}) {
		return nil, errors.Errorf("AdditiveScores: keys %v, state %v and v %v do not match: want (B, T, A), (B, A) and (1, A)",
			us, ws.Shape(), v.Shape())
	}
	B, T, A := us[0], us[1], us[2]
	return apply(kernel{
		name: "AdditiveScores", inRanks: []int{3, 2, 2}, outRank: 2,
		shape: func([]tensor.Shape) (tensor.Shape, error) { return tensor.Shape{B, T}, nil },
		do: func(t []tensor.Tensor, buf *buffers) (G.Value, error) {
			if err := checkDtypes("AdditiveScores", t); err != nil {
				return nil, err
			}
			if !t[0].Shape().Eq(us) || t[1].Shape().TotalSize() != B*A || t[2].Shape().TotalSize() != A {
				return nil, errors.Errorf("AdditiveScores: keys %v, state %v and v %v, built for %v, (%d, %d) and (1, %d)",
					t[0].Shape(), t[1].Shape(), t[2].Shape(), us, B, A, A)
			}
			e := buf.like(t[0], tensor.Shape{B, T})
			switch d := t[0].Data().(type) {
			case []float32:
				additiveFwd(d, t[1].Data().([]float32), t[2].Data().([]float32), e.Data().([]float32), T, A)
			case []float64:
				additiveFwd(d, t[1].Data().([]float64), t[2].Data().([]float64), e.Data().([]float64), T, A)
			}
			return e, nil
		},
		diff: []bool{true, true, true},
		grad: func(in G.Nodes, _, de *G.Node) (G.Nodes, error) {
			duh, err := backwardOp("AdditiveScoresGradKeys", us, func(t []tensor.Tensor, out *tensor.Dense) {
				switch d := t[0].Data().(type) {
				case []float32:
					additiveBackKeys(d, t[1].Data().([]float32), t[2].Data().([]float32), t[3].Data().([]float32), out.Data().([]float32), T, A)
				case []float64:
					additiveBackKeys(d, t[1].Data().([]float64), t[2].Data().([]float64), t[3].Data().([]float64), out.Data().([]float64), T, A)
				}
			}, in[0], in[1], in[2], de)
			if err != nil {
				return nil, err
			}
			// ∂ws_b = Σ_t ∂uh_bt: the broadcast summed back, from ∂uh.
			dws, err := backwardOp("AdditiveScoresGradState", tensor.Shape{B, A}, func(t []tensor.Tensor, out *tensor.Dense) {
				switch d := t[0].Data().(type) {
				case []float32:
					sumSteps(d, out.Data().([]float32), T, A)
				case []float64:
					sumSteps(d, out.Data().([]float64), T, A)
				}
			}, duh)
			if err != nil {
				return nil, err
			}
			dv, err := backwardOp("AdditiveScoresGradV", tensor.Shape{1, A}, func(t []tensor.Tensor, out *tensor.Dense) {
				switch d := t[0].Data().(type) {
				case []float32:
					additiveBackV(d, t[1].Data().([]float32), t[2].Data().([]float32), out.Data().([]float32), T, A)
				case []float64:
					additiveBackV(d, t[1].Data().([]float64), t[2].Data().([]float64), out.Data().([]float64), T, A)
				}
			}, in[0], in[1], de)
			if err != nil {
				return nil, err
			}
			return G.Nodes{duh, dws, dv}, nil
		},
	}, uh, ws, v)
}

// tanhSum sets u = tanh(uh + ws) over one row of A (in float32 the sum is
// vecmath's AXPY with a = 1: one rounding, as a plain add).
func tanhSum[T floats](u, uh, ws []T) {
	if uf, ok := any(u).([]float32); ok {
		vecmath.AXPY(uf, 1, any(uh).([]float32), any(ws).([]float32))
	} else {
		for a := range u {
			u[a] = uh[a] + ws[a]
		}
	}
	tanh(u, u)
}

// dot is Σ x_a·y_a, in float64.
func dot[T floats](x, y []T) float64 {
	if xf, ok := any(x).([]float32); ok {
		return vecmath.Dot(xf, any(y).([]float32))
	}
	var s float64
	for i, v := range x {
		s += float64(v) * float64(y[i])
	}
	return s
}

func additiveFwd[T floats](uh, ws, v, e []T, steps, A int) {
	u := make([]T, A)
	for r := range e {
		b := r / steps
		tanhSum(u, uh[r*A:(r+1)*A], ws[b*A:(b+1)*A])
		e[r] = T(dot(u, v))
	}
}

// additiveBackKeys is ∂uh_bta = ∂e_bt · v_a · (1 − u_bta²).
func additiveBackKeys[T floats](uh, ws, v, de, duh []T, steps, A int) {
	for r, d := range de {
		b := r / steps
		u := duh[r*A : (r+1)*A]
		tanhSum(u, uh[r*A:(r+1)*A], ws[b*A:(b+1)*A])
		for a, ua := range u {
			u[a] = d * v[a] * (1 - ua*ua)
		}
	}
}

// additiveBackV is ∂v_a = Σ_bt ∂e_bt · u_bta, accumulated in float64.
func additiveBackV[T floats](uh, ws, de, dv []T, steps, A int) {
	u, acc := make([]T, A), make([]float64, A)
	for r, d := range de {
		b := r / steps
		tanhSum(u, uh[r*A:(r+1)*A], ws[b*A:(b+1)*A])
		for a, ua := range u {
			acc[a] += float64(d) * float64(ua)
		}
	}
	for a, s := range acc {
		dv[a] = T(s)
	}
}

// sumSteps is out_ba = Σ_t x_bta for x [B, T, A].
func sumSteps[T floats](x, out []T, steps, A int) {
	for r := 0; r*A < len(x); r++ {
		b := r / steps
		o := out[b*A : (b+1)*A]
		for a, v := range x[r*A : (r+1)*A] {
			o[a] += v
		}
	}
}
