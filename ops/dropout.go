package ops

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// DropoutRNG is the random state shared by every Dropout op of one graph. A
// mask is a pure function of (Seed, Calls, element index), so the whole
// state of a training run's dropout is the pair (Seed, Calls): saving Calls
// in a checkpoint and restoring it continues with exactly the masks an
// uninterrupted run would have drawn.
type DropoutRNG struct {
	Seed  uint64
	Calls uint64
	ops   int
}

// Dropout zeroes each element of x with probability p and scales the rest
// by 1/(1 − p), drawing a new mask on every run (inverted dropout, as
// nn.Dropout in training mode). Evaluation graphs leave the op out.
//
// Why an op of our own: Gorgonia's Dropout scales the gradient by 1/p
// instead of 1/(1 − p), and switching one machine to evaluation mode turns
// it off for every machine sharing the op.
func Dropout(x *G.Node, p float64, rng *DropoutRNG) (*G.Node, error) {
	if p < 0 || p >= 1 {
		return nil, errors.Errorf("Dropout: probability %v is not in [0, 1)", p)
	}
	if rng == nil {
		return nil, errors.New("Dropout: nil DropoutRNG")
	}
	rng.ops++
	id := rng.ops
	var mask []bool // the mask of the latest forward run, read by the backward op
	scale := 1 / (1 - p)
	return apply(kernel{
		name: "Dropout", params: fmt.Sprintf("p=%v,id=%d,rng=%p", p, id, rng),
		inRanks: []int{x.Dims()}, outRank: x.Dims(),
		shape: sameShape,
		do: func(t []tensor.Tensor, buf *buffers) (G.Value, error) {
			if err := checkDtypes("Dropout", t); err != nil {
				return nil, err
			}
			n := t[0].Shape().TotalSize()
			if cap(mask) < n {
				mask = make([]bool, n)
			}
			mask = mask[:n]
			call := rng.Calls
			rng.Calls++
			th := keepThreshold(p)
			for i := range mask {
				mask[i] = keeps(rng.Seed, call, uint64(i), th)
			}
			y := buf.dense(t[0], t[0].Shape())
			applyMask(t[0], y, mask, scale)
			return y, nil
		},
		diff: []bool{true},
		grad: func(_ G.Nodes, _, dy *G.Node) (G.Nodes, error) {
			dx, err := apply(kernel{
				name: "DropoutGrad", params: fmt.Sprintf("p=%v,id=%d,rng=%p", p, id, rng),
				inRanks: []int{dy.Dims()}, outRank: dy.Dims(),
				shape: sameShape,
				do: func(t []tensor.Tensor, buf *buffers) (G.Value, error) {
					if len(mask) != t[0].Shape().TotalSize() {
						return nil, errors.New("DropoutGrad: run before its forward op")
					}
					dx := buf.dense(t[0], t[0].Shape())
					applyMask(t[0], dx, mask, scale)
					return dx, nil
				},
			}, dy)
			return G.Nodes{dx}, err
		},
	}, x)
}

// applyMask writes y = x·scale where mask keeps and 0 elsewhere, every
// element, without a branch on the (random) mask.
func applyMask(x tensor.Tensor, y *tensor.Dense, mask []bool, scale float64) {
	switch d := x.Data().(type) {
	case []float32:
		out, tab := y.Data().([]float32), [2]float32{0, float32(scale)}
		for i, k := range mask {
			out[i] = d[i] * tab[b2u(k)]
		}
	case []float64:
		out, tab := y.Data().([]float64), [2]float64{0, scale}
		for i, k := range mask {
			out[i] = d[i] * tab[b2u(k)]
		}
	}
}

// bits53 maps (seed, call, i) to 53 random bits with the SplitMix64
// finaliser: a counter-based generator, so any mask can be recomputed from
// its position. Element i of draw call is kept when u = bits53·2⁻⁵³ ≥ p.
func bits53(seed, call, i uint64) uint64 {
	z := seed ^ (call+1)*0x9e3779b97f4a7c15 ^ (i+1)*0xd1b54a32d192ed03
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	return z >> 11
}

// keepThreshold is ⌈p·2⁵³⌉: u ≥ p exactly when bits53 ≥ it (u and p·2⁵³
// are both exact in float64), so a mask is drawn in integers, the same mask
// the float comparison drew.
func keepThreshold(p float64) uint64 { return uint64(math.Ceil(p * (1 << 53))) }

// keeps says whether element i of draw call keeps its value: u ≥ p.
func keeps(seed, call, i, th uint64) bool { return bits53(seed, call, i) >= th }

// b2u is 1 for true and 0 for false, without a branch.
func b2u(b bool) uint8 { return *(*uint8)(unsafe.Pointer(&b)) & 1 }
