package main

import (
	"fmt"
	"io"
	"os"

	"github.com/pkg/errors"
	"github.com/spf13/cobra"

	"github.com/seq2gpt/seq2gpt/bert"
	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/train"
)

// loadBERT reads a BERT directory (--model: a checkpoint, a run directory,
// or a HuggingFace BERT directory) and its tokenizer with BERT's specials.
func loadBERT(model string) (*bert.Model, *datasets.BPE, bert.Specials, error) {
	dir, err := modelDir(model, os.Stderr)
	if err != nil {
		return nil, nil, bert.Specials{}, err
	}
	if err := requireKind(dir, true); err != nil {
		return nil, nil, bert.Specials{}, err
	}
	m, err := bert.Load(dir)
	if err != nil {
		return nil, nil, bert.Specials{}, err
	}
	tok, sp, err := bertSpecialsOf(dir, m.Config)
	if err != nil {
		return nil, nil, sp, err
	}
	return m, tok, sp, nil
}

func newMLMEvalCmd() *cobra.Command {
	var model, data string
	var batch int
	var seed uint64
	c := &cobra.Command{
		Use:   "eval",
		Short: "Masked-LM loss and accuracy of a BERT checkpoint",
		Long: `Cut the text into examples of max_position_embeddings tokens ([CLS] text
[SEP]), mask each once as pre-training does (15% chosen: 80% [MASK], 10%
random, 10% kept; seeded by --seed) and report the masked-LM loss per target
in nats, its exp, and the fraction of targets predicted exactly (overall and
at the [MASK]s alone, where only the context tells the token). Without
--data the text is the embedded State of the Union validation split, the
one mlm train holds out by default.`,
		Example: `  seq2gpt mlm eval --model runs/bert-tiny
  seq2gpt mlm eval --model runs/bert-tiny/best --data held-out.txt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if batch < 1 {
				return errors.Errorf("--batch %d is out of range: want an integer ≥ 1", batch)
			}
			return runMLMEval(cmd.OutOrStdout(), model, data, batch, seed)
		},
	}
	c.Flags().StringVar(&model, "model", "", "BERT directory: a checkpoint or a run (required)")
	c.Flags().StringVar(&data, "data", "", "plain-text file (default: the embedded validation split)")
	c.Flags().IntVar(&batch, "batch", 16, "examples per batch")
	c.Flags().Uint64Var(&seed, "seed", 2, "seed of the masking (mlm train masks its validation split with its --seed + 1)")
	_ = c.MarkFlagRequired("model")
	return c
}

func runMLMEval(out io.Writer, model, data string, batch int, seed uint64) error {
	m, tok, sp, err := loadBERT(model)
	if err != nil {
		return err
	}
	name, text := "the embedded State of the Union validation split", ""
	if data == "" {
		c, err := loadCorpus("", "", 0.1)
		if err != nil {
			return err
		}
		text = c.valid
	} else {
		name = data
		if text, err = datasets.LoadText(data); err != nil {
			return err
		}
	}
	mk, err := bert.NewMasker(bert.BERTMasking(), sp, tok.VocabSize(), tok.IsSpecial)
	if err != nil {
		return err
	}
	l := bert.MLM{Model: m, Masker: mk}
	ids := tok.Encode(text)
	w, err := datasets.NewLMWindows(ids, l.WindowTokens(m.Config.MaxPositionEmbeddings), 0)
	if err != nil {
		return errors.Wrap(err, name)
	}
	// A trainer used only to evaluate: its optimizer never steps.
	opt, err := train.NewSGD(train.SGDConfig{})
	if err != nil {
		return err
	}
	tr, err := train.New(l, train.Config{Optimizer: opt, Schedule: train.Constant(0)})
	if err != nil {
		return err
	}
	defer tr.Close()
	met, err := l.Evaluate(tr, l.Examples(w, 0, seed), batch)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: %d tokens, %d examples, %d masked targets\nMLM loss %.4f nats/target  perplexity %.2f  accuracy %.4f  (at [MASK]s %.4f)\n",
		name, len(ids), w.Len(), met.Targets, met.Loss, expSafe(met.Loss), met.Accuracy, met.MaskAccuracy)
	if m.Config.NSP {
		fmt.Fprintln(out, "(next-sentence prediction is not scored here: examples are single segments)")
	}
	return nil
}

func newMLMFillCmd() *cobra.Command {
	var model, text string
	var k int
	c := &cobra.Command{
		Use:   "fill",
		Short: "Fill in the [MASK]s of a text with a BERT checkpoint",
		Long: `Print the text with each [MASK] replaced by the token the masked-LM head
finds most likely, reading the whole text both ways, and the --top-k
candidates of each with their probabilities. One [MASK] is one token of the
model's byte-level BPE (a word with its leading space, or part of a word);
all [MASK]s are predicted at once. BERT cannot continue a prompt: there is no
position after the text to predict. Compare "lm generate".`,
		Example: `  seq2gpt mlm fill --model runs/bert-tiny --text "The [MASK] of the Union is strong."
  seq2gpt mlm fill --model runs/bert-tiny/best --text "The Congress [MASK] [MASK] [MASK]" --top-k 3`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if k < 1 {
				return errors.Errorf("--top-k %d is out of range: want an integer ≥ 1", k)
			}
			m, tok, sp, err := loadBERT(model)
			if err != nil {
				return err
			}
			return printFill(cmd.OutOrStdout(), m, tok, sp, text, k)
		},
	}
	c.Flags().StringVar(&model, "model", "", "BERT directory: a checkpoint or a run (required)")
	c.Flags().StringVar(&text, "text", "", "text with one or more [MASK] (required)")
	c.Flags().IntVar(&k, "top-k", 5, "candidates to show for each [MASK]")
	_ = c.MarkFlagRequired("model")
	_ = c.MarkFlagRequired("text")
	return c
}
