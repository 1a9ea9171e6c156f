package ops

import (
	"fmt"
	"math"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/blas/gonum"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/internal/gradcheck"
	"github.com/seq2gpt/seq2gpt/internal/sgemm"
)

// attnCase is one attention layout: Q [lead..., tq, dk], K [lead..., tk, dk],
// V [lead..., tk, dv], and a mask (causal and/or key padding) shared by the
// heads or of the scores' own shape.
type attnCase struct {
	name           string
	lead           []int
	tq, tk, dk, dv int
	mask           string // "", "causal", "padding", "causal+padding"
	fullMask       bool   // the mask has the scores' shape, not [B, T_q, T_k]
	dropout        float64
	// wide cases are large enough to split the heads among goroutines
	// (with GOMAXPROCS > 1); the gradient check leaves them out.
	wide bool
}

var attnCases = []attnCase{
	{name: "self_nomask", lead: []int{2, 2}, tq: 4, tk: 4, dk: 3, dv: 3},
	{name: "self_causal", lead: []int{2, 3}, tq: 5, tk: 5, dk: 4, dv: 4, mask: "causal"},
	{name: "encoder_padding", lead: []int{2, 2}, tq: 4, tk: 4, dk: 3, dv: 3, mask: "padding"},
	{name: "cross_padding", lead: []int{2, 2}, tq: 3, tk: 6, dk: 4, dv: 2, mask: "padding"},
	{name: "decoder_causal_padding_full_mask", lead: []int{2, 2}, tq: 4, tk: 4, dk: 2, dv: 3, mask: "causal+padding", fullMask: true},
	{name: "cached_decode", lead: []int{2, 2}, tq: 1, tk: 5, dk: 3, dv: 3, mask: "causal+padding"},
	{name: "rank3", lead: []int{3}, tq: 3, tk: 4, dk: 2, dv: 5, mask: "padding"},
	{name: "dropout_causal", lead: []int{2, 2}, tq: 4, tk: 4, dk: 3, dv: 3, mask: "causal", dropout: 0.3},
	{name: "wide_dropout_causal_padding", lead: []int{2, 5}, tq: 33, tk: 33, dk: 16, dv: 8, mask: "causal+padding", dropout: 0.2, wide: true},
	{name: "wide_cross", lead: []int{3, 4}, tq: 20, tk: 40, dk: 8, dv: 16, mask: "padding", wide: true},
}

// maskValue is the additive mask of c: −Inf where query i may not see key j
// (causal: j beyond i, counted from the end for T_q < T_k as in a cache;
// padding: the second batch entry has only its first T_k − 2 keys).
func (c attnCase) maskValue(dt tensor.Dtype) *tensor.Dense {
	if c.mask == "" {
		return nil
	}
	B, heads := c.lead[0], 1
	shape := []int{B, c.tq, c.tk}
	if c.fullMask {
		heads = c.lead[1]
		shape = []int{B, heads, c.tq, c.tk}
	}
	m := make([]float64, tensor.Shape(shape).TotalSize())
	for b := 0; b < B; b++ {
		for h := 0; h < heads; h++ {
			for i := 0; i < c.tq; i++ {
				for j := 0; j < c.tk; j++ {
					causal := (c.mask == "causal" || c.mask == "causal+padding") && j > i+c.tk-c.tq
					pad := (c.mask == "padding" || c.mask == "causal+padding") && b == 1 && j >= c.tk-2
					if causal || pad {
						m[((b*heads+h)*c.tq+i)*c.tk+j] = math.Inf(-1)
					}
				}
			}
		}
	}
	return asDtype(tensor.New(tensor.WithShape(shape...), tensor.WithBacking(m)), dt)
}

func (c attnCase) shape(t, d int) []int { return append(append([]int(nil), c.lead...), t, d) }

func asDtype(x *tensor.Dense, dt tensor.Dtype) *tensor.Dense {
	if dt == tensor.Float64 {
		return x
	}
	f := make([]float32, x.Shape().TotalSize())
	for i, v := range x.Data().([]float64) {
		f[i] = float32(v)
	}
	return tensor.New(tensor.WithShape(x.Shape().Clone()...), tensor.WithBacking(f))
}

// attnInputs adds c's Q, K, V (and mask) of dtype dt to g.
func (c attnCase) inputs(g *G.ExprGraph, dt tensor.Dtype) (q, k, v, mask *G.Node) {
	q = param(g, "q", asDtype(gradcheck.Tensor(1, 1, c.shape(c.tq, c.dk)...), dt))
	k = param(g, "k", asDtype(gradcheck.Tensor(2, 1, c.shape(c.tk, c.dk)...), dt))
	v = param(g, "v", asDtype(gradcheck.Tensor(3, 1, c.shape(c.tk, c.dv)...), dt))
	if m := c.maskValue(dt); m != nil {
		mask = param(g, "mask", m)
	}
	return q, k, v, mask
}

// composedAttention is the attention blocks built from stock ops before
// Attention: two batched products around SoftMax and Dropout.
func composedAttention(t *testing.T, q, k, v, mask *G.Node, scale, p float64, rng *DropoutRNG) (out, w *G.Node) {
	t.Helper()
	s, err := G.BatchedMatMul(q, k, false, true)
	require.NoError(t, err)
	w, err = SoftMax(s, mask, scale)
	require.NoError(t, err)
	a := w
	if p > 0 {
		a, err = Dropout(w, p, rng)
		require.NoError(t, err)
	}
	out, err = G.BatchedMatMul(a, v, false, false)
	require.NoError(t, err)
	return out, w
}

func TestAttentionGradient(t *testing.T) {
	for _, c := range attnCases {
		if c.wide {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			g := G.NewGraph()
			q, k, v, mask := c.inputs(g, tensor.Float64)
			rng := &DropoutRNG{Seed: 5}
			out, w, err := Attention(q, k, v, mask, 1/math.Sqrt(float64(c.dk)), c.dropout, rng)
			require.NoError(t, err)
			assert.Equal(t, tensor.Shape(c.shape(c.tq, c.dv)), out.Shape())
			assert.Equal(t, tensor.Shape(c.shape(c.tq, c.tk)), w.Shape())
			res, err := gradcheck.Check(g, []*G.Node{out, w}, []*G.Node{q, k, v}, gradcheck.Config{BeforeRun: func() { rng.Calls = 0 }})
			require.NoError(t, err)
			assert.Equal(t, q.Shape().TotalSize()+k.Shape().TotalSize()+v.Shape().TotalSize(), res.Probes)
		})
	}
}

// TestAttentionMatchesComposed: forward, weights and every gradient equal the
// stock composition's, with the same dropout masks from the same seed; the
// loss reads both the output and the weights, so both backward paths count.
func TestAttentionMatchesComposed(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		for _, c := range attnCases {
			t.Run(fmt.Sprintf("%v/%s", dt, c.name), func(t *testing.T) {
				scale := 1 / math.Sqrt(float64(c.dk))
				var vals [2][]G.Value
				for i, fused := range []bool{true, false} {
					g := G.NewGraph()
					q, k, v, mask := c.inputs(g, dt)
					rng := &DropoutRNG{Seed: 11}
					var out, w *G.Node
					if fused {
						var err error
						out, w, err = Attention(q, k, v, mask, scale, c.dropout, rng)
						require.NoError(t, err)
					} else {
						out, w = composedAttention(t, q, k, v, mask, scale, c.dropout, rng)
					}
					r1 := param(g, "r1", asDtype(gradcheck.Tensor(4, 1, out.Shape()...), dt))
					r2 := param(g, "r2", asDtype(gradcheck.Tensor(5, 1, w.Shape()...), dt))
					cost := G.Must(G.Add(G.Must(G.Sum(G.Must(G.HadamardProd(out, r1)))), G.Must(G.Sum(G.Must(G.HadamardProd(w, r2))))))
					grads, err := G.Grad(cost, q, k, v)
					require.NoError(t, err)
					vals[i] = run(t, g, append(G.Nodes{out, w}, grads...)...)
				}
				tol := 1e-12
				if dt == tensor.Float32 {
					tol = 1e-6
				}
				for j, what := range []string{"out", "weights", "dQ", "dK", "dV"} {
					want, got := toF64(vals[1][j]), toF64(vals[0][j])
					require.Len(t, got, len(want), what)
					for e := range want {
						require.InDelta(t, want[e], got[e], tol*math.Max(1, math.Abs(want[e])), "%s[%d]", what, e)
					}
				}
			})
		}
	}
}

// TestAttentionWideCasesRunInParallel: the wide cases do split their heads
// (when the test runs with more than one goroutine's worth of cores) on a
// pure-Go BLAS; under -tags openblas, whose products have threads of their
// own, every case runs on one goroutine.
func TestAttentionWideCasesRunInParallel(t *testing.T) {
	want := min(2, runtime.GOMAXPROCS(0))
	switch G.WhichBLAS().(type) {
	case sgemm.Implementation, gonum.Implementation:
	default:
		want = 1
	}
	for _, c := range attnCases {
		if !c.wide {
			continue
		}
		d, err := attnLayout([]tensor.Shape{c.shape(c.tq, c.dk), c.shape(c.tk, c.dk), c.shape(c.tk, c.dv)})
		require.NoError(t, err)
		assert.Equal(t, want, min(2, attnWorkers(d)), "%s, BLAS %T", c.name, G.WhichBLAS())
	}
	small, err := attnLayout([]tensor.Shape{{1, 2, 1, 32}, {1, 2, 9, 32}, {1, 2, 9, 32}}) // a decoding step
	require.NoError(t, err)
	assert.Equal(t, 1, attnWorkers(small))
}

func toF64(v G.Value) []float64 {
	switch d := v.Data().(type) {
	case []float64:
		return d
	case []float32:
		f := make([]float64, len(d))
		for i, x := range d {
			f[i] = float64(x)
		}
		return f
	}
	return nil
}

// TestAttentionDropoutDrawsEveryRun: the weights are α before dropout; the
// output uses a fresh mask on every run, the same one for the same
// (Seed, Calls), and dropout scales kept weights by 1/(1 − p): with V the
// identity, out is dropout(α) itself.
func TestAttentionDropoutDrawsEveryRun(t *testing.T) {
	const B, T, p = 4, 64, 0.25
	g := G.NewGraph()
	q := param(g, "q", gradcheck.Tensor(1, 0.1, B, T, 8))
	k := param(g, "k", gradcheck.Tensor(2, 0.1, B, T, 8))
	eye := make([]float64, B*T*T)
	for b := 0; b < B; b++ {
		for i := 0; i < T; i++ {
			eye[(b*T+i)*T+i] = 1
		}
	}
	v := param(g, "v", tensor.New(tensor.WithShape(B, T, T), tensor.WithBacking(eye)))
	rng := &DropoutRNG{Seed: 3}
	out, w, err := Attention(q, k, v, nil, 1, p, rng)
	require.NoError(t, err)
	vals := func() (o, a []float64) {
		r := run(t, g, out, w)
		return append([]float64(nil), f64s(r[0])...), append([]float64(nil), f64s(r[1])...)
	}
	o1, a1 := vals()
	kept := 0
	for i := range o1 {
		if o1[i] != 0 {
			kept++
			assert.InDelta(t, a1[i]/(1-p), o1[i], 1e-15)
		}
	}
	assert.InDelta(t, 1-p, float64(kept)/float64(len(o1)), 0.02)
	o2, a2 := vals()
	assert.Equal(t, a1, a2)
	assert.NotEqual(t, o1, o2)
	rng.Calls = 0
	o3, _ := vals()
	assert.Equal(t, o1, o3)
}

// TestAttentionFullyMaskedRow: a query with every key masked gets zero
// weights, a zero output and zero gradients, not NaN.
func TestAttentionFullyMaskedRow(t *testing.T) {
	g := G.NewGraph()
	q := param(g, "q", gradcheck.Tensor(1, 1, 1, 2, 3, 4))
	k := param(g, "k", gradcheck.Tensor(2, 1, 1, 2, 5, 4))
	v := param(g, "v", gradcheck.Tensor(3, 1, 1, 2, 5, 2))
	m := make([]float64, 3*5)
	for j := 0; j < 5; j++ {
		m[5+j] = math.Inf(-1) // query 1 sees nothing
	}
	mask := param(g, "mask", tensor.New(tensor.WithShape(1, 3, 5), tensor.WithBacking(m)))
	out, w, err := Attention(q, k, v, mask, 0.5, 0, nil)
	require.NoError(t, err)
	grads, err := G.Grad(G.Must(G.Sum(out)), q)
	require.NoError(t, err)
	vals := run(t, g, out, w, grads[0])
	for h := 0; h < 2; h++ {
		assert.Equal(t, []float64{0, 0}, f64s(vals[0])[(h*3+1)*2:(h*3+2)*2])
		assert.Equal(t, make([]float64, 5), f64s(vals[1])[(h*3+1)*5:(h*3+2)*5])
		assert.Equal(t, make([]float64, 4), f64s(vals[2])[(h*3+1)*4:(h*3+2)*4])
	}
	for _, x := range f64s(vals[0]) {
		assert.False(t, math.IsNaN(x))
	}
}

// TestAttentionRepeatedRunsLeaveInputsUnchanged: state kept between runs
// (scratch, masks) does not leak into results, and no input is written.
func TestAttentionRepeatedRunsLeaveInputsUnchanged(t *testing.T) {
	c := attnCases[1]
	g := G.NewGraph()
	q, k, v, mask := c.inputs(g, tensor.Float32)
	before := [][]float32{}
	for _, n := range []*G.Node{q, k, v, mask} {
		before = append(before, append([]float32(nil), n.Value().Data().([]float32)...))
	}
	out, w, err := Attention(q, k, v, mask, 0.5, 0, nil)
	require.NoError(t, err)
	grads, err := G.Grad(G.Must(G.Sum(G.Must(G.Square(out)))), q, k, v)
	require.NoError(t, err)
	var first []G.Value
	for i := range 3 {
		vals := run(t, g, append(G.Nodes{out, w}, grads...)...)
		if i == 0 {
			for _, x := range vals {
				first = append(first, x.(tensor.Tensor).Clone().(G.Value))
			}
			continue
		}
		for j := range vals {
			assert.Equal(t, first[j].Data(), vals[j].Data(), "value %d, run %d", j, i)
		}
	}
	for i, n := range []*G.Node{q, k, v, mask} {
		assert.Equal(t, before[i], n.Value().Data().([]float32))
	}
}

func TestAttentionShapeErrors(t *testing.T) {
	g := G.NewGraph()
	in := func(name string, shape ...int) *G.Node {
		return param(g, name, gradcheck.Tensor(1, 1, shape...))
	}
	q, k, v := in("q", 2, 2, 3, 4), in("k", 2, 2, 5, 4), in("v", 2, 2, 5, 6)
	for _, tc := range []struct {
		name    string
		q, k, v *G.Node
		mask    *G.Node
		p       float64
		rng     *DropoutRNG
		want    []string
	}{
		{"rank", in("q2", 3, 4), k, v, nil, 0, nil, []string{"(3, 4)"}},
		{"d_k", q, in("k2", 2, 2, 5, 3), v, nil, 0, nil, []string{"(2, 2, 5, 3)", "(2, 2, 3, 4)"}},
		{"heads", q, in("k3", 2, 3, 5, 4), v, nil, 0, nil, []string{"(2, 3, 5, 4)"}},
		{"T_k", q, k, in("v2", 2, 2, 4, 6), nil, 0, nil, []string{"(2, 2, 4, 6)", "(2, 2, 5, 4)"}},
		{"mask", q, k, v, in("m", 2, 3, 4), 0, nil, []string{"(2, 3, 4)", "(2, 3, 5)"}},
		{"dropout", q, k, v, nil, 1, &DropoutRNG{}, []string{"dropout 1"}},
		{"rng", q, k, v, nil, 0.1, nil, []string{"DropoutRNG"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Attention(tc.q, tc.k, tc.v, tc.mask, 1, tc.p, tc.rng)
			require.Error(t, err)
			for _, s := range tc.want {
				assert.Contains(t, err.Error(), s)
			}
		})
	}
}
