package blocks

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/ops"
)

// parityTol is the bound: 1e-5, absolute, or relative where the
// value exceeds 1 in magnitude.
const parityTol = 1e-5

type fixtureTensor struct {
	Shape []int     `json:"shape"`
	Data  []float64 `json:"data"`
}

// fixture is one case written by testdata/gen_fixtures.py from PyTorch.
type fixture struct {
	Case    string                   `json:"case"`
	Meta    map[string]float64       `json:"meta"`
	Tensors map[string]fixtureTensor `json:"tensors"`
}

func loadFixture(t *testing.T, name string) *fixture {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	require.NoError(t, err)
	var f fixture
	require.NoError(t, json.Unmarshal(b, &f))
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
	if len(v.Shape) == 0 {
		return tensor.New(tensor.FromScalar(d[0]))
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

// loadParams copies every fixture parameter into s, after the block has
// added its own, checking that the block's parameters and PyTorch's state
// dict have the same names and shapes.
func loadParams(t *testing.T, f *fixture, s *Store) {
	t.Helper()
	var want []string
	for k := range f.Tensors {
		if strings.HasPrefix(k, "param:") {
			want = append(want, strings.TrimPrefix(k, "param:"))
		}
	}
	sort.Strings(want)
	require.Equal(t, want, s.SortedNames(), "parameter names")
	for k, v := range f.Tensors {
		if !strings.HasPrefix(k, "param:") {
			continue
		}
		name := strings.TrimPrefix(k, "param:")
		p, _ := s.Get(name)
		require.Equal(t, tensor.Shape(v.Shape), p.Shape(), "shape of %s", name)
		require.NoError(t, s.Set(name, v.Data))
	}
}

// parity runs the graph once with L = Σ (output ⊙ upstream) over the outputs
// that have an upstream in the fixture, and compares every output with
// PyTorch's, and the gradient of every parameter and every listed input.
type parity struct {
	t       *testing.T
	f       *fixture
	g       *Graph
	outputs map[string]*G.Node
	inputs  map[string]*G.Node
}

func newParity(t *testing.T, f *fixture, g *Graph) *parity {
	return &parity{t: t, f: f, g: g, outputs: map[string]*G.Node{}, inputs: map[string]*G.Node{}}
}

// input adds a float input node holding the fixture's input:<key>.
func (p *parity) input(key string) *G.Node {
	v := p.f.dense(p.t, "input:"+key)
	n, err := p.g.Input(key, v.Shape())
	require.NoError(p.t, err)
	require.NoError(p.t, G.Let(n, v))
	p.inputs[key] = n
	return n
}

// constInput adds an input that gets no gradient (masks, ids).
func (p *parity) constInput(name string, v *tensor.Dense) *G.Node {
	n, err := p.g.Input(name, v.Shape(), v.Dtype())
	require.NoError(p.t, err)
	require.NoError(p.t, G.Let(n, v))
	return n
}

func (p *parity) check() {
	t := p.t
	var cost *G.Node
	for name, out := range p.outputs {
		key := "upstream:" + name
		if _, ok := p.f.Tensors[key]; !ok {
			continue
		}
		r := p.constInput("upstream_"+name, p.f.dense(t, key))
		s := G.Must(G.Sum(G.Must(G.HadamardProd(out, r))))
		if cost == nil {
			cost = s
		} else {
			cost = G.Must(G.Add(cost, s))
		}
	}
	names, params := p.g.Params()
	var wrt G.Nodes
	wrt = append(wrt, params...)
	inputNames := make([]string, 0, len(p.inputs))
	for k := range p.inputs {
		inputNames = append(inputNames, k)
	}
	sort.Strings(inputNames)
	for _, k := range inputNames {
		wrt = append(wrt, p.inputs[k])
	}
	grads, err := G.Grad(cost, wrt...)
	require.NoError(t, err)
	outVals := map[string]*G.Value{}
	for name, out := range p.outputs {
		var v G.Value
		outVals[name] = &v
		G.Read(out, &v)
	}
	gradVals := make([]G.Value, len(grads))
	for i, gn := range grads {
		G.Read(gn, &gradVals[i])
	}
	m := G.NewTapeMachine(p.g.G)
	defer m.Close()
	require.NoError(t, m.RunAll())

	for name, v := range outVals {
		closeTo(t, p.f.get(t, "output:"+name), *v, "output "+name)
	}
	for i, n := range names {
		closeTo(t, p.f.get(t, "grad:param:"+n), gradVals[i], "grad of "+n)
	}
	for i, k := range inputNames {
		closeTo(t, p.f.get(t, "grad:input:"+k), gradVals[len(names)+i], "grad of input "+k)
	}
}

func closeTo(t *testing.T, want fixtureTensor, got G.Value, what string) {
	t.Helper()
	require.NotNil(t, got, what)
	require.Equal(t, tensor.Shape(want.Shape).TotalSize(), got.Shape().TotalSize(), "%s: size of %v vs %v", what, want.Shape, got.Shape())
	var data []float32
	switch d := got.Data().(type) {
	case []float32:
		data = d
	case float32:
		data = []float32{d}
	default:
		t.Fatalf("%s: unexpected %T", what, d)
	}
	worst, at := 0.0, -1
	for i, w := range want.Data {
		e := math.Abs(float64(data[i])-w) / math.Max(1, math.Abs(w))
		if e > worst || math.IsNaN(e) {
			worst, at = e, i
		}
	}
	if worst > parityTol || math.IsNaN(worst) {
		t.Errorf("%s differs from PyTorch by %g at element %d (got %v, want %v)", what, worst, at, data[at], want.Data[at])
	}
}

func newTestStore(t *testing.T) *Store {
	s, err := NewStore(tensor.Float32, 1)
	require.NoError(t, err)
	return s
}

func TestParityLinear(t *testing.T) {
	f := loadFixture(t, "linear")
	s := newTestStore(t)
	l, err := NewLinear(s, "", LinearConfig{In: 5, Out: 4})
	require.NoError(t, err)
	loadParams(t, f, s)
	g := NewGraph(s, Eval, 0)
	p := newParity(t, f, g)
	y, err := l.Forward(g, p.input("x"))
	require.NoError(t, err)
	p.outputs["y"] = y
	p.check()
}

func TestParityEmbedding(t *testing.T) {
	f := loadFixture(t, "embedding")
	s := newTestStore(t)
	e, err := NewEmbedding(s, "", 10, 6, nil)
	require.NoError(t, err)
	loadParams(t, f, s)
	g := NewGraph(s, Eval, 0)
	p := newParity(t, f, g)
	ids, err := IDs(f.ints(t, "input:ids"), 10)
	require.NoError(t, err)
	y, err := e.Forward(g, p.constInput("ids", ids), 2, 4)
	require.NoError(t, err)
	p.outputs["y"] = y
	p.check()
}

func TestParityLSTMCell(t *testing.T) {
	f := loadFixture(t, "lstm_cell")
	s := newTestStore(t)
	c, err := NewLSTMCell(s, "", 5, 7)
	require.NoError(t, err)
	loadParams(t, f, s)
	g := NewGraph(s, Eval, 0)
	p := newParity(t, f, g)
	h, cc, err := c.Forward(g, p.input("x"), p.input("h0"), p.input("c0"))
	require.NoError(t, err)
	p.outputs["h1"], p.outputs["c1"] = h, cc
	p.check()
}

func TestParityLSTM(t *testing.T) {
	for _, tc := range []struct {
		fixture string
		layers  int
		bi      bool
	}{{"lstm_1layer", 1, false}, {"lstm_2layer", 2, false}, {"lstm_bi_2layer", 2, true}} {
		t.Run(tc.fixture, func(t *testing.T) {
			f := loadFixture(t, tc.fixture)
			s := newTestStore(t)
			newL := NewLSTM
			if tc.bi {
				newL = NewBiLSTM
			}
			l, err := newL(s, "", 5, 6, tc.layers)
			require.NoError(t, err)
			loadParams(t, f, s)
			g := NewGraph(s, Eval, 0)
			p := newParity(t, f, g)
			keep, err := StepMask(tensor.Float32, f.ints(t, "input:lengths"), 5, 6)
			require.NoError(t, err)
			out, err := l.Forward(g, p.input("x"), p.constInput("keep", keep), nil, nil)
			require.NoError(t, err)
			p.outputs["out"] = out.Out
			// h_n, c_n are [layers, B, H] in torch: stack ours.
			stack := func(ns []*G.Node) *G.Node {
				rs := make(G.Nodes, len(ns))
				for i, n := range ns {
					rs[i] = G.Must(G.Reshape(n, tensor.Shape{1, 3, 6}))
				}
				if len(rs) == 1 {
					return rs[0]
				}
				return G.Must(G.Concat(0, rs...))
			}
			p.outputs["h_n"], p.outputs["c_n"] = stack(out.H), stack(out.C)
			p.check()
		})
	}
}

func TestParityMultiHeadAttention(t *testing.T) {
	for _, name := range []string{"mha_self", "mha_causal", "mha_cross"} {
		t.Run(name, func(t *testing.T) {
			f := loadFixture(t, name)
			s := newTestStore(t)
			m, err := NewMultiHeadAttention(s, "", MultiHeadConfig{DModel: 8, Heads: 2})
			require.NoError(t, err)
			loadParams(t, f, s)
			g := NewGraph(s, Eval, 0)
			p := newParity(t, f, g)
			var q, mem *G.Node
			if name == "mha_cross" {
				q, mem = p.input("query"), p.input("memory")
			} else {
				q = p.input("x")
				mem = q
			}
			B, Tq, Tk := q.Shape()[0], q.Shape()[1], mem.Shape()[1]
			mask, err := AttentionMask(tensor.Float32, B, Tq, Tk, f.ints(t, "input:key_lengths"), f.Meta["causal"] == 1)
			require.NoError(t, err)
			out, w, err := m.Forward(g, q, mem, p.constInput("mask", mask))
			require.NoError(t, err)
			p.outputs["out"], p.outputs["weights"] = out, w
			p.check()
		})
	}
}

func TestParitySDPA(t *testing.T) {
	for _, name := range []string{"sdpa", "sdpa_causal"} {
		t.Run(name, func(t *testing.T) {
			f := loadFixture(t, name)
			s := newTestStore(t)
			g := NewGraph(s, Eval, 0)
			p := newParity(t, f, g)
			q, k, v := p.input("q"), p.input("k"), p.input("v")
			mask, err := AttentionMask(tensor.Float32, 2, q.Shape()[2], k.Shape()[2], f.ints(t, "input:key_lengths"), f.Meta["causal"] == 1)
			require.NoError(t, err)
			out, w, err := ScaledDotProductAttention(g, q, k, v, p.constInput("mask", mask), 0)
			require.NoError(t, err)
			p.outputs["out"], p.outputs["weights"] = out, w
			p.check()
		})
	}
}

func TestParityAdditiveAttention(t *testing.T) {
	f := loadFixture(t, "additive")
	s := newTestStore(t)
	a, err := NewAdditiveAttention(s, "", 6, 7, 8)
	require.NoError(t, err)
	loadParams(t, f, s)
	g := NewGraph(s, Eval, 0)
	p := newParity(t, f, g)
	keys, err := a.Precompute(g, p.input("h"))
	require.NoError(t, err)
	mask, err := PaddingMask(tensor.Float32, f.ints(t, "input:key_lengths"), 5)
	require.NoError(t, err)
	ctx, alpha, err := a.Attend(g, p.input("s"), keys, p.constInput("mask", mask))
	require.NoError(t, err)
	p.outputs["context"], p.outputs["alpha"] = ctx, alpha
	p.check()
}

func TestParityMultiplicativeAttention(t *testing.T) {
	for _, tc := range []struct {
		fixture string
		score   Score
		enc     int
	}{{"luong_dot", Dot, 6}, {"luong_general", General, 7}} {
		t.Run(tc.fixture, func(t *testing.T) {
			f := loadFixture(t, tc.fixture)
			s := newTestStore(t)
			a, err := NewAttention(s, "", tc.score, 6, tc.enc, 0)
			require.NoError(t, err)
			loadParams(t, f, s)
			g := NewGraph(s, Eval, 0)
			p := newParity(t, f, g)
			keys, err := a.Precompute(g, p.input("h"))
			require.NoError(t, err)
			mask, err := PaddingMask(tensor.Float32, f.ints(t, "input:key_lengths"), 5)
			require.NoError(t, err)
			ctx, alpha, err := a.Attend(g, p.input("s"), keys, p.constInput("mask", mask))
			require.NoError(t, err)
			p.outputs["context"], p.outputs["alpha"] = ctx, alpha
			p.check()
		})
	}
}

func TestParityLayerNorm(t *testing.T) {
	f := loadFixture(t, "layernorm")
	s := newTestStore(t)
	l, err := NewLayerNorm(s, "", 6, 0)
	require.NoError(t, err)
	loadParams(t, f, s)
	g := NewGraph(s, Eval, 0)
	p := newParity(t, f, g)
	y, err := l.Forward(g, p.input("x"))
	require.NoError(t, err)
	p.outputs["y"] = y
	p.check()
}

func TestParityFeedForward(t *testing.T) {
	for name, act := range map[string]Activation{"ffn_relu": ReLU, "ffn_gelu": GELU} {
		t.Run(name, func(t *testing.T) {
			f := loadFixture(t, name)
			s := newTestStore(t)
			ffn, err := NewFeedForward(s, "", FeedForwardConfig{DModel: 6, DFF: 16, Activation: act, Names: [2]string{"0", "2"}})
			require.NoError(t, err)
			loadParams(t, f, s)
			g := NewGraph(s, Eval, 0)
			p := newParity(t, f, g)
			y, err := ffn.Forward(g, p.input("x"))
			require.NoError(t, err)
			p.outputs["y"] = y
			p.check()
		})
	}
}

func TestParityGELU(t *testing.T) {
	for name, form := range map[string]ops.GELUForm{"gelu_erf": ops.GELUErf, "gelu_tanh": ops.GELUTanh} {
		t.Run(name, func(t *testing.T) {
			f := loadFixture(t, name)
			g := NewGraph(newTestStore(t), Eval, 0)
			p := newParity(t, f, g)
			y, err := ops.GELU(p.input("x"), form)
			require.NoError(t, err)
			p.outputs["y"] = y
			p.check()
		})
	}
}

func TestParitySinusoidal(t *testing.T) {
	f := loadFixture(t, "sinusoidal")
	table := SinusoidalTable(10, 6)
	got := make([]float32, len(table))
	for i, v := range table {
		got[i] = float32(v)
	}
	closeTo(t, f.get(t, "output:table"), tensor.New(tensor.WithShape(10, 6), tensor.WithBacking(got)), "sinusoidal table")
}

func TestParityCrossEntropy(t *testing.T) {
	f := loadFixture(t, "cross_entropy")
	for out, eps := range map[string]float64{"loss": 0, "loss_smooth": f.Meta["label_smoothing"]} {
		t.Run(out, func(t *testing.T) {
			g := NewGraph(newTestStore(t), Eval, 0)
			p := newParity(t, f, g)
			logits := p.input("logits")
			tg := f.dense(t, "input:targets")
			loss, err := ops.CrossEntropy(logits, p.constInput("targets", tg), int(f.Meta["ignore_index"]), eps)
			require.NoError(t, err)
			grads, err := G.Grad(loss, logits)
			require.NoError(t, err)
			var lv, gv G.Value
			G.Read(loss, &lv)
			G.Read(grads[0], &gv)
			m := G.NewTapeMachine(g.G)
			defer m.Close()
			require.NoError(t, m.RunAll())
			closeTo(t, f.get(t, "output:"+out), lv, out)
			key := "grad:input:logits"
			if eps > 0 {
				key += "_smooth"
			}
			closeTo(t, f.get(t, key), gv, "grad of logits")
		})
	}
}
