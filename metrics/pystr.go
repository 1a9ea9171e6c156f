package metrics

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// sacreBLEU is Python: it splits, strips and lowercases with Python's str
// methods, whose idea of whitespace and of lowercase differs from Go's in a
// few code points. The helpers here reproduce Python 3's behaviour so that a
// score never depends on which language computed it. TestPythonStringSemantics
// checks them code point by code point against tables Python wrote
// (testdata/pystr.json).

// isSpace is Python's str.isspace for one code point: Go's unicode.IsSpace
// plus the four ASCII information separators U+001C–U+001F, which Python
// counts as whitespace (bidirectional class B or S) and Go does not.
func isSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// fields is Python's str.split() with no argument: the runs of non-space
// text, with no empty strings.
func fields(s string) []string { return strings.FieldsFunc(s, isSpace) }

// rstrip is Python's str.rstrip() with no argument.
func rstrip(s string) string { return strings.TrimRightFunc(s, isSpace) }

// strip is Python's str.strip() with no argument.
func strip(s string) string { return strings.TrimFunc(s, isSpace) }

// joinFields is Python's ' '.join(s.split()): single spaces between words,
// none at the ends.
func joinFields(s string) string { return strings.Join(fields(s), " ") }

// lower is Python 3's str.lower(): the full Unicode lowercase mapping. It
// differs from strings.ToLower in two places: U+0130 (İ) lowercases to
// "i" + U+0307 (combining dot above), and capital sigma becomes final sigma ς
// when it ends a word (Unicode's Final_Sigma context), as Python implements
// it.
func lower(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToLower(s)
	}
	rs := []rune(s)
	var b strings.Builder
	b.Grow(len(s))
	for i, r := range rs {
		switch r {
		case 0x130:
			b.WriteString("i\u0307")
		case 0x3a3:
			if finalSigma(rs, i) {
				b.WriteRune(0x3c2)
			} else {
				b.WriteRune(0x3c3)
			}
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// finalSigma reports whether the capital sigma at rs[i] is in Unicode's
// Final_Sigma context, \p{cased}\p{case-ignorable}* Σ !(\p{case-ignorable}*
// \p{cased}), scanning as CPython's handle_capital_sigma does.
func finalSigma(rs []rune, i int) bool {
	j := i - 1
	for j >= 0 && caseIgnorable(rs[j]) {
		j--
	}
	if j < 0 || !cased(rs[j]) {
		return false
	}
	j = i + 1
	for j < len(rs) && caseIgnorable(rs[j]) {
		j++
	}
	return j == len(rs) || !cased(rs[j])
}

// cased is Unicode's Cased property: Lowercase, Uppercase or titlecase.
func cased(r rune) bool {
	return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r) ||
		unicode.In(r, unicode.Other_Lowercase, unicode.Other_Uppercase)
}

// wordBreakMid holds the code points whose Word_Break property is MidLetter,
// MidNumLet or Single_Quote; with the general categories below they make
// up Unicode's Case_Ignorable property (Go's unicode package has no
// Word_Break table).
var wordBreakMid = map[rune]bool{
	'\'': true, '.': true, ':': true, 0xb7: true, 0x387: true, 0x55f: true, 0x5f4: true,
	0x2018: true, 0x2019: true, 0x2024: true, 0x2027: true, 0xfe13: true, 0xfe52: true,
	0xfe55: true, 0xff07: true, 0xff0e: true, 0xff1a: true,
}

// caseIgnorable is Unicode's Case_Ignorable property.
func caseIgnorable(r rune) bool {
	return wordBreakMid[r] || unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk)
}

// RStrip is Python's str.rstrip() with no argument: it removes trailing
// whitespace as Python counts it (Go's unicode.IsSpace and U+001C–U+001F).
// The sacrebleu command strips each line it reads with it.
func RStrip(s string) string { return rstrip(s) }
