package bert

import (
	"github.com/pkg/errors"

	"github.com/seq2gpt/seq2gpt/datasets"
)

// BERT's special tokens, as BERT's WordPiece vocabulary spells them. This
// package uses the project's byte-level BPE (datasets.BPE) with these four
// added as special tokens: text never encodes to them, so user text cannot
// forge a [SEP] or a [MASK]. A WordPiece tokenizer is not needed: what makes
// BERT BERT is the bidirectional encoder and the masked-LM objective, not
// the subword algorithm (RoBERTa uses GPT-2's byte-level BPE too).
const (
	PADToken  = "[PAD]"
	CLSToken  = "[CLS]"
	SEPToken  = "[SEP]"
	MASKToken = "[MASK]"
)

// Specials are the ids of BERT's special tokens in a vocabulary.
type Specials struct {
	PAD, CLS, SEP, MASK int
}

// AddSpecials makes [PAD], [CLS], [SEP] and [MASK] special tokens of tok,
// appending those it lacks to its vocabulary (a tokenizer saved with them
// and loaded again already has them: then nothing is added), and returns
// their ids. Set the model's pad_token_id to PAD and its vocab_size to
// tok.VocabSize() afterwards.
func AddSpecials(tok datasets.Tokenizer) (Specials, error) {
	st, err := tok.AddSpecial(PADToken, CLSToken, SEPToken, MASKToken)
	if err != nil {
		return Specials{}, errors.Wrap(err, "bert: special tokens")
	}
	return Specials{PAD: st[0].ID, CLS: st[1].ID, SEP: st[2].ID, MASK: st[3].ID}, nil
}

// Validate checks that the ids are distinct and inside a vocabulary of
// vocab tokens.
func (s Specials) Validate(vocab int) error {
	seen := map[int]string{}
	for _, t := range []struct {
		name string
		id   int
	}{{PADToken, s.PAD}, {CLSToken, s.CLS}, {SEPToken, s.SEP}, {MASKToken, s.MASK}} {
		if t.id < 0 || t.id >= vocab {
			return errors.Errorf("bert: %s id %d is outside the vocabulary [0, %d)", t.name, t.id, vocab)
		}
		if other, ok := seen[t.id]; ok {
			return errors.Errorf("bert: %s and %s have the same id %d", other, t.name, t.id)
		}
		seen[t.id] = t.name
	}
	return nil
}

// Single is [CLS] a [SEP], a cut to fit maxLen tokens in all (0: no limit),
// all in segment 0: the input of a single-sentence task.
func (s Specials) Single(a []int, maxLen int) Sequence {
	if maxLen > 0 && len(a) > maxLen-2 {
		a = a[:max(0, maxLen-2)]
	}
	ids := append(append([]int{s.CLS}, a...), s.SEP)
	return Sequence{IDs: ids, Segments: make([]int, len(ids))}
}

// Pair is [CLS] a [SEP] b [SEP] with a and its delimiters in segment 0 and
// b and its [SEP] in segment 1: the input of a sentence-pair task and of
// next-sentence prediction. To fit maxLen tokens in all (0: no limit) the
// longer of a and b loses its last token until both fit, as HF's
// "longest_first" truncation does.
func (s Specials) Pair(a, b []int, maxLen int) Sequence {
	if maxLen > 0 {
		for len(a)+len(b) > max(0, maxLen-3) && len(a)+len(b) > 0 {
			if len(a) >= len(b) {
				a = a[:len(a)-1]
			} else {
				b = b[:len(b)-1]
			}
		}
	}
	ids := make([]int, 0, len(a)+len(b)+3)
	ids = append(append(append(ids, s.CLS), a...), s.SEP)
	na := len(ids)
	ids = append(append(ids, b...), s.SEP)
	seg := make([]int, len(ids))
	for i := na; i < len(seg); i++ {
		seg[i] = 1
	}
	return Sequence{IDs: ids, Segments: seg}
}
