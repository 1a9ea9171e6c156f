package ops

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// BenchmarkAttention: one causal attention's forward and backward at GPT
// small's shapes (batch 16, 4 heads, 64 positions, d_k 32, attention
// dropout 0.1), fused (Attention) and composed from stock ops as blocks
// built it before (BatchedMatMul, SoftMax, Dropout, BatchedMatMul). For
// before/after comparisons; run it under callgrind for counts that hold
// under load.
func BenchmarkAttention(b *testing.B) {
	const B, H, T, dk, p = 16, 4, 64, 32, 0.1
	for _, fused := range []bool{true, false} {
		name := "composed"
		if fused {
			name = "fused"
		}
		b.Run(name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			g := G.NewGraph()
			in := func(name string, shape ...int) *G.Node {
				v := make([]float32, tensor.Shape(shape).TotalSize())
				for i := range v {
					v[i] = float32(rng.NormFloat64())
				}
				return param(g, name, tensor.New(tensor.WithShape(shape...), tensor.WithBacking(v)))
			}
			q, k, v, r := in("q", B, H, T, dk), in("k", B, H, T, dk), in("v", B, H, T, dk), in("r", B, H, T, dk)
			m := make([]float32, B*T*T)
			for i := range m {
				if i%T > i/T%T {
					m[i] = float32(math.Inf(-1))
				}
			}
			mask := param(g, "mask", tensor.New(tensor.WithShape(B, T, T), tensor.WithBacking(m)))
			drop := &DropoutRNG{Seed: 1}
			var out *G.Node
			if fused {
				var err error
				out, _, err = Attention(q, k, v, mask, 1/math.Sqrt(dk), p, drop)
				require.NoError(b, err)
			} else {
				s := G.Must(G.BatchedMatMul(q, k, false, true))
				w := G.Must(SoftMax(s, mask, 1/math.Sqrt(dk)))
				out = G.Must(G.BatchedMatMul(G.Must(Dropout(w, p, drop)), v, false, false))
			}
			_, err := G.Grad(G.Must(G.Sum(G.Must(G.HadamardProd(out, r)))), q, k, v)
			require.NoError(b, err)
			vm := G.NewTapeMachine(g)
			defer vm.Close()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				vm.Reset()
				if err := vm.RunAll(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
