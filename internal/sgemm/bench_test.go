package sgemm_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"gonum.org/v1/gonum/blas"

	"github.com/seq2gpt/seq2gpt/internal/sgemm"
)

// benchImpl is one SGEMM under benchmark.
type benchImpl struct {
	name string
	blas interface {
		Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)
	}
}

// benchImpls are this package's kernels (every one this CPU runs, gonum's
// last) and, in the openblas build, OpenBLAS (bench_openblas_test.go).
var benchImpls = func() []benchImpl {
	var impls []benchImpl
	for _, name := range sgemm.Kernels() {
		impl, err := sgemm.ForKernel(name)
		if err != nil {
			panic(err)
		}
		impls = append(impls, benchImpl{name, impl})
	}
	return impls
}()

// logSetup records what the figures depend on: kernel, threads, load.
func logSetup(b *testing.B) {
	load, _ := os.ReadFile("/proc/loadavg")
	b.Logf("kernel %s, GOMAXPROCS %d, OPENBLAS_NUM_THREADS=%q, load average %s",
		sgemm.Kernel(), runtime.GOMAXPROCS(0), os.Getenv("OPENBLAS_NUM_THREADS"), strings.TrimSpace(string(load)))
}

// operands are random op(A) m×k, op(B) k×n and C m×n for s.
func operands(s sgemm.Shape) (a, b, c []float32, lda, ldb int) {
	r := rand.New(rand.NewPCG(1, 2))
	a, b, c = make([]float32, s.M*s.K), make([]float32, s.K*s.N), make([]float32, s.M*s.N)
	for i := range a {
		a[i] = r.Float32()
	}
	for i := range b {
		b[i] = r.Float32()
	}
	lda, ldb = s.K, s.N
	if s.ATrans {
		lda = s.M
	}
	if s.BTrans {
		ldb = s.K
	}
	return a, b, c, lda, ldb
}

func trans(t bool) blas.Transpose {
	if t {
		return blas.Trans
	}
	return blas.NoTrans
}

// gflops reports the rate over wall time (GFLOP/s) and over the CPU time
// all threads used (GFLOP/cpu-s, about the rate per core: steadier than
// wall time on a shared machine, though threads that spin while waiting,
// as OpenBLAS's do, count against it).
func gflops(b *testing.B, macs float64, cpu0 time.Duration) {
	flop := 2 * macs * float64(b.N)
	b.ReportMetric(flop/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	if cpu := cpuTime() - cpu0; cpu > 0 && cpu0 > 0 {
		b.ReportMetric(flop/cpu.Seconds()/1e9, "GFLOP/cpu-s")
	}
}

// BenchmarkSgemm times C = A·B at 512³ (each transpose pair), at the
// one-row products of batch-1 decoding, and at every distinct product of a GPT-small and a GPT-medium training step, on each
// kernel and, in the openblas build, OpenBLAS, side by side:
//
//	go test -run '^$' -bench Sgemm ./internal/sgemm/
//	OPENBLAS_NUM_THREADS=2 go test -tags openblas -run '^$' -bench Sgemm ./internal/sgemm/
func BenchmarkSgemm(b *testing.B) {
	logSetup(b)
	shapes := []sgemm.Shape{
		{Name: "512³", M: 512, K: 512, N: 512},
		{Name: "512³", BTrans: true, M: 512, K: 512, N: 512},
		{Name: "512³", ATrans: true, M: 512, K: 512, N: 512},
		{Name: "wide", BTrans: true, M: 64, K: 768, N: 3072},
		// GPT-medium's batch-1 decoding step: one row by each weight
		// matrix (Conv1D layout, not transposed) and by the tied head.
		{Name: "decode c_attn", M: 1, K: 256, N: 768},
		{Name: "decode mlp.c_proj", M: 1, K: 1024, N: 256},
		{Name: "decode head", BTrans: true, M: 1, K: 256, N: 4000},
	}
	for _, preset := range []struct {
		name string
		step []sgemm.Shape
	}{{"small", smallStep()}, {"medium", mediumStep()}} {
		for _, s := range preset.step {
			s.Name = preset.name + " " + s.Name
			shapes = append(shapes, s)
		}
	}
	for _, s := range shapes {
		name := fmt.Sprintf("%s %d×%d×%d%s", s.Name, s.M, s.K, s.N, flags(s))
		b.Run(strings.ReplaceAll(name, " ", "_"), func(b *testing.B) {
			a, bb, c, lda, ldb := operands(s)
			for _, impl := range benchImpls {
				b.Run(impl.name, func(b *testing.B) {
					cpu0 := cpuTime()
					for b.Loop() {
						impl.blas.Sgemm(trans(s.ATrans), trans(s.BTrans), s.M, s.N, s.K, 1, a, lda, bb, ldb, 0, c, s.N)
					}
					gflops(b, float64(s.M)*float64(s.N)*float64(s.K), cpu0)
				})
			}
		})
	}
}

// BenchmarkGPTStep runs every product of one GPT-small and one GPT-medium
// training step (gpt.Small, batch 16; gpt.Medium, batch 8), each as often as
// the step computes it, and reports the rate over the whole step.
func BenchmarkGPTStep(b *testing.B) {
	logSetup(b)
	for _, preset := range []struct {
		name string
		step []sgemm.Shape
	}{{"small", smallStep()}, {"medium", mediumStep()}} {
		b.Run(preset.name, func(b *testing.B) {
			type prepared struct {
				s        sgemm.Shape
				a, bb, c []float32
				lda, ldb int
			}
			var ps []prepared
			var macs float64
			for _, s := range preset.step {
				a, bb, c, lda, ldb := operands(s)
				ps = append(ps, prepared{s, a, bb, c, lda, ldb})
				macs += float64(s.Count) * float64(s.M) * float64(s.N) * float64(s.K)
			}
			b.Logf("%s step: %d products, %.2f GFLOP", preset.name, len(ps), 2*macs/1e9)
			for _, impl := range benchImpls {
				b.Run(impl.name, func(b *testing.B) {
					cpu0 := cpuTime()
					for b.Loop() {
						for _, p := range ps {
							for range p.s.Count {
								impl.blas.Sgemm(trans(p.s.ATrans), trans(p.s.BTrans), p.s.M, p.s.N, p.s.K, 1, p.a, p.lda, p.bb, p.ldb, 0, p.c, p.s.N)
							}
						}
					}
					gflops(b, macs, cpu0)
				})
			}
		})
	}
}

// The steps of gpt.Small (4 layers, d 128, 4 heads, ctx 64, vocab 1000) and
// gpt.Medium (6, 256, 8, 128, 4000) at BenchmarkGPT's batches.
func smallStep() []sgemm.Shape  { return sgemm.GPTStep(4, 128, 4, 64, 1000, 16) }
func mediumStep() []sgemm.Shape { return sgemm.GPTStep(6, 256, 8, 128, 4000, 8) }

func flags(s sgemm.Shape) string {
	return " " + map[bool]string{false: "N", true: "T"}[s.ATrans] + map[bool]string{false: "N", true: "T"}[s.BTrans]
}
