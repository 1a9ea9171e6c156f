//go:build amd64 && !noasm

package sgemm

import "golang.org/x/sys/cpu"

// kernels are this build's micro-kernels, fastest first.
var kernels = []*kernel{
	{
		name: "avx512", mr: 12, nr: 32, kc: 256, mc: 120, nc: 1536,
		has:   func() bool { return cpu.X86.HasAVX512F && cpu.X86.HasAVX2 && cpu.X86.HasFMA },
		micro: kernAVX512, transA: packT12, copyA: packN12, transB: packT32, copyB: packN32,
		rowAXPY4: rowAXPY4AVX2, rowDot4: rowDot4AVX2,
	},
	{
		name: "avx2", mr: 6, nr: 16, kc: 256, mc: 120, nc: 1536,
		has:   func() bool { return cpu.X86.HasAVX2 && cpu.X86.HasFMA },
		micro: kernAVX2, transA: packT6, copyA: packN6, transB: packT16, copyB: packN16,
		rowAXPY4: rowAXPY4AVX2, rowDot4: rowDot4AVX2,
	},
}
