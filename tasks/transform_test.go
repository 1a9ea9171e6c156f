package tasks

import (
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/datasets"
)

// TestTransformLayouts checks each transform's token sequences on GPT's
// template, [s] a $ b [e], with the feature at [e].
func TestTransformLayouts(t *testing.T) {
	tok := wordTokenizer(t)
	body := tinyBody(t, tensor.Float32, tok, 1)
	s, d, e := body.Start, body.Delim, body.Extract
	w := func(text string) []int { return tok.Encode(text) }
	cat := func(parts ...any) []int {
		var out []int
		for _, p := range parts {
			switch v := p.(type) {
			case int:
				out = append(out, v)
			case []int:
				out = append(out, v...)
			}
		}
		return out
	}
	labels := []string{"0", "1"}
	cases := []struct {
		name string
		task Task
		ex   Example
		want [][]int
	}{
		{"classification", Task{Name: "c", Kind: Classification, Labels: labels},
			Example{Text: "the film was good", Label: 1},
			[][]int{cat(s, w("the film was good"), e)}},
		{"entailment", Task{Name: "e", Kind: Entailment, Labels: labels},
			Example{Text: "the cat sat", TextB: "a dog ran", Label: 0},
			[][]int{cat(s, w("the cat sat"), d, w("a dog ran"), e)}},
		{"similarity: both orders", Task{Name: "s", Kind: Similarity, Labels: labels},
			Example{Text: "the cat sat", TextB: "a dog", Label: 1},
			[][]int{cat(s, w("the cat sat"), d, w("a dog"), e), cat(s, w("a dog"), d, w("the cat sat"), e)}},
		{"regression: the similarity transform", Task{Name: "r", Kind: Regression},
			Example{Text: "good", TextB: "bad plot", Label: -1, Score: 2.5},
			[][]int{cat(s, w("good"), d, w("bad plot"), e), cat(s, w("bad plot"), d, w("good"), e)}},
		{"multiple choice: one sequence per choice", Task{Name: "m", Kind: MultipleChoice},
			Example{Text: "the cat sat on the", Choices: []string{"mat", "park", "dog"}, Label: 0},
			[][]int{cat(s, w("the cat sat on the"), d, w("mat"), e), cat(s, w("the cat sat on the"), d, w("park"), e),
				cat(s, w("the cat sat on the"), d, w("dog"), e)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := encode(t, c.task, body, tok, c.ex)
			require.Len(t, in, 1)
			require.Len(t, in[0].Seqs, len(c.want))
			for i, seq := range in[0].Seqs {
				assert.Equal(t, c.want[i], seq.IDs, "sequence %d", i)
				assert.Equal(t, len(seq.IDs)-1, seq.Pool, "the feature is at [e]")
				assert.Equal(t, e, seq.IDs[seq.Pool])
				assert.Nil(t, seq.Types, "GPT has no segment ids")
			}
			assert.Equal(t, c.ex.Label, in[0].Label)
		})
	}
}

// TestEncoderTemplate lays out a pair as an encoder does: [CLS] a [SEP]
// b [SEP], segment ids 0 then 1, the feature at [CLS], one order.
func TestEncoderTemplate(t *testing.T) {
	tok := wordTokenizer(t)
	tmpl := Template{Begin: []int{101}, Sep: []int{102}, End: []int{102}, Pool: PoolFirst, Segments: true, MaxLen: 32}
	task := Task{Name: "s", Kind: Similarity, Labels: []string{"0", "1"}}
	in, _, err := Encode(task, tmpl, tok, []Example{{Text: "the cat", TextB: "a dog ran", Label: 1}})
	require.NoError(t, err)
	require.Len(t, in[0].Seqs, 1, "an encoder reads a symmetric pair once")
	seq := in[0].Seqs[0]
	want := append(append(append(append([]int{101}, tok.Encode("the cat")...), 102), tok.Encode("a dog ran")...), 102)
	assert.Equal(t, want, seq.IDs)
	assert.Equal(t, []int{0, 0, 0, 0, 1, 1, 1, 1}, seq.Types)
	assert.Equal(t, 0, seq.Pool)
	one := tmpl.Layout(tok.Encode("the cat"))
	assert.Equal(t, []int{0, 0, 0, 0}, one.Types)
}

// TestTruncation: the special tokens stay, the longer segment loses its
// last tokens first, and the counts say what was cut.
func TestTruncation(t *testing.T) {
	assertCut := func(a, b, room, wantA, wantB int) {
		t.Helper()
		segs, k := truncate([][]int{make([]int, a), make([]int, b)}, room)
		assert.Equal(t, []int{wantA, wantB}, []int{len(segs[0]), len(segs[1])}, "%d+%d into %d", a, b, room)
		assert.Equal(t, a+b-wantA-wantB, k)
	}
	assertCut(3, 4, 10, 3, 4) // fits
	assertCut(3, 9, 8, 3, 5)  // the longer one alone
	assertCut(6, 9, 8, 4, 4)  // both, longest first, the later on a tie
	assertCut(9, 6, 7, 4, 3)
	assertCut(1, 20, 2, 1, 1) // never empty while room ≥ 2

	seg, _ := truncate([][]int{{1, 2, 3, 4, 5}}, 3)
	assert.Equal(t, []int{1, 2, 3}, seg[0], "the end is cut, the start kept")

	tok := wordTokenizer(t)
	body := tinyBody(t, tensor.Float32, tok, 1) // n_positions 12: 9 text tokens for a pair
	task := Task{Name: "e", Kind: Entailment, Labels: []string{"0", "1"}}
	long := "the film was good the film was bad" // 8 words
	in, tr, err := Encode(task, body.Template(), tok, []Example{
		{ID: "a", Text: long, TextB: "a dog ran", Label: 0}, // 8 + 3 + 3 specials = 14 > 12: the premise loses 2
		{ID: "b", Text: "the cat", TextB: "a dog", Label: 1},
	})
	require.NoError(t, err)
	assert.Equal(t, Truncation{Examples: 1, Tokens: 2, Longest: 14, MaxLen: 12}, tr)
	seq := in[0].Seqs[0].IDs
	require.Len(t, seq, 12)
	assert.Equal(t, body.Start, seq[0])
	assert.Equal(t, body.Delim, seq[7], "the premise kept its first 6 words")
	assert.Equal(t, tok.Encode("the film was good the film"), seq[1:7])
	assert.Equal(t, body.Extract, seq[11])
	assert.Contains(t, tr.String(), "1 examples truncated to 12 tokens (2 tokens cut")
}

// TestEncodeBadInput: each problem names the example and what is wrong.
func TestEncodeBadInput(t *testing.T) {
	tok := wordTokenizer(t)
	body := tinyBody(t, tensor.Float32, tok, 1)
	cls := Task{Name: "sst2", Kind: Classification, Labels: []string{"0", "1"}}
	pair := Task{Name: "rte", Kind: Entailment, Labels: []string{"entailment", "not_entailment"}}
	mc := Task{Name: "cloze", Kind: MultipleChoice}
	cases := []struct {
		name string
		task Task
		exs  []Example
		want string
	}{
		{"empty text", cls, []Example{{ID: "7", Text: "   ", Label: 0}}, "example 1 (id 7): the text is empty"},
		{"empty hypothesis", pair, []Example{{ID: "x", Text: "the cat", TextB: "", Label: 0}}, "the hypothesis is empty"},
		{"label outside the set", pair, []Example{{ID: "x", Text: "the cat", TextB: "a dog", Label: 2}},
			"label 2 is outside the task's labels 0–1 [entailment not_entailment]"},
		{"two texts for one", cls, []Example{{ID: "x", Text: "the cat", TextB: "a dog", Label: 1}}, "takes one text"},
		{"choices differ", mc, []Example{
			{ID: "1", Text: "the cat", Choices: []string{"sat", "ran"}, Label: 0},
			{ID: "2", Text: "the dog", Choices: []string{"sat", "ran", "was"}, Label: 0}},
			"example 2 (id 2): 3 choices where the first example has 2"},
		{"empty choice", mc, []Example{{ID: "1", Text: "the cat", Choices: []string{"sat", " "}, Label: 0}}, "the choice 1 is empty"},
		{"choice label", mc, []Example{{ID: "1", Text: "the cat", Choices: []string{"sat", "ran"}, Label: 2}}, "label 2 does not index its 2 choices"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := Encode(c.task, body.Template(), tok, c.exs)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
	_, _, err := Encode(cls, Template{Begin: []int{1}, End: []int{2}, MaxLen: 2}, tok, []Example{{Text: "good", Label: 0}})
	require.ErrorContains(t, err, "no room")
}

// TestSpecialTokenRows: the start, delimiter, extract and pad tokens are
// appended to a pre-trained vocabulary; the old rows of W_e are kept, the
// new ones drawn from N(0, 0.02); the tied output layer has a logit for
// each new token; the model given is not changed.
func TestSpecialTokenRows(t *testing.T) {
	tok, err := datasets.TrainBPE([]string{strings.Repeat(corpus, 4)}, datasets.BPEConfig{Merges: 40})
	require.NoError(t, err)
	cfg := tinyConfig(tok.VocabSize())
	cfg.NEmbd, cfg.InitializerRange = 64, 0.02
	m, err := newGPT(cfg)
	require.NoError(t, err)
	v := cfg.VocabSize
	before := floats(t, get(t, m.Store, "tokens_embed.weight"))

	body, err := NewGPT(m, tok, 9)
	require.NoError(t, err)
	assert.Equal(t, []int{v, v + 1, v + 2, v + 3}, []int{body.Start, body.Delim, body.Extract, body.Pad})
	assert.Equal(t, v+4, tok.VocabSize())
	assert.Equal(t, v+4, body.Model.Config.VocabSize)
	assert.Equal(t, v, m.Config.VocabSize, "the model given is unchanged")
	after := floats(t, get(t, body.Model.Store, "tokens_embed.weight"))
	require.Len(t, after, (v+4)*64)
	assert.Equal(t, before, after[:v*64], "the pre-trained rows are kept")
	newRows := after[v*64:]
	var mean, sq float64
	for _, x := range newRows {
		mean += x / float64(len(newRows))
		sq += x * x / float64(len(newRows))
	}
	std := math.Sqrt(sq - mean*mean)
	assert.InDelta(t, 0, mean, 0.006, "new rows' mean")
	assert.InDelta(t, 0.02, std, 0.004, "new rows' standard deviation")
	for _, name := range m.Store.Names() {
		if name != "tokens_embed.weight" {
			assert.Equal(t, floats(t, get(t, m.Store, name)), floats(t, get(t, body.Model.Store, name)), name)
		}
	}
	// Text cannot produce the special tokens, and the tied LM head scores them.
	for _, id := range tok.Encode("<|start|> <|delim|> <|extract|> <|pad|>") {
		assert.Less(t, id, v)
	}
	logits := lmLogits(t, body, []int{body.Start, 5, 6, body.Delim, 7, body.Extract})
	assert.Len(t, logits, 6*(v+4))

	// A tokenizer that already has them (a fine-tuned model's) adds nothing.
	again, err := NewGPT(body.Model, tok, 9)
	require.NoError(t, err)
	assert.Same(t, body.Model, again.Model)
	assert.Equal(t, body.Extract, again.Extract)

	_, err = NewGPT(m, wordTokenizer(t), 1)
	require.ErrorContains(t, err, "do not belong together")
}

// TestPoolsAtExtract: the feature of a padded row is the state at its
// [e], whatever follows it.
func TestPoolsAtExtract(t *testing.T) {
	tok := wordTokenizer(t)
	body := tinyBody(t, tensor.Float64, tok, 1)
	m, err := New(body, Task{Name: "c", Kind: Classification, Labels: []string{"0", "1", "2"}}, Config{})
	require.NoError(t, err)
	exs := []Example{{Text: "the film was good", Label: 1}, {Text: "bad", Label: 0}}
	in := encode(t, m.Task, body, tok, exs...)
	short := run(t, m, batchOf(t, m, in, 2, 6, false), blocks.Eval)
	long := run(t, m, batchOf(t, m, in, 3, 12, false), blocks.Eval) // more padding, an empty row
	a, b := output(t, short, "logits"), output(t, long, "logits")
	require.Len(t, a, 6)
	require.Len(t, b, 9)
	assert.InDeltaSlice(t, a, b[:6], 1e-12)
	// Moving the pool off [e] changes the logits: the gather reads Pool.
	in[1].Seqs[0].Pool = 0
	moved := output(t, run(t, m, batchOf(t, m, in, 2, 6, false), blocks.Eval), "logits")
	assert.InDeltaSlice(t, a[:3], moved[:3], 1e-12)
	assert.Greater(t, math.Abs(a[3]-moved[3])+math.Abs(a[4]-moved[4]), 1e-6)
}
