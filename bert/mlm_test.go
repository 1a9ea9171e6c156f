package bert

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

// TestMaskingRates masks 3,000 sequences (about 200,000 tokens, with
// [CLS], [SEP] and another special token among them) and checks BERT's
// rates — 15% of the maskable positions chosen, of those 80% [MASK], 10%
// random, 10% kept — within tolerance; that special tokens are never
// chosen and random replacements are never special; that nothing else
// changes; and that the same seed masks the same way.
func TestMaskingRates(t *testing.T) {
	const vocab, extra = 1000, 7 // id 7 is special too (as <|endoftext|> would be)
	sp := Specials{PAD: 0, CLS: 1, SEP: 2, MASK: 3}
	mk, err := NewMasker(BERTMasking(), sp, vocab, func(id int) bool { return id == extra })
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(1, 2))
	var cand, chosen, masked, random, kept, firstHalf int
	for range 3000 {
		n := 10 + rng.IntN(120)
		text := make([]int, n)
		for i := range text {
			text[i] = 8 + rng.IntN(vocab-8)
			if rng.IntN(20) == 0 {
				text[i] = extra
			}
		}
		cut := 1 + rng.IntN(n-1)
		s := sp.Pair(text[:cut], text[cut:], 0)
		orig := append([]int(nil), s.IDs...)
		ex := mk.Mask(rng, s)
		require.Equal(t, orig, s.IDs, "the input is not modified")
		var maskable []int
		for i, id := range s.IDs {
			if !mk.IsSpecial(id) {
				maskable = append(maskable, i)
			}
		}
		require.Len(t, ex.Positions, mk.PerRow(len(maskable)))
		cand += len(maskable)
		chosen += len(ex.Positions)
		isChosen := map[int]bool{}
		for k, i := range ex.Positions {
			isChosen[i] = true
			require.False(t, mk.IsSpecial(orig[i]), "special token %d chosen at %d", orig[i], i)
			require.Equal(t, orig[i], ex.Targets[k], "the target is the original token")
			if k > 0 {
				require.Less(t, ex.Positions[k-1], i, "positions ascend")
			}
			if i < maskable[len(maskable)/2] {
				firstHalf++
			}
			switch got := ex.IDs[i]; {
			case got == sp.MASK:
				masked++
			case got == orig[i]:
				kept++
			default:
				require.False(t, mk.IsSpecial(got), "random replacement %d is special", got)
				random++
			}
		}
		for i := range orig {
			if !isChosen[i] {
				require.Equal(t, orig[i], ex.IDs[i], "position %d was not chosen but changed", i)
			}
		}
	}
	rate, fm, fr, fk := float64(chosen)/float64(cand), float64(masked)/float64(chosen), float64(random)/float64(chosen), float64(kept)/float64(chosen)
	t.Logf("%d maskable tokens, %d chosen (%.4f): [MASK] %.4f, random %.4f, kept %.4f; %.4f in the first half", cand, chosen, rate, fm, fr, fk, float64(firstHalf)/float64(chosen))
	assert.InDelta(t, 0.15, rate, 0.003)
	// chosen ≈ 30,000: the binomial standard deviations are 0.0023 (80%)
	// and 0.0017 (10%); 0.01 is over 4 of them.
	assert.InDelta(t, 0.8, fm, 0.01)
	assert.InDelta(t, 0.1, fr, 0.01)
	assert.InDelta(t, 0.1, fk, 0.01)
	assert.InDelta(t, 0.5, float64(firstHalf)/float64(chosen), 0.02, "positions are uniform over the row")

	s := sp.Single([]int{10, 11, 12, 13, 14, 15, 16, 17, 18, 19}, 0)
	a, b := mk.Mask(rand.New(rand.NewPCG(9, 9)), s), mk.Mask(rand.New(rand.NewPCG(9, 9)), s)
	assert.Equal(t, a, b, "same seed, same masking")
	none := mk.Mask(rng, sp.Single(nil, 0))
	assert.Empty(t, none.Positions, "only specials: nothing to choose")
}

// TestPaddingIsNeverATarget: in a batch padded to more rows and steps than
// its examples have, every target counts only at a real token of its row,
// the padded positions and the empty rows have none, and the weight is the
// number of targets.
func TestPaddingIsNeverATarget(t *testing.T) {
	cfg := Tiny()
	cfg.VocabSize, cfg.NumHiddenLayers = 60, 1
	m, err := New(cfg, 1)
	require.NoError(t, err)
	mk, err := NewMasker(BERTMasking(), Specials{PAD: 0, CLS: 1, SEP: 2, MASK: 3}, 60, nil)
	require.NoError(t, err)
	l := MLM{Model: m, Masker: mk}
	rng := rand.New(rand.NewPCG(3, 4))
	var ex []Example
	lengths := []int{20, 7, 13}
	for _, n := range lengths {
		text := make([]int, n-2)
		for i := range text {
			text[i] = 4 + rng.IntN(56)
		}
		ex = append(ex, mk.Mask(rng, mk.Specials.Single(text, 0)))
	}
	const rows, steps = 5, 24
	b, err := l.Batch(ex, rows, steps)
	require.NoError(t, err)
	pos := b.Inputs["mlm_positions"].Data().([]int)
	tg := b.Inputs["mlm_targets"].Data().([]float32)
	ids := b.Inputs["ids"].Data().([]int)
	require.Len(t, pos, rows*mk.PerRow(steps))
	n := 0
	for k, p := range pos {
		if tg[k] == IgnoreIndex {
			continue
		}
		n++
		row, i := p/steps, p%steps
		require.Less(t, row, len(lengths), "an empty row has no target")
		require.Less(t, i, lengths[row], "padding is never a target")
		require.NotEqual(t, 0, ids[p], "the input there is not [PAD]")
	}
	assert.Equal(t, float64(n), b.Weight)
	assert.Equal(t, len(ex[0].Positions)+len(ex[1].Positions)+len(ex[2].Positions), n)
	mask := b.Inputs["mask"].(*tensor.Dense).Data().([]float32)
	for row := range rows {
		for j := range steps {
			hidden := math.IsInf(float64(mask[row*steps*steps+j]), -1)
			assert.Equal(t, row >= len(lengths) || j >= lengths[row], hidden, "row %d key %d", row, j)
		}
	}
}
