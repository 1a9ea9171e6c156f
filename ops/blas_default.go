//go:build !openblas

package ops

// BLASName names the BLAS this build uses: gonum's pure-Go implementation,
// Gorgonia's default. Build with -tags openblas for OpenBLAS through cgo
// (blas_openblas.go).
const BLASName = "gonum"
