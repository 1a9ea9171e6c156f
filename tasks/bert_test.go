package tasks

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/bert"
	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/internal/gradcheck"
	"github.com/seq2gpt/seq2gpt/safetensors"
	"github.com/seq2gpt/seq2gpt/train"
)

// bertReference is reference.json of testdata/hf-bert-seqcls and
// hf-bert-mc (gen_bert_heads.py).
type bertReference struct {
	Seqs   json.RawMessage `json:"seqs"`
	Types  json.RawMessage `json:"types"`
	Labels []int           `json:"labels"`
	Logits []float64       `json:"logits"`
	Loss   float64         `json:"loss"`
}

// The BERT fixtures' special tokens (a vocabulary of 50).
var bertFixtureSpecials = bert.Specials{PAD: 0, CLS: 1, SEP: 2, MASK: 3}

// TestBERTHeadsMatchTorch loads torch-written BertForSequenceClassification
// and BertForMultipleChoice directories (modules written to
// modeling_bert) and compares the logits and the loss on padded batches
// of [CLS] a [SEP] b [SEP] with segment ids; saving the model again gives
// the same tensors under the same names.
func TestBERTHeadsMatchTorch(t *testing.T) {
	nli := Task{Name: "nli", Kind: Entailment, Labels: []string{"contradiction", "entailment", "neutral"}}
	cloze := Choice("cloze")
	for _, c := range []struct {
		dir  string
		task Task
	}{{"hf-bert-seqcls", nli}, {"hf-bert-mc", cloze}} {
		t.Run(c.dir, func(t *testing.T) {
			dir := filepath.Join("testdata", c.dir)
			b, err := os.ReadFile(filepath.Join(dir, "reference.json"))
			require.NoError(t, err)
			var ref bertReference
			require.NoError(t, json.Unmarshal(b, &ref))
			m, err := LoadBERT(dir, bertFixtureSpecials, &c.task)
			require.NoError(t, err)
			var inputs []Input
			if c.task.Kind == MultipleChoice {
				var seqs, types [][][]int
				require.NoError(t, json.Unmarshal(ref.Seqs, &seqs))
				require.NoError(t, json.Unmarshal(ref.Types, &types))
				for i := range seqs {
					in := Input{Label: ref.Labels[i]}
					for k := range seqs[i] {
						in.Seqs = append(in.Seqs, Sequence{IDs: seqs[i][k], Types: types[i][k]})
					}
					inputs = append(inputs, in)
				}
			} else {
				var seqs, types [][]int
				require.NoError(t, json.Unmarshal(ref.Seqs, &seqs))
				require.NoError(t, json.Unmarshal(ref.Types, &types))
				for i := range seqs {
					inputs = append(inputs, Input{Seqs: []Sequence{{IDs: seqs[i], Types: types[i]}}, Label: ref.Labels[i]})
				}
			}
			// The template lays the segments out as the fixture did.
			tmpl := m.Body.Template()
			first := inputs[0].Seqs[0]
			sep := 1
			for first.IDs[sep] != bertFixtureSpecials.SEP {
				sep++
			}
			assert.Equal(t, first, tmpl.Layout(first.IDs[1:sep], first.IDs[sep+1:len(first.IDs)-1]))

			sgd, err := train.NewSGD(train.SGDConfig{})
			require.NoError(t, err)
			tr, err := train.New(m, train.Config{Optimizer: sgd, Schedule: train.Constant(0)})
			require.NoError(t, err)
			defer tr.Close()
			batch, err := m.Batch(inputs, len(inputs)+1, 12, false) // an empty row too
			require.NoError(t, err)
			res, err := tr.Evaluate(batch)
			require.NoError(t, err)
			got := res.Outputs["logits"].Data().([]float32)
			k := len(ref.Logits) / len(inputs)
			worst := 0.0
			for i, w := range ref.Logits {
				worst = math.Max(worst, math.Abs(float64(got[i])-w))
			}
			t.Logf("logits %v: max difference from torch %.2g; loss %.6f, torch %.6f", res.Outputs["logits"].Shape(), worst, res.Loss, ref.Loss)
			assert.Less(t, worst, 1e-4)
			assert.Equal(t, k, res.Outputs["logits"].Shape()[1])
			assert.InDelta(t, ref.Loss, res.Loss, 1e-5)

			out := t.TempDir()
			require.NoError(t, m.Save(out))
			want, _, err := safetensors.Read(filepath.Join(dir, bert.WeightsFile))
			require.NoError(t, err)
			saved, _, err := safetensors.Read(filepath.Join(out, bert.WeightsFile))
			require.NoError(t, err)
			require.Len(t, saved, len(want))
			for n, w := range want {
				s, ok := saved[n]
				require.True(t, ok, n)
				assert.Equal(t, w.Data(), s.Data(), n)
			}
			var hc map[string]any
			cb, err := os.ReadFile(filepath.Join(out, bert.ConfigFile))
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(cb, &hc))
			assert.Equal(t, "bert", hc["model_type"])
			back, err := LoadBERT(out, bertFixtureSpecials, nil)
			require.NoError(t, err, "the task comes from task.json")
			assert.Equal(t, c.task.Kind, back.Task.Kind)
		})
	}
}

// TestBERTBodyFromPretraining: a pre-trained BERT (with its MLM head)
// becomes a body through LoadEncoder, whose store holds the encoder and
// the head only; a pre-trained directory is not a fine-tuned one.
func TestBERTBodyFromPretraining(t *testing.T) {
	src := filepath.Join("..", "bert", "testdata", "hf-bert")
	m, err := bert.LoadEncoder(src, nil)
	require.NoError(t, err)
	body, err := NewBERT(m, bertFixtureSpecials)
	require.NoError(t, err)
	md, err := New(body, Task{Name: "sentiment", Kind: Classification, Labels: []string{"negative", "positive"}}, Config{HeadDropout: 0.1})
	require.NoError(t, err)
	for _, n := range md.Store().Names() {
		assert.Regexp(t, `^(bert\.|classifier\.)`, n)
	}
	w, _ := md.Store().Get("classifier.weight")
	assert.Equal(t, tensor.Shape{2, 32}, w.Shape())
	_, err = LoadBERT(src, bertFixtureSpecials, nil)
	assert.ErrorContains(t, err, "a pre-trained BERT with no task head")
	_, err = NewBERT(m, bert.Specials{PAD: 5, CLS: 1, SEP: 2, MASK: 3})
	assert.ErrorContains(t, err, "[PAD] is 5, the model's pad_token_id 0")
	_, err = New(body, Task{Name: "sentiment", Kind: Classification, Labels: []string{"negative", "positive"}}, Config{LMCoef: 0.5})
	assert.ErrorContains(t, err, "λ (LMCoef) 0.5: a BERT body has no auxiliary loss")
	_, err = LoadBERT(filepath.Join("testdata", "hf-mnli"), bertFixtureSpecials, nil)
	assert.ErrorContains(t, err, `holds a model of model_type "openai-gpt", not a BERT`)
	_, err = LoadGPT(filepath.Join("testdata", "hf-bert-seqcls"), nil, nil)
	assert.ErrorContains(t, err, `holds a model of model_type "bert", not a GPT`)
}

// TestBERTLayout: BERT's template lays out one text as [CLS] a [SEP], a
// pair and each choice as [CLS] a [SEP] b [SEP] with segment ids 0
// through the first [SEP] and 1 after, the feature at [CLS]; an input too
// long loses text tokens (the longer segment first), never a special one.
func TestBERTLayout(t *testing.T) {
	tok := wordTokenizer(t)
	body := tinyBERT(t, tok)
	sp := body.Specials
	tmpl := body.Template()
	tmpl.MaxLen = 8
	ids := func(s string) []int { return tok.Encode(s) }
	cat := func(parts ...[]int) []int {
		var out []int
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	cls, sep := []int{sp.CLS}, []int{sp.SEP}
	for _, c := range []struct {
		name  string
		task  Task
		ex    Example
		ids   [][]int
		types [][]int
	}{
		{"one text", Task{Name: "c", Kind: Classification, Labels: []string{"a", "b"}}, Example{Text: "the film was good"},
			[][]int{cat(cls, ids("the film was good"), sep)}, [][]int{{0, 0, 0, 0, 0, 0}}},
		{"one text cut", Task{Name: "c", Kind: Classification, Labels: []string{"a", "b"}}, Example{Text: "the film was not good at all ."},
			[][]int{cat(cls, ids("the film was not good at"), sep)}, [][]int{{0, 0, 0, 0, 0, 0, 0, 0}}},
		{"pair cut, one order", Task{Name: "s", Kind: Similarity, Labels: []string{"a", "b"}}, Example{Text: "a great cast", TextB: "the film was not good at all"},
			[][]int{cat(cls, ids("a great cast"), sep, ids("the film"), sep)}, [][]int{{0, 0, 0, 0, 0, 1, 1, 1}}},
		{"choices cut", Task{Name: "m", Kind: MultipleChoice}, Example{Text: "the cat sat on the mat", Choices: []string{"a dog ran", "bad"}},
			[][]int{cat(cls, ids("the cat sat"), sep, ids("a dog"), sep), cat(cls, ids("the cat sat on"), sep, ids("bad"), sep)},
			[][]int{{0, 0, 0, 0, 0, 1, 1, 1}, {0, 0, 0, 0, 0, 0, 1, 1}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			in, _, err := Encode(c.task, tmpl, tok, []Example{c.ex})
			require.NoError(t, err)
			require.Len(t, in[0].Seqs, len(c.ids))
			for k, s := range in[0].Seqs {
				assert.Equal(t, c.ids[k], s.IDs, "sequence %d", k)
				assert.Equal(t, c.types[k], s.Types, "sequence %d", k)
				assert.Equal(t, 0, s.Pool, "the feature is at [CLS]")
			}
		})
	}
}

// tinyBERT is a float64 BERT body over tok's vocabulary with BERT's
// specials added, with non-trivial LayerNorm gains and biases.
func tinyBERT(t *testing.T, tok datasets.Tokenizer) *BERT {
	t.Helper()
	sp, err := bert.AddSpecials(tok)
	require.NoError(t, err)
	cfg := bert.Tiny()
	cfg.VocabSize, cfg.PadTokenID, cfg.MaxPositionEmbeddings = tok.VocabSize(), sp.PAD, 16
	cfg.HiddenSize, cfg.NumAttentionHeads, cfg.IntermediateSize, cfg.NumHiddenLayers = 8, 2, 12, 1
	cfg.HiddenDropoutProb, cfg.AttentionProbsDropoutProb, cfg.InitializerRange, cfg.LayerNormEps = 0, 0, 0.3, 1e-5
	s, err := blocks.NewStore(tensor.Float64, 3)
	require.NoError(t, err)
	m, err := bert.NewEncoderIn(s, cfg)
	require.NoError(t, err)
	for i, n := range s.Names() {
		if v, _ := s.Get(n); v.Dims() == 1 {
			vals := make([]float64, v.Shape()[0])
			for j := range vals {
				vals[j] = 0.3 * math.Sin(float64(7*i+j))
			}
			require.NoError(t, s.Set(n, vals))
		}
	}
	b, err := NewBERT(m, sp)
	require.NoError(t, err)
	return b
}

// TestGradientBERTHeads checks every gradient of each head's training
// loss over a one-layer float64 BERT body against finite differences:
// classification, a pair (one order, segment ids), multiple choice and
// regression, each batch with an empty row and padding.
func TestGradientBERTHeads(t *testing.T) {
	labels := []string{"a", "b", "c"}
	mcExs := []Example{
		{Text: "the cat sat", Choices: []string{"mat", "park", "dog"}, Label: 2},
		{Text: "a great", Choices: []string{"cast", "plot", "film"}, Label: 0},
	}
	for _, c := range []struct {
		task Task
		exs  []Example
		len  int
	}{
		{Task{Name: "classification", Kind: Classification, Labels: labels}, []Example{{Text: "the film was good", Label: 2}, {Text: "bad", Label: 1}}, 6},
		{Task{Name: "similarity", Kind: Similarity, Labels: labels}, pairExamples[:2], 14},
		{Task{Name: "multiple-choice", Kind: MultipleChoice}, mcExs, 7},
		{Task{Name: "regression", Kind: Regression}, pairExamples[1:], 14},
	} {
		t.Run(c.task.Name, func(t *testing.T) {
			tok := wordTokenizer(t)
			body := tinyBERT(t, tok)
			m, err := New(body, c.task, Config{})
			require.NoError(t, err)
			in := encode(t, c.task, body, tok, c.exs...)
			require.Len(t, in[0].Seqs, map[bool]int{true: 3, false: 1}[c.task.Kind == MultipleChoice], "one order for a pair")
			b := batchOf(t, m, in, len(c.exs)+1, c.len, true)
			g := blocks.NewGraph(m.Store(), blocks.Train, 0)
			key := b.Key
			key.Mode = blocks.Train
			built, err := m.Build(g, key)
			require.NoError(t, err)
			assert.NotContains(t, built.Outputs, "aux_loss", "BERT has no auxiliary loss")
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
