package bert

import (
	"math"
	"sort"

	"github.com/pkg/errors"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/train"
)

// Candidate is a token the MLM head proposes for a [MASK], with its
// probability.
type Candidate struct {
	ID   int
	Prob float64
}

// FillMask runs the MLM head over seq (no padding) and returns, for each
// position holding mask (the [MASK] id), the k most likely tokens, most
// likely first: what BERT does instead of continuing a prompt. It predicts
// each [MASK] from the whole input, both sides of it, but all [MASK]s at
// once and independently, so a word of several tokens needs one [MASK] per
// token and may come out inconsistent.
func (m *Model) FillMask(seq Sequence, mask, k int) ([][]Candidate, error) {
	if k <= 0 {
		return nil, errors.Errorf("bert: FillMask: k %d must be positive", k)
	}
	var at []int
	for i, id := range seq.IDs {
		if id == mask {
			at = append(at, i)
		}
	}
	if len(at) == 0 {
		return nil, errors.Errorf("bert: FillMask: the input has no [MASK] (id %d)", mask)
	}
	rows, err := m.Pad([]Sequence{seq}, 1, len(seq.IDs))
	if err != nil {
		return nil, err
	}
	vals, err := m.Values(rows)
	if err != nil {
		return nil, err
	}
	p, err := train.Compile(MLM{Model: m}, train.Key{Mode: blocks.Eval, Kind: KindLogits, Batch: 1, Len: len(seq.IDs)}, 0)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	for name, v := range vals {
		if err := p.Let(name, v); err != nil {
			return nil, err
		}
	}
	if err := p.Run(); err != nil {
		return nil, err
	}
	out, err := p.Output("logits")
	if err != nil {
		return nil, err
	}
	z := asFloat64s(out.(tensor.Tensor))
	V := m.Config.VocabSize
	res := make([][]Candidate, len(at))
	for r, i := range at {
		row := z[i*V : (i+1)*V]
		lse := logSumExp(row)
		c := make([]Candidate, V)
		for id, v := range row {
			c[id] = Candidate{ID: id, Prob: math.Exp(v - lse)}
		}
		sort.SliceStable(c, func(a, b int) bool { return c[a].Prob > c[b].Prob })
		res[r] = c[:min(k, V)]
	}
	return res, nil
}
