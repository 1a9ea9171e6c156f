package ops

import (
	"fmt"
	"math"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/internal/vecmath"
)

// CrossEntropy is torch.nn.functional.cross_entropy over logits [N, V] with
// integer targets [N] (held as floats of the logits' dtype, exact up to 2²⁴),
// mean over the targets that are not ignoreIndex, with label smoothing ε:
//
//	ℓ_i = (1 − ε)·(−log p_i[t_i]) + ε·(1/V)·Σ_v −log p_i[v]
//	L   = Σ_{i: t_i ≠ ignore} ℓ_i / |{i: t_i ≠ ignore}|
//
// When every target is ignored the loss is 0 with a zero gradient (torch
// gives NaN). A target outside [0, V) is an error naming the row.
//
// Why an op of our own: it fuses a row-stable log-softmax (the stock one
// returns Inf rows on real logits) with the gather and the mean, and its
// gradient (p − q)/count is exact. Float32 runs on internal/vecmath's
// vectorised kernels, with log Σ e^z kept in float64.
func CrossEntropy(logits, targets *G.Node, ignoreIndex int, smoothing float64) (*G.Node, error) {
	if smoothing < 0 || smoothing > 1 {
		return nil, errors.Errorf("CrossEntropy: label smoothing %v is not in [0, 1]", smoothing)
	}
	params := fmt.Sprintf("ignore=%d,eps=%v", ignoreIndex, smoothing)
	return apply(kernel{
		name: "CrossEntropy", params: params,
		inRanks: []int{2, 1}, outRank: 0,
		shape: func(s []tensor.Shape) (tensor.Shape, error) {
			if s[1][0] != s[0][0] {
				return nil, errors.Errorf("CrossEntropy: logits %v and targets %v disagree on N", s[0], s[1])
			}
			return tensor.ScalarShape(), nil
		},
		do: func(t []tensor.Tensor, buf *buffers) (G.Value, error) {
			if err := checkDtypes("CrossEntropy", t); err != nil {
				return nil, err
			}
			var loss float64
			var err error
			switch d := t[0].Data().(type) {
			case []float32:
				loss, err = crossEntropy32(d, t[1].Data().([]float32), nil, t[0].Shape()[1], ignoreIndex, smoothing, 0)
			case []float64:
				loss, err = crossEntropy(d, t[1].Data().([]float64), nil, t[0].Shape()[1], ignoreIndex, smoothing, 0)
			}
			if err != nil {
				return nil, err
			}
			return scalarOf(t[0].Dtype(), loss)
		},
		diff: []bool{true, false},
		grad: func(in G.Nodes, _, dy *G.Node) (G.Nodes, error) {
			dx, err := apply(kernel{
				name: "CrossEntropyGrad", params: params,
				inRanks: []int{2, 1, 0}, outRank: 2,
				shape: sameShape,
				do: func(t []tensor.Tensor, buf *buffers) (G.Value, error) {
					g, err := scalarValue(t[2])
					if err != nil {
						return nil, errors.Wrap(err, "CrossEntropyGrad")
					}
					dx := buf.like(t[0], t[0].Shape())
					switch d := t[0].Data().(type) {
					case []float32:
						_, err = crossEntropy32(d, t[1].Data().([]float32), dx.Data().([]float32), t[0].Shape()[1], ignoreIndex, smoothing, g)
					case []float64:
						_, err = crossEntropy(d, t[1].Data().([]float64), dx.Data().([]float64), t[0].Shape()[1], ignoreIndex, smoothing, g)
					}
					return dx, err
				},
			}, in[0], in[1], dy)
			return G.Nodes{dx, nil}, err
		},
	}, logits, targets)
}

// targetCount is the number of targets that are not ignore.
func targetCount[T floats](targets []T, ignore int) int {
	count := 0
	for _, t := range targets {
		if int(t) != ignore {
			count++
		}
	}
	return count
}

// checkTarget reports a target that is neither a class in [0, v) nor ignore.
func checkTarget[T floats](tf T, row, v, ignore int) error {
	if t := int(tf); t < 0 || t >= v || float64(tf) != float64(t) {
		return errors.Errorf("CrossEntropy: target %v in row %d is not a class in [0, %d) nor the ignore index %d", tf, row, v, ignore)
	}
	return nil
}

// crossEntropy32 is crossEntropy on vecmath: per row, m = max z and
// s = Σ e^(z − m), log Σ e^z = m + log s in float64; the gradient is
// g/count·(e^(z − m)/s − q), the numerators written by the same pass that
// sums them.
func crossEntropy32(x, targets, dx []float32, v, ignore int, eps, g float64) (float64, error) {
	count := targetCount(targets, ignore)
	if count == 0 {
		return 0, nil
	}
	var total float64
	for i, tf := range targets {
		t := int(tf)
		if t == ignore {
			continue
		}
		if err := checkTarget(tf, i, v, ignore); err != nil {
			return 0, err
		}
		row := x[i*v : (i+1)*v]
		m := vecmath.Max(row)
		if dx == nil {
			lse := float64(m) + math.Log(vecmath.SumExp(row, m))
			nll := lse - float64(row[t])
			if eps > 0 {
				sumLogp := vecmath.Sum(row) - float64(v)*lse
				total += (1-eps)*nll - eps*sumLogp/float64(v)
			} else {
				total += nll
			}
			continue
		}
		scale := g / float64(count)
		dr := dx[i*v : (i+1)*v]
		s := vecmath.ExpSum(dr, row, m)
		// (p − q)·scale with p = e/s and q = ε/V, plus 1 − ε at the target.
		vecmath.Affine(dr, dr, float32(scale/s), float32(-eps/float64(v)*scale))
		dr[t] = float32(float64(dr[t]) - (1-eps)*scale)
	}
	return total / float64(count), nil
}

// crossEntropy returns the mean loss and, when dx is not nil, writes
// g·∂L/∂logits into it.
func crossEntropy[T floats](x, targets, dx []T, v, ignore int, eps, g float64) (float64, error) {
	count := targetCount(targets, ignore)
	if count == 0 {
		return 0, nil
	}
	var total float64
	for i, tf := range targets {
		t := int(tf)
		if t == ignore {
			continue
		}
		if err := checkTarget(tf, i, v, ignore); err != nil {
			return 0, err
		}
		row := x[i*v : (i+1)*v]
		lse := float64(logSumExp(row))
		nll := lse - float64(row[t])
		if eps > 0 {
			var sumLogp float64
			for _, z := range row {
				sumLogp += float64(z) - lse
			}
			total += (1-eps)*nll - eps*sumLogp/float64(v)
		} else {
			total += nll
		}
		if dx != nil {
			scale := g / float64(count)
			dr := dx[i*v : (i+1)*v]
			for j, z := range row {
				p := math.Exp(float64(z) - lse)
				q := eps / float64(v)
				if j == t {
					q += 1 - eps
				}
				dr[j] = T((p - q) * scale)
			}
		}
	}
	return total / float64(count), nil
}
