package seq2seq

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/decode"
)

// parityTol is the bound: 1e-5, absolute, or relative where the
// value exceeds 1 in magnitude.
const parityTol = 1e-5

var parityCases = []string{"fixed", "fixed_tied", "attention", "attention_general_tied", "attention_dot_uni"}

type fixtureTensor struct {
	Shape []int     `json:"shape"`
	Data  []float64 `json:"data"`
}

// fixture is one case of testdata/gen_seq2seq.py.
type fixture struct {
	Case    string                   `json:"case"`
	Config  Config                   `json:"config"`
	Meta    map[string]float64       `json:"meta"`
	Tensors map[string]fixtureTensor `json:"tensors"`
}

func loadFixture(t testing.TB, name string) *fixture {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	require.NoError(t, err)
	var f fixture
	require.NoError(t, json.Unmarshal(b, &f))
	return &f
}

func (f *fixture) get(t testing.TB, key string) fixtureTensor {
	t.Helper()
	v, ok := f.Tensors[key]
	require.True(t, ok, "fixture %s has no %q", f.Case, key)
	return v
}

func (f *fixture) ints(t testing.TB, key string) []int {
	v := f.get(t, key)
	out := make([]int, len(v.Data))
	for i, x := range v.Data {
		out[i] = int(x)
	}
	return out
}

// model builds the fixture's model (float32) with torch's weights, after
// checking that both have the same parameter names and shapes.
func (f *fixture) model(t testing.TB) *Model {
	t.Helper()
	m, err := New(f.Config, 1)
	require.NoError(t, err)
	var want []string
	for k := range f.Tensors {
		if name, ok := strings.CutPrefix(k, "param:"); ok {
			want = append(want, name)
		}
	}
	sort.Strings(want)
	require.Equal(t, want, m.Store().SortedNames(), "parameter names")
	for _, name := range want {
		v := f.Tensors["param:"+name]
		p, _ := m.Store().Get(name)
		require.Equal(t, tensor.Shape(v.Shape), p.Shape(), "shape of %s", name)
		require.NoError(t, m.Store().Set(name, v.Data))
	}
	return m
}

// padded is a fixture's padded [B, T] ids with their lengths.
func (f *fixture) padded(t testing.TB, ids, lengths string) datasets.Padded {
	v := f.get(t, ids)
	p := datasets.Padded{B: v.Shape[0], T: v.Shape[1], IDs: f.ints(t, ids), Lengths: f.ints(t, lengths)}
	p.Mask = make([]float32, p.B*p.T)
	for b, n := range p.Lengths {
		for i := range n {
			p.Mask[b*p.T+i] = 1
		}
	}
	return p
}

// sources are the fixture's raw source sentences (before Source).
func (f *fixture) sources(t testing.TB) [][]int {
	raw := f.padded(t, "raw:src", "raw:src_lengths")
	out := make([][]int, raw.B)
	for b := range out {
		out[b] = raw.IDs[b*raw.T : b*raw.T+raw.Lengths[b]]
	}
	return out
}

// maxErr is max |got − want| / max(1, |want|).
func maxErr(t testing.TB, want fixtureTensor, got G.Value, what string) float64 {
	t.Helper()
	require.NotNil(t, got, what)
	var data []float64
	switch d := got.Data().(type) {
	case []float32:
		for _, x := range d {
			data = append(data, float64(x))
		}
	case float32:
		data = []float64{float64(d)}
	case []float64:
		data = d
	case float64:
		data = []float64{d}
	default:
		t.Fatalf("%s: unexpected %T", what, d)
	}
	require.Len(t, data, len(want.Data), what)
	worst := 0.0
	for i, w := range want.Data {
		e := math.Abs(data[i]-w) / math.Max(1, math.Abs(w))
		if e > worst || math.IsNaN(e) {
			worst = e
		}
	}
	return worst
}

// TestParityTorch is the whole model against the torch module of
// testdata/gen_seq2seq.py on the same weights, through the engine's own
// path (Batch, Build of a training program): a padded batch of three
// sentence pairs of different source and target lengths gives torch's
// teacher-forced loss and every parameter's gradient within 1e-5; greedy
// decoding through decode/ gives torch's ids and, with attention, its α
// at every step.
func TestParityTorch(t *testing.T) {
	for _, name := range parityCases {
		t.Run(name, func(t *testing.T) {
			f := loadFixture(t, name)
			m := f.model(t)
			b, err := m.Batch(datasets.Batch{
				Source: f.padded(t, "input:src", "input:src_lengths"),
				Target: f.padded(t, "input:tgt", "input:tgt_lengths"),
			})
			require.NoError(t, err)
			b.Key.Mode = blocks.Train
			g := blocks.NewGraph(m.Store(), blocks.Train, 0)
			built, err := m.Build(g, b.Key)
			require.NoError(t, err)
			names, params := g.Params()
			require.ElementsMatch(t, m.Store().Names(), names, "every parameter takes part")
			grads, err := G.Grad(built.Loss, params...)
			require.NoError(t, err)
			var loss G.Value
			G.Read(built.Loss, &loss)
			gv := make([]G.Value, len(grads))
			for i, n := range grads {
				G.Read(n, &gv[i])
			}
			for k, v := range b.Inputs {
				require.NoError(t, G.Let(built.Inputs[k], v))
			}
			vm := G.NewTapeMachine(g.G)
			defer vm.Close()
			require.NoError(t, vm.RunAll())

			worst := maxErr(t, f.get(t, "output:loss"), loss, "loss")
			t.Logf("loss %v (torch %v)", loss, f.get(t, "output:loss").Data[0])
			require.Less(t, worst, parityTol, "loss")
			worstGrad := 0.0
			for i, n := range names {
				e := maxErr(t, f.get(t, "grad:param:"+n), gv[i], "grad of "+n)
				require.Less(t, e, parityTol, "gradient of %s", n)
				worstGrad = max(worstGrad, e)
			}
			t.Logf("max error: loss %.2g, gradients %.2g (%d parameters)", worst, worstGrad, len(names))

			dec, err := m.NewDecoder(DecoderConfig{})
			require.NoError(t, err)
			defer dec.Close()
			res, err := decode.Greedy(dec, f.sources(t), decode.Limits{MaxLen: int(f.Meta["max_len"]), EOS: []int{m.Config.EOSID}})
			require.NoError(t, err)
			for r, got := range res.Tokens {
				require.Equal(t, f.ints(t, "greedy:ids:"+strconv.Itoa(r)), got, "greedy ids of row %d", r)
				if m.Config.Arch != Attention {
					require.Nil(t, res.Attention, "no attention in a fixed-context model")
					continue
				}
				want := f.get(t, "greedy:alpha:"+strconv.Itoa(r))
				require.Len(t, res.Attention[r], want.Shape[0], "row %d: α per step", r)
				S := want.Shape[1]
				for i, a := range res.Attention[r] {
					require.Len(t, a, S, "row %d step %d: α over the source and its end token", r, i)
					step := fixtureTensor{Shape: []int{S}, Data: want.Data[i*S : (i+1)*S]}
					require.Less(t, maxErr(t, step, tensor.New(tensor.WithBacking(a)), "α"), parityTol, "row %d step %d α", r, i)
				}
			}
		})
	}
}

// TestParityDecodeStepIsTeacherForcing: the decode program's logits, fed
// the target one token at a time, are torch's teacher-forced logits.
func TestParityDecodeStepIsTeacherForcing(t *testing.T) {
	for _, name := range parityCases {
		t.Run(name, func(t *testing.T) {
			f := loadFixture(t, name)
			m := f.model(t)
			dec, err := m.NewDecoder(DecoderConfig{})
			require.NoError(t, err)
			defer dec.Close()
			tgt := f.padded(t, "input:tgt", "input:tgt_lengths")
			st, logits, err := dec.Start(f.sources(t))
			require.NoError(t, err)
			defer st.Close()
			want := f.get(t, "output:logits") // [B, T, V]
			B, T, V := want.Shape[0], want.Shape[1], want.Shape[2]
			for i := range T {
				for b := range B {
					row := fixtureTensor{Shape: []int{V}, Data: want.Data[(b*T+i)*V : (b*T+i+1)*V]}
					if i < tgt.Lengths[b] {
						require.Less(t, maxErr(t, row, tensor.New(tensor.WithBacking(logits[b])), "logits"), parityTol, "row %d step %d", b, i)
					}
				}
				if i+1 < T {
					next := make([]int, B)
					for b := range next {
						next[b] = tgt.IDs[b*T+i]
					}
					logits, err = st.Next(next)
					require.NoError(t, err)
				}
			}
		})
	}
}
