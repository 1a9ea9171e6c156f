package tasks

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/gpt"
	"github.com/seq2gpt/seq2gpt/internal/gradcheck"
)

var pairExamples = []Example{
	{ID: "1", Text: "the cat sat on the mat", TextB: "a dog ran", Label: 1, Score: 3.5},
	{ID: "2", Text: "a great cast", TextB: "the film was not good at all", Label: 0, Score: 0.5},
	{ID: "3", Text: "bad", TextB: "poor plot", Label: 2, Score: 4},
}

// TestSimilaritySumsBothOrders: a similarity model's logits are the head
// on h([s] A $ B [e]) + h([s] B $ A [e]); the head has no bias, so they
// equal the sum of an entailment model's logits (the same weights, one
// order each) over the two orders.
func TestSimilaritySumsBothOrders(t *testing.T) {
	tok := wordTokenizer(t)
	body := tinyBody(t, tensor.Float64, tok, 2)
	labels := []string{"a", "b", "c"}
	sim, err := New(body, Task{Name: "s", Kind: Similarity, Labels: labels}, Config{})
	require.NoError(t, err)
	ent, err := New(body, Task{Name: "e", Kind: Entailment, Labels: labels}, Config{})
	require.NoError(t, err, "the entailment model shares the similarity model's head")

	got := output(t, run(t, sim, batchOf(t, sim, encode(t, sim.Task, body, tok, pairExamples...), 4, 12, false), blocks.Eval), "logits")
	swapped := make([]Example, len(pairExamples))
	for i, ex := range pairExamples {
		swapped[i] = ex
		swapped[i].Text, swapped[i].TextB = ex.TextB, ex.Text
	}
	ab := output(t, run(t, ent, batchOf(t, ent, encode(t, ent.Task, body, tok, pairExamples...), 3, 12, false), blocks.Eval), "logits")
	ba := output(t, run(t, ent, batchOf(t, ent, encode(t, ent.Task, body, tok, swapped...), 3, 12, false), blocks.Eval), "logits")
	require.Len(t, got, 4*3)
	for i := range ab {
		assert.InDelta(t, ab[i]+ba[i], got[i], 1e-12, "logit %d", i)
		assert.Greater(t, math.Abs(ab[i]-ba[i]), 1e-6, "the two orders differ (logit %d)", i)
	}
}

// TestMultipleChoiceSoftmax: one score per choice, each the head on that
// choice's sequence alone (so permuting the choices permutes the scores),
// and the loss is the cross-entropy of the softmax over the choices.
func TestMultipleChoiceSoftmax(t *testing.T) {
	tok := wordTokenizer(t)
	body := tinyBody(t, tensor.Float64, tok, 1)
	m, err := New(body, Task{Name: "m", Kind: MultipleChoice}, Config{})
	require.NoError(t, err)
	assert.Equal(t, HeadLayout{Prefix: "multiple_choice_head.summary", Bias: true}, m.HeadLayout())
	exs := []Example{
		{Text: "the cat sat on the", Choices: []string{"mat", "park", "dog", "film"}, Label: 0},
		{Text: "a great", Choices: []string{"cast", "plot", "film", "cat"}, Label: 2},
	}
	p := run(t, m, batchOf(t, m, encode(t, m.Task, body, tok, exs...), 2, 10, false), blocks.Eval)
	scores := output(t, p, "logits")
	require.Len(t, scores, 8)
	want := 0.0
	for r, ex := range exs {
		row := scores[r*4 : r*4+4]
		var z float64
		for _, s := range row {
			z += math.Exp(s)
		}
		want += -math.Log(math.Exp(row[ex.Label])/z) / 2
	}
	assert.InDelta(t, want, output(t, p, "task_loss")[0], 1e-12)

	perm := []int{2, 0, 3, 1}
	shuffled := exs[0]
	shuffled.Choices = []string{exs[0].Choices[2], exs[0].Choices[0], exs[0].Choices[3], exs[0].Choices[1]}
	shuffled.Label = 1
	q := output(t, run(t, m, batchOf(t, m, encode(t, m.Task, body, tok, shuffled), 1, 10, false), blocks.Eval), "logits")
	for k, j := range perm {
		assert.InDelta(t, scores[j], q[k], 1e-12, "choice %d", k)
	}
}

// TestAuxiliaryObjective: L₃ = L₂ + λ·L₁ in training, with L₁ the
// language model's loss on the same sequences (what gpt.LM computes on
// them with next-token targets); λ = 0 is the plain supervised loss, built
// without the LM head; evaluation is L₂ whatever λ.
func TestAuxiliaryObjective(t *testing.T) {
	tok := wordTokenizer(t)
	body := tinyBody(t, tensor.Float64, tok, 2)
	task := Task{Name: "c", Kind: Classification, Labels: []string{"neg", "pos"}}
	exs := []Example{{Text: "the film was good", Label: 1}, {Text: "it was not good at all", Label: 0}, {Text: "bad", Label: 0}}
	half, err := New(body, task, Config{LMCoef: 0.5})
	require.NoError(t, err)
	off, err := New(body, task, Config{LMCoef: 0})
	require.NoError(t, err)
	in := encode(t, task, body, tok, exs...)

	p := run(t, half, batchOf(t, half, in, 4, 10, true), blocks.Train)
	l2, l1 := output(t, p, "task_loss")[0], output(t, p, "aux_loss")[0]
	loss, err := p.Loss()
	require.NoError(t, err)
	assert.InDelta(t, l2+0.5*l1, loss, 1e-12)
	assert.Greater(t, l1, 0.1)

	// L₁ is gpt.LM's loss on the same ids, targets the next token of each sequence.
	var ids []int
	var targets []int
	for r := range 4 {
		row := make([]int, 10)
		tg := make([]int, 10)
		for i := range row {
			row[i], tg[i] = body.Pad, gpt.IgnoreIndex
		}
		if r < len(in) {
			s := in[r].Seqs[0].IDs
			copy(row, s)
			for i := 0; i+1 < len(s); i++ {
				tg[i] = s[i+1]
			}
		}
		ids, targets = append(ids, row...), append(targets, tg...)
	}
	lm := gpt.LM{Model: body.Model}
	lb, err := lm.Batch(4, 10, ids, targets)
	require.NoError(t, err)
	lp := run(t, lm, lb, blocks.Eval)
	lmLoss, err := lp.Loss()
	require.NoError(t, err)
	assert.InDelta(t, lmLoss, l1, 1e-12)

	// λ = 0: the loss is L₂ and the graph takes no LM targets.
	ob := batchOf(t, off, in, 4, 10, true)
	assert.NotContains(t, ob.Inputs, "lm_targets")
	q := run(t, off, ob, blocks.Train)
	assert.NotContains(t, q.Outputs(), "aux_loss")
	l, err := q.Loss()
	require.NoError(t, err)
	assert.InDelta(t, l2, l, 1e-12, "λ = 0 is the supervised loss")
	logits := output(t, q, "logits")
	var ce float64
	for r, ex := range exs {
		a, b := logits[2*r], logits[2*r+1]
		z := math.Log(math.Exp(a) + math.Exp(b))
		ce += (z - logits[2*r+ex.Label]) / 3
	}
	assert.InDelta(t, ce, l, 1e-12, "L₂ is the mean cross-entropy over the labelled rows")

	// Evaluation is L₂ alone.
	e := run(t, half, batchOf(t, half, in, 4, 10, false), blocks.Eval)
	el, err := e.Loss()
	require.NoError(t, err)
	assert.InDelta(t, l2, el, 1e-12)
}

// TestRegressionLoss: STS-B's head is one output, its loss the mean
// squared error over the rows that count.
func TestRegressionLoss(t *testing.T) {
	tok := wordTokenizer(t)
	body := tinyBody(t, tensor.Float64, tok, 1)
	m, err := New(body, Task{Name: "r", Kind: Regression}, Config{})
	require.NoError(t, err)
	in := encode(t, m.Task, body, tok, pairExamples...)
	p := run(t, m, batchOf(t, m, in, 4, 12, false), blocks.Eval)
	y := output(t, p, "logits")
	require.Len(t, y, 4)
	var mse float64
	for i, ex := range pairExamples {
		mse += (y[i] - ex.Score) * (y[i] - ex.Score) / 3
	}
	l, err := p.Loss()
	require.NoError(t, err)
	assert.InDelta(t, mse, l, 1e-12)
}

// TestGradientHeads checks every gradient of each head's training loss
// (with L₁ at λ = 0.5) against finite differences, in float64: the
// classification, similarity (both orders), multiple-choice and
// regression heads over a one-layer GPT body.
func TestGradientHeads(t *testing.T) {
	tok := wordTokenizer(t)
	labels := []string{"a", "b", "c"}
	mcExs := []Example{
		{Text: "the cat sat", Choices: []string{"mat", "park", "dog"}, Label: 2},
		{Text: "a great", Choices: []string{"cast", "plot", "film"}, Label: 0},
	}
	cases := []struct {
		task Task
		exs  []Example
		len  int
	}{
		{Task{Name: "classification", Kind: Classification, Labels: labels}, []Example{{Text: "the film was good", Label: 2}, {Text: "bad", Label: 1}}, 6},
		{Task{Name: "similarity", Kind: Similarity, Labels: labels}, pairExamples[:2], 12},
		{Task{Name: "multiple-choice", Kind: MultipleChoice}, mcExs, 7},
		{Task{Name: "regression", Kind: Regression}, pairExamples[1:], 12},
	}
	for _, c := range cases {
		t.Run(c.task.Name, func(t *testing.T) {
			body := tinyBody(t, tensor.Float64, wordTokenizer(t), 1)
			m, err := New(body, c.task, Config{LMCoef: 0.5})
			require.NoError(t, err)
			b := batchOf(t, m, encode(t, c.task, body, tok, c.exs...), len(c.exs)+1, c.len, true)
			key := b.Key
			key.Mode = blocks.Train // dropout is 0: the training graph, L₃ with L₁
			g := blocks.NewGraph(m.Store(), blocks.Train, 0)
			built, err := m.Build(g, key)
			require.NoError(t, err)
			for name, n := range built.Inputs {
				require.NoError(t, G.Let(n, b.Inputs[name]))
			}
			_, params := g.Params()
			res, err := gradcheck.Check(g.G, []*G.Node{built.Loss}, params, gradcheck.Config{Tol: 1e-6, MaxProbes: 40})
			require.NoError(t, err)
			t.Logf("%s: max error %.2g over %d probes (%s)", c.task.Name, res.MaxErr, res.Probes, res.Where)
		})
	}
}
