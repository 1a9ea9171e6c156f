package datasets

import (
	"sort"

	"github.com/pkg/errors"
)

func sortInts(x []int) { sort.Ints(x) }

// Overflow says what a LengthFilter does with a sequence longer than Max.
type Overflow int

const (
	// Drop removes examples with a sequence longer than Max.
	Drop Overflow = iota
	// TruncateEnd keeps the first Max tokens.
	TruncateEnd
	// TruncateStart keeps the last Max tokens (useful for contexts whose end
	// matters, such as a dialogue history).
	TruncateStart
)

// LengthFilter drops sequences shorter than Min tokens and drops or
// truncates sequences longer than Max.
type LengthFilter struct {
	Min, Max int
	Overflow Overflow
}

// FilterReport counts what a filter did, so that callers can report how much
// data a length limit cost them.
type FilterReport struct {
	Kept, DroppedShort, DroppedLong, Truncated int
}

// NewLengthFilter validates and returns a filter. max 0 means no upper limit.
func NewLengthFilter(min, max int, overflow Overflow) (*LengthFilter, error) {
	if min < 0 || max < 0 || (max > 0 && min > max) {
		return nil, errors.Errorf("datasets: length filter needs 0 <= min <= max (max 0: no limit), got min %d max %d", min, max)
	}
	if overflow < Drop || overflow > TruncateStart {
		return nil, errors.Errorf("datasets: unknown overflow policy %d", overflow)
	}
	return &LengthFilter{Min: min, Max: max, Overflow: overflow}, nil
}

// apply returns the kept (possibly truncated) sequence and what happened.
func (f *LengthFilter) apply(s []int) (out []int, short, long, truncated bool) {
	if len(s) < f.Min {
		return nil, true, false, false
	}
	if f.Max > 0 && len(s) > f.Max {
		switch f.Overflow {
		case TruncateEnd:
			return s[:f.Max:f.Max], false, false, true
		case TruncateStart:
			return s[len(s)-f.Max:], false, false, true
		}
		return nil, false, true, false
	}
	return s, false, false, false
}

// Filter applies the filter to seqs and returns the kept sequences, the
// indices in seqs they came from, and the counts.
func (f *LengthFilter) Filter(seqs [][]int) ([][]int, []int, FilterReport) {
	var rep FilterReport
	var out [][]int
	var idx []int
	for i, s := range seqs {
		t, short, long, trunc := f.apply(s)
		switch {
		case short:
			rep.DroppedShort++
		case long:
			rep.DroppedLong++
		default:
			if trunc {
				rep.Truncated++
			}
			rep.Kept++
			out = append(out, t)
			idx = append(idx, i)
		}
	}
	return out, idx, rep
}

// FilterPairs applies the filter to both sides of parallel sequences: a pair
// is dropped if either side is dropped, and counted once as truncated if
// either side is truncated.
func (f *LengthFilter) FilterPairs(src, tgt [][]int) ([][]int, [][]int, []int, FilterReport, error) {
	if len(src) != len(tgt) {
		return nil, nil, nil, FilterReport{}, errors.Errorf("datasets: %d sources but %d targets", len(src), len(tgt))
	}
	var rep FilterReport
	var os, ot [][]int
	var idx []int
	for i := range src {
		s, shortS, longS, truncS := f.apply(src[i])
		t, shortT, longT, truncT := f.apply(tgt[i])
		switch {
		case shortS || shortT:
			rep.DroppedShort++
		case longS || longT:
			rep.DroppedLong++
		default:
			if truncS || truncT {
				rep.Truncated++
			}
			rep.Kept++
			os, ot, idx = append(os, s), append(ot, t), append(idx, i)
		}
	}
	return os, ot, idx, rep, nil
}
