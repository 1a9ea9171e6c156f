//go:build openblas

package sgemm_test

import (
	"gonum.org/v1/netlib/blas/netlib"

	// ops links OpenBLAS (-lopenblas) in the openblas build.
	_ "github.com/seq2gpt/seq2gpt/ops"
)

// In the openblas build the benchmarks run OpenBLAS beside this package's
// kernels, on OPENBLAS_NUM_THREADS threads (set it to 2 to compare with two
// goroutines).
func init() {
	benchImpls = append(benchImpls, benchImpl{"openblas", netlib.Implementation{}})
}
