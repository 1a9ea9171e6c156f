//go:build amd64 && !noasm

package vecmath

import "golang.org/x/sys/cpu"

// kernels are this build's assembly kernels, fastest first. The wrappers
// are called with non-empty slices of equal lengths.
var kernels = []*kernel{{
	name: "avx2",
	has:  func() bool { return cpu.X86.HasAVX2 && cpu.X86.HasFMA },

	exp:    func(dst, x []float32) { expAVX2(&dst[0], &x[0], len(x)) },
	expSum: func(dst, x []float32, shift float32) float64 { return expSumAVX2(&dst[0], &x[0], len(x), shift) },
	sumExp: func(x []float32, shift float32) float64 { return sumExpAVX2(&x[0], len(x), shift) },
	max:    func(x []float32) float32 { return maxAVX2(&x[0], len(x)) },
	sum:    func(x []float32) float64 { return sumAVX2(&x[0], len(x)) },
	dot:    func(x, y []float32) float64 { return dotAVX2(&x[0], &y[0], len(x)) },
	affine: func(dst, x []float32, a, b float32) { affineAVX2(&dst[0], &x[0], len(x), a, b) },
	axpy:   func(dst []float32, a float32, x, y []float32) { axpyAVX2(&dst[0], &x[0], &y[0], len(x), a) },
	mulAffine: func(dst, x, y []float32, a, b float32) {
		mulAffineAVX2(&dst[0], &x[0], &y[0], len(x), a, b)
	},
	tanh:         func(dst, x []float32) { tanhAVX2(&dst[0], &x[0], len(x)) },
	sigmoid:      func(dst, x []float32) { sigmoidAVX2(&dst[0], &x[0], len(x)) },
	erf:          func(dst, x []float32) { erfAVX2(&dst[0], &x[0], len(x)) },
	gelu:         func(dst, x []float32) { geluAVX2(&dst[0], &x[0], len(x)) },
	geluGrad:     func(dst, x, dy []float32) { geluGradAVX2(&dst[0], &x[0], &dy[0], len(x)) },
	geluTanh:     func(dst, x []float32) { geluTanhAVX2(&dst[0], &x[0], len(x)) },
	geluTanhGrad: func(dst, x, dy []float32) { geluTanhGradAVX2(&dst[0], &x[0], &dy[0], len(x)) },
	tanhGrad:     func(dst, y, dy []float32) { tanhGradAVX2(&dst[0], &y[0], &dy[0], len(y)) },
	sigmoidGrad:  func(dst, y, dy []float32) { sigmoidGradAVX2(&dst[0], &y[0], &dy[0], len(y)) },
	adam: func(w, g, m, v []float32, s AdamStep) {
		f := func(x float64) float32 { return float32(x) }
		adamAVX2(&g[0], &w[0], &m[0], &v[0], len(w), f(s.GradScale), f(s.L2), f(s.Decay),
			f(s.Beta1), f(1-s.Beta1), f(s.Beta2), f(1-s.Beta2), f(s.InvBC2), f(s.Eps), f(s.Step))
	},
}}
