package datasets

import (
	"sort"

	"github.com/pkg/errors"
)

// Buckets are the lengths a batch is padded up to. A compiled graph has a
// fixed shape, so every distinct batch length is a program to build; padding
// each batch up to the smallest bucket that holds its longest row keeps the
// shapes, and so the programs, to a handful (fairseq's
// pad_to_multiple, tensor2tensor's length buckets). The zero value has no
// buckets: each batch keeps its own longest length.
type Buckets struct{ edges []int }

// NewBuckets returns buckets of the given lengths, which must be positive and
// strictly increasing. The last is the longest length a batch may have.
func NewBuckets(edges ...int) (Buckets, error) {
	if len(edges) == 0 {
		return Buckets{}, errors.New("datasets: buckets need at least one length")
	}
	for i, e := range edges {
		if e <= 0 {
			return Buckets{}, errors.Errorf("datasets: bucket length %d at %d is not positive", e, i)
		}
		if i > 0 && e <= edges[i-1] {
			return Buckets{}, errors.Errorf("datasets: bucket lengths must increase: %d after %d", e, edges[i-1])
		}
	}
	return Buckets{edges: append([]int(nil), edges...)}, nil
}

// BucketsOf returns the multiples of step up to max, and max itself when it
// is not one: BucketsOf(8, 20) is 8, 16, 20.
func BucketsOf(step, max int) (Buckets, error) {
	if step <= 0 || max <= 0 {
		return Buckets{}, errors.Errorf("datasets: buckets of %d up to %d: both must be positive", step, max)
	}
	var edges []int
	for e := step; e < max; e += step {
		edges = append(edges, e)
	}
	return NewBuckets(append(edges, max)...)
}

// IsZero says there are no buckets.
func (b Buckets) IsZero() bool { return len(b.edges) == 0 }

// Edges returns the bucket lengths.
func (b Buckets) Edges() []int { return append([]int(nil), b.edges...) }

// Max is the longest bucket (0 without buckets).
func (b Buckets) Max() int {
	if b.IsZero() {
		return 0
	}
	return b.edges[len(b.edges)-1]
}

// Fit returns the smallest bucket length ≥ n, and false when n is longer
// than every bucket. Without buckets it returns n itself.
func (b Buckets) Fit(n int) (int, bool) {
	if b.IsZero() {
		return n, true
	}
	i := sort.SearchInts(b.edges, n)
	if i == len(b.edges) {
		return 0, false
	}
	return b.edges[i], true
}
