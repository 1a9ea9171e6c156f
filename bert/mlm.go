package bert

import (
	"math"
	"math/rand/v2"
	"slices"

	"github.com/pkg/errors"
)

// Masking is BERT's masked-LM corruption (§3.1, "Task #1: Masked LM"): of
// each input's maskable positions (every token that is not special) a
// fraction Rate is chosen as targets; a chosen token is replaced by [MASK]
// with probability Mask, by a random ordinary token with probability
// Random, and kept with the rest (1 − Mask − Random). The model predicts
// the original token at every chosen position, so it cannot tell which
// tokens were hidden and must keep a representation of every one.
type Masking struct {
	Rate, Mask, Random float64
}

// BERTMasking is the paper's: 15% chosen, of those 80% [MASK], 10% random,
// 10% kept.
func BERTMasking() Masking { return Masking{Rate: 0.15, Mask: 0.8, Random: 0.1} }

// Validate checks the fractions.
func (mk Masking) Validate() error {
	if !(mk.Rate > 0 && mk.Rate <= 1) {
		return errors.Errorf("bert: masking rate %v is not in (0, 1]", mk.Rate)
	}
	if !(mk.Mask >= 0 && mk.Random >= 0 && mk.Mask+mk.Random <= 1) {
		return errors.Errorf("bert: masking fractions [MASK] %v and random %v must be non-negative and sum to at most 1", mk.Mask, mk.Random)
	}
	return nil
}

// PerRow is the number of positions chosen among n maskable ones,
// max(1, round(Rate·n)) (0 when n is 0), as BERT's
// create_pretraining_data.py counts them. A row of T tokens has at most
// PerRow(T) targets, which sizes the KindMLM program.
func (mk Masking) PerRow(n int) int {
	if n <= 0 {
		return 0
	}
	return max(1, int(math.Round(mk.Rate*float64(n))))
}

// Masker masks sequences for one vocabulary.
type Masker struct {
	Masking
	Specials
	vocab    int
	special  []bool
	ordinary []int // the ids a random replacement draws from
}

// NewMasker returns a masker for a vocabulary of vocab ids whose special
// ids are those isSpecial reports (datasets.BPE.IsSpecial) and BERT's four.
// Special tokens are never chosen, and a random replacement is never
// special.
func NewMasker(mk Masking, sp Specials, vocab int, isSpecial func(id int) bool) (*Masker, error) {
	if err := mk.Validate(); err != nil {
		return nil, err
	}
	if err := sp.Validate(vocab); err != nil {
		return nil, err
	}
	m := &Masker{Masking: mk, Specials: sp, vocab: vocab, special: make([]bool, vocab)}
	for _, id := range []int{sp.PAD, sp.CLS, sp.SEP, sp.MASK} {
		m.special[id] = true
	}
	for id := range vocab {
		if isSpecial != nil && isSpecial(id) {
			m.special[id] = true
		}
		if !m.special[id] {
			m.ordinary = append(m.ordinary, id)
		}
	}
	if len(m.ordinary) == 0 {
		return nil, errors.New("bert: the vocabulary has no ordinary tokens")
	}
	return m, nil
}

// IsSpecial reports whether id is a special token.
func (m *Masker) IsSpecial(id int) bool { return id >= 0 && id < m.vocab && m.special[id] }

// Example is one pre-training example: the input after masking, the
// chosen positions (ascending) with their original ids, the MLM targets,
// and the NSP label (0: segment B follows A; 1: B is random).
type Example struct {
	Sequence
	Positions, Targets []int
	NextLabel          int
}

// Mask chooses PerRow(n) of the n maskable positions of s uniformly at
// random from rng and corrupts them (see Masking). s is not modified.
func (m *Masker) Mask(rng *rand.Rand, s Sequence) Example {
	var cand []int
	for i, id := range s.IDs {
		if !m.IsSpecial(id) {
			cand = append(cand, i)
		}
	}
	rng.Shuffle(len(cand), func(i, j int) { cand[i], cand[j] = cand[j], cand[i] })
	chosen := cand[:m.PerRow(len(cand))]
	slices.Sort(chosen)
	ex := Example{Sequence: Sequence{IDs: slices.Clone(s.IDs), Segments: slices.Clone(s.Segments)}}
	for _, i := range chosen {
		ex.Positions = append(ex.Positions, i)
		ex.Targets = append(ex.Targets, s.IDs[i])
		switch r := rng.Float64(); {
		case r < m.Masking.Mask:
			ex.IDs[i] = m.MASK
		case r < m.Masking.Mask+m.Random:
			ex.IDs[i] = m.ordinary[rng.IntN(len(m.ordinary))]
		}
	}
	return ex
}
