package datasets

import (
	"github.com/pkg/errors"
)

// Conventional special tokens. They are written in GPT-2's "<|...|>" style so
// that a vocabulary saved in GPT-2's format keeps them readable. Encoding text
// never produces a special token id, even if the text contains the literal
// string: special ids enter a sequence only when the caller asks for them by
// name (see SpecialID), so user text cannot inject a delimiter or an
// end-of-sequence marker.
const (
	PadToken     = "<|pad|>"
	UnkToken     = "<|unk|>"
	BOSToken     = "<|bos|>"
	EOSToken     = "<|endoftext|>" // GPT-2's end of text; id 50256 in its vocabulary.
	StartToken   = "<|start|>"     // GPT-1's start token for fine-tuning inputs.
	DelimToken   = "<|delim|>"     // GPT-1's delimiter between the parts of an input.
	ExtractToken = "<|extract|>"   // GPT-1's extract token, whose state feeds the task head.
)

// GPT1Specials returns the special tokens GPT-1's task formats need.
func GPT1Specials() []string {
	return []string{PadToken, StartToken, DelimToken, ExtractToken, EOSToken}
}

// SpecialToken reports the id a special token has in a vocabulary. Added is
// true when the call appended the token (a new id at the end of the
// vocabulary) and false when the vocabulary already had it.
type SpecialToken struct {
	Token string
	ID    int
	Added bool
}

// Tokenizer is implemented by the tokenizers in this package.
type Tokenizer interface {
	// Encode maps text to ids. It never returns special token ids.
	Encode(text string) []int
	// Decode maps ids back to text. Special ids decode to their names.
	Decode(ids []int) (string, error)
	// VocabSize is one more than the largest id Encode or SpecialID can return.
	VocabSize() int
	// AddSpecial makes tokens special, appending ids for those not yet in the
	// vocabulary, and reports each token's id.
	AddSpecial(tokens ...string) ([]SpecialToken, error)
	// SpecialID returns the id of a special token and whether it is one.
	SpecialID(token string) (int, bool)
}

// specials is the bookkeeping shared by the tokenizers: which ids are special.
type specials struct {
	byName map[string]int
	byID   map[int]string
}

func (s *specials) init() {
	if s.byName == nil {
		s.byName = map[string]int{}
		s.byID = map[int]string{}
	}
}

func (s *specials) set(tok string, id int) {
	s.init()
	s.byName[tok] = id
	s.byID[id] = tok
}

// SpecialID returns the id of special token tok.
func (s *specials) SpecialID(tok string) (int, bool) {
	id, ok := s.byName[tok]
	return id, ok
}

// IsSpecial reports whether id is a special token.
func (s *specials) IsSpecial(id int) bool {
	_, ok := s.byID[id]
	return ok
}

// addSpecials implements AddSpecial for a tokenizer: lookup finds a token
// already in the vocabulary, producible reports whether encoding the token's
// own text gives exactly that one id (then text could forge it and it cannot
// be special), and appendTok appends a new token and returns its id.
func (s *specials) addSpecials(tokens []string, lookup func(string) (int, bool),
	producible func(string) bool, appendTok func(string) int) ([]SpecialToken, error) {
	for _, t := range tokens {
		if t == "" {
			return nil, errors.New("datasets: special token must not be empty")
		}
		if _, ok := s.byName[t]; ok {
			continue
		}
		if producible(t) {
			return nil, errors.Errorf("datasets: special token %q is an ordinary token that text can produce", t)
		}
	}
	out := make([]SpecialToken, 0, len(tokens))
	for _, t := range tokens {
		if id, ok := s.byName[t]; ok {
			out = append(out, SpecialToken{Token: t, ID: id})
			continue
		}
		if id, ok := lookup(t); ok {
			s.set(t, id)
			out = append(out, SpecialToken{Token: t, ID: id})
			continue
		}
		id := appendTok(t)
		s.set(t, id)
		out = append(out, SpecialToken{Token: t, ID: id, Added: true})
	}
	return out, nil
}
