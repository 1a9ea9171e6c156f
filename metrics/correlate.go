package metrics

import (
	"math"
	"sort"

	"github.com/pkg/errors"
)

// checkFloats checks lengths and that every value is a finite number.
func checkFloats(metric string, gold, pred []float64) error {
	if len(gold) != len(pred) {
		return errors.Errorf("%s: %d gold values but %d predictions", metric, len(gold), len(pred))
	}
	if len(gold) == 0 {
		return errors.Wrapf(ErrEmpty, "%s: no examples", metric)
	}
	for i := range gold {
		if math.IsNaN(gold[i]) || math.IsInf(gold[i], 0) {
			return errors.Errorf("%s: gold value %d is %v, not a finite number", metric, i, gold[i])
		}
		if math.IsNaN(pred[i]) || math.IsInf(pred[i], 0) {
			return errors.Errorf("%s: prediction %d is %v, not a finite number", metric, i, pred[i])
		}
	}
	return nil
}

// constant reports whether every value equals the first.
func constant(x []float64) bool {
	for _, v := range x {
		if v != x[0] {
			return false
		}
	}
	return true
}

// checkCorrelation adds what makes a correlation undefined: fewer than two
// pairs, or a constant side (scipy returns NaN there with a
// ConstantInputWarning, or raises for fewer than two).
func checkCorrelation(metric string, gold, pred []float64) error {
	if err := checkFloats(metric, gold, pred); err != nil {
		return err
	}
	switch {
	case len(gold) < 2:
		return undefined(metric, "one pair has no correlation")
	case constant(gold) && constant(pred):
		return undefined(metric, "every gold value is %v and every prediction is %v", gold[0], pred[0])
	case constant(gold):
		return undefined(metric, "every gold value is %v", gold[0])
	case constant(pred):
		return undefined(metric, "every prediction is %v", pred[0])
	}
	return nil
}

// Pearson is Pearson's correlation coefficient (scipy.stats.pearsonr):
//
//	r = Σ (x_i − x̄)(y_i − ȳ) / √(Σ (x_i − x̄)² · Σ (y_i − ȳ)²)
//
// computed as scipy does (centred vectors normalised before the dot
// product, the result clipped to [−1, 1]; two pairs give ±1 exactly). It
// is undefined, an *UndefinedError, for a constant side or a single pair.
func Pearson(gold, pred []float64) (float64, error) {
	if err := checkCorrelation("pearson", gold, pred); err != nil {
		return 0, err
	}
	return pearson(gold, pred), nil
}

func pearson(x, y []float64) float64 {
	n := len(x)
	if n == 2 {
		return sign(x[1]-x[0]) * sign(y[1]-y[0])
	}
	xm, ym := centred(x), centred(y)
	nx, ny := norm(xm), norm(ym)
	r := 0.0
	for i := range xm {
		r += (xm[i] / nx) * (ym[i] / ny)
	}
	return math.Max(math.Min(r, 1), -1)
}

func sign(v float64) float64 {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}

func centred(x []float64) []float64 {
	mean := 0.0
	for _, v := range x {
		mean += v
	}
	mean /= float64(len(x))
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = v - mean
	}
	return out
}

// norm is the Euclidean norm, scaled as BLAS's nrm2 is so that no square
// overflows.
func norm(x []float64) float64 {
	scale, ssq := 0.0, 1.0
	for _, v := range x {
		if v == 0 {
			continue
		}
		a := math.Abs(v)
		if scale < a {
			ssq = 1 + ssq*(scale/a)*(scale/a)
			scale = a
		} else {
			ssq += (a / scale) * (a / scale)
		}
	}
	return scale * math.Sqrt(ssq)
}

// Spearman is Spearman's rank correlation (scipy.stats.spearmanr): Pearson's
// r of the ranks, tied values sharing the mean of their ranks. It is
// undefined, an *UndefinedError, for a constant side or a single pair.
func Spearman(gold, pred []float64) (float64, error) {
	if err := checkCorrelation("spearman", gold, pred); err != nil {
		return 0, err
	}
	return pearson(Ranks(gold), Ranks(pred)), nil
}

// Ranks are the 1-based ranks of x, tied values sharing the average of the
// ranks they span (scipy.stats.rankdata's "average" method): Ranks of
// [10, 20, 10, 30] is [1.5, 3, 1.5, 4].
func Ranks(x []float64) []float64 {
	idx := make([]int, len(x))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return x[idx[a]] < x[idx[b]] })
	r := make([]float64, len(x))
	for i := 0; i < len(idx); {
		j := i + 1
		for j < len(idx) && x[idx[j]] == x[idx[i]] {
			j++
		}
		// Positions i..j-1 (0-based) hold equal values: ranks i+1..j.
		avg := float64(i+1+j) / 2
		for k := i; k < j; k++ {
			r[idx[k]] = avg
		}
		i = j
	}
	return r
}
