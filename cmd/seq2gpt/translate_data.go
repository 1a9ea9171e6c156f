package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/pkg/errors"

	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/internal/atomicfile"
)

// dataFlags say where a translate command's sentence pairs come from.
type dataFlags struct {
	train, valid, test string
	srcLang, tgtLang   string
	emptyLines         string
}

// embeddedCorpus is the default data: the LibreOffice help's en–de pairs.
const embeddedCorpus = "libreoffice-en-de"

// split is the sentence pairs of one split and where they came from.
type split struct {
	name    string // "libreoffice-en-de/train (embedded)", "data/train.en + data/train.de", "data/train.tsv"
	pairs   []datasets.Pair
	skipped int // pairs with an empty side, skipped
}

// emptyPolicy reads --empty-lines.
func (d *dataFlags) emptyPolicy() (datasets.EmptyLines, error) {
	switch d.emptyLines {
	case "skip":
		return datasets.EmptySkip, nil
	case "error":
		return datasets.EmptyError, nil
	}
	return 0, errors.Errorf("--empty-lines %q: want skip or error", d.emptyLines)
}

// checkLangs checks that --src-lang and --tgt-lang come together.
func (d *dataFlags) checkLangs() error {
	if (d.srcLang == "") != (d.tgtLang == "") {
		return errors.Errorf("--src-lang %q and --tgt-lang %q: give both (two line-aligned files PATH.SRC and PATH.TGT) or neither (PATH is a TSV file)", d.srcLang, d.tgtLang)
	}
	if d.srcLang != "" && d.srcLang == d.tgtLang {
		return errors.Errorf("--src-lang and --tgt-lang are both %q", d.srcLang)
	}
	return nil
}

// read loads the split given by flag (its value path): path is a TSV file
// of source<TAB>target lines or, with --src-lang/--tgt-lang, the prefix of
// two line-aligned files path.SRC and path.TGT (fairseq's layout). With no
// path it is the embedded corpus's split (which the embedded corpus has
// only in the en → de direction).
func (d *dataFlags) read(flag, path, embedded string) (split, error) {
	if err := d.checkLangs(); err != nil {
		return split{}, err
	}
	empty, err := d.emptyPolicy()
	if err != nil {
		return split{}, err
	}
	if path == "" {
		if d.srcLang != "" && (d.srcLang != "en" || d.tgtLang != "de") {
			return split{}, errors.Errorf("--src-lang %s --tgt-lang %s: the embedded corpus is en → de; give --%s for other languages", d.srcLang, d.tgtLang, flag)
		}
		pairs, err := datasets.LibreOfficeEnDe(embedded)
		return split{name: embeddedCorpus + "/" + embedded + " (embedded)", pairs: pairs}, err
	}
	if d.srcLang != "" {
		src, tgt := path+"."+d.srcLang, path+"."+d.tgtLang
		pairs, rep, err := datasets.LoadAlignedWith(src, tgt, empty)
		if err != nil {
			return split{}, errors.Wrapf(err, "--%s", flag)
		}
		return split{name: src + " + " + tgt, pairs: pairs, skipped: rep.SkippedEmpty}, nil
	}
	pairs, rep, err := datasets.LoadParallelTSVWith(path, empty)
	if err != nil {
		if os.IsNotExist(errors.Cause(err)) {
			return split{}, errors.Errorf("--%s %s: no such file (a TSV file of source<TAB>target lines; for two line-aligned files PATH.SRC and PATH.TGT give --src-lang and --tgt-lang)", flag, path)
		}
		return split{}, errors.Wrapf(err, "--%s", flag)
	}
	return split{name: path, pairs: pairs, skipped: rep.SkippedEmpty}, nil
}

// trainValid reads the training and validation splits. Without --valid,
// a given --train file keeps every 20th pair for validation.
func (d *dataFlags) trainValid() (tr, va split, err error) {
	if tr, err = d.read("train", d.train, "train"); err != nil {
		return tr, va, err
	}
	switch {
	case d.valid != "":
		va, err = d.read("valid", d.valid, "valid")
	case d.train == "":
		va, err = d.read("valid", "", "valid")
	default:
		if len(tr.pairs) < 20 {
			return tr, va, errors.Errorf("--train %s has %d pairs: too few to hold out every 20th for validation; give --valid", d.train, len(tr.pairs))
		}
		var keep []datasets.Pair
		va.name = d.train + " (every 20th pair, held out)"
		for i, p := range tr.pairs {
			if i%20 == 19 {
				va.pairs = append(va.pairs, p)
			} else {
				keep = append(keep, p)
			}
		}
		tr.pairs = keep
		tr.name += " (without every 20th pair)"
	}
	return tr, va, err
}

// report prints what a split holds and what was skipped.
func (s split) report(w io.Writer, what string) {
	fmt.Fprintf(w, "%s: %s, %d pairs", what, s.name, len(s.pairs))
	if s.skipped > 0 {
		fmt.Fprintf(w, " (%d with an empty side skipped)", s.skipped)
	}
	fmt.Fprintln(w)
}

// mtTokenizers are a translation model's tokenizers: one joint BPE for
// both sides, or one per side.
type mtTokenizers struct {
	src, tgt *datasets.BPE
}

// The special tokens every translation tokenizer has.
var mtSpecials = []string{datasets.PadToken, datasets.BOSToken, datasets.EOSToken}

func (t mtTokenizers) joint() bool { return t.src == t.tgt }

// vocabs are the model's vocabulary sizes and special ids.
func (t mtTokenizers) vocabs() vocabs {
	id := func(tok *datasets.BPE, s string) int { v, _ := tok.SpecialID(s); return v }
	return vocabs{Src: t.src.VocabSize(), Tgt: t.tgt.VocabSize(),
		Pad: id(t.tgt, datasets.PadToken), BOS: id(t.tgt, datasets.BOSToken), EOS: id(t.tgt, datasets.EOSToken),
		SrcEOS: id(t.src, datasets.EOSToken), Joint: t.joint()}
}

// trainTokenizers learns a byte-level BPE of merges merges on the training
// pairs: one on both sides (joint) or one per side.
func trainTokenizers(pairs []datasets.Pair, merges int, joint bool) (mtTokenizers, error) {
	cfg := datasets.BPEConfig{Merges: merges, Specials: mtSpecials}
	side := func(get func(datasets.Pair) string) []string {
		out := make([]string, len(pairs))
		for i, p := range pairs {
			out[i] = get(p)
		}
		return out
	}
	srcText, tgtText := side(func(p datasets.Pair) string { return p.Source }), side(func(p datasets.Pair) string { return p.Target })
	if joint {
		tok, err := datasets.TrainBPE(append(srcText, tgtText...), cfg)
		return mtTokenizers{src: tok, tgt: tok}, err
	}
	src, err := datasets.TrainBPE(srcText, cfg)
	if err != nil {
		return mtTokenizers{}, err
	}
	tgt, err := datasets.TrainBPE(tgtText, cfg)
	return mtTokenizers{src: src, tgt: tgt}, err
}

// Tokenizer files: a joint tokenizer is vocab.json + merges.txt (as lm
// train writes them); per-side ones are src.vocab.json, src.merges.txt,
// tgt.vocab.json and tgt.merges.txt.
func tokenizerNames(prefix string) (vocab, merges string) {
	return prefix + tokenizerFiles[0][0], prefix + tokenizerFiles[0][1]
}

// tokenizerNamesAll are every tokenizer file a run directory may hold.
func tokenizerNamesAll() []string {
	var names []string
	for _, prefix := range []string{"", "src.", "tgt."} {
		v, m := tokenizerNames(prefix)
		names = append(names, v, m)
	}
	return names
}

// save writes the tokenizers into dir.
func (t mtTokenizers) save(dir string) error {
	write := func(tok *datasets.BPE, prefix string) error {
		var enc, mer bytes.Buffer
		if err := tok.SaveGPT2(&enc, &mer); err != nil {
			return errors.Wrap(err, "saving tokenizer")
		}
		v, m := tokenizerNames(prefix)
		if err := atomicfile.WriteFile(filepath.Join(dir, v), enc.Bytes()); err != nil {
			return err
		}
		return atomicfile.WriteFile(filepath.Join(dir, m), mer.Bytes())
	}
	if t.joint() {
		return write(t.src, "")
	}
	if err := write(t.src, "src."); err != nil {
		return err
	}
	return write(t.tgt, "tgt.")
}

// loadTokenizers reads the tokenizers of a model directory (or of a
// --tokenizer directory): joint, or per side.
func loadTokenizers(dir string) (mtTokenizers, error) {
	load := func(prefix string) (*datasets.BPE, bool, error) {
		v, m := tokenizerNames(prefix)
		if _, err := os.Stat(filepath.Join(dir, v)); err != nil {
			return nil, false, nil
		}
		tok, err := datasets.LoadGPT2Files(filepath.Join(dir, v), filepath.Join(dir, m))
		if err == nil {
			_, err = tok.AddSpecial(mtSpecials...)
		}
		return tok, true, errors.Wrapf(err, "tokenizer in %s", dir)
	}
	if tok, ok, err := load(""); ok || err != nil {
		return mtTokenizers{src: tok, tgt: tok}, err
	}
	src, okS, err := load("src.")
	if err != nil {
		return mtTokenizers{}, err
	}
	tgt, okT, err := load("tgt.")
	if err != nil {
		return mtTokenizers{}, err
	}
	if !okS || !okT {
		return mtTokenizers{}, errors.Errorf("%s has no tokenizer: want vocab.json + merges.txt (joint) or src.vocab.json, src.merges.txt, tgt.vocab.json, tgt.merges.txt", dir)
	}
	return mtTokenizers{src: src, tgt: tgt}, nil
}

// encoded are a split's pairs as token ids, without specials.
type encoded struct {
	src, tgt [][]int
	refs     []string // the targets as text (references for BLEU)
	sources  []string // the sources as text
}

// encode tokenizes pairs, dropping (or, for a test split, keeping) the
// pairs with a side longer than maxLen − 1 tokens (room for the end
// token); the report counts them.
func (t mtTokenizers) encode(pairs []datasets.Pair, maxLen int, drop bool) (encoded, datasets.FilterReport) {
	var e encoded
	var rep datasets.FilterReport
	for _, p := range pairs {
		s, g := t.src.Encode(p.Source), t.tgt.Encode(p.Target)
		if drop && maxLen > 0 && (len(s) >= maxLen || len(g) >= maxLen) {
			rep.DroppedLong++
			continue
		}
		if drop && (len(s) == 0 || len(g) == 0) {
			rep.DroppedShort++
			continue
		}
		rep.Kept++
		e.src, e.tgt = append(e.src, s), append(e.tgt, g)
		e.refs, e.sources = append(e.refs, p.Target), append(e.sources, p.Source)
	}
	return e, rep
}
