package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/pkg/errors"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/decode"
	"github.com/seq2gpt/seq2gpt/gpt"
)

type generateFlags struct {
	model, prompt, ids, overflow string
	printIDs, noCache            bool
	maxNew, topK, samples        int
	temperature, topP            float64
	seed                         uint64
	stop                         []int
}

func newGenerateCmd() *cobra.Command {
	f := &generateFlags{}
	c := &cobra.Command{
		Use:   "generate",
		Short: "Continue a prompt with a trained GPT",
		Long: `Continue a prompt from a checkpoint directory: one written by "lm train", or
any HuggingFace openai-gpt directory (config.json + model.safetensors).

The prompt is text (--prompt, needs the directory's tokenizer files) or token
ids (--ids), so a checkpoint without a tokenizer still works; --print-ids
prints the new ids. The text is written as it is generated (one sample; with
--num-samples N each sample is printed when all are done). Each new token
attends to cached keys and values, so a token costs O(context) rather than
recomputing the prefix. Past n_positions the window slides (--overflow
slide, as nanoGPT crops) or stops with an error (--overflow error).

Without --prompt or --ids, prompts are read from standard input, one a line,
each continued in turn. On a terminal that is an interactive session (">"
asks for a prompt; Ctrl-D ends it); from a pipe or a file, the lines are
prompts. Either way a line ":name value" sets a sampling flag for the
prompts after it (:temperature 0.7, :top-k 40, :top-p 0.9,
:max-new-tokens 100, :seed 3, :num-samples 2), ":show" prints them and
":help" lists them.`,
		Example: `  seq2gpt lm generate --model runs/tiny/best --prompt "The Congress" --top-k 40
  seq2gpt lm generate --model hf-dir --ids 12,7,99 --max-new-tokens 20 --temperature 0 --print-ids
  seq2gpt lm generate --model runs/tiny/best                 # interactive
  seq2gpt lm generate --model runs/tiny/best < prompts.txt   # one continuation a line`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runGenerate(cmd, f) },
	}
	fl := c.Flags()
	fl.StringVar(&f.model, "model", "", "checkpoint directory (required)")
	fl.StringVar(&f.prompt, "prompt", "", "prompt text (default: read prompts from standard input)")
	fl.StringVar(&f.ids, "ids", "", "prompt as comma-separated token ids")
	fl.BoolVar(&f.printIDs, "print-ids", false, "print the generated token ids")
	fl.IntVar(&f.maxNew, "max-new-tokens", 50, "tokens to generate")
	fl.Float64Var(&f.temperature, "temperature", 0.8, "sampling temperature (0: greedy)")
	fl.IntVar(&f.topK, "top-k", 0, "sample from the k most likely tokens (0: all)")
	fl.Float64Var(&f.topP, "top-p", 0, "nucleus sampling: the smallest set reaching probability p (0: off)")
	fl.Uint64Var(&f.seed, "seed", 1, "sampling seed")
	fl.IntVar(&f.samples, "num-samples", 1, "independent samples of the prompt")
	fl.IntSliceVar(&f.stop, "stop-id", nil, "token ids that end a sample")
	fl.StringVar(&f.overflow, "overflow", "slide", "past n_positions: slide or error")
	fl.BoolVar(&f.noCache, "no-cache", false, "recompute the window for every token instead of using the key/value cache")
	_ = c.MarkFlagRequired("model")
	return c
}

// checkGenerateFlags refuses sampling values outside their ranges; vocab
// is the model's vocabulary (0: not known yet, so the token ids wait).
func checkGenerateFlags(fs *pflag.FlagSet, vocab int) error {
	c := NewFlagChecks(fs)
	c.Check("temperature", NonNegative)
	c.Check("top-k", AtLeast(0))
	c.Check("top-p", Probability)
	c.Check("max-new-tokens", AtLeast(1))
	c.Check("num-samples", AtLeast(1))
	if v := fs.Lookup("overflow").Value.String(); !validOverflow(v) {
		c.Add("overflow", v, "slide or error")
	}
	if vocab > 0 {
		c.Check("stop-id", Below(vocab))
	}
	return c.Err()
}

var overflows = map[string]gpt.Overflow{"slide": gpt.Slide, "error": gpt.Error}

func runGenerate(cmd *cobra.Command, f *generateFlags) error {
	fs := cmd.Flags()
	if err := checkGenerateFlags(fs, 0); err != nil {
		return err
	}
	if f.prompt != "" && f.ids != "" {
		return errors.New("give one of --prompt and --ids (or neither, to read prompts from standard input)")
	}
	dir, err := modelDir(f.model, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	if err := requireKind(dir, false); err != nil {
		return err
	}
	m, err := gpt.Load(dir)
	if err != nil {
		return err
	}
	// Token ids are checked against the model's vocabulary.
	if err := checkGenerateFlags(fs, m.Config.VocabSize); err != nil {
		return err
	}
	tok, hasTok, err := loadTokenizer(dir)
	if err != nil {
		return err
	}
	g := &generator{out: cmd.OutOrStdout(), m: m, tok: tok, hasTok: hasTok, f: f, fs: fs, dir: dir}
	defer g.close()
	switch {
	case f.ids != "":
		prompt, err := parseIDs(f.ids)
		if err != nil {
			return err
		}
		return g.generate(prompt)
	case f.prompt != "":
		if !hasTok {
			return errors.Errorf("%s has no tokenizer files: give the prompt as --ids", dir)
		}
		prompt := tok.Encode(f.prompt)
		if len(prompt) == 0 {
			return errors.New("--prompt encodes to no tokens")
		}
		return g.generate(prompt)
	}
	return g.repl(cmd.InOrStdin(), cmd.ErrOrStderr())
}

// generator continues prompts with one model, its decoder kept from prompt
// to prompt.
type generator struct {
	out    io.Writer
	m      *gpt.Model
	dec    *gpt.Decoder
	noCach bool
	tok    *datasets.BPE
	hasTok bool
	f      *generateFlags
	fs     *pflag.FlagSet
	dir    string
}

func (g *generator) close() {
	if g.dec != nil {
		_ = g.dec.Close()
	}
}

// generate continues prompt as the flags say. One sample is written as it
// comes: its text (with a tokenizer) or its ids (without one, or with
// --print-ids, the text following when done); several are written when all
// are done, each after a "--- sample i" line.
func (g *generator) generate(prompt []int) error {
	f := g.f
	if g.dec == nil || g.noCach != f.noCache {
		g.close()
		dec, err := g.m.NewDecoder(gpt.DecoderConfig{Overflow: overflows[f.overflow], NoCache: f.noCache})
		if err != nil {
			return err
		}
		g.dec, g.noCach = dec, f.noCache
	}
	prompts := make([][]int, f.samples)
	for i := range prompts {
		prompts[i] = prompt
	}
	streamIDs := f.printIDs || !g.hasTok
	cfg := decode.GenerateConfig{
		Limits:   decode.Limits{MaxLen: f.maxNew, EOS: f.stop},
		Sampling: decode.Sampling{Temperature: f.temperature, TopK: f.topK, TopP: f.topP, Seed: f.seed},
	}
	var werr error
	if f.samples == 1 {
		if !streamIDs {
			text, err := g.tok.Decode(prompt)
			if err != nil {
				return err
			}
			if _, err := io.WriteString(g.out, text); err != nil {
				return err
			}
		}
		n := 0
		cfg.OnToken = func(_, id int) error {
			var s string
			if streamIDs {
				s = strconv.Itoa(id)
				if n > 0 {
					s = "," + s
				}
			} else {
				var err error
				if s, err = g.tok.Decode([]int{id}); err != nil {
					return err
				}
			}
			n++
			_, werr = io.WriteString(g.out, s)
			return werr
		}
	}
	res, err := decode.Generate(g.dec, prompts, cfg)
	if err != nil {
		return err
	}
	for i, toks := range res.Tokens {
		if f.samples > 1 {
			fmt.Fprintf(g.out, "--- sample %d\n", i+1)
			if streamIDs {
				fmt.Fprintln(g.out, joinIDs(toks))
			}
		} else {
			fmt.Fprintln(g.out)
		}
		if g.hasTok && (f.samples > 1 || streamIDs) {
			text, err := g.tok.Decode(append(append([]int(nil), prompt...), toks...))
			if err != nil {
				return err
			}
			fmt.Fprintln(g.out, text)
		}
	}
	return nil
}

// replFlags are the flags a prompt session may set with ":name value".
var replFlags = []string{"temperature", "top-k", "top-p", "max-new-tokens", "seed", "num-samples", "stop-id", "print-ids", "no-cache"}

// repl reads prompts from in, one a line, and continues each. On a
// terminal it asks for each with "> " (on errw) and a bad line is reported
// and the session goes on; from a pipe or file the lines are prompts and a
// bad one ends the command with its line number.
func (g *generator) repl(in io.Reader, errw io.Writer) error {
	interactive := isTerminal(in)
	if !g.hasTok {
		return errors.Errorf("%s has no tokenizer files: give the prompt as --ids", g.dir)
	}
	if interactive {
		fmt.Fprintln(errw, "Type a prompt and Enter to continue it; :help lists the settings; Ctrl-D ends.")
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	line := 0
	for {
		if interactive {
			fmt.Fprint(errw, "> ")
		}
		if !sc.Scan() {
			break
		}
		line++
		text := strings.TrimRight(sc.Text(), "\r")
		err := g.replLine(text, errw)
		if err != nil && !interactive {
			return errors.Wrapf(err, "standard input, line %d", line)
		}
		if err != nil {
			fmt.Fprintln(errw, "error:", err)
		}
	}
	if interactive {
		fmt.Fprintln(errw)
	}
	return errors.Wrap(sc.Err(), "standard input")
}

func (g *generator) replLine(text string, errw io.Writer) error {
	if strings.TrimSpace(text) == "" {
		return nil
	}
	if strings.HasPrefix(text, ":") {
		fields := strings.Fields(text[1:])
		switch {
		case len(fields) == 1 && fields[0] == "help":
			fmt.Fprintf(errw, "settings (:name value): %s; :show prints them\n", strings.Join(replFlags, ", "))
			return nil
		case len(fields) == 1 && fields[0] == "show":
			for _, name := range replFlags {
				fmt.Fprintf(errw, ":%s %s\n", name, g.fs.Lookup(name).Value.String())
			}
			return nil
		case len(fields) == 2 && slices.Contains(replFlags, fields[0]):
			old := g.fs.Lookup(fields[0]).Value.String()
			if err := g.fs.Set(fields[0], fields[1]); err != nil {
				return errors.Errorf(":%s %s: %v", fields[0], fields[1], err)
			}
			if err := checkGenerateFlags(g.fs, g.m.Config.VocabSize); err != nil {
				_ = g.fs.Set(fields[0], unbracket(g.fs.Lookup(fields[0]), old))
				return errors.New(strings.ReplaceAll(err.Error(), "--", ":"))
			}
			return nil
		}
		return errors.Errorf("%q: not a setting (:help lists them)", text)
	}
	prompt := g.tok.Encode(text)
	if len(prompt) == 0 {
		return errors.Errorf("%q encodes to no tokens", text)
	}
	return g.generate(prompt)
}

// printSamples prints a few samples after training.
func printSamples(out io.Writer, m *gpt.Model, tok *datasets.BPE, prompt string, n, tokens int, seed uint64) error {
	ids := tok.Encode(prompt)
	if len(ids) == 0 || tokens <= 0 {
		return nil
	}
	prompts := make([][]int, n)
	for i := range prompts {
		prompts[i] = ids
	}
	dec, err := m.NewDecoder(gpt.DecoderConfig{})
	if err != nil {
		return err
	}
	defer dec.Close()
	res, err := decode.Generate(dec, prompts, decode.GenerateConfig{Limits: decode.Limits{MaxLen: tokens},
		Sampling: decode.Sampling{Temperature: 0.8, TopK: 40, Seed: seed}})
	if err != nil {
		return err
	}
	for i, t := range res.Tokens {
		text, err := tok.Decode(append(append([]int(nil), ids...), t...))
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "--- sample %d (temperature 0.8, top-k 40)\n%s\n", i+1, text)
	}
	return nil
}

func parseIDs(s string) ([]int, error) {
	var ids []int
	for i, part := range strings.Split(s, ",") {
		id, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil {
			return nil, errors.Errorf("--ids: item %d (%q) is not an integer", i+1, part)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func joinIDs(ids []int) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(id)
	}
	return strings.Join(s, ",")
}

func expSafe(x float64) float64 {
	if x > 700 {
		return math.Inf(1)
	}
	return math.Exp(x)
}

func validOverflow(v string) bool { _, ok := overflows[v]; return ok }
