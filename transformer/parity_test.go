package transformer

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/train"
)

// parityTol is the bound: 1e-5, absolute, or relative where the
// value exceeds 1 in magnitude.
const parityTol = 1e-5

type fixtureTensor struct {
	Shape []int     `json:"shape"`
	Data  []float64 `json:"data"`
}

// fixture is one case written by testdata/gen_transformer.py from torch.
type fixture struct {
	Case       string                   `json:"case"`
	Config     Config                   `json:"config"`
	SrcLengths []int                    `json:"src_lengths"`
	Sources    [][]int                  `json:"sources"`
	Targets    [][]int                  `json:"targets"`
	Tensors    map[string]fixtureTensor `json:"tensors"`
}

func loadFixture(t *testing.T, name string) *fixture {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	require.NoError(t, err)
	var f fixture
	require.NoError(t, json.Unmarshal(b, &f))
	require.NoError(t, f.Config.Validate())
	return &f
}

func (f *fixture) get(t *testing.T, key string) fixtureTensor {
	t.Helper()
	v, ok := f.Tensors[key]
	require.True(t, ok, "fixture %s has no %q", f.Case, key)
	return v
}

func (f *fixture) dense(t *testing.T, key string) *tensor.Dense {
	v := f.get(t, key)
	d := make([]float32, len(v.Data))
	for i, x := range v.Data {
		d[i] = float32(x)
	}
	return tensor.New(tensor.WithShape(v.Shape...), tensor.WithBacking(d))
}

func (f *fixture) ints(t *testing.T, key string) []int {
	v := f.get(t, key)
	out := make([]int, len(v.Data))
	for i, x := range v.Data {
		out[i] = int(x)
	}
	return out
}

// params are the fixture's parameter names, sorted.
func (f *fixture) params() []string {
	var names []string
	for k := range f.Tensors {
		if n, ok := strings.CutPrefix(k, "param:"); ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

// load copies the fixture's parameters into m's store.
func (f *fixture) load(t *testing.T, m *Model) {
	for _, n := range f.params() {
		v := f.get(t, "param:"+n)
		p, ok := m.Store.Get(n)
		require.True(t, ok, "torch parameter %s is not in the store", n)
		require.Equal(t, tensor.Shape(v.Shape), p.Shape(), "shape of %s", n)
		require.NoError(t, m.Store.Set(n, v.Data))
	}
}

// closeTo checks got against torch's values; it returns the worst error.
func closeTo(t *testing.T, want fixtureTensor, got G.Value, what string) float64 {
	t.Helper()
	require.NotNil(t, got, what)
	require.Equal(t, tensor.Shape(want.Shape).TotalSize(), got.Shape().TotalSize(), "%s: size of %v vs %v", what, want.Shape, got.Shape())
	data := f32s(got)
	worst, at := 0.0, 0
	for i, w := range want.Data {
		e := math.Abs(float64(data[i])-w) / math.Max(1, math.Abs(w))
		if e > worst || math.IsNaN(e) {
			worst, at = e, i
		}
	}
	if worst > parityTol || math.IsNaN(worst) {
		t.Errorf("%s differs from torch by %g at element %d (got %v, want %v)", what, worst, at, data[at], want.Data[at])
	}
	return worst
}

func f32s(v G.Value) []float32 {
	switch d := v.Data().(type) {
	case []float32:
		return d
	case float32:
		return []float32{d}
	}
	panic("f32s: not float32")
}

// gradients differentiates cost with respect to every parameter g binds
// and to inputs, runs g once and returns the parameter names and the
// gradient values (parameters first).
func gradients(t *testing.T, g *blocks.Graph, cost *G.Node, reads []*G.Node, inputs ...*G.Node) ([]string, []G.Value, []G.Value) {
	names, params := g.Params()
	grads, err := G.Grad(cost, append(params, inputs...)...)
	require.NoError(t, err)
	gv := make([]G.Value, len(grads))
	for i, n := range grads {
		G.Read(n, &gv[i])
	}
	rv := make([]G.Value, len(reads))
	for i, n := range reads {
		G.Read(n, &rv[i])
	}
	vm := G.NewTapeMachine(g.G)
	defer vm.Close()
	require.NoError(t, vm.RunAll())
	return names, gv, rv
}

// TestParityWithTorchTransformer compares the stacks with torch's
// nn.Transformer on the same weights: a padded source (lengths 5, 3, 1,
// src_key_padding_mask and memory_key_padding_mask), the causal target
// mask, post-LN with ReLU and pre-LN with GELU. The output and the
// gradient of every parameter and of both inputs agree within 1e-5.
//
// Padded positions: ours are computed as torch's training (slow) path
// computes them. In evaluation under no_grad, torch 1.13 runs a post-LN
// encoder on nested tensors, whose memory at padded positions is LN_enc(0)
// = encoder.norm.bias; nothing reads them (the cross-attention masks
// them), so the decoder's output is the same either way, which the test
// checks too.
func TestParityWithTorchTransformer(t *testing.T) {
	for _, name := range []string{"core_post_relu", "core_pre_gelu"} {
		t.Run(name, func(t *testing.T) {
			f := loadFixture(t, name)
			m, err := New(f.Config, 1)
			require.NoError(t, err)
			f.load(t, m)
			g := blocks.NewGraph(m.Store, blocks.Eval, 0)
			src, tgt := input(t, g, "src", f.dense(t, "input:src")), input(t, g, "tgt", f.dense(t, "input:tgt"))
			B, S, T := src.Shape()[0], src.Shape()[1], tgt.Shape()[1]
			sm, mm, err := SourceMasks(tensor.Float32, f.SrcLengths, S, T)
			require.NoError(t, err)
			cm, err := blocks.AttentionMask(tensor.Float32, B, T, T, nil, true)
			require.NoError(t, err)
			srcMask, memMask, causal := input(t, g, "src_mask", sm), input(t, g, "mem_mask", mm), input(t, g, "causal", cm)
			memory, _, err := m.Encode(g, src, srcMask)
			require.NoError(t, err)
			out, err := m.Transformer(g, src, tgt, srcMask, causal, memMask)
			require.NoError(t, err)
			up := input(t, g, "upstream", f.dense(t, "upstream:out"))
			cost := G.Must(G.Sum(G.Must(G.HadamardProd(out, up))))
			names, grads, vals := gradients(t, g, cost, []*G.Node{out, memory}, src, tgt)

			var stacks []string
			for _, n := range m.Store.SortedNames() {
				if strings.HasPrefix(n, "encoder.") || strings.HasPrefix(n, "decoder.") {
					stacks = append(stacks, n)
				}
			}
			assert.Equal(t, f.params(), stacks, "nn.Transformer's state dict is the stacks' parameters")
			worst := closeTo(t, f.get(t, "output:out"), vals[0], "output")
			for i, n := range names {
				worst = math.Max(worst, closeTo(t, f.get(t, "grad:param:"+n), grads[i], "gradient of "+n))
			}
			worst = math.Max(worst, closeTo(t, f.get(t, "grad:input:src"), grads[len(names)], "gradient of src"))
			worst = math.Max(worst, closeTo(t, f.get(t, "grad:input:tgt"), grads[len(names)+1], "gradient of tgt"))
			t.Logf("%s: %d parameters, worst difference from torch %.2g", name, len(names), worst)

			// Evaluation mode: the same decoder output; the memory agrees at
			// real positions, and torch's is encoder.norm.bias at padded ones
			// when it took the nested-tensor path (post-LN).
			closeTo(t, f.get(t, "output:out_eval"), vals[0], "output against torch's eval mode")
			ev, ours := f.get(t, "output:memory_eval").Data, f32s(vals[1])
			beta, _ := m.Store.Get("encoder.norm.bias")
			d := f.Config.DModel
			for b, n := range f.SrcLengths {
				for s := 0; s < S; s++ {
					row := (b*S + s) * d
					if s < n {
						assert.InDeltaSlice(t, ev[row:row+d], f64s(ours[row:row+d]), parityTol, "memory row %d position %d", b, s)
					} else if !f.Config.NormFirst {
						assert.InDeltaSlice(t, f64s(beta.Data().([]float32)), ev[row:row+d], 1e-6, "torch's nested-tensor memory at padding")
					}
				}
			}
		})
	}
}

func f64s(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// batchOf pads sources and targets into a datasets.Batch as the Batcher
// does (to the longest of each, with pad).
func batchOf(src, tgt [][]int, pad int) datasets.Batch {
	S, T := 0, 0
	for i := range src {
		S, T = max(S, len(src[i])), max(T, len(tgt[i]))
	}
	idx := make([]int, len(src))
	for i := range idx {
		idx[i] = i
	}
	return datasets.Batch{Index: idx, Source: padded(src, pad, S, len(src)), Target: padded(tgt, pad, T, len(src))}
}

// TestParityWithTorchWholeModel compares the whole model — embeddings
// scaled by √d_model, positions, both stacks, the generator and the
// label-smoothed loss — with the torch Translator of the generator script
// on the same weights: the batch's decoder inputs and targets, the loss,
// the logits and the gradient of every parameter (training mode), and the
// logits and negative log-likelihood of the evaluation program. Two
// models: separate embeddings, sinusoids, post-LN, ReLU; one shared and
// tied table, learned positions, pre-LN, GELU.
func TestParityWithTorchWholeModel(t *testing.T) {
	for _, name := range []string{"model_post", "model_pre_shared_tied_learned"} {
		t.Run(name, func(t *testing.T) {
			f := loadFixture(t, name)
			m, err := New(f.Config, 1)
			require.NoError(t, err)
			require.Equal(t, f.params(), m.Store.SortedNames(), "the torch module's parameters are the store's")
			f.load(t, m)
			tr := Translator{m}
			b, err := tr.Batch(batchOf(f.Sources, f.Targets, f.Config.Pad))
			require.NoError(t, err)
			assert.Equal(t, f.ints(t, "input:src"), b.Inputs["src"].Data(), "source ids")
			assert.Equal(t, f.ints(t, "input:tgt_in"), b.Inputs["tgt_in"].Data(), "decoder inputs: BOS, then the target shifted right")
			targets := f.ints(t, "input:targets")
			for i, v := range f32s(b.Inputs["targets"]) {
				require.Equal(t, float32(targets[i]), v, "target %d", i)
			}
			assert.Equal(t, 9.0, b.Weight, "the batch counts its real target tokens")

			g := blocks.NewGraph(m.Store, blocks.Train, 0)
			built, err := tr.Build(g, b.Key)
			require.NoError(t, err)
			for n, node := range built.Inputs {
				require.NoError(t, G.Let(node, b.Inputs[n]))
			}
			names, grads, vals := gradients(t, g, built.Loss, []*G.Node{built.Loss, built.Outputs["logits"]})
			worst := closeTo(t, f.get(t, "output:loss"), vals[0], "loss")
			worst = math.Max(worst, closeTo(t, f.get(t, "output:logits"), vals[1], "logits"))
			for i, n := range names {
				worst = math.Max(worst, closeTo(t, f.get(t, "grad:param:"+n), grads[i], "gradient of "+n))
			}
			t.Logf("%s: loss %.6f, %d parameters, worst difference from torch %.2g", name, f32s(vals[0])[0], len(names), worst)

			p, err := train.Compile(tr, train.Key{Mode: blocks.Eval, Batch: b.Key.Batch, Source: b.Key.Source, Len: b.Key.Len}, 0)
			require.NoError(t, err)
			defer p.Close()
			for n, v := range b.Inputs {
				require.NoError(t, p.Let(n, v))
			}
			require.NoError(t, p.Run())
			logits, err := p.Output("logits")
			require.NoError(t, err)
			closeTo(t, f.get(t, "output:logits_eval"), logits, "evaluation logits")
			nll, err := p.Loss()
			require.NoError(t, err)
			assert.InDelta(t, f.get(t, "output:nll_eval").Data[0], nll, parityTol, "evaluation loss is the plain NLL")
		})
	}
}
