//go:build !amd64 || noasm

package vecmath

// kernels is empty: this architecture or build (-tags noasm) has no
// assembly, and the pure-Go kernel runs.
var kernels []*kernel
