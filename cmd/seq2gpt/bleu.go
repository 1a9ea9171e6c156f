package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/pkg/errors"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/seq2gpt/seq2gpt/metrics"
)

type bleuFlags struct {
	input, tokenize, smooth, format string
	metricNames                     []string
	smoothValue                     float64
	lowercase, force, sentence      bool
	scoreOnly, short, quiet         bool
	width, numRefs                  int
	chrfChar, chrfWord, chrfBeta    int
	chrfWhitespace, chrfLowercase   bool
	chrfEps                         bool
}

func newBLEUCmd() *cobra.Command {
	f := &bleuFlags{}
	c := &cobra.Command{
		Use:   "bleu REF [REF...] < HYP",
		Short: "Score a hypothesis file with BLEU and chrF, as the sacrebleu command does",
		Long: `Score detokenized hypotheses (stdin, or --input FILE) against one or more
reference files, one sentence per line, as sacreBLEU ` + metrics.SacreBLEUVersion + `'s sacrebleu command
does: the same scores, signatures and output, byte for byte.

  BLEU  13a tokenization, 4-grams, brevity penalty, exponential smoothing by
        default; --tokenize, --lowercase, --smooth-method, --smooth-value.
  chrF  chrF2 (character 6-grams, beta 2, whitespace removed) by default;
        --chrf-word-order 2 is chrF++.

The output is sacrebleu's --format text (its own default is json; give
--format json for that). The signature's version field names the sacreBLEU
release whose behaviour the score matches. --lowercase applies to BLEU and
--chrf-lowercase to chrF, as in sacrebleu.

Tokenizers: ` + strings.Join(metrics.Tokenizers(), ", ") + ` (sacreBLEU's ja-mecab,
ko-mecab, spm, flores101, flores200 and spBLEU-1K are not supported). Not
supported either: TER, several systems at once, bootstrap confidence
intervals and paired significance tests.`,
		Example: `  seq2gpt bleu newstest.de < system.de
  seq2gpt bleu ref1.de ref2.de --input system.de --metrics bleu,chrf
  seq2gpt bleu ref.zh --tokenize zh --score-only < system.zh
  seq2gpt bleu ref.de --sentence-level --width 2 < system.de
  seq2gpt bleu refs.tsv --num-refs 2 --format json < system.de`,
		RunE: func(cmd *cobra.Command, refs []string) error {
			if cmd.Flags().Changed("smooth-value") && f.smooth != "floor" && f.smooth != "add-k" {
				return errors.Errorf("--smooth-value applies to floor and add-k smoothing, not --smooth-method %s", f.smooth)
			}
			var sv *float64
			if cmd.Flags().Changed("smooth-value") {
				sv = &f.smoothValue
			}
			return runBLEU(cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr(), refs, f, sv)
		},
	}
	fl := c.Flags()
	fl.StringVarP(&f.input, "input", "i", "", "read the hypotheses from this file instead of stdin")
	fl.StringSliceVarP(&f.metricNames, "metrics", "m", []string{"bleu"}, "metrics to compute: bleu, chrf (comma-separated or repeated)")
	fl.StringVar(&f.tokenize, "tokenize", "13a", "BLEU tokenizer: "+strings.Join(metrics.Tokenizers(), ", "))
	fl.BoolVar(&f.lowercase, "lowercase", false, "BLEU: lowercase hypotheses and references")
	fl.StringVarP(&f.smooth, "smooth-method", "s", "exp", "BLEU smoothing: "+strings.Join(metrics.SmoothMethods(), ", "))
	fl.Float64Var(&f.smoothValue, "smooth-value", 0, "BLEU: the value of floor (default 0.1) or add-k (default 1) smoothing")
	fl.BoolVar(&f.force, "force", false, "BLEU: do not warn about hypotheses that look tokenized")
	fl.IntVar(&f.chrfChar, "chrf-char-order", 6, "chrF character n-gram order")
	fl.IntVar(&f.chrfWord, "chrf-word-order", 0, "chrF word n-gram order (2 is chrF++)")
	fl.IntVar(&f.chrfBeta, "chrf-beta", 2, "chrF: weight of recall against precision")
	fl.BoolVar(&f.chrfWhitespace, "chrf-whitespace", false, "chrF: keep whitespace in character n-grams")
	fl.BoolVar(&f.chrfLowercase, "chrf-lowercase", false, "chrF: lowercase hypotheses and references")
	fl.BoolVar(&f.chrfEps, "chrf-eps-smoothing", false, "chrF: epsilon smoothing as chrF++.py, NLTK and Moses, instead of effective order")
	fl.BoolVar(&f.sentence, "sentence-level", false, "score each sentence (one metric; BLEU with effective order)")
	fl.IntVar(&f.numRefs, "num-refs", 1, "split the one reference file at tabs into this many references per line")
	fl.BoolVarP(&f.scoreOnly, "score-only", "b", false, "print only the score")
	fl.IntVarP(&f.width, "width", "w", 1, "decimals of the score")
	fl.BoolVar(&f.short, "short", false, "print the short signature")
	fl.StringVarP(&f.format, "format", "f", "text", "output: text or json")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no warnings on stderr")
	return c
}

func runBLEU(stdin io.Reader, out, stderr io.Writer, refFiles []string, f *bleuFlags, smoothValue *float64) error {
	names, err := checkBLEUFlags(refFiles, f)
	if err != nil {
		return err
	}
	var scorers []scorer
	for _, n := range names {
		switch n {
		case "bleu":
			b, err := metrics.NewBLEU(metrics.BLEUConfig{Tokenize: f.tokenize, Lowercase: f.lowercase, Smooth: f.smooth,
				SmoothValue: smoothValue, EffectiveOrder: f.sentence})
			if err != nil {
				return errors.Wrap(err, "--smooth-value")
			}
			scorers = append(scorers, scorer{
				corpus:   func(h []string, r [][]string) (printed, error) { s, err := b.Corpus(h, r); return fromBLEU(s), err },
				sentence: func(h string, r []string) (printed, error) { s, err := b.Sentence(h, r); return fromBLEU(s), err },
			})
		case "chrf":
			c, err := metrics.NewCHRF(metrics.CHRFConfig{CharOrder: f.chrfChar, WordOrder: f.chrfWord, Beta: f.chrfBeta,
				Lowercase: f.chrfLowercase, Whitespace: f.chrfWhitespace, EpsSmoothing: f.chrfEps})
			if err != nil {
				return err
			}
			scorers = append(scorers, scorer{
				corpus:   func(h []string, r [][]string) (printed, error) { s, err := c.Corpus(h, r); return fromCHRF(s), err },
				sentence: func(h string, r []string) (printed, error) { s, err := c.Sentence(h, r); return fromCHRF(s), err },
			})
		}
	}

	hyps, hypName, err := readHypotheses(stdin, f.input)
	if err != nil {
		return err
	}
	refs, err := readReferences(refFiles, f.numRefs)
	if err != nil {
		return err
	}
	if err := checkLineCounts(hyps, hypName, refs, refFiles, f.numRefs); err != nil {
		return err
	}
	if !f.quiet && !f.force && slices.Contains(names, "bleu") {
		tokenized := 0
		for _, h := range hyps {
			if strings.HasSuffix(h, " .") {
				tokenized++
			}
		}
		if tokenized >= 100 {
			fmt.Fprintf(stderr, "seq2gpt bleu: %d lines end in a tokenized period (' .'): the hypotheses look tokenized, which lowers BLEU; detokenize them, or give --force\n", tokenized)
		}
	}

	if f.sentence {
		// sacrebleu's sentence level prints text lines whatever --format says.
		seg := make([]string, len(refs))
		for i, h := range hyps {
			for k := range refs {
				seg[k] = refs[k][i]
			}
			p, err := scorers[0].sentence(h, seg)
			if err != nil {
				return err
			}
			fmt.Fprintln(out, p.text(f, false))
		}
		return nil
	}
	var results []string
	for _, sc := range scorers {
		p, err := sc.corpus(hyps, refs)
		if err != nil {
			return err
		}
		results = append(results, p.text(f, f.format == "json"))
	}
	printResults(out, results, f.format == "json")
	return nil
}

// scorer is one metric, at corpus and at sentence level.
type scorer struct {
	corpus   func(hyps []string, refs [][]string) (printed, error)
	sentence func(hyp string, refs []string) (printed, error)
}

// printed is what the command prints of a BLEU or chrF score.
type printed struct {
	score float64
	sig   metrics.Signature
	line  func(width int, sig string) string
	json  func(width int) string
}

func fromBLEU(s metrics.BLEUScore) printed { return printed{s.Score, s.Signature, s.Format, s.JSON} }
func fromCHRF(s metrics.CHRFScore) printed { return printed{s.Score, s.Signature, s.Format, s.JSON} }

// text is the score as sacrebleu prints it: the score alone (--score-only
// wins over --format, as in sacrebleu), the JSON object (with the long
// signature), or the text line with the long or short signature.
func (p printed) text(f *bleuFlags, json bool) string {
	switch {
	case f.scoreOnly:
		return fmt.Sprintf("%.*f", f.width, p.score)
	case json:
		return p.json(f.width)
	}
	return p.line(f.width, p.sig.Format(f.short))
}

// checkBLEUFlags validates the flags and returns the metrics to compute,
// deduplicated in sacrebleu's order (BLEU before chrF).
func checkBLEUFlags(refFiles []string, f *bleuFlags) ([]string, error) {
	if len(refFiles) == 0 {
		return nil, errors.New("give at least one reference file: seq2gpt bleu REF [REF...] < HYP")
	}
	var names []string
	for _, m := range f.metricNames {
		m = strings.ToLower(strings.TrimSpace(m))
		switch m {
		case "bleu", "chrf":
			if !slices.Contains(names, m) {
				names = append(names, m)
			}
		case "ter":
			return nil, errors.New("--metrics ter: TER is not supported; allowed: bleu, chrf")
		default:
			return nil, errors.Errorf("--metrics %q: allowed: bleu, chrf", m)
		}
	}
	if len(names) == 0 {
		return nil, errors.New("--metrics: give bleu, chrf or both")
	}
	slices.Sort(names) // sacrebleu prints its metrics sorted by name: BLEU, chrF
	if f.sentence && len(names) > 1 {
		return nil, errors.Errorf("--sentence-level scores one metric; --metrics has %s", strings.Join(names, ", "))
	}
	if _, err := metrics.Tokenize(f.tokenize, ""); err != nil {
		return nil, errors.Wrap(err, "--tokenize")
	}
	if !slices.Contains(metrics.SmoothMethods(), f.smooth) {
		return nil, errors.Errorf("--smooth-method %q: allowed: %s", f.smooth, strings.Join(metrics.SmoothMethods(), ", "))
	}
	for _, c := range []struct {
		flag string
		v    int
		min  int
	}{{"--chrf-char-order", f.chrfChar, 1}, {"--chrf-word-order", f.chrfWord, 0}, {"--chrf-beta", f.chrfBeta, 1}, {"--num-refs", f.numRefs, 1}} {
		if c.v < c.min {
			return nil, errors.Errorf("%s %d: must be at least %d", c.flag, c.v, c.min)
		}
	}
	if f.width < 0 || f.width > 20 {
		return nil, errors.Errorf("--width %d: must be in [0, 20]", f.width)
	}
	if f.format != "text" && f.format != "json" {
		return nil, errors.Errorf("--format %q: allowed: text, json", f.format)
	}
	if f.numRefs > 1 && len(refFiles) > 1 {
		return nil, errors.Errorf("--num-refs %d reads tab-separated references from one file; %d reference files were given", f.numRefs, len(refFiles))
	}
	return names, nil
}

// printResults prints the results as sacrebleu's print_single_results:
// JSON objects as a list when there are several; text lines aligned at
// their " = ", score-only lines as they are.
func printResults(out io.Writer, results []string, json bool) {
	if json {
		if len(results) > 1 {
			fmt.Fprintln(out, "[\n"+strings.Join(results, ",\n")+"\n]")
		} else {
			fmt.Fprintln(out, results[0])
		}
		return
	}
	if len(results) == 1 {
		fmt.Fprintln(out, results[0])
		return
	}
	var aligned []string
	var lens []int
	for _, line := range results {
		i := strings.Index(line, "=")
		if i < 0 {
			fmt.Fprintln(out, line)
			continue
		}
		aligned = append(aligned, line)
		lens = append(lens, utf8.RuneCountInString(line[:i])-1)
	}
	w := 0
	for _, l := range lens {
		w = max(w, l)
	}
	for i, line := range aligned {
		left, right := runeSplit(line, lens[i])
		fmt.Fprintf(out, "%s%s%s\n", strings.Repeat(" ", w-lens[i]), left, right)
	}
}

func runeSplit(s string, n int) (string, string) {
	i := 0
	for k := 0; k < n && i < len(s); k++ {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s[:i], s[i:]
}

// readHypotheses reads the hypotheses from --input or stdin.
func readHypotheses(stdin io.Reader, input string) ([]string, string, error) {
	if input != "" {
		lines, err := readLinesFile(input)
		return lines, input, err
	}
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return nil, "", errors.New("the hypotheses are read from stdin, which is a terminal: pipe them in (< hyp.txt) or give --input FILE")
	}
	b, err := io.ReadAll(stdin)
	if err != nil {
		return nil, "", errors.Wrap(err, "reading the hypotheses from stdin")
	}
	// sacrebleu reads stdin with Python's universal newlines: "\r\n" and a
	// lone "\r" end a line too.
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	b = bytes.ReplaceAll(b, []byte("\r"), []byte("\n"))
	lines, err := splitLines(b, "stdin")
	if err != nil {
		return nil, "", err
	}
	for i, l := range lines {
		if strings.Contains(l, "\t") {
			return nil, "", errors.Errorf("stdin line %d has a tab: sacrebleu reads tab-separated columns on stdin as several systems, which seq2gpt bleu does not score; give one system's file with --input", i+1)
		}
	}
	return lines, "stdin", nil
}

// readReferences reads the reference files into streams, splitting the one
// file at tabs when numRefs > 1.
func readReferences(files []string, numRefs int) ([][]string, error) {
	if numRefs == 1 {
		refs := make([][]string, len(files))
		for k, name := range files {
			lines, err := readLinesFile(name)
			if err != nil {
				return nil, errors.Wrap(err, "reference")
			}
			refs[k] = lines
		}
		return refs, nil
	}
	lines, err := readLinesFile(files[0])
	if err != nil {
		return nil, errors.Wrap(err, "reference")
	}
	refs := make([][]string, numRefs)
	for i, l := range lines {
		cols := strings.SplitN(l, "\t", numRefs)
		if len(cols) != numRefs {
			return nil, errors.Errorf("%s line %d: %d tab-separated references, --num-refs wants %d", files[0], i+1, len(cols), numRefs)
		}
		for k, c := range cols {
			refs[k] = append(refs[k], c)
		}
	}
	return refs, nil
}

// checkLineCounts names every file and its line count when they differ.
func checkLineCounts(hyps []string, hypName string, refs [][]string, files []string, numRefs int) error {
	same := true
	for _, r := range refs {
		same = same && len(r) == len(hyps)
	}
	if !same {
		parts := []string{fmt.Sprintf("hypotheses (%s): %d lines", hypName, len(hyps))}
		if numRefs > 1 {
			parts = append(parts, fmt.Sprintf("%s: %d lines", files[0], len(refs[0])))
		} else {
			for k, r := range refs {
				parts = append(parts, fmt.Sprintf("%s: %d lines", files[k], len(r)))
			}
		}
		return errors.Errorf("line counts differ: %s", strings.Join(parts, "; "))
	}
	if len(hyps) == 0 {
		return errors.Errorf("nothing to score: the hypotheses (%s) and the references are empty", hypName)
	}
	return nil
}

// readLinesFile reads a text file (gzip-compressed when its name ends in
// .gz) as sacrebleu does: lines end at "\n" only.
func readLinesFile(name string) ([]string, error) {
	fh, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	var r io.Reader = bufio.NewReader(fh)
	if strings.HasSuffix(name, ".gz") {
		gz, err := gzip.NewReader(r)
		if err != nil {
			return nil, errors.Wrap(err, name)
		}
		defer gz.Close()
		r = gz
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, errors.Wrap(err, name)
	}
	return splitLines(b, name)
}

// splitLines splits text at "\n" (a last line without one still counts),
// strips each line's trailing whitespace as Python's rstrip does, and
// rejects bytes that are not UTF-8, naming the file and line.
func splitLines(b []byte, name string) ([]string, error) {
	if len(b) == 0 {
		return nil, nil
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	raw := bytes.Split(b, []byte("\n"))
	lines := make([]string, len(raw))
	for i, l := range raw {
		if !utf8.Valid(l) {
			return nil, errors.Errorf("%s line %d is not valid UTF-8", name, i+1)
		}
		lines[i] = metrics.RStrip(string(l))
	}
	return lines, nil
}
