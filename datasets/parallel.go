package datasets

import (
	"io"
	"regexp"
	"strings"
)

// Pair is a source sentence and its translation (or paraphrase).
type Pair struct {
	Source, Target string
}

// Swap returns pairs with source and target exchanged, for translating in
// the other direction.
func Swap(pairs []Pair) []Pair {
	out := make([]Pair, len(pairs))
	for i, p := range pairs {
		out[i] = Pair{Source: p.Target, Target: p.Source}
	}
	return out
}

// ReadParallelTSV reads lines of "source<TAB>target". name is used in errors.
func ReadParallelTSV(r io.Reader, name string) ([]Pair, error) {
	lr := newLineReader(r, name)
	var out []Pair
	for {
		line, ok, err := lr.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			return out, nil
		}
		cols, err := lr.columns(line, 2, "source, target")
		if err != nil {
			return nil, err
		}
		if err := lr.nonEmpty(cols[0], "source"); err != nil {
			return nil, err
		}
		if err := lr.nonEmpty(cols[1], "target"); err != nil {
			return nil, err
		}
		out = append(out, Pair{cols[0], cols[1]})
	}
}

// LoadParallelTSV reads a TSV file of "source<TAB>target" lines.
func LoadParallelTSV(path string) ([]Pair, error) {
	f, err := openFile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadParallelTSV(f, path)
}

// ReadAligned reads two line-aligned texts: line i of src translates line i
// of tgt. Both must have the same number of lines and no empty line.
func ReadAligned(src io.Reader, srcName string, tgt io.Reader, tgtName string) ([]Pair, error) {
	ls, lt := newLineReader(src, srcName), newLineReader(tgt, tgtName)
	var out []Pair
	for {
		s, okS, err := ls.next()
		if err != nil {
			return nil, err
		}
		t, okT, err := lt.next()
		if err != nil {
			return nil, err
		}
		switch {
		case !okS && !okT:
			return out, nil
		case !okS:
			return nil, parseErr(srcName, 0, "has %d lines but %s has more; expected line-aligned files", ls.line, tgtName)
		case !okT:
			return nil, parseErr(tgtName, 0, "has %d lines but %s has more; expected line-aligned files", lt.line, srcName)
		}
		if err := ls.nonEmpty(s, "sentence"); err != nil {
			return nil, err
		}
		if err := lt.nonEmpty(t, "sentence"); err != nil {
			return nil, err
		}
		out = append(out, Pair{s, t})
	}
}

// LoadAligned reads two line-aligned files.
func LoadAligned(srcPath, tgtPath string) ([]Pair, error) {
	fs, err := openFile(srcPath)
	if err != nil {
		return nil, err
	}
	defer fs.Close()
	ft, err := openFile(tgtPath)
	if err != nil {
		return nil, err
	}
	defer ft.Close()
	return ReadAligned(fs, srcPath, ft, tgtPath)
}

var (
	dingTags   = regexp.MustCompile(`\{[^{}]*\}|\[[^\[\]]*\]`)
	dingSpaces = regexp.MustCompile(`\s+`)
)

// DingPath is where Debian's trans-de-en package installs Ding's
// German–English dictionary (GPL-2+, so it is not embedded: install the
// package and pass this path to LoadDing).
const DingPath = "/usr/share/trans/de-en"

// ReadDing reads Ding's dictionary format and returns its example sentences
// as German (Source) → English (Target) pairs. A line is
//
//	de part | de part … :: en part | en part …
//
// where the "|"-separated parts align one to one across "::". A part is an
// example sentence when, after removing "{…}" grammar and "[…]" usage tags
// and keeping the first of ";"-separated alternatives, both sides end in
// ".", "?" or "!" and have at least two words. Lines starting with "#" are
// comments. A line without exactly one "::", or whose sides have different
// numbers of parts, is an error naming the line.
func ReadDing(r io.Reader, name string) ([]Pair, error) {
	lr := newLineReader(r, name)
	var out []Pair
	for {
		line, ok, err := lr.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			return out, nil
		}
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sides := strings.Split(line, " :: ")
		if len(sides) != 2 {
			return nil, parseErr(name, lr.line, "expected \"german :: english\" with one \" :: \", found %d", len(sides)-1)
		}
		de, en := strings.Split(sides[0], " | "), strings.Split(sides[1], " | ")
		if len(de) != len(en) {
			return nil, parseErr(name, lr.line, "expected the same number of \" | \" parts on both sides, got %d German and %d English", len(de), len(en))
		}
		for i := range de {
			d, e := dingClean(de[i]), dingClean(en[i])
			if dingSentence(d) && dingSentence(e) {
				out = append(out, Pair{Source: d, Target: e})
			}
		}
	}
}

func dingClean(s string) string {
	s = dingTags.ReplaceAllString(s, "")
	if i := strings.Index(s, ";"); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(dingSpaces.ReplaceAllString(s, " "))
}

func dingSentence(s string) bool {
	if len(strings.Fields(s)) < 2 {
		return false
	}
	switch s[len(s)-1] {
	case '.', '?', '!':
		return true
	}
	return false
}

// LoadDing reads Ding's dictionary file (see ReadDing), for example DingPath.
func LoadDing(path string) ([]Pair, error) {
	f, err := openFile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadDing(f, path)
}
