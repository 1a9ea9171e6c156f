package datasets

import (
	"unicode"
	"unicode/utf8"
)

// gpt2Split calls yield with each piece of text as GPT-2's pre-tokenizer
// splits it. GPT-2 uses the pattern
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// whose look-ahead Go's regexp cannot express, so it is implemented by hand:
// at each position the first alternative that matches wins, greedily, exactly
// as in the backtracking engine GPT-2 uses. Bytes that are not valid UTF-8 are
// treated as punctuation, so every byte string is split into pieces whose
// concatenation is the input.
func gpt2Split(text string, yield func(piece string)) {
	i := 0
	for i < len(text) {
		j := gpt2PieceEnd(text, i)
		yield(text[i:j])
		i = j
	}
}

type runeClass uint8

const (
	classOther runeClass = iota
	classSpace
	classLetter
	classNumber
)

func classify(r rune) runeClass {
	switch {
	case r < utf8.RuneSelf:
		c := byte(r)
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
			return classLetter
		case c >= '0' && c <= '9':
			return classNumber
		case c == ' ', c >= '\t' && c <= '\r':
			return classSpace
		}
		return classOther
	case unicode.IsSpace(r):
		return classSpace
	case unicode.IsLetter(r):
		return classLetter
	case unicode.IsNumber(r):
		return classNumber
	}
	return classOther
}

// at returns the class and width of the rune at text[i]; invalid bytes are
// one-byte "other" runes.
func at(text string, i int) (runeClass, int) {
	c := text[i]
	if c < utf8.RuneSelf {
		return classify(rune(c)), 1
	}
	r, n := utf8.DecodeRuneInString(text[i:])
	if r == utf8.RuneError && n <= 1 {
		return classOther, 1
	}
	return classify(r), n
}

// run returns the end of the run of runes of class c starting at i.
func run(text string, i int, c runeClass) int {
	for i < len(text) {
		k, n := at(text, i)
		if k != c {
			break
		}
		i += n
	}
	return i
}

func gpt2PieceEnd(text string, i int) int {
	if text[i] == '\'' {
		rest := text[i+1:]
		switch {
		case len(rest) >= 2 && (rest[:2] == "re" || rest[:2] == "ve" || rest[:2] == "ll"):
			return i + 3
		case len(rest) >= 1 && (rest[0] == 's' || rest[0] == 't' || rest[0] == 'm' || rest[0] == 'd'):
			return i + 2
		}
	}
	start := i
	if text[i] == ' ' && i+1 < len(text) {
		// " ?X+" for letters, numbers and other: the optional space joins the
		// run that follows it, unless that run is whitespace.
		if k, _ := at(text, i+1); k != classSpace {
			return run(text, i+1, k)
		}
	}
	k, _ := at(text, start)
	if k != classSpace {
		return run(text, start, k)
	}
	// \s+(?!\S) then \s+: a whitespace run gives its last rune to the word
	// that follows it, unless the run is a single rune.
	end := run(text, start, classSpace)
	if end == len(text) {
		return end
	}
	last := end - 1
	for last > start && !utf8.RuneStart(text[last]) {
		last--
	}
	if last > start {
		return last
	}
	return end
}
