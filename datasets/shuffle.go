package datasets

import (
	"math/bits"
	"math/rand/v2"

	"github.com/pkg/errors"
)

// rng is a PCG generator with a bounded-integer method implemented here, so
// that shuffles from a seed are the same on every Go version and platform
// (the standard library does not promise that for its derived methods).
type rng struct{ src *rand.PCG }

func newRNG(seed, stream uint64) rng { return rng{rand.NewPCG(seed, stream^0x9e3779b97f4a7c15)} }

// intn returns a uniform integer in [0, n) by Lemire's multiply-and-reject.
func (r rng) intn(n int) int {
	un := uint64(n)
	hi, lo := bits.Mul64(r.src.Uint64(), un)
	if lo < un {
		thresh := -un % un
		for lo < thresh {
			hi, lo = bits.Mul64(r.src.Uint64(), un)
		}
	}
	return int(hi)
}

// Permutation returns a permutation of 0..n-1 determined by seed alone.
func Permutation(n int, seed uint64) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	r := newRNG(seed, 1)
	for i := n - 1; i > 0; i-- {
		j := r.intn(i + 1)
		p[i], p[j] = p[j], p[i]
	}
	return p
}

// Split shuffles 0..n-1 with seed and cuts it into parts with the given
// fractions, which must be non-negative and sum to 1 (within 1e-9). Part
// sizes are rounded down and the remainder goes to the first part, so the
// sizes always sum to n; each part keeps ascending order, and the same seed
// always gives the same parts.
func Split(n int, seed uint64, fractions ...float64) ([][]int, error) {
	if n < 0 {
		return nil, errors.Errorf("datasets: split of %d items", n)
	}
	if len(fractions) == 0 {
		return nil, errors.New("datasets: split needs at least one fraction")
	}
	sum := 0.0
	for _, f := range fractions {
		if !(f >= 0) {
			return nil, errors.Errorf("datasets: split fractions must be >= 0, got %v", fractions)
		}
		sum += f
	}
	if sum < 1-1e-9 || sum > 1+1e-9 {
		return nil, errors.Errorf("datasets: split fractions must sum to 1, got %v (sum %v)", fractions, sum)
	}
	sizes := make([]int, len(fractions))
	rest := n
	for i := 1; i < len(fractions); i++ {
		sizes[i] = int(fractions[i] * float64(n))
		rest -= sizes[i]
	}
	sizes[0] = rest
	perm := Permutation(n, seed)
	out := make([][]int, len(fractions))
	at := 0
	for i, s := range sizes {
		part := append([]int{}, perm[at:at+s]...)
		sortInts(part)
		out[i] = part
		at += s
	}
	return out, nil
}
