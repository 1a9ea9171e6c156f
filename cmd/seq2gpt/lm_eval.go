package main

import (
	"fmt"
	"io"
	"math"
	"os"

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
		Long: `Cut the text into windows of n_positions tokens (each token after the first
predicted once) and report the mean next-token loss in nats and the
perplexity exp(loss). The checkpoint directory needs its tokenizer files.`,
		Example: `  seq2gpt lm eval --model runs/tiny/best --data held-out.txt`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runEval(cmd.OutOrStdout(), model, data, batch)
		},
	}
	c.Flags().StringVar(&model, "model", "", "checkpoint directory (required)")
	c.Flags().StringVar(&data, "data", "", "plain-text file (required)")
	c.Flags().IntVar(&batch, "batch", 8, "windows per batch")
	_ = c.MarkFlagRequired("model")
	_ = c.MarkFlagRequired("data")
	return c
}

func runEval(out io.Writer, model, data string, batch int) error {
	dir, err := modelDir(model, os.Stderr)
	if err != nil {
		return err
	}
	m, err := gpt.Load(dir)
	if err != nil {
		return err
	}
	tok, ok, err := loadTokenizer(dir)
	if err != nil {
		return err
	}
	if !ok {
		return errors.Errorf("%s has no tokenizer files", dir)
	}
	text, err := datasets.LoadText(data)
	if err != nil {
		return err
	}
	ids := tok.Encode(text)
	w, err := datasets.NewLMWindows(ids, m.Config.NPositions, 0)
	if err != nil {
		return errors.Wrap(err, data)
	}
	batch = max(1, min(batch, w.Len()))
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
	loss, err := gpt.EvalLoss(tr, lm, w, batch, 0)
	if err != nil {
		return err
	}
	scored := (w.Len() / batch) * batch * w.NCtx
	fmt.Fprintf(out, "%s: %d tokens, %d scored\nloss %.4f nats/token  perplexity %.2f\n", data, len(ids), scored, loss, math.Exp(loss))
	return nil
}
