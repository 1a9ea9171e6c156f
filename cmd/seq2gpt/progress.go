package main

import (
	"fmt"
	"io"
	"os"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/seq2gpt/seq2gpt/train"
)

// progress reports a training run: a progress bar with ETA, loss, tokens/s
// and learning rate on a terminal, and a plain line per evaluation (and
// every logEvery steps) when output goes to a file or a pipe.
type progress struct {
	w        io.Writer
	bar      *progressbar.ProgressBar
	logEvery int
	// metrics, if set, writes an evaluation's metrics ("accuracy 0.8125
	// loss 0.4012"); the default is a language model's loss and perplexity.
	metrics func(map[string]float64) string
}

func newProgress(total, done, logEvery int) *progress {
	p := &progress{w: os.Stderr, logEvery: logEvery}
	if term.IsTerminal(int(os.Stderr.Fd())) {
		p.bar = progressbar.NewOptions(total,
			progressbar.OptionSetWriter(os.Stderr),
			progressbar.OptionSetDescription("training"),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionFullWidth(),
			progressbar.OptionThrottle(100_000_000),
		)
		_ = p.bar.Set(done)
	}
	return p
}

func (p *progress) step(s train.StepInfo) {
	desc := fmt.Sprintf("loss %.3f  %.0f tok/s  lr %.2e", s.Loss, s.TokensPerSec, s.LR)
	if p.bar != nil {
		p.bar.Describe(desc)
		_ = p.bar.Set(s.Step)
		return
	}
	if p.logEvery > 0 && s.Step%p.logEvery == 0 {
		fmt.Fprintf(p.w, "step %d/%d  %s\n", s.Step, s.TotalSteps, desc)
	}
}

func (p *progress) eval(e train.EvalInfo) {
	best := ""
	if e.Best {
		best = "  (best)"
	}
	line := fmt.Sprintf("eval step %d  valid loss %.4f  ppl %.2f%s", e.Step, e.Metrics["loss"], e.Metrics["ppl"], best)
	if p.metrics != nil {
		line = fmt.Sprintf("eval step %d  %s%s", e.Step, p.metrics(e.Metrics), best)
	}
	if p.bar != nil {
		_ = p.bar.Clear()
	}
	fmt.Fprintln(p.w, line)
}

func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
		fmt.Fprintln(p.w)
	}
}
