package bert

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

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/safetensors"
	"github.com/seq2gpt/seq2gpt/train"
)

type reference struct {
	IDs, Segments, Lengths []int
	Batch, Steps           int
	Labels                 []int
	NSPLabels              []int `json:"nsp_labels"`
	Loss                   float64
	Hidden, Pooled         []float64
	Logits                 []float64
	NSPLogits              []float64 `json:"nsp_logits"`
}

func loadReference(t *testing.T, dir string) reference {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "reference.json"))
	require.NoError(t, err)
	var r reference
	require.NoError(t, json.Unmarshal(b, &r))
	return r
}

// rows are the reference's padded batch.
func (r reference) rows() Rows {
	return Rows{B: r.Batch, T: r.Steps, IDs: r.IDs, Segments: r.Segments, Lengths: r.Lengths}
}

// examples are the reference's MLM labels and NSP labels as Examples.
func (r reference) examples() []Example {
	ex := make([]Example, r.Batch)
	for b := range ex {
		n := r.Lengths[b]
		ex[b].Sequence = Sequence{IDs: r.IDs[b*r.Steps : b*r.Steps+n], Segments: r.Segments[b*r.Steps : b*r.Steps+n]}
		for i := range n {
			if l := r.Labels[b*r.Steps+i]; l != IgnoreIndex {
				ex[b].Positions, ex[b].Targets = append(ex[b].Positions, i), append(ex[b].Targets, l)
			}
		}
		ex[b].NextLabel = r.NSPLabels[b]
	}
	return ex
}

// runRows runs kind's evaluation program on r and returns it, closed when
// the test ends.
func runRows(t *testing.T, m *Model, kind string, r Rows) *train.Program {
	t.Helper()
	p, err := train.Compile(MLM{Model: m}, train.Key{Mode: blocks.Eval, Kind: kind, Batch: r.B, Len: r.T}, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	vals, err := m.Values(r)
	require.NoError(t, err)
	for k, v := range vals {
		require.NoError(t, p.Let(k, v))
	}
	require.NoError(t, p.Run())
	return p
}

// maxRelDiff is max |a − b| / max(1, |b|).
func maxRelDiff(t *testing.T, got []float64, want []float64) float64 {
	t.Helper()
	require.Len(t, got, len(want))
	worst := 0.0
	for i, w := range want {
		worst = math.Max(worst, math.Abs(got[i]-w)/math.Max(1, math.Abs(w)))
	}
	return worst
}

// testMasker is a masker for a reference model's vocabulary of 50 (its
// specials are arbitrary ids; pad 0 as the config says).
func testMasker(t *testing.T, vocab int) *Masker {
	mk, err := NewMasker(BERTMasking(), Specials{PAD: 0, CLS: 1, SEP: 2, MASK: 3}, vocab, nil)
	require.NoError(t, err)
	return mk
}

// TestParityWithTorchHFLayout loads torch-written BertForPreTraining
// directories (modules written to HF's modeling_bert) and compares, on a
// padded batch of 3 rows (12, 9 and 5 tokens) with segment ids, the last
// hidden state, the pooled output, the MLM logits at every position, the
// NSP logits, the pre-training loss and the gradient of every parameter.
func TestParityWithTorchHFLayout(t *testing.T) {
	for _, name := range []string{"hf-bert", "hf-bert-gelu-new"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", name)
			ref := loadReference(t, dir)
			m, err := Load(dir)
			require.NoError(t, err)
			require.True(t, m.Config.NSP, "the NSP head is in the file")
			l := MLM{Model: m, Masker: testMasker(t, m.Config.VocabSize)}

			p := runRows(t, m, KindLogits, ref.rows())
			for _, c := range []struct {
				out  string
				want []float64
			}{{"hidden", ref.Hidden}, {"pooled", ref.Pooled}, {"logits", ref.Logits}, {"nsp_logits", ref.NSPLogits}} {
				v, err := p.Output(c.out)
				require.NoError(t, err)
				d := maxRelDiff(t, asFloat64s(v.(tensor.Tensor)), c.want)
				t.Logf("%s: max difference from torch %.2g", c.out, d)
				assert.Less(t, d, 1e-4, c.out)
			}

			// The loss and its gradients, through the KindMLM program's
			// gather of the chosen positions.
			g := blocks.NewGraph(m.Store, blocks.Eval, 0)
			built, err := l.Build(g, train.Key{Mode: blocks.Eval, Batch: ref.Batch, Len: ref.Steps})
			require.NoError(t, err)
			b, err := l.Batch(ref.examples(), ref.Batch, ref.Steps)
			require.NoError(t, err)
			for k, n := range built.Inputs {
				require.NoError(t, G.Let(n, b.Inputs[k]), k)
			}
			names, params := g.Params()
			grads, err := G.Grad(built.Loss, params...)
			require.NoError(t, err)
			vm := G.NewTapeMachine(g.G)
			defer vm.Close()
			require.NoError(t, vm.RunAll())
			loss := float64(built.Loss.Value().Data().(float32))
			t.Logf("loss %.6f, torch %.6f", loss, ref.Loss)
			assert.InDelta(t, ref.Loss, loss, 1e-5)
			want, _, err := safetensors.Read(filepath.Join(dir, "grads.safetensors"))
			require.NoError(t, err)
			require.Len(t, names, len(want), "every parameter has a gradient")
			worst, where := 0.0, ""
			for i, n := range names {
				w, ok := want[n]
				require.True(t, ok, n)
				if d := maxRelDiff(t, asFloat64s(grads[i].Value().(tensor.Tensor)), asFloat64s(w)); d > worst {
					worst, where = d, n
				}
			}
			t.Logf("gradients: max difference from torch %.2g (%s)", worst, where)
			assert.Less(t, worst, 1e-4)
		})
	}
}
