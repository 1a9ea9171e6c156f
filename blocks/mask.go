package blocks

import (
	"math"

	"github.com/pkg/errors"
	"gorgonia.org/tensor"
)

// AttentionMask builds the additive mask [B, T_q, T_k] that attention adds
// to its scores before the softmax: 0 where query i may attend to key j and
// −∞ where it may not. Key j is hidden when it is padding (j ≥ keyLengths[b];
// nil keyLengths means no padding) and, when causal, when it lies in the
// future of query i: j > i + (T_k − T_q), which with T_q = T_k is the
// subsequent-position mask of the Transformer decoder, and with a cache of
// T_k − T_q earlier positions lets the new queries see all of them.
func AttentionMask(dt tensor.Dtype, batch, tq, tk int, keyLengths []int, causal bool) (*tensor.Dense, error) {
	if err := positive("mask sizes", batch, tq, tk); err != nil {
		return nil, errors.Wrap(err, "blocks: AttentionMask")
	}
	if keyLengths != nil && len(keyLengths) != batch {
		return nil, errors.Errorf("blocks: AttentionMask: %d key lengths for batch %d", len(keyLengths), batch)
	}
	if causal && tk < tq {
		return nil, errors.Errorf("blocks: AttentionMask: causal mask needs T_k ≥ T_q, got T_q %d, T_k %d", tq, tk)
	}
	vals := make([]float64, batch*tq*tk)
	for b := 0; b < batch; b++ {
		n := tk
		if keyLengths != nil {
			n = keyLengths[b]
			if n < 1 || n > tk {
				return nil, errors.Errorf("blocks: AttentionMask: key length %d of row %d is not in [1, %d]", n, b, tk)
			}
		}
		for i := 0; i < tq; i++ {
			for j := 0; j < tk; j++ {
				if j >= n || (causal && j > i+tk-tq) {
					vals[(b*tq+i)*tk+j] = math.Inf(-1)
				}
			}
		}
	}
	return denseOf(dt, tensor.Shape{batch, tq, tk}, vals)
}

// PaddingMask is the additive mask [B, T] over the positions of a padded
// batch: 0 for the first lengths[b] positions of row b, −∞ after. Additive
// attention uses it to keep α_ij off padding.
func PaddingMask(dt tensor.Dtype, lengths []int, steps int) (*tensor.Dense, error) {
	vals := make([]float64, len(lengths)*steps)
	for b, n := range lengths {
		if n < 1 || n > steps {
			return nil, errors.Errorf("blocks: PaddingMask: length %d of row %d is not in [1, %d]", n, b, steps)
		}
		for j := n; j < steps; j++ {
			vals[b*steps+j] = math.Inf(-1)
		}
	}
	return denseOf(dt, tensor.Shape{len(lengths), steps}, vals)
}

// StepMask is the [B, T, H] mask an LSTM over a padded batch takes: 1 at
// the real steps of each row, 0 at its padding, repeated over the H hidden
// units.
func StepMask(dt tensor.Dtype, lengths []int, steps, hidden int) (*tensor.Dense, error) {
	vals := make([]float64, len(lengths)*steps*hidden)
	for b, n := range lengths {
		if n < 0 || n > steps {
			return nil, errors.Errorf("blocks: StepMask: length %d of row %d is not in [0, %d]", n, b, steps)
		}
		for t := 0; t < n; t++ {
			for h := 0; h < hidden; h++ {
				vals[(b*steps+t)*hidden+h] = 1
			}
		}
	}
	return denseOf(dt, tensor.Shape{len(lengths), steps, hidden}, vals)
}

func denseOf(dt tensor.Dtype, shape tensor.Shape, vals []float64) (*tensor.Dense, error) {
	if dt != tensor.Float32 && dt != tensor.Float64 {
		return nil, errors.Errorf("blocks: unsupported dtype %v", dt)
	}
	t := tensor.New(tensor.Of(dt), tensor.WithShape(shape...))
	fill(t, vals)
	return t, nil
}
