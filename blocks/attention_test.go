package blocks

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/internal/gradcheck"
	"github.com/seq2gpt/seq2gpt/ops"
)

// referenceMHA is nn.MultiheadAttention's forward written out in plain Go
// (float64, no mask): x [T_q, d], mem [T_k, d] for one batch row.
func referenceMHA(s *Store, prefix string, heads int, x, mem [][]float64) [][]float64 {
	get := func(n string) []float64 {
		t, _ := s.Get(join(prefix, n))
		return t.Data().([]float64)
	}
	w, b, wo, bo := get("in_proj_weight"), get("in_proj_bias"), get("out_proj.weight"), get("out_proj.bias")
	d := len(bo)
	proj := func(in [][]float64, w, b []float64, part int) [][]float64 {
		out := make([][]float64, len(in))
		for t, row := range in {
			out[t] = make([]float64, d)
			for o := 0; o < d; o++ {
				r := part*d + o
				v := b[r]
				for i, xi := range row {
					v += w[r*d+i] * xi
				}
				out[t][o] = v
			}
		}
		return out
	}
	q, k, v := proj(x, w, b, 0), proj(mem, w, b, 1), proj(mem, w, b, 2)
	dk := d / heads
	ctx := make([][]float64, len(x))
	for i := range x {
		ctx[i] = make([]float64, d)
		for h := 0; h < heads; h++ {
			scores := make([]float64, len(mem))
			max := math.Inf(-1)
			for j := range mem {
				for c := h * dk; c < (h+1)*dk; c++ {
					scores[j] += q[i][c] * k[j][c]
				}
				scores[j] /= math.Sqrt(float64(dk))
				max = math.Max(max, scores[j])
			}
			sum := 0.0
			for j := range scores {
				scores[j] = math.Exp(scores[j] - max)
				sum += scores[j]
			}
			for j := range mem {
				for c := h * dk; c < (h+1)*dk; c++ {
					ctx[i][c] += scores[j] / sum * v[j][c]
				}
			}
		}
	}
	out := make([][]float64, len(x))
	for t := range ctx {
		out[t] = make([]float64, d)
		for o := 0; o < d; o++ {
			out[t][o] = bo[o]
			for i, c := range ctx[t] {
				out[t][o] += wo[o*d+i] * c
			}
		}
	}
	return out
}

func rowsOf(t *tensor.Dense) [][]float64 {
	s := t.Shape()
	d := t.Data().([]float64)
	out := make([][]float64, s[len(s)-2])
	for i := range out {
		out[i] = d[i*s[len(s)-1] : (i+1)*s[len(s)-1]]
	}
	return out
}

// TestMultiHeadAttentionAtRealWidths checks self- and encoder–decoder
// attention against a plain-Go nn.MultiheadAttention at widths of 128 and
// 256, where Gorgonia's slice hash (see TestStockSliceHashCollides) once
// merged the W^V slice of in_proj_weight into W^Q's, so V was computed
// with W^Q. The torch fixtures are d = 8 and could not see it.
func TestMultiHeadAttentionAtRealWidths(t *testing.T) {
	for _, tc := range []struct {
		name  string
		d     int
		cross bool
	}{{"self_128", 128, false}, {"self_256", 256, false}, {"cross_128", 128, true}, {"cross_256", 256, true}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore64(t)
			m := Must(NewMultiHeadAttention(s, "m", MultiHeadConfig{DModel: tc.d, Heads: 2}))
			require.NoError(t, s.Set("m.in_proj_bias", gradcheck.Tensor(3, 0.5, 3*tc.d).Data().([]float64)))
			g := NewGraph(s, Eval, 0)
			xt := gradcheck.Tensor(1, 1, 1, 3, tc.d)
			x := valued(t, g, "x", xt)
			mem, memt := x, xt
			if tc.cross {
				memt = gradcheck.Tensor(2, 1, 1, 4, tc.d)
				mem = valued(t, g, "mem", memt)
			}
			out, _, err := m.Forward(g, x, mem, nil)
			require.NoError(t, err)
			var v G.Value
			G.Read(out, &v)
			vm := G.NewTapeMachine(g.G)
			defer vm.Close()
			require.NoError(t, vm.RunAll())
			want := referenceMHA(s, "m", 2, rowsOf(xt), rowsOf(memt))
			got := rowsOf(v.(*tensor.Dense))
			for i := range want {
				require.InDeltaSlice(t, want[i], got[i], 1e-9, "row %d", i)
			}
		})
	}
}

// TestStockSliceHashCollides pins a Gorgonia v0.9.18 bug the blocks avoid:
// sliceOp hashes its start and end truncated to a byte, so two slices of
// one node with the same shape whose bounds agree mod 256 are merged into
// one node — x[0:128] and x[256:384] become the same slice. Any G.Slice at
// offsets of 256 or more can silently read the wrong part.
func TestStockSliceHashCollides(t *testing.T) {
	g := G.NewGraph()
	x := G.NewTensor(g, tensor.Float64, 2, G.WithShape(384, 2), G.WithName("x"))
	a := G.Must(G.Slice(x, G.S(0, 128)))
	b := G.Must(G.Slice(x, G.S(256, 384)))
	c := G.Must(G.Slice(x, G.S(128, 256)))
	require.NotSame(t, a, c)
	require.Same(t, a, b, "Gorgonia's slice hash no longer collides: the workaround may be retired")
}

// TestSDPADropoutKeepsTheGraphsRNG: in a training graph the fused attention
// draws its dropout mask from the graph's DropoutRNG as ApplyDropout on the
// weights did, so with one seed it equals the stock composition (batched
// products around SoftMax and ApplyDropout) run for run, output and
// gradients; an evaluation graph drops nothing. The finite-difference check
// pins the mask between runs.
func TestSDPADropoutKeepsTheGraphsRNG(t *testing.T) {
	const p = 0.4
	build := func(mode Mode, fused bool) (*Graph, []*G.Node) {
		g := NewGraph(newStore64(t), mode, 17)
		q := valued(t, g, "q", gradcheck.Tensor(1, 1, 2, 2, 4, 3))
		k := valued(t, g, "k", gradcheck.Tensor(2, 1, 2, 2, 5, 3))
		v := valued(t, g, "v", gradcheck.Tensor(3, 1, 2, 2, 5, 2))
		mv, err := AttentionMask(tensor.Float64, 2, 4, 5, []int{5, 3}, false)
		require.NoError(t, err)
		mask := valued(t, g, "mask", mv)
		var out *G.Node
		if fused {
			out, _, err = ScaledDotProductAttention(g, q, k, v, mask, p)
			require.NoError(t, err)
		} else {
			w := Must(ops.SoftMax(Must(G.BatchedMatMul(q, k, false, true)), mask, 1/math.Sqrt(3)))
			out = Must(G.BatchedMatMul(Must(g.ApplyDropout(w, p)), v, false, false))
		}
		return g, []*G.Node{out, q, k, v}
	}
	values := func(g *Graph, n []*G.Node) [][]float64 {
		grads, err := G.Grad(G.Must(G.Sum(G.Must(G.Square(n[0])))), n[1:]...)
		require.NoError(t, err)
		vals := make([]G.Value, 4)
		for i, x := range append(G.Nodes{n[0]}, grads...) {
			G.Read(x, &vals[i])
		}
		m := G.NewTapeMachine(g.G)
		defer m.Close()
		var all [][]float64
		for range 2 { // two runs: two masks
			m.Reset()
			require.NoError(t, m.RunAll())
			for _, v := range vals {
				all = append(all, append([]float64(nil), v.Data().([]float64)...))
			}
		}
		return all
	}
	fused, composed := values(build(Train, true)), values(build(Train, false))
	require.Len(t, fused, len(composed))
	for i := range composed {
		require.InDeltaSlice(t, composed[i], fused[i], 1e-12, "value %d", i)
	}
	require.NotEqual(t, fused[0], fused[4], "a new mask each run")
	evalF, evalC := values(build(Eval, true)), values(build(Eval, false))
	for i := range evalC {
		require.InDeltaSlice(t, evalC[i], evalF[i], 1e-12, "eval value %d", i)
	}
	require.NotEqual(t, fused[0], evalF[0])
	require.Equal(t, evalF[0], evalF[4], "evaluation drops nothing")

	g, n := build(Train, true)
	_, err := gradcheck.Check(g.G, n[:1], n[1:], gradcheck.Config{BeforeRun: func() { g.Dropout.Calls = 0 }})
	require.NoError(t, err)
}
