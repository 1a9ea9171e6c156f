package ops

import (
	"math"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/internal/vecmath"
)

// LSTMCellState and LSTMHidden are an LSTM cell's state update, fused: from
// the pre-activation gates z = W_ih x_t + b_ih + W_hh h_{t−1} + b_hh [B, 4H],
// packed in PyTorch's order [i f g o],
//
//	c_t = LSTMCellState(z, c_{t−1}) = σ(f) ⊙ c_{t−1} + σ(i) ⊙ tanh(g)
//	h_t = LSTMHidden(z, c_t)        = σ(o) ⊙ tanh(c_t)
//
// Why ops of our own: composed from stock ops a step is four gate slices,
// three sigmoids and two tanhs, three Hadamard products and an add, each a
// node with its own allocation (and its backward twice that). Fused, the
// forward is two nodes and the backward four (and the sum of two of them),
// reading the gates in place.
//
// Why two ops and not one: a Gorgonia op has one output, and an LSTM step
// has two that are read apart (c_t by the next step, h_t by the next step,
// the layer above and the output). One op writing [h_t c_t] side by side
// needs two slices forward and, backward, two scattered gradients and
// their sum; the split costs one sum of the two ops' gate gradients
// instead, keeps each op stateless, and keeps the code reading like the
// equations. The backward ops recompute the gates from z (a few
// vectorised float32 evaluations per element, small beside the W_hh h
// product) rather than hold them between runs.
//
// Float32 runs σ and tanh on internal/vecmath (a few ulp, the bounds in
// its documentation); float64, for gradient checks, on package math.
func LSTMCellState(z, c *G.Node) (*G.Node, error) {
	H, err := lstmShapes("LSTMCellState", z, c, "cell state c_{t−1}")
	if err != nil {
		return nil, err
	}
	return apply(kernel{
		name: "LSTMCellState", inRanks: []int{2, 2}, outRank: 2,
		shape: func(s []tensor.Shape) (tensor.Shape, error) { return s[1].Clone(), nil },
		do: func(t []tensor.Tensor, buf *buffers) (G.Value, error) {
			if err := checkDtypes("LSTMCellState", t); err != nil {
				return nil, err
			}
			if err := lstmRunShapes("LSTMCellState", t, H); err != nil {
				return nil, err
			}
			y := buf.like(t[1], t[1].Shape())
			switch zd := t[0].Data().(type) {
			case []float32:
				cellStateFwd(zd, t[1].Data().([]float32), y.Data().([]float32), H)
			case []float64:
				cellStateFwd(zd, t[1].Data().([]float64), y.Data().([]float64), H)
			}
			return y, nil
		},
		diff: []bool{true, true},
		grad: func(in G.Nodes, _, dc *G.Node) (G.Nodes, error) {
			dz, err := backwardOp("LSTMCellStateGradZ", in[0].Shape(), func(t []tensor.Tensor, out *tensor.Dense) {
				switch zd := t[0].Data().(type) {
				case []float32:
					cellStateBackZ(zd, t[1].Data().([]float32), t[2].Data().([]float32), out.Data().([]float32), H)
				case []float64:
					cellStateBackZ(zd, t[1].Data().([]float64), t[2].Data().([]float64), out.Data().([]float64), H)
				}
			}, in[0], in[1], dc)
			if err != nil {
				return nil, err
			}
			dcPrev, err := backwardOp("LSTMCellStateGradC", in[1].Shape(), func(t []tensor.Tensor, out *tensor.Dense) {
				switch zd := t[0].Data().(type) {
				case []float32:
					cellStateBackC(zd, t[1].Data().([]float32), out.Data().([]float32), H)
				case []float64:
					cellStateBackC(zd, t[1].Data().([]float64), out.Data().([]float64), H)
				}
			}, in[0], dc)
			if err != nil {
				return nil, err
			}
			return G.Nodes{dz, dcPrev}, nil
		},
	}, z, c)
}

// LSTMHidden is h_t = σ(o) ⊙ tanh(c_t), o the last quarter of the gates z
// [B, 4H], c_t [B, H] the new cell state: see LSTMCellState.
func LSTMHidden(z, c *G.Node) (*G.Node, error) {
	H, err := lstmShapes("LSTMHidden", z, c, "cell state c_t")
	if err != nil {
		return nil, err
	}
	return apply(kernel{
		name: "LSTMHidden", inRanks: []int{2, 2}, outRank: 2,
		shape: func(s []tensor.Shape) (tensor.Shape, error) { return s[1].Clone(), nil },
		do: func(t []tensor.Tensor, buf *buffers) (G.Value, error) {
			if err := checkDtypes("LSTMHidden", t); err != nil {
				return nil, err
			}
			if err := lstmRunShapes("LSTMHidden", t, H); err != nil {
				return nil, err
			}
			y := buf.like(t[1], t[1].Shape())
			switch zd := t[0].Data().(type) {
			case []float32:
				hiddenFwd(zd, t[1].Data().([]float32), y.Data().([]float32), H)
			case []float64:
				hiddenFwd(zd, t[1].Data().([]float64), y.Data().([]float64), H)
			}
			return y, nil
		},
		diff: []bool{true, true},
		grad: func(in G.Nodes, _, dh *G.Node) (G.Nodes, error) {
			dz, err := backwardOp("LSTMHiddenGradZ", in[0].Shape(), func(t []tensor.Tensor, out *tensor.Dense) {
				switch zd := t[0].Data().(type) {
				case []float32:
					hiddenBack(zd, t[1].Data().([]float32), t[2].Data().([]float32), out.Data().([]float32), nil, H)
				case []float64:
					hiddenBack(zd, t[1].Data().([]float64), t[2].Data().([]float64), out.Data().([]float64), nil, H)
				}
			}, in[0], in[1], dh)
			if err != nil {
				return nil, err
			}
			dc, err := backwardOp("LSTMHiddenGradC", in[1].Shape(), func(t []tensor.Tensor, out *tensor.Dense) {
				switch zd := t[0].Data().(type) {
				case []float32:
					hiddenBack(zd, t[1].Data().([]float32), t[2].Data().([]float32), nil, out.Data().([]float32), H)
				case []float64:
					hiddenBack(zd, t[1].Data().([]float64), t[2].Data().([]float64), nil, out.Data().([]float64), H)
				}
			}, in[0], in[1], dh)
			if err != nil {
				return nil, err
			}
			return G.Nodes{dz, dc}, nil
		},
	}, z, c)
}

// lstmShapes checks z [B, 4H] against the state c [B, H] and returns H.
func lstmShapes(name string, z, c *G.Node, what string) (int, error) {
	zs, cs := z.Shape(), c.Shape()
	if z.Dims() != 2 || c.Dims() != 2 || zs[0] != cs[0] || zs[1] != 4*cs[1] {
		return 0, errors.Errorf("%s: gates shape %v and %s shape %v do not match: want (B, 4H) and (B, H)", name, zs, what, cs)
	}
	return cs[1], nil
}

// lstmRunShapes checks the values a run gives against the shapes the op
// was built for: z [B, 4H] and the state [B, H].
func lstmRunShapes(name string, t []tensor.Tensor, H int) error {
	zs, cs := t[0].Shape(), t[1].Shape()
	if len(zs) != 2 || len(cs) != 2 || cs[1] != H || zs[0] != cs[0] || zs[1] != 4*H {
		return errors.Errorf("%s: gates %v and state %v, built for (B, %d) and (B, %d)", name, zs, cs, 4*H, H)
	}
	return nil
}

// sigmoid sets dst[i] = σ(x[i]); tanh sets dst[i] = tanh(x[i]). Float32 on
// vecmath's kernels, float64 on package math.
func sigmoid[T floats](dst, x []T) {
	if d, ok := any(dst).([]float32); ok {
		vecmath.Sigmoid(d, any(x).([]float32))
		return
	}
	for i, v := range x {
		dst[i] = T(1 / (1 + math.Exp(-float64(v))))
	}
}

func tanh[T floats](dst, x []T) {
	if d, ok := any(dst).([]float32); ok {
		vecmath.Tanh(d, any(x).([]float32))
		return
	}
	for i, v := range x {
		dst[i] = T(math.Tanh(float64(v)))
	}
}

// gatesIFG sets a = [σ(i) σ(f) tanh(g)] of one row of gates z [i f g o].
func gatesIFG[T floats](a, z []T, H int) {
	sigmoid(a[:2*H], z[:2*H])
	tanh(a[2*H:3*H], z[2*H:3*H])
}

// cellStateFwd is c_t = σ(f) ⊙ c + σ(i) ⊙ tanh(g), row by row.
func cellStateFwd[T floats](z, c, y []T, H int) {
	a := make([]T, 3*H)
	for r := 0; r*H < len(c); r++ {
		gatesIFG(a, z[4*r*H:(4*r+3)*H], H)
		cr, yr := c[r*H:(r+1)*H], y[r*H:(r+1)*H]
		ai, af, ag := a[:H], a[H:2*H], a[2*H:3*H]
		for j := range yr {
			yr[j] = af[j]*cr[j] + ai[j]*ag[j]
		}
	}
}

// cellStateBackZ is ∂L/∂z from dc = ∂L/∂c_t:
//
//	∂z_i = dc ⊙ tanh(g) ⊙ σ(i)(1 − σ(i))
//	∂z_f = dc ⊙ c ⊙ σ(f)(1 − σ(f))
//	∂z_g = dc ⊙ σ(i) ⊙ (1 − tanh²(g))
//	∂z_o = 0 (o reaches the loss through LSTMHidden)
func cellStateBackZ[T floats](z, c, dc, dz []T, H int) {
	a := make([]T, 3*H)
	for r := 0; r*H < len(c); r++ {
		gatesIFG(a, z[4*r*H:(4*r+3)*H], H)
		cr, dr := c[r*H:(r+1)*H], dc[r*H:(r+1)*H]
		ai, af, ag := a[:H], a[H:2*H], a[2*H:3*H]
		di, df, dg := dz[4*r*H:(4*r+1)*H], dz[(4*r+1)*H:(4*r+2)*H], dz[(4*r+2)*H:(4*r+3)*H]
		for j, d := range dr {
			di[j] = d * ag[j] * (ai[j] * (1 - ai[j]))
			df[j] = d * cr[j] * (af[j] * (1 - af[j]))
			dg[j] = d * ai[j] * (1 - ag[j]*ag[j])
		}
	}
}

// cellStateBackC is ∂L/∂c_{t−1} = dc ⊙ σ(f).
func cellStateBackC[T floats](z, dc, dcPrev []T, H int) {
	for r := 0; r*H < len(dc); r++ {
		df := dcPrev[r*H : (r+1)*H]
		sigmoid(df, z[(4*r+1)*H:(4*r+2)*H])
		for j, d := range dc[r*H : (r+1)*H] {
			df[j] *= d
		}
	}
}

// hiddenFwd is h_t = σ(o) ⊙ tanh(c_t), row by row.
func hiddenFwd[T floats](z, c, h []T, H int) {
	tc := make([]T, H)
	for r := 0; r*H < len(c); r++ {
		hr := h[r*H : (r+1)*H]
		sigmoid(hr, z[(4*r+3)*H:(4*r+4)*H])
		tanh(tc, c[r*H:(r+1)*H])
		for j := range hr {
			hr[j] *= tc[j]
		}
	}
}

// hiddenBack writes, from dh = ∂L/∂h_t, whichever of dz and dc is not nil:
//
//	∂z_o = dh ⊙ tanh(c_t) ⊙ σ(o)(1 − σ(o))   (∂z_i, ∂z_f, ∂z_g = 0)
//	∂c_t = dh ⊙ σ(o) ⊙ (1 − tanh²(c_t))
func hiddenBack[T floats](z, c, dh, dz, dc []T, H int) {
	so, tc := make([]T, H), make([]T, H)
	for r := 0; r*H < len(c); r++ {
		sigmoid(so, z[(4*r+3)*H:(4*r+4)*H])
		tanh(tc, c[r*H:(r+1)*H])
		dr := dh[r*H : (r+1)*H]
		if dz != nil {
			dzo := dz[(4*r+3)*H : (4*r+4)*H]
			for j, d := range dr {
				dzo[j] = d * tc[j] * (so[j] * (1 - so[j]))
			}
		}
		if dc != nil {
			dcr := dc[r*H : (r+1)*H]
			for j, d := range dr {
				dcr[j] = d * so[j] * (1 - tc[j]*tc[j])
			}
		}
	}
}
