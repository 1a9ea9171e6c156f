package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/pkg/errors"
	"github.com/spf13/cobra"

	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/internal/atomicfile"
	"github.com/seq2gpt/seq2gpt/train"
)

// openModel loads a model directory and its tokenizers. A run directory
// (with run.json) means its best checkpoint.
func openModel(stderr io.Writer, dir string) (mtModel, mtTokenizers, error) {
	if _, err := os.Stat(filepath.Join(dir, RunFile)); err == nil {
		best, err := train.CheckpointPath(dir, train.BestCheckpoint)
		if err != nil {
			return nil, mtTokenizers{}, errors.Wrapf(err, "--model %s is a run directory", dir)
		}
		fmt.Fprintf(stderr, "using %s\n", best)
		dir = best
	}
	m, err := loadMTModel(dir)
	if err != nil {
		return nil, mtTokenizers{}, err
	}
	tok, err := loadTokenizers(dir)
	if err != nil {
		return nil, mtTokenizers{}, err
	}
	if v := tok.vocabs(); v.Src != m.SrcVocab() || v.Tgt != m.TgtVocab() {
		return nil, mtTokenizers{}, errors.Errorf("%s: the tokenizers' vocabularies (%d, %d tokens) are not the model's (%d, %d)", dir, v.Src, v.Tgt, m.SrcVocab(), m.TgtVocab())
	}
	return m, tok, nil
}

type mtEvalFlags struct {
	data   dataFlags
	search searchFlags
	model  string
	output string
}

func newTranslateEvalCmd() *cobra.Command {
	f := &mtEvalFlags{}
	c := &cobra.Command{
		Use:   "eval",
		Short: "BLEU and chrF of a model on a test set",
		Long: `Translate the test set's sources (by beam search, or greedily with --beam 1)
and score them against its targets with BLEU and chrF as sacreBLEU computes
them by default (13a tokenization, 4-grams, exponential smoothing; chrF2),
printing each with its signature. --model is a model directory (a run's
best or last checkpoint; a run directory means its best). The test set is
the embedded en–de test split unless --test gives one (as train's --train).`,
		Example: `  seq2gpt translate eval --model runs/attention/last --beam 1
  seq2gpt translate eval --model runs/attention/last --beam 5 --output hyps.de
  seq2gpt translate eval --model runs/transformer --beam 4   # a run directory: its best checkpoint
  seq2gpt translate eval --model runs/fr-en --test data/test --src-lang fr --tgt-lang en`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTranslateEval(cmd.OutOrStdout(), cmd.ErrOrStderr(), f)
		},
	}
	fs := c.Flags()
	fs.StringVar(&f.model, "model", "", "model directory, or a run directory (its best checkpoint) (required)")
	addDataFlags(fs, &f.data, false)
	addSearchFlags(fs, &f.search, 5)
	fs.StringVarP(&f.output, "output", "o", "", "write the translations here, one per line")
	f.search.nbest = 1
	_ = c.MarkFlagRequired("model")
	return c
}

func runTranslateEval(out, stderr io.Writer, f *mtEvalFlags) error {
	if err := f.search.check(); err != nil {
		return err
	}
	m, tok, err := openModel(stderr, f.model)
	if err != nil {
		return err
	}
	test, err := f.data.read("test", f.data.test, "test")
	if err != nil {
		return err
	}
	if len(test.pairs) == 0 {
		return errors.Errorf("%s has no pairs", test.name)
	}
	test.report(out, "test")
	fmt.Fprintf(out, "model: %s\n", m.Describe())
	enc, _ := tok.encode(test.pairs, 0, false)
	dec, err := m.NewDecoder()
	if err != nil {
		return err
	}
	defer dec.Close()
	hyps, err := translateAll(dec, enc.src, f.search, m.EOS())
	if err != nil {
		return err
	}
	text, err := detokenize(tok.tgt, hyps)
	if err != nil {
		return err
	}
	if f.output != "" {
		if err := atomicfile.WriteFile(f.output, []byte(strings.Join(text, "\n")+"\n")); err != nil {
			return err
		}
	}
	sc, err := score(text, enc.refs)
	if err != nil {
		return err
	}
	search := "greedy"
	if f.search.beam > 1 {
		search = fmt.Sprintf("beam %d, length penalty %g", f.search.beam, f.search.lenpen)
	}
	fmt.Fprintf(out, "%d sentences, %s\n%s\n%s\n", len(text), search, sc.bleu.Format(1, sc.bleuSig), sc.chrf.Format(1, sc.chrfSig))
	if f.output != "" {
		fmt.Fprintf(out, "translations: %s\n", f.output)
	}
	return nil
}

type mtTranslateFlags struct {
	search                  searchFlags
	model, input            string
	attention, attentionMap string
	layers, heads           []int
	printIDs, prompt        bool
}

func newTranslateTranslateCmd() *cobra.Command {
	f := &mtTranslateFlags{}
	c := &cobra.Command{
		Use:   "translate",
		Short: "Translate sentences from stdin or a file",
		Long: `Translate one sentence per line, from --input or stdin (on a terminal, a
prompt loop: type a sentence, get its translation; Ctrl-D ends). An empty
line gives an empty line. --nbest K prints the K best of the beam as
"line ||| translation ||| score" (Moses' n-best layout). --attention PATH
draws α for each sentence as a heat map (source tokens × translation
tokens, white = all attention): PATH itself for one sentence, PATH with
-1, -2, … before its extension for several. A Transformer's
picture is a grid of heat maps, a row for each layer and a column for each
head (--layers and --heads choose them; default all): of its
encoder–decoder attention (--attention-map cross), its encoder's
self-attention over the source (encoder) or its decoder's masked
self-attention over the translation (decoder).`,
		Example: `  seq2gpt translate translate --model runs/attention/last --beam 1 --attention att.png < sentence.en
  echo "Select the cells you want to print." | seq2gpt translate translate --model runs/attention/last --attention att.png
  seq2gpt translate translate --model runs/attention --input sentences.en --beam 5 --nbest 3
  seq2gpt translate translate --model runs/attention        # a prompt on a terminal
  seq2gpt translate translate --model runs/transformer/best --beam 1 --attention att.png --layers 1 < sentence.en
  seq2gpt translate translate --model runs/transformer/best --attention enc.png --attention-map encoder --heads 0,1 < sentence.en`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTranslateTranslate(cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr(), f)
		},
	}
	fs := c.Flags()
	fs.StringVar(&f.model, "model", "", "model directory, or a run directory (its best checkpoint) (required)")
	fs.StringVarP(&f.input, "input", "i", "", "read sentences from this file instead of stdin")
	addSearchFlags(fs, &f.search, 5)
	fs.IntVar(&f.search.nbest, "nbest", 1, "print the K best translations of each sentence")
	fs.StringVar(&f.attention, "attention", "", "draw each sentence's attention as a PNG heat map here")
	fs.StringVar(&f.attentionMap, "attention-map", crossMap, "transformer: the attention --attention draws: cross (encoder–decoder), encoder or decoder (self-attention)")
	fs.IntSliceVar(&f.layers, "layers", nil, "transformer: the layers --attention draws, a row of panels each (default: all)")
	fs.IntSliceVar(&f.heads, "heads", nil, "transformer: the heads --attention draws, a column of panels each (default: all)")
	fs.BoolVar(&f.printIDs, "print-ids", false, "print the translation's token ids after it")
	_ = c.MarkFlagRequired("model")
	return c
}

func runTranslateTranslate(stdin io.Reader, out, stderr io.Writer, f *mtTranslateFlags) error {
	if err := f.search.check(); err != nil {
		return err
	}
	if f.attention != "" && !strings.EqualFold(filepath.Ext(f.attention), ".png") {
		return errors.Errorf("--attention %s: the picture is a PNG; name it *.png", f.attention)
	}
	m, tok, err := openModel(stderr, f.model)
	if err != nil {
		return err
	}
	if f.attention != "" && !m.HasAttention() {
		return errors.Errorf("--attention: %s is a %s model, which has no attention to draw (train one with --arch attention)", f.model, m.Arch())
	}
	if err := f.checkPicture(m); err != nil {
		return err
	}
	dec, err := m.NewDecoder()
	if err != nil {
		return err
	}
	defer dec.Close()
	in := stdin
	interactive := false
	if f.input != "" {
		file, err := os.Open(f.input)
		if err != nil {
			return errors.Wrap(err, "--input")
		}
		defer file.Close()
		in = file
	} else {
		interactive = isTerminal(stdin)
	}
	tr := &translator{m: m, tok: tok, dec: dec, f: f, out: out, stderr: stderr}
	if interactive {
		// A prompt: each line is translated as it is typed; a line that
		// fails is reported and the session goes on.
		fmt.Fprintf(stderr, "%s\nType a sentence and Enter to translate it; Ctrl-D ends.\n", m.Describe())
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 0, 1<<16), 1<<20)
		for n := 1; ; n++ {
			fmt.Fprint(stderr, "> ")
			if !sc.Scan() {
				fmt.Fprintln(stderr)
				return errors.Wrap(sc.Err(), "standard input")
			}
			if err := tr.lines([]string{strings.TrimRight(sc.Text(), "\r")}, n, true); err != nil {
				fmt.Fprintln(stderr, "error:", err)
			}
		}
	}
	lines, err := readLines(in, f.input)
	if err != nil {
		return err
	}
	return tr.lines(lines, 1, len(lines) > 1)
}

// readLines reads every line of r (name for errors), without endings.
func readLines(r io.Reader, name string) ([]string, error) {
	if name == "" {
		name = "stdin"
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<16), 1<<24)
	var lines []string
	for sc.Scan() {
		lines = append(lines, strings.TrimSuffix(sc.Text(), "\r"))
	}
	return lines, errors.Wrapf(sc.Err(), "reading %s", name)
}

// translator translates lines and prints them.
type translator struct {
	m           mtModel
	tok         mtTokenizers
	dec         mtDecoder
	f           *mtTranslateFlags
	out, stderr io.Writer
}

// lines translates lines (numbered from first) and prints them; with
// number, attention pictures are numbered too.
func (t *translator) lines(lines []string, first int, number bool) error {
	var srcs [][]int
	var at []int
	for i, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		srcs = append(srcs, t.tok.src.Encode(l))
		at = append(at, i)
	}
	hyps := make([][]hypothesis, len(lines))
	if len(srcs) > 0 {
		res, err := translateAll(t.dec, srcs, t.f.search, t.m.EOS())
		if err != nil {
			return err
		}
		for k, i := range at {
			hyps[i] = res[k]
		}
	}
	k := 0
	for i, hs := range hyps {
		n := first + i
		if len(hs) == 0 {
			fmt.Fprintln(t.out)
			continue
		}
		for rank, h := range hs {
			text, err := t.tok.tgt.Decode(h.tokens)
			if err != nil {
				return err
			}
			text = strings.TrimSpace(text)
			switch {
			case t.f.search.nbest > 1:
				fmt.Fprintf(t.out, "%d ||| %s ||| %.4f\n", n, text, h.score)
			default:
				fmt.Fprintln(t.out, text)
			}
			if t.f.printIDs {
				fmt.Fprintln(t.out, joinIDs(h.tokens))
			}
			if rank == 0 && t.f.attention != "" {
				path := t.f.attention
				if number {
					ext := filepath.Ext(path)
					path = fmt.Sprintf("%s-%d%s", strings.TrimSuffix(path, ext), n, ext)
				}
				if err := t.picture(path, text, srcs[k], h); err != nil {
					return err
				}
				fmt.Fprintf(t.stderr, "attention: %s\n", path)
			}
		}
		k++
	}
	return nil
}

// alignment labels a hypothesis's α: the source tokens and the end token
// the model reads after them; the translation's tokens and its end token
// when it chose one.
func (t *translator) alignment(src []int, h hypothesis) alignment {
	a := alignment{alpha: h.attention}
	for _, id := range src {
		a.src = append(a.src, tokenLabel(t.tok.src, id, len(a.src) == 0))
	}
	a.src = append(a.src, "</s>")
	for _, id := range h.tokens {
		a.tgt = append(a.tgt, tokenLabel(t.tok.tgt, id, len(a.tgt) == 0))
	}
	if len(h.attention) > len(h.tokens) {
		a.tgt = append(a.tgt, "</s>")
	}
	for i := range a.alpha {
		if len(a.alpha[i]) > len(a.src) {
			a.alpha[i] = a.alpha[i][:len(a.src)]
		}
	}
	return a
}

// tokenLabel is a BPE token as a picture shows it: a word-initial token
// without its space, a piece that continues a word after "·".
func tokenLabel(tok *datasets.BPE, id int, first bool) string {
	s, err := tok.Decode([]int{id})
	if err != nil {
		return "?"
	}
	s = strings.ToValidUTF8(s, "?")
	if strings.HasPrefix(s, " ") || first {
		return strings.TrimPrefix(s, " ")
	}
	return "·" + s
}

// checkPicture refuses --attention-map, --layers and --heads values the
// model m does not have, and those flags without --attention; it settles
// the default layers and heads (all of them).
func (f *mtTranslateFlags) checkPicture(m mtModel) error {
	if !slices.Contains(attentionMaps, f.attentionMap) {
		return &FlagError{Flag: "attention-map", Value: fmt.Sprintf("%q", f.attentionMap), Want: "cross, encoder or decoder"}
	}
	chosen := f.attentionMap != crossMap || f.layers != nil || f.heads != nil
	if chosen && f.attention == "" {
		return errors.New("--attention-map, --layers and --heads choose what --attention draws: give --attention PATH.png")
	}
	g, ok := m.(mtAttentionMaps)
	if !ok {
		if chosen {
			return errors.Errorf("--attention-map, --layers and --heads: %s is a %s model, whose attention has no layers or heads (one picture of α per sentence)", f.model, m.Arch())
		}
		return nil
	}
	L, H := g.AttentionHeads(f.attentionMap)
	for _, c := range []struct {
		flag string
		n    int
		v    *[]int
	}{{"layers", L, &f.layers}, {"heads", H, &f.heads}} {
		if *c.v == nil {
			*c.v = upTo(c.n)
		}
		for _, i := range *c.v {
			if i < 0 || i >= c.n {
				return &FlagError{Flag: c.flag, Value: strconv.Itoa(i), Want: Below(c.n).String()}
			}
		}
	}
	return nil
}

// picture draws a translation's attention to path: α of the decoder's
// states (the LSTMs'), or the chosen map's layers × heads (the
// Transformer's).
func (t *translator) picture(path, title string, src []int, h hypothesis) error {
	a := t.alignment(src, h)
	g, ok := t.m.(mtAttentionMaps)
	if !ok {
		return drawAttention(path, title, a)
	}
	target := slices.Clone(h.tokens)
	if len(a.tgt) > len(h.tokens) {
		target = append(target, t.m.EOS()) // it chose to end
	}
	maps, err := g.AttentionMaps(t.f.attentionMap, src, target)
	if err != nil {
		return err
	}
	panels, titles := mapPanels(maps, t.f.attentionMap, a, t.f.layers, t.f.heads)
	what := map[string]string{crossMap: "encoder–decoder attention", encoderMap: "encoder self-attention", decoderMap: "decoder self-attention"}
	return drawAttentionGrid(path, fmt.Sprintf("%s: %s", what[t.f.attentionMap], title), panels, titles)
}
