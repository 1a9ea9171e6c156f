package bert

import (
	"math"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
)

// Sequence is one input of BERT: token ids, as [CLS] A [SEP] or
// [CLS] A [SEP] B [SEP] (see Specials.Single and Pair), and their segment
// ids (0 for A and its delimiters, 1 for B; nil means all 0).
type Sequence struct {
	IDs, Segments []int
}

// Rows are B sequences padded to T tokens: IDs and Segments [B·T]
// row-major, Lengths the real tokens of each row (the rest is padding, and
// a row of length 0 is empty, there only to fill a batch).
type Rows struct {
	B, T          int
	IDs, Segments []int
	Lengths       []int
}

// Pad lays seqs out as rows rows of steps tokens, padding with the
// config's pad_token_id; rows ≥ len(seqs) (the rest are empty) and steps ≥
// the longest sequence (a length bucket) and ≤ max_position_embeddings.
func (m *Model) Pad(seqs []Sequence, rows, steps int) (Rows, error) {
	if rows < len(seqs) || rows <= 0 {
		return Rows{}, errors.Errorf("bert: %d sequences do not fit %d rows", len(seqs), rows)
	}
	if steps <= 0 || steps > m.Config.MaxPositionEmbeddings {
		return Rows{}, errors.Errorf("bert: %d steps is not in [1, max_position_embeddings %d]", steps, m.Config.MaxPositionEmbeddings)
	}
	r := Rows{B: rows, T: steps, IDs: make([]int, rows*steps), Segments: make([]int, rows*steps), Lengths: make([]int, rows)}
	for i := range r.IDs {
		r.IDs[i] = m.Config.PadTokenID
	}
	for b, s := range seqs {
		if len(s.IDs) > steps {
			return Rows{}, errors.Errorf("bert: sequence %d has %d tokens, more than the %d steps", b, len(s.IDs), steps)
		}
		if s.Segments != nil && len(s.Segments) != len(s.IDs) {
			return Rows{}, errors.Errorf("bert: sequence %d has %d tokens and %d segment ids", b, len(s.IDs), len(s.Segments))
		}
		copy(r.IDs[b*steps:], s.IDs)
		copy(r.Segments[b*steps:], s.Segments)
		r.Lengths[b] = len(s.IDs)
	}
	return r, nil
}

// Values returns the per-run values of Inputs ("ids", "segments", "mask")
// for r, checking every id against the vocabulary and every segment id
// against type_vocab_size.
func (m *Model) Values(r Rows) (map[string]G.Value, error) {
	n := r.B * r.T
	if len(r.IDs) != n || len(r.Segments) != n || len(r.Lengths) != r.B {
		return nil, errors.Errorf("bert: rows [%d, %d] have %d ids, %d segment ids and %d lengths", r.B, r.T, len(r.IDs), len(r.Segments), len(r.Lengths))
	}
	ids, err := blocks.IDs(r.IDs, m.Config.VocabSize)
	if err != nil {
		return nil, errors.Wrap(err, "bert")
	}
	for i, s := range r.Segments {
		if s < 0 || s >= m.Config.TypeVocabSize {
			return nil, errors.Errorf("bert: segment id %d at position %d is outside [0, type_vocab_size %d)", s, i, m.Config.TypeVocabSize)
		}
	}
	mask, err := PaddingMask(m.Store.Dtype(), r.Lengths, r.T)
	if err != nil {
		return nil, err
	}
	segs := tensor.New(tensor.WithShape(n), tensor.WithBacking(append([]int(nil), r.Segments...)))
	return map[string]G.Value{"ids": ids, "segments": segs, "mask": mask}, nil
}

// PaddingMask is BERT's attention mask as an additive [B, T, T] mask: 0
// where key j is one of row b's lengths[b] tokens, −∞ where it is padding,
// the same for every query (HF's extended attention mask; there is no
// causal part). A row of length 0 is masked whole: its attention weights
// are zeros.
func PaddingMask(dt tensor.Dtype, lengths []int, steps int) (*tensor.Dense, error) {
	if dt != tensor.Float32 && dt != tensor.Float64 {
		return nil, errors.Errorf("bert: PaddingMask: unsupported dtype %v", dt)
	}
	B := len(lengths)
	t := tensor.New(tensor.Of(dt), tensor.WithShape(B, steps, steps))
	for b, n := range lengths {
		if n < 0 || n > steps {
			return nil, errors.Errorf("bert: PaddingMask: length %d of row %d is not in [0, %d]", n, b, steps)
		}
		for i := range steps {
			row := (b*steps + i) * steps
			for j := n; j < steps; j++ {
				switch d := t.Data().(type) {
				case []float32:
					d[row+j] = float32(math.Inf(-1))
				case []float64:
					d[row+j] = math.Inf(-1)
				}
			}
		}
	}
	return t, nil
}
