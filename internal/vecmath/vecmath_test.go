package vecmath

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestKernelIsChosen(t *testing.T) {
	assert.Contains(t, []string{"avx2", "go"}, Kernel())
	_, err := forKernel("avx512")
	assert.Error(t, err)
	k, err := forKernel("go")
	require.NoError(t, err)
	assert.Equal(t, "go", k.name)
}

func randFloats(rng *rand.Rand, n int, lo, hi float32) []float32 { return randomIn(rng, n, lo, hi) }

// guarded returns a slice of n values from fill, followed in its backing
// array by 9 sentinels that must survive every call.
func guarded(n int, fill func(i int) float32) []float32 {
	b := make([]float32, n+9)
	for i := range b {
		if i < n {
			b[i] = fill(i)
		} else {
			b[i] = -12345.5
		}
	}
	return b[:n]
}

func intact(t *testing.T, s []float32, what string) {
	t.Helper()
	for _, v := range s[len(s):cap(s)] {
		require.Equal(t, float32(-12345.5), v, "%s wrote past the end of its slice", what)
	}
}

// elementwise are the functions that write dst[i] from element i of their
// inputs, for the length and aliasing tests.
var elementwise = []struct {
	name string
	run  func(k *kernel, dst, x, y []float32)
}{
	{"Exp", func(k *kernel, d, x, _ []float32) { k.exp(d, x) }},
	{"ExpSum", func(k *kernel, d, x, _ []float32) { k.expSum(d, x, 0.25) }},
	{"Affine", func(k *kernel, d, x, _ []float32) { k.affine(d, x, 1.5, -0.25) }},
	{"AXPY", func(k *kernel, d, x, y []float32) { k.axpy(d, -0.75, x, y) }},
	{"MulAffine", func(k *kernel, d, x, y []float32) { k.mulAffine(d, x, y, 0.5, 2) }},
	{"Tanh", func(k *kernel, d, x, _ []float32) { k.tanh(d, x) }},
	{"Sigmoid", func(k *kernel, d, x, _ []float32) { k.sigmoid(d, x) }},
	{"Erf", func(k *kernel, d, x, _ []float32) { k.erf(d, x) }},
	{"GELU", func(k *kernel, d, x, _ []float32) { k.gelu(d, x) }},
	{"GELUGrad", func(k *kernel, d, x, y []float32) { k.geluGrad(d, x, y) }},
	{"GELUTanh", func(k *kernel, d, x, _ []float32) { k.geluTanh(d, x) }},
	{"GELUTanhGrad", func(k *kernel, d, x, y []float32) { k.geluTanhGrad(d, x, y) }},
	{"TanhGrad", func(k *kernel, d, x, y []float32) { k.tanhGrad(d, x, y) }},
	{"SigmoidGrad", func(k *kernel, d, x, y []float32) { k.sigmoidGrad(d, x, y) }},
}

// TestEveryLength checks, for lengths 1 to 40, that each element is
// computed exactly as it is in a call of length 1 (the full steps and the
// masked last step agree), that nothing past the slices is written, and
// that dst may be the input itself.
func TestEveryLength(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, k := range testKernels(t) {
		for _, f := range elementwise {
			for n := 1; n <= 40; n++ {
				xs := randFloats(rng, n, -6, 6)
				ys := randFloats(rng, n, -2, 2)
				x := guarded(n, func(i int) float32 { return xs[i] })
				y := guarded(n, func(i int) float32 { return ys[i] })
				dst := guarded(n, func(int) float32 { return float32(math.NaN()) })
				f.run(k, dst, x, y)
				intact(t, dst, f.name)
				one := make([]float32, 1)
				for i := range n {
					f.run(k, one, x[i:i+1], y[i:i+1])
					require.Equal(t, math.Float32bits(one[0]), math.Float32bits(dst[i]),
						"%s/%s: element %d of %d differs from a call of length 1", k.name, f.name, i, n)
				}
				in := append([]float32(nil), x...)
				f.run(k, in, in, y)
				require.Equal(t, dst, in, "%s/%s: dst = x", k.name, f.name)
			}
		}
	}
}

func TestLengthsMustAgree(t *testing.T) {
	a, b := make([]float32, 3), make([]float32, 4)
	assert.PanicsWithError(t, "vecmath: Exp: slice lengths 4 and 3 differ", func() { Exp(a, b) })
	assert.Panics(t, func() { AXPY(a, 1, a, b) })
	assert.Panics(t, func() { Dot(a, b) })
	assert.Panics(t, func() { GELUGrad(a, a, b) })
	assert.NotPanics(t, func() { Exp(nil, nil) })
	assert.Equal(t, float32(math.Inf(-1)), Max(nil))
	assert.Zero(t, Sum(nil))
}

// TestReductions checks ExpSum, SumExp, Max, Sum and Dot against float64.
func TestReductions(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, k := range testKernels(t) {
		for _, n := range []int{1, 7, 8, 9, 64, 1000, 4099} {
			x := randFloats(rng, n, -30, 30)
			y := randFloats(rng, n, -3, 3)
			shift := x[rng.IntN(n)]
			var exact, abs, dot, dabs, sum, sabs float64
			maxv := math.Inf(-1)
			for i, v := range x {
				e := math.Exp(float64(v - shift))
				exact += e
				abs += e
				dot += float64(v) * float64(y[i])
				dabs += math.Abs(float64(v) * float64(y[i]))
				sum += float64(v)
				sabs += math.Abs(float64(v))
				maxv = math.Max(maxv, float64(v))
			}
			dst := make([]float32, n)
			s := k.expSum(dst, x, shift)
			// Each term within Exp's 1 ulp (2⁻²³ relative, generously), the
			// float64 sum exact by comparison.
			assert.InDelta(t, exact, s, 0x1p-23*abs, "%s ExpSum n=%d", k.name, n)
			assert.Equal(t, s, k.sumExp(x, shift), "%s SumExp n=%d", k.name, n)
			var fromDst float64
			for _, v := range dst {
				fromDst += float64(v)
			}
			assert.InDelta(t, fromDst, s, 1e-12*abs, "%s ExpSum's sum of its own dst", k.name)
			assert.Equal(t, float32(maxv), k.max(x), "%s Max n=%d", k.name, n)
			assert.InDelta(t, sum, k.sum(x), 1e-13*sabs, "%s Sum n=%d", k.name, n)
			assert.InDelta(t, dot, k.dot(x, y), 1e-13*dabs, "%s Dot n=%d", k.name, n)
		}
		nan := float32(math.NaN())
		assert.Equal(t, float32(3), k.max([]float32{nan, 1, 3, nan, -2, nan, nan, nan, 2, nan}), k.name)
		assert.Equal(t, float32(math.Inf(-1)), k.max([]float32{nan, nan, nan}), k.name)
	}
}

// TestLinear checks Affine and AXPY (one rounding: within ½ ulp), MulAffine
// and TanhGrad (two roundings: 1.5 ulp) and SigmoidGrad (three: 2 ulp)
// against float64.
func TestLinear(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const n = 1 << 14
	x, y := randFloats(rng, n, -10, 10), randFloats(rng, n, -10, 10)
	p, dy := randFloats(rng, n, -1, 1), randFloats(rng, n, -3, 3)
	for i := range p[:n/2] {
		p[i] = (p[i] + 1) / 2 // σ's outputs in [0, 1]
	}
	a, b := float32(0.3), float32(-1.7)
	for _, k := range testKernels(t) {
		dst := make([]float32, n)
		var w [5]worst
		k.affine(dst, x, a, b)
		for i, v := range x {
			w[0].add(v, dst[i], float64(a)*float64(v)+float64(b), 0)
		}
		k.axpy(dst, a, x, y)
		for i, v := range x {
			w[1].add(v, dst[i], float64(a)*float64(v)+float64(y[i]), 0)
		}
		k.mulAffine(dst, x, y, a, b)
		for i, v := range x {
			w[2].add(v, dst[i], float64(v)*(float64(a)*float64(y[i])+float64(b)), 0)
		}
		k.tanhGrad(dst, p, dy)
		for i, v := range p {
			f := float64(v)
			w[3].add(v, dst[i], float64(dy[i])*(1-f*f), 0)
		}
		k.sigmoidGrad(dst, p, dy)
		for i, v := range p {
			f := float64(v)
			w[4].add(v, dst[i], float64(dy[i])*f*(1-f), 0)
		}
		for i, name := range []string{"Affine", "AXPY", "MulAffine", "TanhGrad", "SigmoidGrad"} {
			t.Logf("%s/%s: %s", k.name, name, w[i])
			assert.LessOrEqual(t, w[i].err, []float64{0.5 + 1e-6, 0.5 + 1e-6, 1.5, 1.5, 2}[i], "%s/%s", k.name, name)
		}
	}
}

// softmax64 is the reference softmax in float64 of the float32 differences
// x − max x (every float32 softmax rounds them first, so that an output's
// relative error includes |x − max|·2⁻²⁴ whatever its exponential).
func softmax64(x []float32) []float64 {
	m := float32(math.Inf(-1))
	for _, v := range x {
		m = max(m, v)
	}
	y := make([]float64, len(x))
	var s float64
	for i, v := range x {
		y[i] = math.Exp(float64(v - m))
		s += y[i]
	}
	for i := range y {
		y[i] /= s
	}
	return y
}

func TestSoftmaxFamily(t *testing.T) {
	defer func(k *kernel) { active = k }(active)
	for _, k := range testKernels(t) {
		active = k // the row functions run on the active kernel
		t.Run(k.name, testSoftmaxFamily)
	}
}

func testSoftmaxFamily(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, n := range []int{1, 5, 64, 1000} {
		x := randFloats(rng, n, -20, 20)
		if n > 5 {
			x[3] = float32(math.Inf(-1)) // a masked position
		}
		want := softmax64(x)
		y := make([]float32, n)
		Softmax(y, x)
		var w worst
		for i := range x {
			w.add(x[i], y[i], want[i], 0)
		}
		assert.LessOrEqual(t, w.err, 3.0, "Softmax n=%d: %s", n, w)

		lse := LogSoftmax(y, x)
		var wl worst
		var lse64 float64
		m := math.Inf(-1)
		for _, v := range x {
			m = math.Max(m, float64(v))
		}
		var s float64
		for _, v := range x {
			s += math.Exp(float64(v) - m)
		}
		lse64 = m + math.Log(s)
		assert.InDelta(t, lse64, float64(lse), 2*ulp(lse64), "LogSumExp n=%d", n)
		for i := range x {
			// x − lse rounds once, after lse's own rounding.
			wl.add(x[i], y[i], float64(x[i])-lse64, math.Abs(lse64))
		}
		assert.LessOrEqual(t, wl.err, 2.5, "LogSoftmax n=%d: %s", n, wl)

		// Gradients through the outputs, against float64 from the same y.
		p := make([]float32, n)
		Softmax(p, x)
		dy := randFloats(rng, n, -1, 1)
		dx := make([]float32, n)
		const scale = 0.125
		SoftmaxGrad(dx, p, dy, scale)
		var dot float64
		for i := range p {
			dot += float64(p[i]) * float64(dy[i])
		}
		for i := range p {
			want := scale * float64(p[i]) * (float64(dy[i]) - dot)
			assert.InDelta(t, want, float64(dx[i]), 2*ulp(scale*float64(p[i])*(math.Abs(float64(dy[i]))+math.Abs(dot))), "SoftmaxGrad n=%d i=%d", n, i)
		}
		LogSoftmax(y, x)
		LogSoftmaxGrad(dx, y, dy)
		var sdy float64
		for _, g := range dy {
			sdy += float64(g)
		}
		for i := range y {
			e := math.Exp(float64(y[i]))
			want := float64(dy[i]) - e*sdy
			assert.InDelta(t, want, float64(dx[i]), 3*ulp(math.Abs(float64(dy[i]))+math.Abs(e*sdy)), "LogSoftmaxGrad n=%d i=%d", n, i)
		}
	}
	masked := []float32{float32(math.Inf(-1)), float32(math.Inf(-1))}
	y := []float32{1, 1}
	Softmax(y, masked)
	assert.Equal(t, []float32{0, 0}, y, "an all-masked row is zeros")
	assert.Equal(t, float32(math.Inf(-1)), LogSumExp(masked))
}

// FuzzKernels checks every unary function's bound on arbitrary inputs, on
// every kernel, with nothing written past the output.
func FuzzKernels(f *testing.F) {
	for _, seed := range [][]float32{
		{0, 1, -1, 88.7, -104, float32(math.NaN()), float32(math.Inf(1)), 1e-40},
		{-13.2, 14.1, -0.75, 0.625, 3.92, -10.9, 9.01},
	} {
		b := make([]byte, 4*len(seed))
		for i, v := range seed {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
		f.Add(b)
	}
	ks := testKernels(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		n := len(b) / 4
		xs := guarded(n, func(i int) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])) })
		for _, k := range ks {
			for _, u := range unaries {
				if n == 0 {
					continue
				}
				got := guarded(n, func(int) float32 { return 0 })
				u.run(k, got, xs)
				intact(t, got, u.name)
				for i, x := range xs {
					want, scale := u.exact(float64(x))
					if e := ulpErr(got[i], want, scale); !(e <= u.bound) {
						t.Fatalf("%s/%s(%v = %#x) = %v, want %v: %.3g ulp > %v", k.name, u.name, x, math.Float32bits(x), got[i], want, e, u.bound)
					}
				}
			}
		}
	})
}

// TestAdamUpdate checks one Adam and one AdamW update on each kernel
// against float64, that every length computes each element as a call of
// length 1 does, and that nothing past the slices is written.
func TestAdamUpdate(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	steps := map[string]AdamStep{
		"adamw": {GradScale: 0.37, L2: 0, Decay: 1 - 1e-3*0.01, Beta1: 0.9, Beta2: 0.999, InvBC2: 1 / math.Sqrt(1-math.Pow(0.999, 3)), Eps: 1e-8, Step: 1e-3 / (1 - math.Pow(0.9, 3))},
		"adam":  {GradScale: 1, L2: 0.1, Decay: 1, Beta1: 0.8, Beta2: 0.99, InvBC2: 10, Eps: 1e-6, Step: 0.5},
	}
	for _, k := range testKernels(t) {
		for name, s := range steps {
			for _, n := range []int{1, 7, 8, 9, 31, 1000} {
				w0, g := randFloats(rng, n, -1, 1), randFloats(rng, n, -2, 2)
				m0, v0 := randFloats(rng, n, -0.1, 0.1), randFloats(rng, n, 0, 0.01)
				w := guarded(n, func(i int) float32 { return w0[i] })
				m := guarded(n, func(i int) float32 { return m0[i] })
				v := guarded(n, func(i int) float32 { return v0[i] })
				k.adam(w, g, m, v, s)
				for _, sl := range [][]float32{w, m, v} {
					intact(t, sl, "AdamUpdate")
				}
				for i := range n {
					gi := s.GradScale*float64(g[i]) + s.L2*float64(w0[i])
					mi := s.Beta1*float64(m0[i]) + (1-s.Beta1)*gi
					vi := s.Beta2*float64(v0[i]) + (1-s.Beta2)*gi*gi
					wi := s.Decay*float64(w0[i]) - s.Step*mi/(math.Sqrt(vi)*s.InvBC2+s.Eps)
					assert.InDelta(t, mi, float64(m[i]), 4*ulp(math.Abs(s.Beta1*float64(m0[i]))+math.Abs((1-s.Beta1)*gi)), "%s/%s m[%d]", k.name, name, i)
					assert.InDelta(t, vi, float64(v[i]), 4*ulp(vi), "%s/%s v[%d]", k.name, name, i)
					assert.InDelta(t, wi, float64(w[i]), 4*ulp(math.Abs(float64(w0[i]))+math.Abs(wi-float64(w0[i]))), "%s/%s w[%d]", k.name, name, i)
					// The same element alone, through the masked last step.
					w1, m1, v1 := []float32{w0[i]}, []float32{m0[i]}, []float32{v0[i]}
					k.adam(w1, g[i:i+1], m1, v1, s)
					require.Equal(t, []float32{w[i], m[i], v[i]}, []float32{w1[0], m1[0], v1[0]}, "%s/%s element %d of %d", k.name, name, i, n)
				}
			}
		}
	}
	assert.Panics(t, func() {
		AdamUpdate(make([]float32, 2), make([]float32, 3), make([]float32, 2), make([]float32, 2), AdamStep{})
	})
}
