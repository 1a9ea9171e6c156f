package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/pkg/errors"
	"github.com/spf13/cobra"

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
prints the new ids. Each new token attends to cached keys and values, so a
token costs O(context) rather than recomputing the prefix. Past n_positions
the window slides (--overflow slide, as nanoGPT crops) or stops with an error
(--overflow error).`,
		Example: `  seq2gpt lm generate --model runs/tiny/best --prompt "The Congress" --temperature 0.8 --top-k 40
  seq2gpt lm generate --model hf-dir --ids 12,7,99 --max-new-tokens 20 --temperature 0 --print-ids`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runGenerate(cmd.OutOrStdout(), f) },
	}
	fl := c.Flags()
	fl.StringVar(&f.model, "model", "", "checkpoint directory (required)")
	fl.StringVar(&f.prompt, "prompt", "", "prompt text")
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

func runGenerate(out io.Writer, f *generateFlags) error {
	if (f.prompt == "") == (f.ids == "") {
		return errors.New("give exactly one of --prompt and --ids")
	}
	if f.samples < 1 {
		return errors.Errorf("--num-samples %d must be at least 1", f.samples)
	}
	overflow := map[string]gpt.Overflow{"slide": gpt.Slide, "error": gpt.Error}
	ov, ok := overflow[f.overflow]
	if !ok {
		return errors.Errorf("--overflow %q: want slide or error", f.overflow)
	}
	dir, err := modelDir(f.model, os.Stderr)
	if err != nil {
		return err
	}
	m, err := gpt.Load(dir)
	if err != nil {
		return err
	}
	tok, hasTok, err := loadTokenizer(dir)
	if err != nil {
		return err
	}
	var prompt []int
	if f.ids != "" {
		if prompt, err = parseIDs(f.ids); err != nil {
			return err
		}
	} else {
		if !hasTok {
			return errors.Errorf("%s has no tokenizer files: give the prompt as --ids", dir)
		}
		if prompt = tok.Encode(f.prompt); len(prompt) == 0 {
			return errors.New("--prompt encodes to no tokens")
		}
	}
	prompts := make([][]int, f.samples)
	for i := range prompts {
		prompts[i] = prompt
	}
	if f.maxNew < 1 {
		return errors.Errorf("--max-new-tokens %d must be at least 1", f.maxNew)
	}
	dec, err := m.NewDecoder(gpt.DecoderConfig{Overflow: ov, NoCache: f.noCache})
	if err != nil {
		return err
	}
	defer dec.Close()
	res, err := decode.Generate(dec, prompts, decode.GenerateConfig{
		Limits:   decode.Limits{MaxLen: f.maxNew, EOS: f.stop},
		Sampling: decode.Sampling{Temperature: f.temperature, TopK: f.topK, TopP: f.topP, Seed: f.seed},
	})
	if err != nil {
		return err
	}
	for i, toks := range res.Tokens {
		if f.samples > 1 {
			fmt.Fprintf(out, "--- sample %d\n", i+1)
		}
		if f.printIDs || !hasTok {
			fmt.Fprintln(out, joinIDs(toks))
		}
		if hasTok {
			text, err := tok.Decode(append(append([]int(nil), prompt...), toks...))
			if err != nil {
				return err
			}
			fmt.Fprintln(out, text)
		}
	}
	return nil
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
