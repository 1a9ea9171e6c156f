package decode

import (
	"hash/fnv"
	"math"
	"math/rand/v2"

	"github.com/pkg/errors"
)

// fakeLM is a tiny model for tests: its logits are a fixed pseudo-random
// function of (input, prefix), so any search over it can be checked
// against an exhaustive one, and its attention over the input is another
// such function. It records the rows of every call.
type fakeLM struct {
	vocab int
	seed  uint64
	calls []int // rows of each Start and Next
}

type fakeRow struct{ input, prefix []int }

type fakeState struct {
	m    *fakeLM
	rows []fakeRow
}

func (f *fakeLM) rng(r fakeRow, salt uint64) *rand.Rand {
	h := fnv.New64a()
	for _, x := range append(append(append([]int(nil), r.input...), -1), r.prefix...) {
		h.Write([]byte{byte(x), byte(x >> 8)})
	}
	return rand.New(rand.NewPCG(h.Sum64(), f.seed^salt))
}

func (f *fakeLM) logits(r fakeRow) []float32 {
	g := f.rng(r, 1)
	l := make([]float32, f.vocab)
	for i := range l {
		l[i] = float32(1.5 * g.NormFloat64())
	}
	return l
}

// attention is a softmax over the input's positions.
func (f *fakeLM) attention(r fakeRow) []float32 {
	g := f.rng(r, 2)
	a := make([]float32, len(r.input))
	var sum float64
	for i := range a {
		x := math.Exp(g.NormFloat64())
		a[i], sum = float32(x), sum+x
	}
	for i := range a {
		a[i] /= float32(sum)
	}
	return a
}

// logProb is log p(tok | input, prefix).
func (f *fakeLM) logProb(input, prefix []int, tok int) float64 {
	lp := make([]float64, f.vocab)
	logSoftmax(lp, f.logits(fakeRow{input, prefix}))
	return lp[tok]
}

func (f *fakeLM) Start(inputs [][]int) (State, [][]float32, error) {
	s := &fakeState{m: f}
	for _, in := range inputs {
		s.rows = append(s.rows, fakeRow{input: in})
	}
	return s, s.logits(), nil
}

func (s *fakeState) logits() [][]float32 {
	s.m.calls = append(s.m.calls, len(s.rows))
	out := make([][]float32, len(s.rows))
	for i, r := range s.rows {
		out[i] = s.m.logits(r)
	}
	return out
}

func (s *fakeState) Next(tokens []int) ([][]float32, error) {
	if len(tokens) != len(s.rows) {
		return nil, errors.Errorf("fake: %d tokens for %d rows", len(tokens), len(s.rows))
	}
	for i, t := range tokens {
		s.rows[i].prefix = append(append([]int(nil), s.rows[i].prefix...), t)
	}
	return s.logits(), nil
}

func (s *fakeState) Reorder(rows []int) error {
	next := make([]fakeRow, len(rows))
	for i, r := range rows {
		if r < 0 || r >= len(s.rows) {
			return errors.Errorf("fake: row %d of %d", r, len(s.rows))
		}
		next[i] = s.rows[r]
	}
	s.rows = next
	return nil
}

func (s *fakeState) Close() error { return nil }

func (s *fakeState) Attention() [][]float32 {
	out := make([][]float32, len(s.rows))
	for i, r := range s.rows {
		out[i] = s.m.attention(r)
	}
	return out
}

// exhaustive lists every hypothesis a search under l could finish for
// input, with its log-probability: prefixes of up to the maximum length,
// ended by an end token once MinLen allows it, or by a forced end token
// (by the maximum, without EOS) at the maximum.
func exhaustive(f *fakeLM, input []int, l Limits) []Hypothesis {
	maxLen := int(math.Floor(l.MaxLenA*float64(len(input)))) + l.MaxLen
	var out []Hypothesis
	var walk func(prefix []int, lp float64, terms []float64)
	walk = func(prefix []int, lp float64, terms []float64) {
		if len(prefix) == maxLen && len(l.EOS) == 0 {
			out = append(out, Hypothesis{Tokens: prefix, LogProb: lp, TokenLogProbs: terms})
			return
		}
		for v := 0; v < f.vocab; v++ {
			eos := l.isEOS(v)
			if (eos && len(prefix) < l.MinLen) || (!eos && len(prefix) == maxLen) {
				continue
			}
			x := f.logProb(input, prefix, v)
			seq := append(append([]int(nil), prefix...), v)
			ts := append(append([]float64(nil), terms...), x)
			if eos {
				out = append(out, Hypothesis{Tokens: seq, LogProb: lp + x, TokenLogProbs: ts})
			} else {
				walk(seq, lp+x, ts)
			}
		}
	}
	walk(nil, 0, nil)
	return out
}
