package main

import (
	"fmt"
	"io"
	"os"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/seq2gpt/seq2gpt/train"
)

// isTerminal reports whether w (a reader or a writer) is a terminal.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// newBar is a progress bar on w when w is a terminal (nil otherwise).
func newBar(w io.Writer, total int, desc string) *progressbar.ProgressBar {
	if !isTerminal(w) {
		return nil
	}
	return progressbar.NewOptions(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionFullWidth(),
		progressbar.OptionThrottle(100_000_000),
	)
}

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
	// metrics, if set, writes an evaluation's metrics ("accuracy 0.8125
	// loss 0.4012"); the default is a language model's loss and perplexity.
	metrics func(map[string]float64) string
}

func newProgress(w io.Writer, total, done, logEvery int) *progress {
	p := &progress{w: w, logEvery: logEvery, bar: newBar(w, total, "training"), done: done}
	if p.bar != nil {
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
	if p.metrics != nil {
		line = fmt.Sprintf("eval step %d  %s%s", e.Step, p.metrics(e.Metrics), best)
	}
	p.line(line)
}

// line prints a line of its own (an evaluation), above the bar.
func (p *progress) line(s string) {
	if p.bar != nil {
		_ = p.bar.Clear()
	}
	fmt.Fprintln(p.w, s)
}

func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
		fmt.Fprintln(p.w)
	}
}

// counter reports progress through a known amount of work (windows
// evaluated): a bar on a terminal, else a line at each tenth.
type counter struct {
	w     io.Writer
	what  string
	bar   *progressbar.ProgressBar
	tenth int
}

func newCounter(w io.Writer, total int, what string) *counter {
	return &counter{w: w, what: what, bar: newBar(w, total, what)}
}

func (c *counter) set(done, total int) {
	if c.bar != nil {
		_ = c.bar.Set(done)
		if done == total {
			_ = c.bar.Finish()
			fmt.Fprintln(c.w)
		}
		return
	}
	if t := 10 * done / total; t > c.tenth {
		c.tenth = t
		fmt.Fprintf(c.w, "%s: %d/%d (%d%%)\n", c.what, done, total, 100*done/total)
	}
}
