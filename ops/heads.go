package ops

import (
	"fmt"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// SplitHeads takes part p of parts equal slices of the last axis of
// x [B, T, parts·d] and lays it out by head: [B, h, T, d/h]. With parts = 1
// it is the head split of multi-head attention; with parts = 3 it reads Q,
// K or V straight out of a packed projection [B, T, 3d] (GPT's c_attn).
//
// Why an op of our own: composed, it is a column slice (which Gorgonia
// materialises through a slow iterator), a reshape and a transpose (another
// iterator copy); here it is one pass of contiguous row copies, and so is
// its gradient.
func SplitHeads(x *G.Node, part, parts, heads int) (*G.Node, error) {
	if x.Dims() != 3 {
		return nil, errors.Errorf("SplitHeads: input has shape %v, want [B, T, parts·d]", x.Shape())
	}
	B, T, W := x.Shape()[0], x.Shape()[1], x.Shape()[2]
	if parts <= 0 || part < 0 || part >= parts || heads <= 0 || W%(parts*heads) != 0 {
		return nil, errors.Errorf("SplitHeads: cannot take part %d of %d with %d heads from shape %v", part, parts, heads, x.Shape())
	}
	dk := W / parts / heads
	params := fmt.Sprintf("part=%d/%d,heads=%d", part, parts, heads)
	return apply(kernel{
		name: "SplitHeads", params: params,
		inRanks: []int{3}, outRank: 4,
		shape: func([]tensor.Shape) (tensor.Shape, error) { return tensor.Shape{B, heads, T, dk}, nil },
		do: func(t []tensor.Tensor, buf *buffers) (G.Value, error) {
			if err := checkDtypes("SplitHeads", t); err != nil {
				return nil, err
			}
			y := buf.dense(t[0], tensor.Shape{B, heads, T, dk})
			switch d := t[0].Data().(type) {
			case []float32:
				moveHeads(d, y.Data().([]float32), B, T, W, heads, dk, part*heads*dk, false)
			case []float64:
				moveHeads(d, y.Data().([]float64), B, T, W, heads, dk, part*heads*dk, false)
			}
			return y, nil
		},
		diff: []bool{true},
		grad: func(_ G.Nodes, _, dy *G.Node) (G.Nodes, error) {
			dx, err := apply(kernel{
				name: "SplitHeadsGrad", params: params,
				inRanks: []int{4}, outRank: 3,
				shape: func([]tensor.Shape) (tensor.Shape, error) { return tensor.Shape{B, T, W}, nil },
				do: func(t []tensor.Tensor, buf *buffers) (G.Value, error) {
					dx := buf.like(t[0], tensor.Shape{B, T, W})
					switch d := t[0].Data().(type) {
					case []float32:
						moveHeads(dx.Data().([]float32), d, B, T, W, heads, dk, part*heads*dk, true)
					case []float64:
						moveHeads(dx.Data().([]float64), d, B, T, W, heads, dk, part*heads*dk, true)
					}
					return dx, nil
				},
			}, dy)
			return G.Nodes{dx}, err
		},
	}, x)
}

// MergeHeads concatenates the heads of x [B, h, T, d_k] into [B, T, h·d_k],
// the Concat(head_1, …, head_h) of multi-head attention, in one pass (see
// SplitHeads for why).
func MergeHeads(x *G.Node) (*G.Node, error) {
	if x.Dims() != 4 {
		return nil, errors.Errorf("MergeHeads: input has shape %v, want [B, h, T, d_k]", x.Shape())
	}
	B, H, T, dk := x.Shape()[0], x.Shape()[1], x.Shape()[2], x.Shape()[3]
	W := H * dk
	return apply(kernel{
		name: "MergeHeads", params: fmt.Sprint(H),
		inRanks: []int{4}, outRank: 3,
		shape: func([]tensor.Shape) (tensor.Shape, error) { return tensor.Shape{B, T, W}, nil },
		do: func(t []tensor.Tensor, buf *buffers) (G.Value, error) {
			if err := checkDtypes("MergeHeads", t); err != nil {
				return nil, err
			}
			y := buf.dense(t[0], tensor.Shape{B, T, W})
			switch d := t[0].Data().(type) {
			case []float32:
				moveHeads(y.Data().([]float32), d, B, T, W, H, dk, 0, true)
			case []float64:
				moveHeads(y.Data().([]float64), d, B, T, W, H, dk, 0, true)
			}
			return y, nil
		},
		diff: []bool{true},
		grad: func(_ G.Nodes, _, dy *G.Node) (G.Nodes, error) {
			dx, err := SplitHeads(dy, 0, 1, H)
			return G.Nodes{dx}, err
		},
	}, x)
}

// moveHeads copies between packed rows x [B, T, W] (columns off … off+h·d_k)
// and heads y [B, h, T, d_k]: x → y, or y → x when toPacked.
func moveHeads[T floats](x, y []T, B, steps, W, heads, dk, off int, toPacked bool) {
	for b := 0; b < B; b++ {
		for t := 0; t < steps; t++ {
			row := (b*steps+t)*W + off
			for h := 0; h < heads; h++ {
				src := x[row+h*dk : row+(h+1)*dk]
				dst := y[((b*heads+h)*steps+t)*dk : ((b*heads+h)*steps+t+1)*dk]
				if toPacked {
					copy(src, dst)
				} else {
					copy(dst, src)
				}
			}
		}
	}
}

// AppendSteps is [past ; new] along the time axis of [B, h, T, d_k]
// tensors: a key/value cache with this step's keys or values appended. It
// is for inference graphs and has no gradient.
//
// Why an op of our own: Gorgonia's Concat copies through a generic
// iterator; this copies whole contiguous blocks.
func AppendSteps(past, nw *G.Node) (*G.Node, error) {
	ps, ns := past.Shape(), nw.Shape()
	if past.Dims() != 4 || nw.Dims() != 4 || ps[0] != ns[0] || ps[1] != ns[1] || ps[3] != ns[3] {
		return nil, errors.Errorf("AppendSteps: shapes %v and %v do not both fit [B, h, T, d_k]", ps, ns)
	}
	B, H, P, T, dk := ps[0], ps[1], ps[2], ns[2], ps[3]
	return apply(kernel{
		name: "AppendSteps", inRanks: []int{4, 4}, outRank: 4,
		shape: func([]tensor.Shape) (tensor.Shape, error) { return tensor.Shape{B, H, P + T, dk}, nil },
		do: func(t []tensor.Tensor, buf *buffers) (G.Value, error) {
			if err := checkDtypes("AppendSteps", t); err != nil {
				return nil, err
			}
			y := buf.dense(t[0], tensor.Shape{B, H, P + T, dk})
			switch d := y.Data().(type) {
			case []float32:
				appendSteps(t[0].Data().([]float32), t[1].Data().([]float32), d, B*H, P*dk, T*dk)
			case []float64:
				appendSteps(t[0].Data().([]float64), t[1].Data().([]float64), d, B*H, P*dk, T*dk)
			}
			return y, nil
		},
	}, past, nw)
}

func appendSteps[T floats](past, nw, y []T, rows, p, n int) {
	for r := 0; r < rows; r++ {
		copy(y[r*(p+n):r*(p+n)+p], past[r*p:(r+1)*p])
		copy(y[r*(p+n)+p:(r+1)*(p+n)], nw[r*n:(r+1)*n])
	}
}
