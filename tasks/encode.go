package tasks

import (
	"fmt"
	"math"
	"os"
	"strconv"

	"github.com/pkg/errors"

	"github.com/seq2gpt/seq2gpt/datasets"
)

// Input is one example as a body reads it: its token sequences and its
// target.
type Input struct {
	// Seqs are the example's sequences: one (classification, entailment, a
	// pair in one order), two (a symmetric pair in both orders: A $ B, then
	// B $ A) or one per choice.
	Seqs  []Sequence
	Label int     // −1 when unknown
	Score float64 // regression target; NaN when unknown
}

// Longest is the length of the input's longest sequence.
func (in Input) Longest() int {
	n := 0
	for _, s := range in.Seqs {
		n = max(n, len(s.IDs))
	}
	return n
}

// Truncation counts what Encode cut to fit the body's longest sequence.
type Truncation struct {
	Examples int // examples with at least one sequence cut
	Tokens   int // text tokens removed, over all examples
	Longest  int // the longest input before cutting, special tokens included
	MaxLen   int // the limit
}

func (t Truncation) String() string {
	if t.Examples == 0 {
		return fmt.Sprintf("no example truncated (longest %d of %d tokens)", t.Longest, t.MaxLen)
	}
	return fmt.Sprintf("%d examples truncated to %d tokens (%d tokens cut; the longest had %d)", t.Examples, t.MaxLen, t.Tokens, t.Longest)
}

// Encode tokenizes the examples and lays them out with the body's
// template (see Kind for each transform). An input longer than
// Template.MaxLen is truncated: the special tokens always stay, and the
// longer segment loses its last token first, then the longer of what is
// left (HuggingFace's "longest_first"), until it fits; the counts are
// returned. A segment that tokenizes to nothing, a label outside the
// task's set, a multiple-choice item with a different number of choices
// than the first, or a template that leaves no room for text is an error
// naming the example.
func Encode(task Task, tmpl Template, tok datasets.Tokenizer, exs []Example) ([]Input, Truncation, error) {
	tr := Truncation{MaxLen: tmpl.MaxLen}
	if err := task.Validate(); err != nil {
		return nil, tr, err
	}
	if tok == nil {
		return nil, tr, errors.New("tasks: Encode needs a tokenizer")
	}
	if len(exs) == 0 {
		return nil, tr, errors.Errorf("tasks: %s: no examples", task.Name)
	}
	nseg := 1
	if task.Kind.pairs() || task.Kind == MultipleChoice {
		nseg = 2
	}
	room := tmpl.MaxLen - tmpl.Reserved(nseg)
	if room < nseg {
		return nil, tr, errors.Errorf("tasks: %d special tokens leave no room for %d segments in %d positions", tmpl.Reserved(nseg), nseg, tmpl.MaxLen)
	}
	out := make([]Input, len(exs))
	choices := 0
	for i, ex := range exs {
		where := func(format string, a ...any) error {
			return errors.Errorf("tasks: %s example %d (id %s): %s", task.Name, i+1, ex.ID, fmt.Sprintf(format, a...))
		}
		in := Input{Label: ex.Label, Score: ex.Score}
		if err := checkTarget(task, ex, where); err != nil {
			return nil, tr, err
		}
		encode := func(what, text string) ([]int, error) {
			ids := tok.Encode(text)
			if len(ids) == 0 {
				return nil, where("the %s is empty", what)
			}
			return ids, nil
		}
		a, err := encode(segmentName(task.Kind, 0), ex.Text)
		if err != nil {
			return nil, tr, err
		}
		cut := 0
		// fit truncates the segments of one sequence to the template's room.
		fit := func(segs ...[]int) [][]int {
			n := tmpl.Reserved(len(segs))
			for _, s := range segs {
				n += len(s)
			}
			tr.Longest = max(tr.Longest, n)
			segs, k := truncate(segs, tmpl.MaxLen-tmpl.Reserved(len(segs)))
			cut += k
			return segs
		}
		switch {
		case task.Kind == MultipleChoice:
			if len(ex.Choices) < 2 {
				return nil, tr, where("%d choices, want at least 2", len(ex.Choices))
			}
			if choices == 0 {
				choices = len(ex.Choices)
			} else if len(ex.Choices) != choices {
				return nil, tr, where("%d choices where the first example has %d: every item of a set needs the same number", len(ex.Choices), choices)
			}
			for k, c := range ex.Choices {
				b, err := encode("choice "+strconv.Itoa(k), c)
				if err != nil {
					return nil, tr, err
				}
				in.Seqs = append(in.Seqs, tmpl.Layout(fit(a, b)...))
			}
		case task.Kind.pairs():
			b, err := encode(segmentName(task.Kind, 1), ex.TextB)
			if err != nil {
				return nil, tr, err
			}
			s := fit(a, b)
			in.Seqs = append(in.Seqs, tmpl.Layout(s[0], s[1]))
			if task.Kind.symmetric() && tmpl.BothOrders {
				in.Seqs = append(in.Seqs, tmpl.Layout(s[1], s[0]))
			}
		default:
			if ex.TextB != "" {
				return nil, tr, where("a %s task takes one text, got a second (%q)", task.Kind, short(ex.TextB))
			}
			in.Seqs = append(in.Seqs, tmpl.Layout(fit(a)...))
		}
		tr.Tokens += cut
		if cut > 0 {
			tr.Examples++
		}
		out[i] = in
	}
	return out, tr, nil
}

// checkTarget checks an example's label or score against the task.
func checkTarget(task Task, ex Example, where func(string, ...any) error) error {
	switch task.Kind {
	case Regression:
		if math.IsInf(ex.Score, 0) {
			return where("score %v is not finite", ex.Score)
		}
	case MultipleChoice:
		if ex.Label < -1 || ex.Label >= len(ex.Choices) {
			return where("label %d does not index its %d choices", ex.Label, len(ex.Choices))
		}
	default:
		if ex.Label < -1 || ex.Label >= len(task.Labels) {
			return where("label %d is outside the task's labels 0–%d %v", ex.Label, len(task.Labels)-1, task.Labels)
		}
	}
	return nil
}

func segmentName(k Kind, i int) string {
	switch k {
	case Entailment:
		return [2]string{"premise", "hypothesis"}[i]
	case MultipleChoice:
		return "context"
	case Similarity, Regression:
		return [2]string{"first sentence", "second sentence"}[i]
	}
	return "text"
}

// truncate cuts the segments to room tokens in all, the longest first
// (the later one on a tie), from their ends, and returns them with the
// number of tokens cut. room must be at least the number of segments.
func truncate(segs [][]int, room int) ([][]int, int) {
	total := 0
	for _, s := range segs {
		total += len(s)
	}
	if total <= room {
		return segs, 0
	}
	out := make([][]int, len(segs))
	copy(out, segs)
	for n := total; n > room; n-- {
		longest := 0
		for i, s := range out {
			if len(s) >= len(out[longest]) {
				longest = i
			}
		}
		out[longest] = out[longest][:len(out[longest])-1]
	}
	return out, total - room
}

func short(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

func itoa(i int) string { return strconv.Itoa(i) }

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
