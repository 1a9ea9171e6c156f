package sgemm

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// allKernels are the names of every kernel any build has, fastest first.
var allKernels = []string{"avx512", "avx2", "gonum"}

// onlyKernels narrows the kernels under test, for slow runs such as an
// emulated AVX-512 CPU: go test -args -kernels avx512.
var onlyKernels = flag.String("kernels", "", "comma-separated kernels to test (default: every one this CPU runs)")

// testImpls returns an implementation forcing each kernel this build and CPU
// run, and logs the kernels it skips and why: a CPU without AVX-512 tests
// the AVX2 path and says so.
func testImpls(t testing.TB) []Implementation {
	var impls []Implementation
	var tested, skipped []string
	for _, name := range allKernels {
		if *onlyKernels != "" && !slices.Contains(strings.Split(*onlyKernels, ","), name) {
			skipped = append(skipped, name+" (not in -kernels)")
			continue
		}
		impl, err := ForKernel(name)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("%s (%v)", name, err))
			continue
		}
		impls = append(impls, impl)
		tested = append(tested, name)
	}
	t.Logf("kernels tested: %v; skipped: %v", tested, skipped)
	if *onlyKernels == "" {
		require.Contains(t, tested, "gonum")
	}
	require.NotEmpty(t, tested)
	return impls
}

func (impl Implementation) name() string {
	if impl.kr == nil {
		return active.name
	}
	return impl.kr.name
}

// problem is one Sgemm call: op(A) m×k, op(B) k×n, C m×n, with leading
// dimensions padded by padA, padB, padC beyond the tight ones.
type problem struct {
	aT, bT           bool
	m, n, k          int
	padA, padB, padC int
	alpha, beta      float32
}

func (p problem) String() string {
	t := func(b bool) string {
		if b {
			return "T"
		}
		return "N"
	}
	return fmt.Sprintf("%s%s m%d n%d k%d pad%d,%d,%d α%v β%v", t(p.aT), t(p.bT), p.m, p.n, p.k, p.padA, p.padB, p.padC, p.alpha, p.beta)
}

func trans(b bool) blas.Transpose {
	if b {
		return blas.Trans
	}
	return blas.NoTrans
}

// dims returns the stored (rows, cols) and leading dimension of A, B and C.
func (p problem) dims() (ra, ca, lda, rb, cb, ldb, rc, cc, ldc int) {
	ra, ca = p.m, p.k
	if p.aT {
		ra, ca = p.k, p.m
	}
	rb, cb = p.k, p.n
	if p.bT {
		rb, cb = p.n, p.k
	}
	return ra, ca, max(1, ca) + p.padA, rb, cb, max(1, cb) + p.padB, p.m, p.n, max(1, p.n) + p.padC
}

// operands makes A, B and C as short as Sgemm allows, random inside the
// matrices and NaN in the padding (so a read of the padding shows in C).
// With beta = 0, C holds NaN: it must not be read. With alpha = 0, A and B
// hold NaN: they must not be read.
func (p problem) operands(rng *rand.Rand) (a, b, c []float32) {
	ra, ca, lda, rb, cb, ldb, rc, cc, ldc := p.dims()
	fill := func(rows, cols, ld int, nan bool) []float32 {
		if rows == 0 || (rows-1)*ld+cols <= 0 {
			return nil
		}
		s := make([]float32, (rows-1)*ld+cols)
		for i := range s {
			s[i] = float32(math.NaN())
			if i%ld < cols && !nan {
				s[i] = rng.Float32()*2 - 1
			}
		}
		return s
	}
	a = fill(ra, ca, lda, p.alpha == 0)
	b = fill(rb, cb, ldb, p.alpha == 0)
	c = fill(rc, cc, ldc, p.beta == 0)
	return a, b, c
}

// reference is C's element (i, j) after the call, from a float64 triple loop,
// and the sum of the magnitudes of its terms (the scale of its rounding
// error).
func (p problem) reference(a, b, c []float32, i, j int) (v, mag float64) {
	_, _, lda, _, _, ldb, _, _, ldc := p.dims()
	if p.alpha != 0 {
		var s, sa float64
		for q := 0; q < p.k; q++ {
			var x, y float32
			if p.aT {
				x = a[q*lda+i]
			} else {
				x = a[i*lda+q]
			}
			if p.bT {
				y = b[j*ldb+q]
			} else {
				y = b[q*ldb+j]
			}
			s += float64(x) * float64(y)
			sa += math.Abs(float64(x) * float64(y))
		}
		v, mag = float64(p.alpha)*s, math.Abs(float64(p.alpha))*sa
	}
	if p.beta != 0 {
		t := float64(p.beta) * float64(c[i*ldc+j])
		v += t
		mag += math.Abs(t)
	}
	return v, mag
}

// check runs p through impl and compares C with the reference on every
// element, or with sample on the rows and columns it picks, and checks that
// C's padding is untouched.
func check(t *testing.T, impl Implementation, p problem, rng *rand.Rand, sample bool) bool {
	t.Helper()
	a, b, c := p.operands(rng)
	_, _, lda, _, _, ldb, _, _, ldc := p.dims()
	orig := slices.Clone(c)
	impl.Sgemm(trans(p.aT), trans(p.bT), p.m, p.n, p.k, p.alpha, a, lda, b, ldb, p.beta, c, ldc)

	rows, cols := indices(p.m, sample, rng), indices(p.n, sample, rng)
	eps := math.Pow(2, -23)
	tol := (4*math.Sqrt(float64(p.k)) + 8) * eps
	for _, i := range rows {
		for _, j := range cols {
			want, mag := p.reference(a, b, orig, i, j)
			got := float64(c[i*ldc+j])
			if math.IsNaN(got) || math.Abs(got-want) > tol*mag+1e-30 {
				return assert.Failf(t, "wrong element", "%s kernel %s threads %d: C[%d,%d] = %v, want %v (±%.3g)",
					p, impl.name(), impl.threads, i, j, got, want, tol*mag)
			}
		}
	}
	for i := range c {
		if i%ldc >= p.n && !(math.IsNaN(float64(c[i])) && math.IsNaN(float64(orig[i]))) && c[i] != orig[i] {
			return assert.Failf(t, "padding written", "%s kernel %s: C's padding at %d changed", p, impl.name(), i)
		}
	}
	return true
}

// indices are all of 0…n−1, or with sample the ends, the block and tile
// boundaries of both kernels and a few random ones.
func indices(n int, sample bool, rng *rand.Rand) []int {
	if !sample {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	var idx []int
	for _, i := range []int{0, 1, 5, 6, 11, 12, 15, 16, 31, 32, 119, 120, 255, 256, 1535, 1536, n - 2, n - 1} {
		if i >= 0 && i < n {
			idx = append(idx, i)
		}
	}
	for range 8 {
		idx = append(idx, rng.IntN(n))
	}
	return idx
}

var transPairs = [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}}

// Every transpose pair at every size from 1 to 70 (square), and at every
// combination of awkward sizes (primes, tile widths ± 1).
func TestSizes(t *testing.T) {
	odd := []int{1, 2, 3, 5, 7, 11, 13, 17, 31, 33, 37, 61, 70}
	var probs []problem
	for s := 1; s <= 70; s++ {
		for _, tr := range transPairs {
			probs = append(probs, problem{aT: tr[0], bT: tr[1], m: s, n: s, k: s, alpha: 1})
		}
	}
	for _, m := range odd {
		for _, n := range odd {
			for _, k := range odd {
				for _, tr := range transPairs {
					probs = append(probs, problem{aT: tr[0], bT: tr[1], m: m, n: n, k: k, alpha: 1})
				}
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, impl := range testImpls(t) {
		for _, p := range probs {
			if !check(t, impl, p, rng, false) {
				return
			}
		}
	}
}

// Leading dimensions wider than the matrices, with NaN in the gaps.
func TestStrides(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, impl := range testImpls(t) {
		for _, s := range [][3]int{{1, 1, 1}, {7, 13, 5}, {12, 32, 8}, {13, 33, 17}, {37, 61, 70}, {70, 17, 33}} {
			for _, tr := range transPairs {
				for _, pad := range [][3]int{{1, 0, 0}, {0, 3, 0}, {0, 0, 5}, {9, 17, 31}} {
					p := problem{aT: tr[0], bT: tr[1], m: s[0], n: s[1], k: s[2], padA: pad[0], padB: pad[1], padC: pad[2], alpha: 1, beta: 0.5}
					if !check(t, impl, p, rng, false) {
						return
					}
				}
			}
		}
	}
}

// α and β in {0, 1, −0.5, 2}: α = 0 leaves A and B unread (they hold NaN),
// β = 0 leaves C unread (it holds NaN).
func TestAlphaBeta(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	scalars := []float32{0, 1, -0.5, 2}
	for _, impl := range testImpls(t) {
		for _, s := range [][3]int{{1, 1, 1}, {6, 16, 8}, {13, 35, 300}, {40, 7, 3}} {
			for _, tr := range transPairs {
				for _, alpha := range scalars {
					for _, beta := range scalars {
						p := problem{aT: tr[0], bT: tr[1], m: s[0], n: s[1], k: s[2], padC: 2, alpha: alpha, beta: beta}
						if !check(t, impl, p, rng, false) {
							return
						}
					}
				}
			}
		}
	}
}

// k = 0 is C = β·C; m = 0 or n = 0 does nothing.
func TestEmpty(t *testing.T) {
	for _, impl := range testImpls(t) {
		nan := float32(math.NaN())
		a := []float32{nan, nan}
		c := []float32{1, 2, 3, 4}
		impl.Sgemm(blas.NoTrans, blas.NoTrans, 2, 2, 0, 1, a, 1, nil, 2, 2, c, 2)
		assert.Equal(t, []float32{2, 4, 6, 8}, c, impl.name())
		c = []float32{nan, nan}
		impl.Sgemm(blas.NoTrans, blas.NoTrans, 1, 2, 0, 1, a, 1, nil, 2, 0, c, 2)
		assert.Equal(t, []float32{0, 0}, c, impl.name())
		impl.Sgemm(blas.NoTrans, blas.NoTrans, 0, 2, 3, 1, nil, 3, []float32{1, 2, 3, 4, 5, 6}, 2, 0, nil, 2)
	}
}

// The products of the GPT presets' training steps (see gptShapes), every
// transpose pair, checked on sampled rows and columns.
func TestGPTShapes(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the GPT-sized products take a few seconds")
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for _, impl := range testImpls(t) {
		if impl.name() == "gonum" {
			continue // gonum's own tests cover it; at these sizes it is slow
		}
		for _, s := range gptShapes() {
			for _, tr := range transPairs {
				p := problem{aT: tr[0], bT: tr[1], m: s.M, n: s.N, k: s.K, alpha: 1, beta: 0}
				if !check(t, impl, p, rng, true) {
					return
				}
			}
		}
	}
}

// One goroutine and several, and splits of small products (minWork 1), give
// the same products.
func TestThreads(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, impl := range testImpls(t) {
		if impl.kr.micro == nil {
			continue
		}
		for _, threads := range []int{1, 2, 3, 16} {
			impl := impl
			impl.threads, impl.minWork = threads, 1
			for _, s := range [][3]int{{1, 1, 1}, {5, 70, 9}, {70, 5, 9}, {37, 61, 70}, {200, 33, 17}, {13, 300, 41}} {
				for _, tr := range transPairs {
					p := problem{aT: tr[0], bT: tr[1], m: s[0], n: s[1], k: s[2], padC: 1, alpha: -0.5, beta: 2}
					if !check(t, impl, p, rng, false) {
						return
					}
				}
			}
		}
	}
}

// Products of at most fewRows rows are computed from the operands in place
// (rows): every transpose pair, strides with NaN in the gaps, α and β (β = 0
// leaves C unread), on one goroutine and split between several, up to the
// boundary where packing takes over again.
func TestFewRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, impl := range testImpls(t) {
		if impl.kr.micro == nil {
			continue
		}
		for _, threads := range []int{1, 2, 16} {
			impl := impl
			impl.threads, impl.minWork = threads, 1
			for m := 1; m <= fewRows+1; m++ {
				for _, nk := range [][2]int{{1, 1}, {17, 9}, {1000, 300}, {33, 1030}} {
					for _, tr := range transPairs {
						for _, ab := range [][2]float32{{1, 0}, {-0.5, 1}, {2, -0.5}} {
							p := problem{aT: tr[0], bT: tr[1], m: m, n: nk[0], k: nk[1], padA: 3, padB: 1, padC: 2, alpha: ab[0], beta: ab[1]}
							if !check(t, impl, p, rng, false) {
								return
							}
						}
					}
				}
			}
		}
	}
}

// Products from several goroutines at once share the workers safely.
func TestConcurrentCallers(t *testing.T) {
	impl := Implementation{}
	p := problem{m: 150, n: 130, k: 90, alpha: 1, beta: 1}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(11, uint64(g)))
			for range 10 {
				check(t, impl, p, rng, false)
			}
		}()
	}
	wg.Wait()
}

// In steady state a call allocates nothing, on one goroutine or two.
func TestNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items: allocation counts mean nothing")
	}
	for _, name := range Kernels() {
		impl, err := ForKernel(name)
		require.NoError(t, err)
		if name == "gonum" {
			continue // gonum's own allocations are not ours
		}
		for _, threads := range []int{1, 2} {
			impl.threads = threads
			for _, s := range [][3]int{{9, 7, 5}, {64, 64, 64}, {256, 256, 256}, {70, 1000, 33}, {1, 1000, 300}, {fewRows, 300, 1000}} {
				m, n, k := s[0], s[1], s[2]
				a, b, c := make([]float32, m*k), make([]float32, k*n), make([]float32, m*n)
				for _, tr := range transPairs {
					lda, ldb := k, n
					if tr[0] {
						lda = m
					}
					if tr[1] {
						ldb = k
					}
					f := func() { impl.Sgemm(trans(tr[0]), trans(tr[1]), m, n, k, 1, a, lda, b, ldb, 0, c, n) }
					f()
					assert.Zero(t, testing.AllocsPerRun(20, f), "kernel %s threads %d shape %v trans %v", name, threads, s, tr)
				}
			}
		}
	}
}

// Misuse panics as gonum's Sgemm does, with its messages.
func TestPanics(t *testing.T) {
	a := make([]float32, 100)
	cases := []struct {
		name          string
		tA, tB        blas.Transpose
		m, n, k       int
		lda, ldb, ldc int
		la, lb, lc    int
	}{
		{"bad transpose", 'x', blas.NoTrans, 2, 2, 2, 2, 2, 2, 4, 4, 4},
		{"m < 0", blas.NoTrans, blas.NoTrans, -1, 2, 2, 2, 2, 2, 4, 4, 4},
		{"n < 0", blas.NoTrans, blas.NoTrans, 2, -1, 2, 2, 2, 2, 4, 4, 4},
		{"k < 0", blas.NoTrans, blas.NoTrans, 2, 2, -1, 2, 2, 2, 4, 4, 4},
		{"lda", blas.NoTrans, blas.NoTrans, 2, 2, 3, 2, 2, 2, 9, 9, 9},
		{"lda trans", blas.Trans, blas.NoTrans, 3, 2, 2, 2, 2, 2, 9, 9, 9},
		{"ldb", blas.NoTrans, blas.NoTrans, 2, 3, 2, 2, 2, 3, 9, 9, 9},
		{"ldb trans", blas.NoTrans, blas.Trans, 2, 2, 3, 3, 2, 2, 9, 9, 9},
		{"ldc", blas.NoTrans, blas.NoTrans, 2, 3, 2, 2, 3, 2, 9, 9, 9},
		{"short a", blas.NoTrans, blas.NoTrans, 2, 2, 2, 2, 2, 2, 3, 4, 4},
		{"short b", blas.NoTrans, blas.Trans, 2, 2, 2, 2, 2, 2, 4, 3, 4},
		{"short c", blas.NoTrans, blas.NoTrans, 2, 2, 2, 2, 2, 2, 4, 4, 3},
	}
	for _, impl := range testImpls(t) {
		for _, tc := range cases {
			call := func(s interface {
				Sgemm(blas.Transpose, blas.Transpose, int, int, int, float32, []float32, int, []float32, int, float32, []float32, int)
			}) func() {
				return func() {
					s.Sgemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, 1, a[:tc.la], tc.lda, a[:tc.lb], tc.ldb, 0, make([]float32, tc.lc), tc.ldc)
				}
			}
			want := recovered(call(gonum.Implementation{}))
			require.NotNil(t, want, tc.name)
			assert.Equal(t, want, recovered(call(impl)), "%s kernel %s", tc.name, impl.name())
		}
	}
}

func recovered(f func()) (r any) {
	defer func() { r = recover() }()
	f()
	return nil
}

func TestKernelNames(t *testing.T) {
	names := Kernels()
	assert.Equal(t, "gonum", names[len(names)-1])
	assert.Equal(t, names[0], Kernel())
	for _, n := range names {
		assert.Contains(t, allKernels, n)
	}
	_, err := ForKernel("sse9")
	assert.ErrorContains(t, err, `no kernel "sse9"`)
}

// FuzzSgemm checks random shapes, transposes, paddings and scalars against
// the triple loop, on every kernel this CPU runs, on one goroutine and split.
func FuzzSgemm(f *testing.F) {
	f.Add(uint8(5), uint8(7), uint8(3), uint8(0), uint8(0), uint8(0), uint64(1))
	f.Add(uint8(13), uint8(33), uint8(17), uint8(0x3f), uint8(1), uint8(2), uint64(2))
	f.Add(uint8(64), uint8(1), uint8(100), uint8(0xa5), uint8(3), uint8(0), uint64(3))
	scalars := []float32{0, 1, -0.5, 2, 0.25, -3}
	impls := testImpls(f)
	f.Fuzz(func(t *testing.T, m, n, k, flags, alpha, beta uint8, seed uint64) {
		p := problem{
			aT: flags&1 != 0, bT: flags&2 != 0,
			m: int(m)%100 + 1, n: int(n)%100 + 1, k: int(k) % 130,
			padA: int(flags>>2) & 3, padB: int(flags>>4) & 3, padC: int(flags>>6) & 3,
			alpha: scalars[int(alpha)%len(scalars)], beta: scalars[int(beta)%len(scalars)],
		}
		for _, impl := range impls {
			for _, split := range []bool{false, true} {
				if split {
					impl.threads, impl.minWork = 2, 1
				}
				check(t, impl, p, rand.New(rand.NewPCG(seed, 0)), false)
			}
		}
	})
}
