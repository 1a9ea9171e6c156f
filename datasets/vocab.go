package datasets

import (
	"sort"
	"strings"
	"unicode"

	"github.com/pkg/errors"
)

// VocabConfig configures a frequency-built vocabulary.
type VocabConfig struct {
	// MaxSize caps the vocabulary, special tokens included; 0 means no cap.
	// The most frequent tokens are kept, ties broken alphabetically.
	MaxSize int
	// MinCount drops tokens seen fewer times; 0 means 1.
	MinCount int
	// Lower folds text to lower case before counting and encoding.
	Lower bool
	// Specials come first (ids 0, 1, …); nil means {PadToken, UnkToken}.
	// UnkToken is always included: it is what unknown tokens map to.
	Specials []string
}

// table is an id <-> token table with an unknown-token fallback, shared by
// the character and word tokenizers.
type table struct {
	specials
	tokens []string
	ids    map[string]int
	unk    int
	lower  bool
}

func buildTable(counts map[string]int, cfg VocabConfig) (*table, error) {
	if cfg.MaxSize < 0 || cfg.MinCount < 0 {
		return nil, errors.Errorf("datasets: vocabulary MaxSize and MinCount must be >= 0, got %d and %d", cfg.MaxSize, cfg.MinCount)
	}
	specs := cfg.Specials
	if specs == nil {
		specs = []string{PadToken, UnkToken}
	}
	if indexOf(specs, UnkToken) < 0 {
		specs = append(append([]string{}, specs...), UnkToken)
	}
	if cfg.MaxSize > 0 && cfg.MaxSize < len(specs) {
		return nil, errors.Errorf("datasets: vocabulary MaxSize %d is smaller than its %d special tokens", cfg.MaxSize, len(specs))
	}
	t := &table{ids: map[string]int{}, lower: cfg.Lower}
	for _, s := range specs {
		if s == "" {
			return nil, errors.New("datasets: special token must not be empty")
		}
		if _, dup := t.ids[s]; dup {
			return nil, errors.Errorf("datasets: special token %q listed twice", s)
		}
		t.ids[s] = len(t.tokens)
		t.set(s, len(t.tokens))
		t.tokens = append(t.tokens, s)
	}
	t.unk = t.ids[UnkToken]
	minCount := max(cfg.MinCount, 1)
	words := make([]string, 0, len(counts))
	for w, n := range counts {
		if n >= minCount {
			if _, special := t.ids[w]; !special {
				words = append(words, w)
			}
		}
	}
	sort.Slice(words, func(i, j int) bool {
		if counts[words[i]] != counts[words[j]] {
			return counts[words[i]] > counts[words[j]]
		}
		return words[i] < words[j]
	})
	if cfg.MaxSize > 0 && len(t.tokens)+len(words) > cfg.MaxSize {
		words = words[:cfg.MaxSize-len(t.tokens)]
	}
	for _, w := range words {
		t.ids[w] = len(t.tokens)
		t.tokens = append(t.tokens, w)
	}
	return t, nil
}

func (t *table) VocabSize() int { return len(t.tokens) }

// Token returns the token with the given id.
func (t *table) Token(id int) (string, bool) {
	if id < 0 || id >= len(t.tokens) {
		return "", false
	}
	return t.tokens[id], true
}

// ID returns the id of an ordinary token (the unknown id if absent).
func (t *table) id(tok string) int {
	if id, ok := t.ids[tok]; ok && !t.IsSpecial(id) {
		return id
	}
	return t.unk
}

func (t *table) decodeTokens(ids []int) ([]string, error) {
	out := make([]string, len(ids))
	for i, id := range ids {
		if id < 0 || id >= len(t.tokens) {
			return nil, errors.Errorf("datasets: decode: id %d at position %d is outside the vocabulary of %d", id, i, len(t.tokens))
		}
		out[i] = t.tokens[id]
	}
	return out, nil
}

// CharTokenizer maps each Unicode character to an id. Characters not seen
// when the vocabulary was built map to UnkToken.
type CharTokenizer struct{ *table }

// NewCharTokenizer builds a character vocabulary from texts.
func NewCharTokenizer(texts []string, cfg VocabConfig) (*CharTokenizer, error) {
	counts := map[string]int{}
	for _, s := range texts {
		if cfg.Lower {
			s = strings.ToLower(s)
		}
		for _, r := range s {
			counts[string(r)]++
		}
	}
	t, err := buildTable(counts, cfg)
	if err != nil {
		return nil, err
	}
	return &CharTokenizer{t}, nil
}

// Encode returns one id per character.
func (t *CharTokenizer) Encode(text string) []int {
	if t.lower {
		text = strings.ToLower(text)
	}
	out := make([]int, 0, len(text))
	for _, r := range text {
		out = append(out, t.id(string(r)))
	}
	return out
}

// Decode concatenates the characters of ids.
func (t *CharTokenizer) Decode(ids []int) (string, error) {
	toks, err := t.decodeTokens(ids)
	if err != nil {
		return "", err
	}
	return strings.Join(toks, ""), nil
}

// AddSpecial appends special tokens. A single character cannot be special,
// since text could contain it.
func (t *CharTokenizer) AddSpecial(tokens ...string) ([]SpecialToken, error) {
	return t.addSpecials(tokens, t.lookup, func(s string) bool { return len([]rune(s)) == 1 }, t.appendTok)
}

func (t *table) lookup(s string) (int, bool) { id, ok := t.ids[s]; return id, ok }

func (t *table) appendTok(s string) int {
	t.ids[s] = len(t.tokens)
	t.tokens = append(t.tokens, s)
	return len(t.tokens) - 1
}

// WordTokenizer splits text into words (runs of letters, digits and marks)
// and single punctuation characters, dropping whitespace, and maps each to
// an id; words outside the vocabulary map to UnkToken.
type WordTokenizer struct{ *table }

// SplitWords splits text as WordTokenizer does.
func SplitWords(text string) []string {
	var out []string
	start := -1
	for i, r := range text {
		word := unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)
		if word {
			if start < 0 {
				start = i
			}
			continue
		}
		if start >= 0 {
			out = append(out, text[start:i])
			start = -1
		}
		if !unicode.IsSpace(r) {
			out = append(out, string(r))
		}
	}
	if start >= 0 {
		out = append(out, text[start:])
	}
	return out
}

// NewWordTokenizer builds a word vocabulary from texts, keeping the most
// frequent words (see VocabConfig).
func NewWordTokenizer(texts []string, cfg VocabConfig) (*WordTokenizer, error) {
	counts := map[string]int{}
	for _, s := range texts {
		if cfg.Lower {
			s = strings.ToLower(s)
		}
		for _, w := range SplitWords(s) {
			counts[w]++
		}
	}
	t, err := buildTable(counts, cfg)
	if err != nil {
		return nil, err
	}
	return &WordTokenizer{t}, nil
}

// Encode returns one id per word or punctuation character.
func (t *WordTokenizer) Encode(text string) []int {
	if t.lower {
		text = strings.ToLower(text)
	}
	words := SplitWords(text)
	out := make([]int, len(words))
	for i, w := range words {
		out[i] = t.id(w)
	}
	return out
}

// Decode joins the tokens of ids with single spaces: whitespace is not part
// of the vocabulary, so the original spacing cannot be restored.
func (t *WordTokenizer) Decode(ids []int) (string, error) {
	toks, err := t.decodeTokens(ids)
	if err != nil {
		return "", err
	}
	return strings.Join(toks, " "), nil
}

// AddSpecial appends special tokens. A token that SplitWords would return
// whole (a word or one punctuation character) cannot be special.
func (t *WordTokenizer) AddSpecial(tokens ...string) ([]SpecialToken, error) {
	return t.addSpecials(tokens, t.lookup, func(s string) bool {
		w := SplitWords(s)
		return len(w) == 1 && w[0] == s
	}, t.appendTok)
}
