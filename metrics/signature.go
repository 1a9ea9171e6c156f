package metrics

import "strings"

// SacreBLEUVersion is the sacreBLEU release whose behaviour this package
// reproduces and whose version number its signatures carry
// ("version:2.6.0"). The field names sacreBLEU's behaviour that a score
// matches, not this package's version: a BLEU score printed with this
// signature is the score sacreBLEU 2.6.0 prints for the same files and
// options. The fixtures in testdata were made with that release.
const SacreBLEUVersion = "2.6.0"

// Signature is sacreBLEU's reproducibility signature: the settings that
// determine a score, as key:value pairs in sacreBLEU's order.
type Signature struct {
	pairs []sigPair
}

type sigPair struct{ key, short, value string }

// String is the signature as sacreBLEU prints it, for example
// "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0".
func (s Signature) String() string { return s.Format(false) }

// Short is sacreBLEU's --short signature, for example
// "#:1|c:mixed|e:no|tok:13a|s:exp|v:2.6.0".
func (s Signature) Short() string { return s.Format(true) }

// Format is the long signature, or the short one when short is true.
func (s Signature) Format(short bool) string {
	parts := make([]string, len(s.pairs))
	for i, p := range s.pairs {
		k := p.key
		if short {
			k = p.short
		}
		parts[i] = k + ":" + p.value
	}
	return strings.Join(parts, "|")
}

// Get returns the value of one key of the long form ("nrefs", "tok", ...)
// and whether the signature has it.
func (s Signature) Get(key string) (string, bool) {
	for _, p := range s.pairs {
		if p.key == key {
			return p.value, true
		}
	}
	return "", false
}

// newSignature builds a signature from the metric's own pairs: sacreBLEU
// puts nrefs first and version last.
func newSignature(nrefs int, pairs ...sigPair) Signature {
	all := make([]sigPair, 0, len(pairs)+2)
	all = append(all, sigPair{"nrefs", "#", itoa(nrefs)})
	all = append(all, pairs...)
	all = append(all, sigPair{"version", "v", SacreBLEUVersion})
	return Signature{pairs: all}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func caseName(lowercase bool) string {
	if lowercase {
		return "lc"
	}
	return "mixed"
}
