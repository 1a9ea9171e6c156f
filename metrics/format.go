package metrics

import (
	"math"
	"strconv"
	"strings"
)

// formatLine is sacreBLEU's Score.format: "NAME|SIGNATURE = SCORE VERBOSE",
// the score with width decimals; without a signature "NAME = SCORE
// VERBOSE".
func formatLine(name string, score float64, verbose string, width int, sig string) string {
	var b strings.Builder
	b.WriteString(name)
	if sig != "" {
		b.WriteString("|")
		b.WriteString(sig)
	}
	b.WriteString(" = ")
	b.WriteString(formatFixed(score, width))
	if verbose != "" {
		b.WriteString(" ")
		b.WriteString(verbose)
	}
	return b.String()
}

// formatJSON is sacreBLEU's Score.format(is_json=True): Python's
// json.dumps(d, indent=1, ensure_ascii=False) of name, score (rounded to
// width decimals), signature, verbose_score when there is one, and each
// signature field.
func formatJSON(name string, score float64, verbose string, width int, sig Signature) string {
	rounded, _ := strconv.ParseFloat(formatFixed(score, width), 64)
	type kv struct{ k, v string }
	items := []kv{
		{"name", pyJSONString(name)},
		{"score", pyFloatRepr(rounded)},
		{"signature", pyJSONString(sig.String())},
	}
	if verbose != "" {
		items = append(items, kv{"verbose_score", pyJSONString(verbose)})
	}
	for _, p := range sig.pairs {
		items = append(items, kv{p.key, pyJSONString(p.value)})
	}
	var b strings.Builder
	b.WriteString("{\n")
	for i, it := range items {
		b.WriteString(" ")
		b.WriteString(pyJSONString(it.k))
		b.WriteString(": ")
		b.WriteString(it.v)
		if i < len(items)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString("}")
	return b.String()
}

// formatFixed is Python's f"{x:.{width}f}": x correctly rounded to width
// decimals (strconv rounds the exact binary value to nearest, ties to
// even, as Python does).
func formatFixed(x float64, width int) string {
	return strconv.FormatFloat(x, 'f', max(width, 0), 64)
}

// pyFloatRepr is Python's repr of a float: the shortest string that reads
// back as x, with ".0" on whole numbers and exponent notation below 1e-4
// and from 1e16 on.
func pyFloatRepr(x float64) string {
	switch {
	case math.IsNaN(x):
		return "NaN"
	case math.IsInf(x, 1):
		return "Infinity"
	case math.IsInf(x, -1):
		return "-Infinity"
	}
	if a := math.Abs(x); a != 0 && (a < 1e-4 || a >= 1e16) {
		return strconv.FormatFloat(x, 'e', -1, 64)
	}
	s := strconv.FormatFloat(x, 'f', -1, 64)
	if !strings.ContainsAny(s, ".") {
		s += ".0"
	}
	return s
}

// pyJSONString is a JSON string as Python's json.dumps(ensure_ascii=False)
// writes it: only the quote, the backslash and control characters are
// escaped.
func pyJSONString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		default:
			if r < 0x20 {
				b.WriteString(`\u00`)
				b.WriteString(strconv.FormatInt(int64(r)>>4, 16))
				b.WriteString(strconv.FormatInt(int64(r)&15, 16))
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

func itoa(n int) string { return strconv.Itoa(n) }
