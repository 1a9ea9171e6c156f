package main

import (
	"fmt"
	"io"
	"strconv"

	"github.com/pkg/errors"
	"github.com/spf13/cobra"

	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/gpt"
	"github.com/seq2gpt/seq2gpt/train"
)

func newEvalCmd() *cobra.Command {
	var model, data string
	var batch int
	c := &cobra.Command{
		Use:   "eval",
		Short: "Loss and perplexity of a checkpoint on a text file",
		Long: `Score every token of the text after the first, once: windows of n_positions
tokens side by side, and for the tail one window ending at the last token
(its already-scored positions ignored, so the tail keeps its context).
Report the mean next-token loss in nats and the perplexity exp(loss). A
progress bar shows on a terminal (a line at each tenth otherwise). The
checkpoint directory needs its tokenizer files.`,
		Example: `  seq2gpt lm eval --model runs/tiny/best --data LICENSE`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := NewFlagChecks(cmd.Flags())
			c.Check("batch", AtLeast(1))
			if err := c.Err(); err != nil {
				return err
			}
			return runEval(cmd.OutOrStdout(), cmd.ErrOrStderr(), model, data, batch)
		},
	}
	c.Flags().StringVar(&model, "model", "", "checkpoint directory (required)")
	c.Flags().StringVar(&data, "data", "", "plain-text file (required)")
	c.Flags().IntVar(&batch, "batch", 8, "windows per batch")
	_ = c.MarkFlagRequired("model")
	_ = c.MarkFlagRequired("data")
	return c
}

func runEval(out, errw io.Writer, model, data string, batch int) error {
	m, tok, err := loadModelAndTokenizer(model, errw)
	if err != nil {
		return err
	}
	text, err := datasets.LoadText(data)
	if err != nil {
		return err
	}
	ids := tok.Encode(text)
	if len(ids) < 2 {
		return errors.Errorf("%s: %d token: nothing to score (a token is scored from those before it)", data, len(ids))
	}
	windows := (len(ids) - 1 + m.Config.NPositions - 1) / m.Config.NPositions
	batch = max(1, min(batch, windows))
	// A trainer used only to evaluate: its optimizer never steps.
	opt, err := train.NewSGD(train.SGDConfig{})
	if err != nil {
		return err
	}
	lm := gpt.LM{Model: m}
	tr, err := train.New(lm, train.Config{Optimizer: opt, Schedule: train.Constant(0)})
	if err != nil {
		return err
	}
	defer tr.Close()
	bar := newCounter(errw, windows, "scoring "+strconv.Itoa(windows)+" windows")
	s, err := gpt.EvalTokens(tr, lm, ids, batch, bar.set)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: %d tokens, %d scored (every token after the first)\nloss %.4f nats/token  perplexity %.2f\n",
		data, len(ids), s.Tokens, s.Loss, s.Perplexity)
	return nil
}
