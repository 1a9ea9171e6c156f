package tasks

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/safetensors"
)

// hfReference is a fixture's reference.json, written by
// testdata/gen_heads.py with torch modules built to transformers'
// structure.
type hfReference struct {
	Items []struct {
		Context []int   `json:"context"`
		Answers [][]int `json:"answers"`
	} `json:"items"`
	MCLabels   []int       `json:"mc_labels"`
	MCLogits   []float64   `json:"mc_logits"`
	MCLoss     float64     `json:"mc_loss"`
	LMLoss     float64     `json:"lm_loss"`
	Segments   [][2][]int  `json:"segments"`
	Labels     []float64   `json:"labels"`
	Logits     []float64   `json:"logits"`
	Loss       float64     `json:"loss"`
	LogitsBoth []float64   `json:"logits_both_orders"`
	LossBoth   float64     `json:"loss_both_orders"`
	IDs        interface{} `json:"ids"`
}

func readReference(t *testing.T, dir string) hfReference {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "reference.json"))
	require.NoError(t, err)
	var r hfReference
	require.NoError(t, json.Unmarshal(b, &r))
	return r
}

// The fixtures' special tokens: the last four ids of a 60-token vocabulary.
var fixtureTokens = GPTTokens{Start: 56, Delim: 57, Extract: 58, Pad: 59}

// hfCase is one fixture: the task its head is for, and the inputs of its
// reference.
type hfCase struct {
	dir    string
	task   Task
	inputs func(m *Model, r hfReference) []Input
}

func hfCases() []hfCase {
	pairs := func(m *Model, r hfReference) []Input {
		tmpl := m.Body.Template()
		var in []Input
		for i, s := range r.Segments {
			seqs := []Sequence{tmpl.Layout(s[0], s[1])}
			if m.Task.Kind.symmetric() && tmpl.BothOrders {
				seqs = append(seqs, tmpl.Layout(s[1], s[0]))
			}
			in = append(in, Input{Seqs: seqs, Label: int(r.Labels[i]), Score: r.Labels[i]})
		}
		return in
	}
	return []hfCase{
		{"hf-double-heads", Choice("choice"), func(m *Model, r hfReference) []Input {
			body := m.Body.(*GPT)
			var in []Input
			for i, it := range r.Items {
				var seqs []Sequence
				for _, a := range it.Answers {
					seqs = append(seqs, body.Template().Layout(it.Context, a))
				}
				in = append(in, Input{Seqs: seqs, Label: r.MCLabels[i]})
			}
			return in
		}},
		{"hf-mnli", Task{Name: "mnli", Kind: Entailment, Labels: []string{"contradiction", "entailment", "neutral"}}, pairs},
		{"hf-stsb", Task{Name: "stsb", Kind: Regression}, pairs},
	}
}

// TestHFParity loads each torch-written fixture — OpenAIGPTDoubleHeadsModel,
// OpenAIGPTForSequenceClassification (3 labels) and its regression form
// — and compares the head's outputs and losses with torch's: the
// multiple-choice logits, L₂ and the LM loss L₁ (HF's shifted labels);
// the entailment logits pooled at [e] (HF's last non-pad token) and the
// cross-entropy; the regression's value over both orders (the HF module
// run on A $ B and on B $ A, summed) and its squared error.
func TestHFParity(t *testing.T) {
	for _, c := range hfCases() {
		t.Run(c.dir, func(t *testing.T) {
			dir := filepath.Join("testdata", c.dir)
			r := readReference(t, dir)
			task := c.task
			m, err := LoadGPT(dir, &task, &fixtureTokens)
			require.NoError(t, err)
			in := c.inputs(m, r)
			b := batchOf(t, m, in, len(in), 12, true)
			p := run(t, m, b, blocks.Train) // every dropout of the fixtures is 0
			logits := output(t, p, "logits")
			l2 := output(t, p, "task_loss")[0]
			var worst float64
			check := func(what string, want, got []float64) {
				require.Len(t, got, len(want), what)
				for i := range want {
					assert.InDelta(t, want[i], got[i], 1e-4, "%s %d", what, i)
					worst = max(worst, abs(want[i]-got[i]))
				}
			}
			switch task.Kind {
			case MultipleChoice:
				check("mc_logits", r.MCLogits, logits)
				check("mc_loss", []float64{r.MCLoss}, []float64{l2})
				check("lm_loss", []float64{r.LMLoss}, output(t, p, "aux_loss"))
			case Regression:
				check("logits (both orders)", r.LogitsBoth, logits)
				check("loss (both orders)", []float64{r.LossBoth}, []float64{l2})
			default:
				check("logits", r.Logits, logits)
				check("loss", []float64{r.Loss}, []float64{l2})
			}
			t.Logf("%s: max |torch − seq2gpt| %.2g", c.dir, worst)
		})
	}
}

// TestHFRoundTrip saves each loaded fixture and finds the same tensors
// under the same names, and the config.json keys transformers reads with
// the same values; the saved directory loads back (from its task.json)
// to the same outputs.
func TestHFRoundTrip(t *testing.T) {
	for _, c := range hfCases() {
		t.Run(c.dir, func(t *testing.T) {
			dir := filepath.Join("testdata", c.dir)
			task := c.task
			m, err := LoadGPT(dir, &task, &fixtureTokens)
			require.NoError(t, err)
			out := t.TempDir()
			if d := os.Getenv("TASKS_HF_CHECK_DIR"); d != "" {
				out = filepath.Join(d, c.dir)
			}
			require.NoError(t, m.Save(out))

			want, _, err := safetensors.Read(filepath.Join(dir, "model.safetensors"))
			require.NoError(t, err)
			got, _, err := safetensors.Read(filepath.Join(out, "model.safetensors"))
			require.NoError(t, err)
			assert.Equal(t, slices.Sorted(maps.Keys(want)), slices.Sorted(maps.Keys(got)), "tensor names")
			for name, w := range want {
				if g, ok := got[name]; ok {
					assert.Equal(t, w.Shape(), g.Shape(), name)
					assert.Equal(t, w.Data(), g.Data(), name)
				}
			}
			var wc, gc map[string]any
			readJSON(t, filepath.Join(dir, "config.json"), &wc)
			readJSON(t, filepath.Join(out, "config.json"), &gc)
			delete(wc, "torch_dtype")
			for k, v := range wc {
				assert.Equal(t, v, gc[k], "config.json %s", k)
			}

			back, err := LoadGPT(out, nil, nil)
			require.NoError(t, err)
			assert.Equal(t, m.Task, back.Task)
			assert.Equal(t, m.Config, back.Config)
			r := readReference(t, dir)
			in := c.inputs(m, r)
			a := output(t, run(t, m, batchOf(t, m, in, len(in), 12, false), blocks.Eval), "logits")
			b := output(t, run(t, back, batchOf(t, back, in, len(in), 12, false), blocks.Eval), "logits")
			assert.Equal(t, a, b)
			if os.Getenv("TASKS_HF_CHECK_DIR") != "" {
				writeCheckReference(t, out, m, in, a)
			}
		})
	}
}

// writeCheckReference writes what gen_heads.py --check compares: the
// padded ids (for a pair in both orders, the second order as
// "ids_swapped"), the [e] positions, and this package's logits.
func writeCheckReference(t *testing.T, dir string, m *Model, in []Input, logits []float64) {
	pad := m.Body.(*GPT).Pad
	padded := func(s Sequence) []int {
		row := append([]int(nil), s.IDs...)
		for len(row) < 12 {
			row = append(row, pad)
		}
		return row
	}
	ref := map[string]any{"logits": logits}
	if m.Task.Kind == MultipleChoice {
		var rows [][][]int
		var exts [][]int
		for _, x := range in {
			var r [][]int
			var e []int
			for _, s := range x.Seqs {
				r, e = append(r, padded(s)), append(e, s.Pool)
			}
			rows, exts = append(rows, r), append(exts, e)
		}
		ref["ids"], ref["extract"] = rows, exts
	} else {
		var ids, swapped [][]int
		for _, x := range in {
			ids = append(ids, padded(x.Seqs[0]))
			if len(x.Seqs) == 2 {
				swapped = append(swapped, padded(x.Seqs[1]))
			}
		}
		ref["ids"] = ids
		if swapped != nil {
			ref["ids_swapped"] = swapped
		}
	}
	b, err := json.Marshal(ref)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "reference.json"), b, 0o644))
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, v))
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// TestLoadGPTErrors: a directory that does not fit the task says why.
func TestLoadGPTErrors(t *testing.T) {
	mnli := filepath.Join("testdata", "hf-mnli")
	two := Task{Name: "rte", Kind: Entailment, Labels: []string{"entailment", "not_entailment"}}
	_, err := LoadGPT(mnli, &two, &fixtureTokens)
	require.ErrorContains(t, err, "the head score.weight has shape (3, 32), task rte needs (2, 32)")
	mc := Choice("choice")
	_, err = LoadGPT(mnli, &mc, &fixtureTokens)
	require.ErrorContains(t, err, "holds a OpenAIGPTForSequenceClassification, a multiple-choice task needs a OpenAIGPTDoubleHeadsModel")
	_, err = LoadGPT(mnli, nil, &fixtureTokens)
	require.ErrorContains(t, err, "has no task.json: say which task its head is for")
	task := Task{Name: "mnli", Kind: Entailment, Labels: []string{"contradiction", "entailment", "neutral"}}
	_, err = LoadGPT(mnli, &task, nil)
	require.ErrorContains(t, err, "give the special tokens' ids")
	_, err = LoadGPT(mnli, &task, &GPTTokens{Start: 56, Delim: 57, Extract: 58, Pad: 60})
	require.ErrorContains(t, err, "special token id 60 is outside the vocabulary of 60")
	_, err = LoadGPT(filepath.Join("..", "gpt", "testdata", "hf-gelu"), &task, &fixtureTokens)
	require.ErrorContains(t, err, "holds a OpenAIGPTLMHeadModel")
}
