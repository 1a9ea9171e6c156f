package datasets

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSplitWords(t *testing.T) {
	assert.Equal(t, []string{"Hello", ",", "world", "!", "It", "'", "s", "3", ".", "5", "°", "C", "naïve", "café"},
		SplitWords("Hello, world! It's 3.5°C\tnaïve  café"))
	assert.Empty(t, SplitWords(" \n\t"))
}

func TestWordTokenizer(t *testing.T) {
	texts := []string{"the cat sat on the mat.", "The dog sat.", "the end"}
	tok, err := NewWordTokenizer(texts, VocabConfig{Lower: true, MaxSize: 6})
	require.NoError(t, err)
	// pad, unk, then by frequency: the(4) sat(2) .(2); ties alphabetical.
	assert.Equal(t, 6, tok.VocabSize())
	for id, want := range []string{PadToken, UnkToken, "the", ".", "sat", "cat"} {
		got, ok := tok.Token(id)
		require.True(t, ok)
		assert.Equal(t, want, got, "id %d", id)
	}
	unk, _ := tok.SpecialID(UnkToken)
	assert.Equal(t, []int{2, 5, 4, unk, 2, unk, 3}, tok.Encode("The cat sat on the mat."))
	s, err := tok.Decode([]int{2, 5, 4, 3})
	require.NoError(t, err)
	assert.Equal(t, "the cat sat .", s)
	_, err = tok.Decode([]int{99})
	assert.Error(t, err)

	added, err := tok.AddSpecial(BOSToken, EOSToken, UnkToken)
	require.NoError(t, err)
	assert.Equal(t, []SpecialToken{{BOSToken, 6, true}, {EOSToken, 7, true}, {UnkToken, 1, false}}, added)
	assert.NotContains(t, tok.Encode("<|bos|> <|endoftext|>"), 6) // text cannot forge it
	assert.NotContains(t, tok.Encode("<|bos|> <|endoftext|>"), 7)
	_, err = tok.AddSpecial("cat")
	assert.ErrorContains(t, err, "text can produce")
	_, err = tok.AddSpecial("?")
	assert.ErrorContains(t, err, "text can produce")
}

func TestWordTokenizerMinCountAndConfig(t *testing.T) {
	tok, err := NewWordTokenizer([]string{"a a b"}, VocabConfig{MinCount: 2, Specials: []string{EOSToken}})
	require.NoError(t, err)
	assert.Equal(t, 3, tok.VocabSize()) // eos, unk (always added), a
	id, ok := tok.SpecialID(UnkToken)
	require.True(t, ok)
	assert.Equal(t, []int{2, id}, tok.Encode("a b"))

	_, err = NewWordTokenizer(nil, VocabConfig{MaxSize: 1})
	assert.Error(t, err)
	_, err = NewWordTokenizer(nil, VocabConfig{MinCount: -1})
	assert.Error(t, err)
	_, err = NewWordTokenizer(nil, VocabConfig{Specials: []string{"x", "x"}})
	assert.Error(t, err)
}

func TestCharTokenizer(t *testing.T) {
	tok, err := NewCharTokenizer([]string{"abba ünï"}, VocabConfig{})
	require.NoError(t, err)
	ids := tok.Encode("ab ü")
	s, err := tok.Decode(ids)
	require.NoError(t, err)
	assert.Equal(t, "ab ü", s)
	unk, _ := tok.SpecialID(UnkToken)
	assert.Equal(t, unk, tok.Encode("z")[0])
	added, err := tok.AddSpecial(StartToken)
	require.NoError(t, err)
	assert.True(t, added[0].Added)
	_, err = tok.AddSpecial("q")
	assert.Error(t, err, "a single character can come from text")
	var _ Tokenizer = tok
}

func FuzzWordTokenizer(f *testing.F) {
	f.Add("The cat sat.", "the dog")
	f.Add("\xff\xfe", "ß ẞ")
	f.Fuzz(func(t *testing.T, corpus, s string) {
		tok, err := NewWordTokenizer([]string{corpus}, VocabConfig{Lower: true})
		require.NoError(t, err)
		ids := tok.Encode(s)
		require.Len(t, ids, len(SplitWords(strings.ToLower(s))))
		_, err = tok.Decode(ids)
		require.NoError(t, err)
		for _, id := range tok.Encode(corpus) {
			require.False(t, tok.IsSpecial(id) && id != tok.unk)
		}
		ct, err := NewCharTokenizer([]string{corpus}, VocabConfig{})
		require.NoError(t, err)
		back, err := ct.Decode(ct.Encode(corpus))
		require.NoError(t, err)
		require.Equal(t, string([]rune(corpus)), back) // invalid bytes become U+FFFD
	})
}

// Every tokenizer satisfies Tokenizer.
var (
	_ Tokenizer = (*BPE)(nil)
	_ Tokenizer = (*WordTokenizer)(nil)
	_ Tokenizer = (*CharTokenizer)(nil)
)
