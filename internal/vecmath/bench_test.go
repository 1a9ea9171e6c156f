package vecmath

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// The math-based loops the kernels replace (ops' float32 paths before
// vecmath): each element through float64 math and back.
var mathLoops = map[string]func(dst, x, y []float32){
	"Exp": func(d, x, _ []float32) {
		for i, v := range x {
			d[i] = float32(math.Exp(float64(v)))
		}
	},
	"Tanh": func(d, x, _ []float32) {
		for i, v := range x {
			d[i] = float32(math.Tanh(float64(v)))
		}
	},
	"Sigmoid": func(d, x, _ []float32) {
		for i, v := range x {
			d[i] = float32(1 / (1 + math.Exp(-float64(v))))
		}
	},
	"Erf": func(d, x, _ []float32) {
		for i, v := range x {
			d[i] = float32(math.Erf(float64(v)))
		}
	},
	"GELU": func(d, x, _ []float32) {
		for i, v := range x {
			f := float64(v)
			d[i] = float32(0.5 * f * (1 + math.Erf(f/math.Sqrt2)))
		}
	},
	"GELUGrad": func(d, x, dy []float32) {
		for i, v := range x {
			f := float64(v)
			g := 0.5*(1+math.Erf(f/math.Sqrt2)) + f/math.Sqrt(2*math.Pi)*math.Exp(-0.5*f*f)
			d[i] = float32(g * float64(dy[i]))
		}
	},
	"GELUTanh": func(d, x, _ []float32) {
		for i, v := range x {
			f := float64(v)
			d[i] = float32(0.5 * f * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(f+0.044715*f*f*f))))
		}
	},
	"GELUTanhGrad": func(d, x, dy []float32) {
		const k = 0.7978845608028654
		for i, v := range x {
			f := float64(v)
			th := math.Tanh(k * (f + 0.044715*f*f*f))
			g := 0.5*(1+th) + 0.5*f*(1-th*th)*k*(1+3*0.044715*f*f)
			d[i] = float32(g * float64(dy[i]))
		}
	},
	"ExpSum": func(d, x, _ []float32) {
		var s float64
		for i, v := range x {
			e := float32(math.Exp(float64(v - 1)))
			d[i] = e
			s += float64(e)
		}
		sink = s
	},
}

var sink float64

// benchFuncs are the kernel functions under benchmark, by name.
var benchFuncs = map[string]func(k *kernel, dst, x, y []float32){
	"Exp":          func(k *kernel, d, x, _ []float32) { k.exp(d, x) },
	"ExpSum":       func(k *kernel, d, x, _ []float32) { sink = k.expSum(d, x, 1) },
	"Tanh":         func(k *kernel, d, x, _ []float32) { k.tanh(d, x) },
	"Sigmoid":      func(k *kernel, d, x, _ []float32) { k.sigmoid(d, x) },
	"Erf":          func(k *kernel, d, x, _ []float32) { k.erf(d, x) },
	"GELU":         func(k *kernel, d, x, _ []float32) { k.gelu(d, x) },
	"GELUGrad":     func(k *kernel, d, x, y []float32) { k.geluGrad(d, x, y) },
	"GELUTanh":     func(k *kernel, d, x, _ []float32) { k.geluTanh(d, x) },
	"GELUTanhGrad": func(k *kernel, d, x, y []float32) { k.geluTanhGrad(d, x, y) },
	"Max":          func(k *kernel, _, x, _ []float32) { sink = float64(k.max(x)) },
	"Dot":          func(k *kernel, _, x, y []float32) { sink = k.dot(x, y) },
	"Affine":       func(k *kernel, d, x, _ []float32) { k.affine(d, x, 2, 1) },
}

var benchOrder = []string{"Exp", "ExpSum", "Tanh", "Sigmoid", "Erf", "GELU", "GELUGrad", "GELUTanh", "GELUTanhGrad", "Max", "Dot", "Affine"}

// BenchmarkKernels runs each function on each kernel and the math-based
// loop it replaces, on 4,096 floats (in L1) and 1 M (in memory); ns/elem is
// the time per element, MB/s counts the float32s read and written.
//
//	go test ./internal/vecmath -run '^$' -bench Kernels
func BenchmarkKernels(b *testing.B) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, n := range []int{4096, 1 << 20} {
		x, y := randFloats(rng, n, -5, 5), randFloats(rng, n, -1, 1)
		dst := make([]float32, n)
		for _, name := range benchOrder {
			run := func(b *testing.B, f func(dst, x, y []float32)) {
				b.SetBytes(int64(8 * n))
				for b.Loop() {
					f(dst, x, y)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/elem")
			}
			for _, kn := range allKernels {
				k, err := forKernel(kn)
				if err != nil {
					continue
				}
				b.Run(fmt.Sprintf("%s/n=%d/%s", name, n, kn), func(b *testing.B) {
					run(b, func(d, x, y []float32) { benchFuncs[name](k, d, x, y) })
				})
			}
			if f, ok := mathLoops[name]; ok {
				b.Run(fmt.Sprintf("%s/n=%d/math", name, n), func(b *testing.B) { run(b, f) })
			}
		}
	}
}
