//go:build !amd64 || noasm

package sgemm

// kernels is empty: this architecture or build (-tags noasm) has no assembly,
// and Implementation runs gonum's pure-Go SGEMM.
var kernels []*kernel
