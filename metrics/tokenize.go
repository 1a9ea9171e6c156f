package metrics

import (
	"strings"
	"unicode"

	"github.com/pkg/errors"
)

// The tokenizers BLEU applies before counting n-grams, each a rewrite of
// sacreBLEU's tokenizer of the same name (sacrebleu/tokenizers/) that gives
// the same string for every input (testdata/sacrebleu.json holds sacreBLEU's
// output on real and adversarial lines). A tokenizer returns the line with
// single spaces between tokens; BLEU then splits it on whitespace.

// Tokenizers lists the tokenizer names that BLEUConfig.Tokenize and
// Tokenize accept, in sacreBLEU's order. sacreBLEU's ja-mecab and ko-mecab
// (MeCab with its dictionaries) and spm, flores101, flores200 and spBLEU-1K
// (SentencePiece models downloaded at run time) are not supported.
func Tokenizers() []string { return []string{"none", "zh", "13a", "intl", "char"} }

// unsupportedTokenizers are sacreBLEU's tokenizers that this package lacks.
var unsupportedTokenizers = []string{"ja-mecab", "ko-mecab", "spm", "flores101", "flores200", "spBLEU-1K"}

// Tokenize applies the named tokenizer (one of Tokenizers) to a line.
func Tokenize(name, line string) (string, error) {
	tok, err := tokenizerFor(name)
	if err != nil {
		return "", err
	}
	return tok(line), nil
}

// tokenizerFor returns the tokenizer called name.
func tokenizerFor(name string) (func(string) string, error) {
	switch name {
	case "none":
		return func(s string) string { return s }, nil
	case "zh":
		return tokenizeZh, nil
	case "13a":
		return tokenize13a, nil
	case "intl":
		return tokenizeIntl, nil
	case "char":
		return tokenizeChar, nil
	}
	for _, u := range unsupportedTokenizers {
		if name == u {
			return nil, errors.Errorf("tokenizer %q is not supported (it needs MeCab or SentencePiece models); supported: %s",
				name, strings.Join(Tokenizers(), ", "))
		}
	}
	return nil, errors.Errorf("unknown tokenizer %q; supported: %s (sacreBLEU's %s are not supported)",
		name, strings.Join(Tokenizers(), ", "), strings.Join(unsupportedTokenizers, ", "))
}

// tokenize13a is mteval-v13a.pl's tokenization, which WMT uses and
// sacreBLEU's default: drop "<skipped>", join hyphenated line breaks,
// unescape four HTML entities, then the common punctuation rules of
// tokenizeRegexp on the line padded with a space each side.
func tokenize13a(line string) string {
	line = strings.ReplaceAll(line, "<skipped>", "")
	line = strings.ReplaceAll(line, "-\n", "")
	line = strings.ReplaceAll(line, "\n", " ")
	if strings.Contains(line, "&") {
		// In this order: "&amp;lt;" becomes "<", as in sacreBLEU.
		line = strings.ReplaceAll(line, "&quot;", `"`)
		line = strings.ReplaceAll(line, "&amp;", "&")
		line = strings.ReplaceAll(line, "&lt;", "<")
		line = strings.ReplaceAll(line, "&gt;", ">")
	}
	return tokenizeRegexp(" " + line + " ")
}

// in13aClass is the character class [\{-\~\[-\` -\&\(-\+\:-\@\/] of
// sacreBLEU's first 13a rule: ASCII punctuation and symbols other than
// ' , - . and the space itself.
func in13aClass(r rune) bool {
	return (r >= '{' && r <= '~') || (r >= '[' && r <= '`') || (r >= ' ' && r <= '&') ||
		(r >= '(' && r <= '+') || (r >= ':' && r <= '@') || r == '/'
}

func isDigit(r rune) bool    { return r >= '0' && r <= '9' }
func isDotComma(r rune) bool { return r == '.' || r == ',' }

// tokenizeRegexp is sacreBLEU's TokenizerRegexp, the rules 13a and zh
// share. Each rule is a Python re.sub of a two-character pattern, applied
// to the whole line before the next rule starts:
//
//	([\{-\~\[-\` -\&\(-\+\:-\@\/])  →  " \1 "    split off ASCII punctuation
//	([^0-9])([\.,])                 →  "\1 \2 "  period and comma unless after a digit
//	([\.,])([^0-9])                 →  " \1 \2"  period and comma unless before a digit
//	([0-9])(-)                      →  "\1 \2 "  a dash after a digit
//
// then whitespace runs become single spaces.
func tokenizeRegexp(line string) string {
	rs := make([]rune, 0, len(line)+16)
	for _, r := range line {
		if in13aClass(r) {
			rs = append(rs, ' ', r, ' ')
		} else {
			rs = append(rs, r)
		}
	}
	notDigit := func(r rune) bool { return !isDigit(r) }
	rs = subPairs(rs, notDigit, isDotComma, func(out []rune, a, b rune) []rune { return append(out, a, ' ', b, ' ') })
	rs = subPairs(rs, isDotComma, notDigit, func(out []rune, a, b rune) []rune { return append(out, ' ', a, ' ', b) })
	rs = subPairs(rs, isDigit, func(r rune) bool { return r == '-' }, func(out []rune, a, b rune) []rune { return append(out, a, ' ', b, ' ') })
	return joinFields(string(rs))
}

// subPairs is re.sub for a pattern of two one-character groups, (A)(B):
// scanning left to right, each non-overlapping pair a∈A, b∈B is replaced
// by repl(a, b); the scan resumes after the pair, as Python's does.
func subPairs(rs []rune, first, second func(rune) bool, repl func(out []rune, a, b rune) []rune) []rune {
	out := make([]rune, 0, len(rs)+len(rs)/4)
	for i := 0; i < len(rs); {
		if i+1 < len(rs) && first(rs[i]) && second(rs[i+1]) {
			out = repl(out, rs[i], rs[i+1])
			i += 2
			continue
		}
		out = append(out, rs[i])
		i++
	}
	return out
}

// tokenizeIntl is sacreBLEU's intl tokenizer (mteval-v14.pl's
// international tokenization): Unicode punctuation is split off unless it
// sits between digits, and every Unicode symbol is split off:
//
//	(\P{N})(\p{P})  →  "\1 \2 "
//	(\p{P})(\P{N})  →  " \1 \2"
//	(\p{S})         →  " \1 "
//
// As in mteval-v14.pl (and sacreBLEU), the line is not padded, so a number
// followed by a period at the end of the line keeps its period.
func tokenizeIntl(line string) string {
	rs := []rune(line)
	notNumber := func(r rune) bool { return !unicode.IsNumber(r) }
	rs = subPairs(rs, notNumber, unicode.IsPunct, func(out []rune, a, b rune) []rune { return append(out, a, ' ', b, ' ') })
	rs = subPairs(rs, unicode.IsPunct, notNumber, func(out []rune, a, b rune) []rune { return append(out, ' ', a, ' ', b) })
	out := make([]rune, 0, len(rs)+8)
	for _, r := range rs {
		if unicode.IsSymbol(r) {
			out = append(out, ' ', r, ' ')
		} else {
			out = append(out, r)
		}
	}
	return joinFields(string(out))
}

// tokenizeChar puts a space between every two code points (sacreBLEU's
// char tokenizer, for languages written without spaces).
func tokenizeChar(line string) string {
	var b strings.Builder
	b.Grow(2 * len(line))
	first := true
	for _, r := range line {
		if !first {
			b.WriteByte(' ')
		}
		first = false
		b.WriteRune(r)
	}
	return b.String()
}

// zhRanges are the code point ranges sacreBLEU's zh tokenizer splits off
// one by one. sacreBLEU writes two of its ranges as '\u20000'–'\u2a6d6' and
// '\u2f800'–'\u2fa1d', which Python reads as two-character strings
// ('\u2000' + '0', ...); compared with one character they select
// U+2001–U+2A6D and U+2F81–U+2FA1 — general punctuation, symbols, arrows
// and more, not CJK Extension B. These are the ranges sacreBLEU actually
// uses, so they are the ones here.
var zhRanges = [][2]rune{
	{0x3400, 0x4db5}, {0x4e00, 0x9fa5}, {0x9fa6, 0x9fbb}, {0xf900, 0xfa2d}, {0xfa30, 0xfa6a},
	{0xfa70, 0xfad9}, {0x2001, 0x2a6d}, {0x2f81, 0x2fa1}, {0xff00, 0xffef}, {0x2e80, 0x2eff},
	{0x3000, 0x303f}, {0x31c0, 0x31ef}, {0x2f00, 0x2fdf}, {0x2ff0, 0x2fff}, {0x3100, 0x312f},
	{0x31a0, 0x31bf}, {0xfe10, 0xfe1f}, {0xfe30, 0xfe4f}, {0x2600, 0x26ff}, {0x2700, 0x27bf},
	{0x3200, 0x32ff}, {0x3300, 0x33ff},
}

func isZhChar(r rune) bool {
	for _, rg := range zhRanges {
		if r >= rg[0] && r <= rg[1] {
			return true
		}
	}
	return false
}

// tokenizeZh is sacreBLEU's zh tokenizer: strip the line, put spaces round
// each character in zhRanges, then the rules of tokenizeRegexp (without
// 13a's entity handling and padding).
func tokenizeZh(line string) string {
	line = strip(line)
	var b strings.Builder
	b.Grow(len(line) + 16)
	for _, r := range line {
		if isZhChar(r) {
			b.WriteByte(' ')
			b.WriteRune(r)
			b.WriteByte(' ')
		} else {
			b.WriteRune(r)
		}
	}
	return tokenizeRegexp(b.String())
}
