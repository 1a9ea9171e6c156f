// Package decode turns a model's next-token distributions into sequences,
// for every generative model alike: greedy decoding, sampling (temperature,
// top-k, top-p, seeded) and beam search (length penalty, minimum and
// maximum lengths, end tokens, n-best lists), over batches of inputs of
// different lengths.
//
// It knows no model. A model implements Model and State with its own
// incremental state — GPT's key/value cache, an LSTM's hidden state, a
// Transformer's encoder memory and decoder cache — the way fairseq's
// decoders keep an incremental_state and reorder it for beam search
// (reorder_incremental_state):
//
//	state, logits, err := model.Start(inputs) // read prompts or sources
//	logits, err = state.Next(tokens)          // one token per row
//	err = state.Reorder(rows)                 // keep, copy or drop rows
//
// Logits are float32 rows [rows][V], as models produce them; the searches
// compute in float64.
package decode

import (
	"math"

	"github.com/pkg/errors"
)

// Model starts decoding a batch of rows.
type Model interface {
	// Start reads each row's input — a decoder-only model's prompt, an
	// encoder–decoder's source sentence (the model adds its own start
	// token) — and returns the state of the rows and each row's logits
	// over its first new token. Inputs may differ in length.
	Start(inputs [][]int) (State, [][]float32, error)
}

// State is a model's incremental state over the rows being decoded.
// decode reads the logits a call returns before the next call, so a State
// may reuse their memory.
type State interface {
	// Next feeds one token per row (the token each row chose last) and
	// returns each row's logits over its next token.
	Next(tokens []int) ([][]float32, error)
	// Reorder makes row i what row rows[i] was, for every i; rows may be
	// longer or shorter than the rows now and repeat an index. Beam search
	// expands each input's row to its beam, copies the rows of the
	// hypotheses it keeps and drops those of finished inputs; Generate
	// drops finished rows.
	Reorder(rows []int) error
	// Close releases the state.
	Close() error
}

// Attender is a State that also reports where each row attended in its
// input when it computed its last logits: α [rows][|input of the row|]
// (Bahdanau et al. 2015's α_ij for the new position i). When a State is
// one, Generate and BeamSearch return each token's α with it.
type Attender interface {
	Attention() [][]float32
}

// Limits bound the length of what is generated for each row.
type Limits struct {
	// MaxLen (b) and MaxLenA (a): a row gets at most ⌊a·|input|⌋ + b new
	// tokens (fairseq's max_len_a and max_len_b). Beam search then ends a
	// hypothesis with an end token, as fairseq does, when EOS is set.
	MaxLen  int
	MaxLenA float64
	// MinLen keeps the end tokens from being chosen while a row has fewer
	// than MinLen new tokens (fairseq's min_len).
	MinLen int
	// EOS are the tokens that end a row, kept as its last token. Without
	// them every row runs to its maximum length.
	EOS []int
}

// maxLens is each row's maximum number of new tokens.
func (l Limits) maxLens(inputs [][]int) ([]int, error) {
	if l.MaxLen < 0 || l.MinLen < 0 || l.MaxLenA < 0 || math.IsNaN(l.MaxLenA) || math.IsInf(l.MaxLenA, 0) {
		return nil, errors.Errorf("decode: lengths must not be negative: max len %d, max len a %v, min len %d", l.MaxLen, l.MaxLenA, l.MinLen)
	}
	if len(inputs) == 0 {
		return nil, errors.New("decode: no inputs")
	}
	out := make([]int, len(inputs))
	for i, in := range inputs {
		out[i] = int(math.Floor(l.MaxLenA*float64(len(in)))) + l.MaxLen
		if out[i] < max(1, l.MinLen) {
			return nil, errors.Errorf("decode: input %d may have %d new tokens (max len a %v × %d + max len %d); want at least 1 and min len %d",
				i, out[i], l.MaxLenA, len(in), l.MaxLen, l.MinLen)
		}
	}
	return out, nil
}

// start checks the limits and starts the model on inputs: the state, the
// first logits, each row's maximum length and the vocabulary size.
func (l Limits) start(m Model, inputs [][]int) (State, [][]float32, []int, int, error) {
	maxLen, err := l.maxLens(inputs)
	if err != nil {
		return nil, nil, nil, 0, err
	}
	st, logits, err := m.Start(inputs)
	if err != nil {
		return nil, nil, nil, 0, err
	}
	vocab, err := checkRows(logits, len(inputs), 0)
	if err == nil {
		err = l.checkEOS(vocab)
	}
	if err != nil {
		st.Close()
		return nil, nil, nil, 0, err
	}
	return st, logits, maxLen, vocab, nil
}

// isEOS says whether tok ends a row.
func (l Limits) isEOS(tok int) bool {
	for _, e := range l.EOS {
		if e == tok {
			return true
		}
	}
	return false
}

func (l Limits) checkEOS(vocab int) error {
	for _, e := range l.EOS {
		if e < 0 || e >= vocab {
			return errors.Errorf("decode: end token %d is outside the vocabulary [0, %d)", e, vocab)
		}
	}
	return nil
}

// checkRows checks that a model returned one finite-or-−∞ row of a common
// vocabulary per state row, and returns the vocabulary size.
func checkRows(logits [][]float32, rows int, vocab int) (int, error) {
	if len(logits) != rows {
		return 0, errors.Errorf("decode: the model returned %d rows of logits for %d rows", len(logits), rows)
	}
	for r, l := range logits {
		if vocab == 0 {
			vocab = len(l)
		}
		if len(l) != vocab || vocab == 0 {
			return 0, errors.Errorf("decode: row %d has %d logits, want %d", r, len(l), vocab)
		}
		for v, x := range l {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 1) {
				return 0, errors.Errorf("decode: row %d: logit %d is %v", r, v, x)
			}
		}
	}
	return vocab, nil
}

// attention returns a copy of each row's α when s is an Attender.
func attention(s State, rows int) ([][]float32, error) {
	a, ok := s.(Attender)
	if !ok {
		return nil, nil
	}
	w := a.Attention()
	if len(w) != rows {
		return nil, errors.Errorf("decode: the model returned attention for %d rows, want %d", len(w), rows)
	}
	out := make([][]float32, rows)
	for r := range w {
		out[r] = append([]float32(nil), w[r]...)
	}
	return out, nil
}
