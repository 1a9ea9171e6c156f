//go:build openblas

package ops

// Built with -tags openblas, every matrix product (Gorgonia's Mul and
// BatchedMatMul, the tensor package's MatMul and this package's fused ops,
// which call G.WhichBLAS()) goes to OpenBLAS through cgo instead of gonum's
// pure-Go BLAS: about 10× the GFLOP/s on this project's machines (see
// ../shared/GORGONIA-NOTES.md, section Speed).
//
// It needs a C compiler and OpenBLAS's library and headers (Debian:
// apt-get install libopenblas-dev). gonum.org/v1/netlib/blas/netlib sets no
// linker flags of its own (its README has them passed in CGO_LDFLAGS); the
// directive below links the library into any program that imports ops.
// With two cores, OPENBLAS_NUM_THREADS=1 avoids OpenBLAS's threads spinning
// against Go's (see ../shared/PERF-NOTES.md).
//
// G.Use is process-global: it switches the BLAS for every graph in the
// program, including Gorgonia's stock ops.

/*
#cgo LDFLAGS: -lopenblas
*/
import "C"

import (
	"gonum.org/v1/netlib/blas/netlib"
	G "gorgonia.org/gorgonia"
)

// BLASName names the BLAS this build uses.
const BLASName = "openblas"

// BLASKernel names the kernel that runs float32 products: OpenBLAS's own
// choice, "openblas".
func BLASKernel() string { return "openblas" }

func init() {
	G.Use(netlib.Implementation{})
}
