package vecmath

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// allKernels are the names of every kernel any build has, fastest first.
var allKernels = []string{"avx2", "go"}

var (
	onlyKernels = flag.String("kernels", "", "comma-separated kernels to test (default: every one this CPU runs)")
	stride      = flag.Int("stride", 1<<11, "test every stride-th float32 bit pattern (1: all 2³² of them)")
	dense       = flag.Bool("dense", false, "also test every float32 with 2⁻⁸ ≤ |x| < 32 (2.2·10⁸ inputs a function: minutes)")
)

// testKernels returns each kernel this build and CPU run, and logs the ones
// it skips and why.
func testKernels(t testing.TB) []*kernel {
	var ks []*kernel
	var tested, skipped []string
	for _, name := range allKernels {
		if *onlyKernels != "" && !slices.Contains(strings.Split(*onlyKernels, ","), name) {
			skipped = append(skipped, name+" (not in -kernels)")
			continue
		}
		k, err := forKernel(name)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("%s (%v)", name, err))
			continue
		}
		ks = append(ks, k)
		tested = append(tested, name)
	}
	t.Logf("kernels tested: %v; skipped: %v", tested, skipped)
	require.NotEmpty(t, ks)
	return ks
}

const signBit = 0x80000000

// ulp is the spacing of float32 numbers at |v| (the subnormals' below
// 2⁻¹²⁶; 2¹⁰⁴ beyond the largest float32).
func ulp(v float64) float64 {
	a := math.Abs(v)
	if a < 0x1p-126 {
		return 0x1p-149
	}
	if a >= 0x1p128 {
		return 0x1p104
	}
	_, e := math.Frexp(a)
	return math.Ldexp(1, e-24)
}

// ulpErr is got's distance from the exact value want in float32 ulps of
// want, or, with scale > |want|, of scale: for results that are a
// difference of terms of size scale. ±Inf counts as ±2¹²⁸; NaN must match
// NaN.
func ulpErr(got float32, want, scale float64) float64 {
	g := float64(got)
	if math.IsNaN(want) || math.IsNaN(g) {
		if math.IsNaN(want) && math.IsNaN(g) {
			return 0
		}
		return math.Inf(1)
	}
	if math.IsInf(g, 0) {
		if math.IsInf(want, 0) && math.Signbit(g) == math.Signbit(want) {
			return 0
		}
		g = math.Copysign(0x1p128, g)
	}
	if math.Abs(want) > 0x1p128 {
		want = math.Copysign(0x1p128, want) // beyond float32: Inf is exact
	}
	return math.Abs(g-want) / ulp(math.Max(math.Abs(want), scale))
}

// A unary function under test: the kernel's, the exact one, and its bound.
type unary struct {
	name  string
	bound float64 // max ulp error
	run   func(k *kernel, dst, x []float32)
	exact func(x float64) (want, scale float64)
	// in restricts the sweep (nil: every float32).
	in func(x float32) bool
}

func gaussCDF(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }

func sigmoidExact(w float64) float64 { return 1 / (1 + math.Exp(-w)) }

func geluTanhW64(x float64) float64 {
	return 2 * math.Sqrt(2/math.Pi) * (x + 0.044715*x*x*x)
}

var unaries = []unary{
	{name: "Exp", bound: 1, run: func(k *kernel, d, x []float32) { k.exp(d, x) },
		exact: func(x float64) (float64, float64) { return math.Exp(x), 0 }},
	{name: "Tanh", bound: 1.5, run: func(k *kernel, d, x []float32) { k.tanh(d, x) },
		exact: func(x float64) (float64, float64) { return math.Tanh(x), 0 }},
	{name: "Sigmoid", bound: 2.5, run: func(k *kernel, d, x []float32) { k.sigmoid(d, x) },
		exact: func(x float64) (float64, float64) { return sigmoidExact(x), 0 }},
	{name: "Erf", bound: 1.5, run: func(k *kernel, d, x []float32) { k.erf(d, x) },
		exact: func(x float64) (float64, float64) { return math.Erf(x), 0 }},
	{name: "GELU", bound: 4, run: func(k *kernel, d, x []float32) { k.gelu(d, x) },
		exact: func(x float64) (float64, float64) {
			if math.IsInf(x, -1) {
				return math.Copysign(0, -1), 0
			}
			return x * gaussCDF(x), 0
		}},
	{name: "GELUGrad", bound: 3, run: func(k *kernel, d, x []float32) { k.geluGrad(d, x, ones(len(x))) },
		exact: func(x float64) (float64, float64) {
			if math.IsInf(x, 0) {
				return gaussCDF(x), 0
			}
			p, xp := gaussCDF(x), x*math.Exp(-x*x/2)/math.Sqrt(2*math.Pi)
			return p + xp, math.Abs(p) + math.Abs(xp)
		}},
	{name: "GELUTanh", bound: 3, run: func(k *kernel, d, x []float32) { k.geluTanh(d, x) },
		exact: func(x float64) (float64, float64) {
			if math.IsInf(x, -1) {
				return math.Copysign(0, -1), 0
			}
			return x * sigmoidExact(geluTanhW64(x)), 0
		}},
	{name: "GELUTanhGrad", bound: 4.5, run: func(k *kernel, d, x []float32) { k.geluTanhGrad(d, x, ones(len(x))) },
		exact: func(x float64) (float64, float64) {
			if math.IsInf(x, 0) {
				return sigmoidExact(x), 0
			}
			w := geluTanhW64(x)
			s, sm := sigmoidExact(w), sigmoidExact(-w)
			t := x * s * sm * 2 * math.Sqrt(2/math.Pi) * (1 + 3*0.044715*x*x)
			return s + t, math.Abs(s) + math.Abs(t)
		}},
}

func ones(n int) []float32 {
	d := make([]float32, n)
	for i := range d {
		d[i] = 1
	}
	return d
}

// worst tracks the largest error and where it occurred.
type worst struct {
	err  float64
	x    float32
	got  float32
	want float64
}

func (w *worst) add(x, got float32, want, scale float64) {
	if e := ulpErr(got, want, scale); e > w.err || (math.IsNaN(e) && !math.IsNaN(w.err)) {
		*w = worst{e, x, got, want}
	}
}

func (w worst) String() string {
	return fmt.Sprintf("%.3g ulp at x = %v (%#x): got %v, want %v", w.err, w.x, math.Float32bits(w.x), w.got, w.want)
}

// check runs f on xs in one call and accumulates its errors.
func (u unary) check(k *kernel, xs []float32, w *worst) {
	got := make([]float32, len(xs))
	u.run(k, got, xs)
	for i, x := range xs {
		want, scale := u.exact(float64(x))
		w.add(x, got[i], want, scale)
	}
}

// edges are the edge cases: ±0, subnormals, normal limits, ±Inf, NaN, and
// the thresholds of each function with their float32 neighbours.
func edges() []float32 {
	base := []float32{
		0, math.SmallestNonzeroFloat32, 0x1p-140, 0x1p-127, 0x1p-126, 0x1p-100, 1e-30, 1e-10, 1e-5, 0.01, 0.1,
		0.25, 0.3465, 0.5, 0.75, 1, 2, 3.92, 4, 5, 8, 9.01, 10, 10.9, 12, 14.1, 15, 20,
		42, 87.3365, 88, 88.72283, 88.7229, 89, 100, 103.972, 104, 150, 1e10, math.MaxFloat32,
		float32(math.Inf(1)), float32(math.NaN()), math.Float32frombits(0x7fc00001), math.Float32frombits(0x7f800001),
	}
	var xs []float32
	for _, b := range base {
		for _, v := range []float32{b, -b} {
			xs = append(xs, v)
			lo, hi := v, v
			for i := 0; i < 3; i++ {
				lo, hi = math.Nextafter32(lo, float32(math.Inf(-1))), math.Nextafter32(hi, float32(math.Inf(1)))
				xs = append(xs, lo, hi)
			}
		}
	}
	return xs
}

// sweep returns every stride-th float32 bit pattern, starting at off.
func sweep(stride, off int) []float32 {
	xs := make([]float32, 0, (1<<32)/stride+1)
	for b := uint64(off); b < 1<<32; b += uint64(stride) {
		xs = append(xs, math.Float32frombits(uint32(b)))
	}
	return xs
}

// randomIn returns n uniform samples in [lo, hi).
func randomIn(rng *rand.Rand, n int, lo, hi float32) []float32 {
	xs := make([]float32, n)
	for i := range xs {
		xs[i] = lo + (hi-lo)*rng.Float32()
	}
	return xs
}

// TestAccuracy measures each function's max ulp error against float64 math
// over the edge cases, a sweep of the float32 bit patterns (-stride) and
// random inputs where the functions vary, and asserts the documented bound.
func TestAccuracy(t *testing.T) {
	st := *stride
	if testing.Short() && st < 1<<14 {
		st = 1 << 14
	}
	rng := rand.New(rand.NewPCG(1, 2))
	// The sweep starts off the powers of two (an odd offset), so that it
	// sees mantissas other than the few a power-of-two stride would.
	inputs := map[string][]float32{
		"edges":    edges(),
		"sweep":    sweep(st, st/2+1),
		"[-20,20]": randomIn(rng, 1<<20, -20, 20),
		"[-1,1]":   randomIn(rng, 1<<18, -1, 1),
	}
	for _, k := range testKernels(t) {
		for _, u := range unaries {
			t.Run(k.name+"/"+u.name, func(t *testing.T) {
				var all worst
				for _, set := range []string{"edges", "sweep", "[-20,20]", "[-1,1]"} {
					var w worst
					for xs := range slices.Chunk(inputs[set], 4099) {
						u.check(k, xs, &w)
					}
					t.Logf("%-8s %s", set, w)
					if w.err > all.err || math.IsNaN(w.err) {
						all = w
					}
				}
				if *dense {
					var w worst
					xs := make([]float32, 1<<16)
					for _, sign := range []uint32{0, signBit} {
						for b := uint32(0x3b800000); b < 0x42000000; b += uint32(len(xs)) {
							for i := range xs {
								xs[i] = math.Float32frombits(sign | (b + uint32(i)))
							}
							u.check(k, xs, &w)
						}
					}
					t.Logf("%-8s %s", "dense", w)
					if w.err > all.err || math.IsNaN(w.err) {
						all = w
					}
				}
				assert.LessOrEqual(t, all.err, u.bound, "%s (%s): %s", u.name, k.name, all)
			})
		}
	}
}
