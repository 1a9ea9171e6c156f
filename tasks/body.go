package tasks

import (
	G "gorgonia.org/gorgonia"

	"github.com/seq2gpt/seq2gpt/blocks"
)

// Body is the pre-trained network under a task head, seen from the task:
// how it lays out an input's token segments, and the graph that turns a
// batch of laid-out sequences into one feature vector each. GPT (the
// extract token's final state, and the language-model loss on the same
// sequences as an auxiliary objective) is one; an encoder such as BERT
// (the pooled [CLS] state, segment ids, a padding mask) is another. The
// heads, losses, metrics, batching and training are the task layer's and
// the same for every body.
type Body interface {
	// Store holds the body's weights; the head's are added beside them, so
	// one optimizer trains both.
	Store() *blocks.Store
	// Template is how the body reads an input's segments: its special
	// tokens, where its feature is taken, its longest sequence.
	Template() Template
	// Width is the size d of a feature vector.
	Width() int
	// Features adds the body over n sequences of steps tokens to g. It
	// declares the inputs it reads (Feed gives their values) and returns
	// each sequence's feature [n, d] at its Sequence.Pool position and,
	// when aux is set, the body's auxiliary loss on the same sequences
	// (GPT's language-model loss L₁; nil for a body without one).
	Features(g *blocks.Graph, n, steps int, aux bool) (BodyGraph, error)
	// Feed returns the values of Features' inputs for seqs, each padded to
	// steps tokens; the rows past len(seqs) up to n are empty (all padding,
	// no auxiliary targets).
	Feed(seqs []Sequence, n, steps int, aux bool) (map[string]G.Value, error)
	// Head names the head's parameters as the body's HuggingFace head
	// model names them (GPT: "score" without bias for classification,
	// "multiple_choice_head.summary" with bias for multiple choice).
	Head(k Kind) HeadLayout
}

// BodyGraph is what Body.Features adds to a graph.
type BodyGraph struct {
	Inputs   map[string]*G.Node
	Features *G.Node // [n, d]
	Aux      *G.Node // scalar, or nil
}

// HeadLayout is a head's parameter prefix and whether it has a bias.
type HeadLayout struct {
	Prefix string
	Bias   bool
}

// Pool is where a body takes a sequence's feature.
type Pool int

const (
	// PoolLast is the sequence's last token: GPT's extract token [e].
	PoolLast Pool = iota
	// PoolFirst is the first: BERT's [CLS].
	PoolFirst
)

// Template is how a body lays out the segments of one input as a token
// sequence:
//
//	Begin a End                 one segment
//	Begin a Sep b End           two
//
// GPT-1 (§3.3, Figure 1): Begin [s], Sep $, End [e], the feature at [e].
// BERT: Begin [CLS], Sep [SEP], End [SEP], segment ids 0 up to the first
// [SEP] and 1 after it, the feature at [CLS].
type Template struct {
	Begin, Sep, End []int
	Pool            Pool
	// Segments gives each token a segment id (0 through the first Sep,
	// 1 after): BERT's token types.
	Segments bool
	// BothOrders reads a pair of a symmetric task (similarity, STS-B) in
	// both orders and adds the two features (GPT-1 §3.3: "there is no
	// inherent ordering of the two sentences"); otherwise one order.
	BothOrders bool
	// MaxLen is the longest sequence the body reads (n_positions).
	MaxLen int
}

// Reserved is the number of special tokens the template adds to an input
// of n segments.
func (t Template) Reserved(n int) int {
	r := len(t.Begin) + len(t.End)
	if n > 1 {
		r += (n - 1) * len(t.Sep)
	}
	return r
}

// Layout lays out the segments as one sequence.
func (t Template) Layout(segments ...[]int) Sequence {
	var s Sequence
	s.IDs = append(s.IDs, t.Begin...)
	for i, seg := range segments {
		if i > 0 {
			s.IDs = append(s.IDs, t.Sep...)
		}
		s.IDs = append(s.IDs, seg...)
	}
	s.IDs = append(s.IDs, t.End...)
	if t.Segments {
		second := len(s.IDs) // where segment 1 starts: after the first Sep
		if len(segments) > 1 {
			second = len(t.Begin) + len(segments[0]) + len(t.Sep)
		}
		s.Types = make([]int, len(s.IDs))
		for i := second; i < len(s.IDs); i++ {
			s.Types[i] = 1
		}
	}
	if t.Pool == PoolLast {
		s.Pool = len(s.IDs) - 1
	}
	return s
}

// Sequence is one laid-out token sequence.
type Sequence struct {
	IDs   []int
	Types []int // segment ids, when the template has them
	Pool  int   // the position whose final state is the feature
}
