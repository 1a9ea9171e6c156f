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

// EmptyLines says what the parallel readers do with a pair whose source or
// target is empty (or only spaces).
type EmptyLines int

const (
	// EmptyError stops with a *ParseError naming the file and line.
	EmptyError EmptyLines = iota
	// EmptySkip leaves the pair out and counts it in
	// ParallelReport.SkippedEmpty.
	EmptySkip
)

// ParallelReport counts what a parallel reader did.
type ParallelReport struct {
	Pairs        int // pairs returned
	SkippedEmpty int // pairs left out for an empty side (EmptySkip)
}

// ReadParallelTSV reads lines of "source<TAB>target". name is used in errors.
// An empty side is an error.
func ReadParallelTSV(r io.Reader, name string) ([]Pair, error) {
	out, _, err := ReadParallelTSVWith(r, name, EmptyError)
	return out, err
}

// ReadParallelTSVWith is ReadParallelTSV with a choice of what an empty
// side does.
func ReadParallelTSVWith(r io.Reader, name string, empty EmptyLines) ([]Pair, ParallelReport, error) {
	lr := newLineReader(r, name)
	var out []Pair
	var rep ParallelReport
	for {
		line, ok, err := lr.next()
		if err != nil {
			return nil, rep, err
		}
		if !ok {
			rep.Pairs = len(out)
			return out, rep, nil
		}
		if empty == EmptySkip && strings.TrimSpace(line) == "" {
			rep.SkippedEmpty++
			continue
		}
		cols, err := lr.columns(line, 2, "source, target")
		if err != nil {
			return nil, rep, err
		}
		if skip, err := emptyPair(empty, &rep, lr, cols[0], "source", lr, cols[1], "target"); err != nil || skip {
			if err != nil {
				return nil, rep, err
			}
			continue
		}
		out = append(out, Pair{cols[0], cols[1]})
	}
}

// emptyPair applies the empty-lines policy to a pair: skip it (counted),
// or an error naming the empty side's file and line.
func emptyPair(empty EmptyLines, rep *ParallelReport, ls *lineReader, s, sWhat string, lt *lineReader, t, tWhat string) (bool, error) {
	if strings.TrimSpace(s) != "" && strings.TrimSpace(t) != "" {
		return false, nil
	}
	if empty == EmptySkip {
		rep.SkippedEmpty++
		return true, nil
	}
	if err := ls.nonEmpty(s, sWhat); err != nil {
		return false, err
	}
	return false, lt.nonEmpty(t, tWhat)
}

// LoadParallelTSV reads a TSV file of "source<TAB>target" lines.
func LoadParallelTSV(path string) ([]Pair, error) {
	out, _, err := LoadParallelTSVWith(path, EmptyError)
	return out, err
}

// LoadParallelTSVWith is LoadParallelTSV with a choice of what an empty
// side does.
func LoadParallelTSVWith(path string, empty EmptyLines) ([]Pair, ParallelReport, error) {
	f, err := openFile(path)
	if err != nil {
		return nil, ParallelReport{}, err
	}
	defer f.Close()
	return ReadParallelTSVWith(f, path, empty)
}

// ReadAligned reads two line-aligned texts: line i of src translates line i
// of tgt. Both must have the same number of lines and no empty line.
func ReadAligned(src io.Reader, srcName string, tgt io.Reader, tgtName string) ([]Pair, error) {
	out, _, err := ReadAlignedWith(src, srcName, tgt, tgtName, EmptyError)
	return out, err
}

// ReadAlignedWith is ReadAligned with a choice of what an empty line does.
// Files of different line counts are an error that names both counts.
func ReadAlignedWith(src io.Reader, srcName string, tgt io.Reader, tgtName string, empty EmptyLines) ([]Pair, ParallelReport, error) {
	ls, lt := newLineReader(src, srcName), newLineReader(tgt, tgtName)
	var out []Pair
	var rep ParallelReport
	for {
		s, okS, err := ls.next()
		if err != nil {
			return nil, rep, err
		}
		t, okT, err := lt.next()
		if err != nil {
			return nil, rep, err
		}
		switch {
		case !okS && !okT:
			rep.Pairs = len(out)
			return out, rep, nil
		case okS != okT:
			for _, lr := range []*lineReader{ls, lt} { // count the longer file to the end
				for {
					_, ok, err := lr.next()
					if err != nil {
						return nil, rep, err
					}
					if !ok {
						break
					}
				}
			}
			return nil, rep, parseErr(srcName, 0, "has %d lines but %s has %d; expected line-aligned files", ls.line, tgtName, lt.line)
		}
		if skip, err := emptyPair(empty, &rep, ls, s, "sentence", lt, t, "sentence"); err != nil || skip {
			if err != nil {
				return nil, rep, err
			}
			continue
		}
		out = append(out, Pair{s, t})
	}
}

// LoadAligned reads two line-aligned files.
func LoadAligned(srcPath, tgtPath string) ([]Pair, error) {
	out, _, err := LoadAlignedWith(srcPath, tgtPath, EmptyError)
	return out, err
}

// LoadAlignedWith is LoadAligned with a choice of what an empty line does.
func LoadAlignedWith(srcPath, tgtPath string, empty EmptyLines) ([]Pair, ParallelReport, error) {
	fs, err := openFile(srcPath)
	if err != nil {
		return nil, ParallelReport{}, err
	}
	defer fs.Close()
	ft, err := openFile(tgtPath)
	if err != nil {
		return nil, ParallelReport{}, err
	}
	defer ft.Close()
	return ReadAlignedWith(fs, srcPath, ft, tgtPath, empty)
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
