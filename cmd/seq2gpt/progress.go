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
	// stepTokens, when set, is the input tokens of one step, counted
	// instead of the loop's tokens (its batches' weights, which for a
	// masked LM are the 15% that are targets).
	stepTokens int64
	done       int
}

func newProgress(total, done, logEvery int) *progress {
	p := &progress{w: os.Stderr, logEvery: logEvery, done: done}
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
	tps := s.TokensPerSec
	if p.stepTokens > 0 && s.Elapsed > 0 {
		tps = float64(int64(s.Step-p.done)*p.stepTokens) / s.Elapsed.Seconds()
	}
	desc := fmt.Sprintf("loss %.3f  %.0f tok/s  lr %.2e", s.Loss, tps, s.LR)
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
