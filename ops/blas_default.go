//go:build !openblas

package ops

import (
	G "gorgonia.org/gorgonia"

	"github.com/seq2gpt/seq2gpt/internal/sgemm"
)

// BLASName names the BLAS this build uses: seq2gpt's own SGEMM
// (internal/sgemm, Go assembly, no cgo) for float32 products, gonum's
// pure-Go BLAS for everything else (float64 products, which only gradient
// checks use, and the level-1 and level-2 routines). Build with -tags
// openblas for OpenBLAS through cgo instead (blas_openblas.go).
//
// Every float32 matrix product (Gorgonia's Mul and BatchedMatMul, the tensor
// package's MatMul and this package's fused ops, which call G.WhichBLAS())
// goes through it: init installs it with G.Use, which sets Gorgonia's BLAS
// and the tensor package's. G.Use is process-global.
const BLASName = "seq2gpt-sgemm"

// BLASKernel names the kernel that runs float32 products on this machine:
// "seq2gpt-sgemm avx512", "seq2gpt-sgemm avx2", or "gonum" where the CPU has
// neither (or the build has -tags noasm), for version lines and benchmark
// logs.
func BLASKernel() string {
	if k := sgemm.Kernel(); k != "gonum" {
		return BLASName + " " + k
	}
	return "gonum"
}

func init() {
	G.Use(sgemm.Implementation{})
}
