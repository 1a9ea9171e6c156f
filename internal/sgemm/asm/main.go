// Command asm generates internal/sgemm's amd64 assembly (kernels_amd64.s)
// and its Go declarations (kernels_amd64.go) with avo. Run it through
// go generate in internal/sgemm; the generated files are never edited by hand.
//
// It lives in a module of its own so that avo is a dependency of this
// generator only, not of the seq2gpt module that users build.
//
// What it writes:
//
//   - two micro-kernels, C[rows×cols] (+)= Ã·B̃ on packed panels: AVX-512
//     12×32 (24 zmm accumulators) and AVX2+FMA 6×16 (12 ymm accumulators);
//     a partial tile is read and written through masks, never through a
//     temporary buffer;
//   - the packing routines that lay op(A) and op(B) out for them: row copies
//     (the operand's rows already run along the tile's width) and 8-wide
//     in-register transposes (its rows run along k), both AVX2 only so that
//     the AVX-512 path uses them too;
//   - rowAXPY4 and rowDot4, the inner loops of products of a few rows
//     computed without packing (gemm.go's rows): four rows of B scaled and
//     added to a row of C (B not transposed), and a row of A dotted with four
//     rows of B (B transposed).
package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

func main() {
	ConstraintExpr("amd64,!noasm")

	// maskTab: 16 all-ones words then 16 zeros. The 8 words at
	// &maskTab[16-cols] select the first cols lanes of a vector (AVX2 masked
	// loads and stores of a partial tile), the 8 after them the next 8 lanes.
	tab := GLOBL("maskTab", RODATA|NOPTR)
	for i := 0; i < 32; i++ {
		v := uint32(0)
		if i < 16 {
			v = 0xffffffff
		}
		DATA(4*i, U32(v))
	}

	kernel(isa{name: "AVX512", mr: 12, nvec: 2, lanes: 16, accBase: 8, vec: zmm}, tab)
	kernel(isa{name: "AVX2", mr: 6, nvec: 2, lanes: 8, accBase: 4, vec: ymm}, tab)

	transposePack("packT6", []int{4, 2})
	transposePack("packT12", []int{4, 4, 4})
	transposePack("packT16", []int{4, 4, 4, 4})
	transposePack("packT32", []int{4, 4, 4, 4, 4, 4, 4, 4})
	copyPack("packN6", []int{4, 2})
	copyPack("packN12", []int{8, 4})
	copyPack("packN16", []int{8, 8})
	copyPack("packN32", []int{8, 8, 8, 8})

	rowAXPY4(tab)
	rowDot4(tab)

	Generate()
}

// paramAddr is the frame address of a float32 argument, for a VEX broadcast
// straight from memory (Load would use the legacy-SSE MOVSS).
func paramAddr(name string) Mem {
	b, err := Param(name).Resolve()
	if err != nil {
		panic(err)
	}
	return b.Addr
}

// isa describes one micro-kernel: mr rows of nvec vectors of lanes floats.
type isa struct {
	name    string
	mr      int
	nvec    int
	lanes   int
	accBase int // first accumulator register; below it: nvec B loads, then broadcasts
	vec     func(int) VecPhysical
}

var zmms = []VecPhysical{Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7, Z8, Z9, Z10, Z11, Z12, Z13, Z14, Z15,
	Z16, Z17, Z18, Z19, Z20, Z21, Z22, Z23, Z24, Z25, Z26, Z27, Z28, Z29, Z30, Z31}
var ymms = []VecPhysical{Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7, Y8, Y9, Y10, Y11, Y12, Y13, Y14, Y15}

func zmm(i int) VecPhysical { return zmms[i] }
func ymm(i int) VecPhysical { return ymms[i] }

// kernel writes kern<name>: the micro-kernel
//
//	C[0:rows, 0:cols] = Ã·B̃ + beta·C[0:rows, 0:cols]    (accum ≠ 0)
//	C[0:rows, 0:cols] = Ã·B̃                             (accum = 0: C is not read)
//
// where Ã is a packed strip of mr rows (kc steps of mr floats) and B̃ a packed
// strip of nr = nvec·lanes columns (kc steps of nr floats). rows ≤ mr and
// cols ≤ nr are at least 1; rows and columns beyond them are computed from the
// zero padding of the panels and never stored.
func kernel(x isa, tab Mem) {
	nr := x.nvec * x.lanes
	vb := 4 * x.lanes // bytes per vector
	name := "kern" + x.name
	TEXT(name, NOSPLIT, "func(kc int, a, b, c *float32, ldc, rows, cols int, beta float32, accum int)")
	Pragma("noescape")
	Doc(fmt.Sprintf("%s computes a %d×%d tile of C from packed panels (see the generator, internal/sgemm/asm).", name, x.mr, nr))

	kc := Load(Param("kc"), RCX)
	pa := Load(Param("a"), RSI)
	pb := Load(Param("b"), RDI)
	pc := Load(Param("c"), RDX)
	ldc := Load(Param("ldc"), R8)
	SHLQ(U8(2), ldc)
	rows := Load(Param("rows"), R9)

	acc := func(i, v int) VecPhysical { return x.vec(x.accBase + i*x.nvec + v) }
	for i := 0; i < x.mr; i++ {
		for v := 0; v < x.nvec; v++ {
			a := acc(i, v)
			if x.name == "AVX512" {
				VPXORD(a, a, a)
			} else {
				VXORPS(a, a, a)
			}
		}
	}

	// Warm the C tile's lines while the loop runs.
	pf := R12
	MOVQ(pc, pf)
	for i := 0; i < x.mr; i++ {
		PREFETCHT0(Mem{Base: pf})
		PREFETCHT0(Mem{Base: pf, Disp: 4*nr - 4})
		if i < x.mr-1 {
			ADDQ(ldc, pf)
		}
	}

	// k steps, four at a time (fewer loop instructions per FMA), then one
	// at a time.
	step := func(s int) {
		for v := 0; v < x.nvec; v++ {
			VMOVUPS(Mem{Base: pb, Disp: 4*s*nr + v*vb}, x.vec(v))
		}
		nb := x.accBase - x.nvec
		for i := 0; i < x.mr; i++ {
			bc := x.vec(x.nvec + (s*x.mr+i)%nb)
			VBROADCASTSS(Mem{Base: pa, Disp: 4 * (s*x.mr + i)}, bc)
			for v := 0; v < x.nvec; v++ {
				VFMADD231PS(x.vec(v), bc, acc(i, v))
			}
		}
	}
	CMPQ(kc, U8(4))
	JB(LabelRef(name + "_tail"))
	Label(name + "_loop4")
	for s := 0; s < 4; s++ {
		step(s)
	}
	ADDQ(U32(16*x.mr), pa)
	ADDQ(U32(16*nr), pb)
	SUBQ(U8(4), kc)
	CMPQ(kc, U8(4))
	JAE(LabelRef(name + "_loop4"))
	Label(name + "_tail")
	TESTQ(kc, kc)
	JZ(LabelRef(name + "_store"))
	Label(name + "_loop1")
	step(0)
	ADDQ(U32(4*x.mr), pa)
	ADDQ(U32(4*nr), pb)
	DECQ(kc)
	JNZ(LabelRef(name + "_loop1"))

	Label(name + "_store")
	cols := Load(Param("cols"), R10)
	accum := Load(Param("accum"), R11)
	beta := x.vec(2)
	VBROADCASTSS(paramAddr("beta"), beta)

	// rowDone ends the store after the last valid row, else steps to the next.
	rowDone := func(i int) {
		if i < x.mr-1 {
			DECQ(rows)
			JZ(LabelRef(name + "_done"))
			ADDQ(ldc, pc)
		}
	}
	CMPQ(cols, U32(nr))
	JNE(LabelRef(name + "_masked"))
	TESTQ(accum, accum)
	JZ(LabelRef(name + "_full_set"))
	// Full tile, C = acc + beta·C.
	for i := 0; i < x.mr; i++ {
		for v := 0; v < x.nvec; v++ {
			m := Mem{Base: pc, Disp: v * vb}
			VFMADD231PS(m, beta, acc(i, v))
			VMOVUPS(acc(i, v), m)
		}
		rowDone(i)
	}
	JMP(LabelRef(name + "_done"))
	// Full tile, C = acc.
	Label(name + "_full_set")
	for i := 0; i < x.mr; i++ {
		for v := 0; v < x.nvec; v++ {
			VMOVUPS(acc(i, v), Mem{Base: pc, Disp: v * vb})
		}
		rowDone(i)
	}
	JMP(LabelRef(name + "_done"))

	// Partial tile: only the first cols columns are read and written.
	Label(name + "_masked")
	if x.name == "AVX512" {
		// K1, K2: the lane masks of the two vectors of a row.
		MOVQ(cols, RCX)
		MOVL(U32(1), EAX)
		SHLL(CL, EAX)
		DECL(EAX)
		KMOVW(EAX, K1)
		SHRL(U8(16), EAX)
		KMOVW(EAX, K2)
		masks := []Op{K1, K2}
		TESTQ(accum, accum)
		JZ(LabelRef(name + "_masked_set"))
		for i := 0; i < x.mr; i++ {
			for v := 0; v < x.nvec; v++ {
				m := Mem{Base: pc, Disp: v * vb}
				VFMADD231PS(m, beta, masks[v], acc(i, v)) // masked lanes: no read, acc kept
				VMOVUPS(acc(i, v), masks[v], m)
			}
			rowDone(i)
		}
		JMP(LabelRef(name + "_done"))
		Label(name + "_masked_set")
		for i := 0; i < x.mr; i++ {
			for v := 0; v < x.nvec; v++ {
				VMOVUPS(acc(i, v), masks[v], Mem{Base: pc, Disp: v * vb})
			}
			rowDone(i)
		}
	} else {
		// Y0, Y1: the lane masks of the two vectors of a row, from maskTab.
		LEAQ(tab.Offset(64), RAX)
		SHLQ(U8(2), cols)
		SUBQ(cols, RAX)
		VMOVDQU(Mem{Base: RAX}, Y0)
		VMOVDQU(Mem{Base: RAX, Disp: 32}, Y1)
		masks := []VecPhysical{Y0, Y1}
		tmp := Y3
		TESTQ(accum, accum)
		JZ(LabelRef(name + "_masked_set"))
		for i := 0; i < x.mr; i++ {
			for v := 0; v < x.nvec; v++ {
				m := Mem{Base: pc, Disp: v * vb}
				VMASKMOVPS(m, masks[v], tmp)
				VFMADD231PS(tmp, beta, acc(i, v))
				VMASKMOVPS(acc(i, v), masks[v], m)
			}
			rowDone(i)
		}
		JMP(LabelRef(name + "_done"))
		Label(name + "_masked_set")
		for i := 0; i < x.mr; i++ {
			for v := 0; v < x.nvec; v++ {
				VMASKMOVPS(acc(i, v), masks[v], Mem{Base: pc, Disp: v * vb})
			}
			rowDone(i)
		}
	}
	Label(name + "_done")
	VZEROUPPER()
	RET()
}

// transposePack writes a routine that packs w = sum(groups) rows of a
// row-major matrix whose rows run along k (op(A) = A, or op(B) = Bᵀ) into a
// k-major strip:
//
//	dst[p*w + r] = alpha · src[r*lds + p]    for r < w, p < 8·blocks
//
// Each block of 8 k-steps loads 8 floats of every row and transposes them in
// registers, groups of 4 rows (or 2 for the last of a 6-row strip) at a time.
func transposePack(name string, groups []int) {
	w := 0
	for _, g := range groups {
		w += g
	}
	TEXT(name, NOSPLIT, "func(blocks int, src *float32, lds int, dst *float32, alpha float32)")
	Pragma("noescape")
	Doc(fmt.Sprintf("%s packs %d rows of src, 8·blocks floats each, transposed into dst (stride %d), scaled by alpha.", name, w, w))
	n := Load(Param("blocks"), GP64())
	src := Load(Param("src"), GP64())
	l1 := Load(Param("lds"), GP64())
	dst := Load(Param("dst"), GP64())
	alpha := YMM()
	VBROADCASTSS(paramAddr("alpha"), alpha)
	SHLQ(U8(2), l1)
	l3 := GP64()
	LEAQ(Mem{Base: l1, Index: l1, Scale: 2}, l3)
	ptr := GP64()

	TESTQ(n, n)
	JZ(LabelRef(name + "_end"))
	Label(name + "_loop")
	MOVQ(src, ptr)
	off := 0
	for gi, g := range groups {
		r := make([]VecVirtual, g)
		rowAddr := []Mem{{Base: ptr}, {Base: ptr, Index: l1, Scale: 1}, {Base: ptr, Index: l1, Scale: 2}, {Base: ptr, Index: l3, Scale: 1}}
		for j := 0; j < g; j++ {
			r[j] = YMM()
			VMULPS(rowAddr[j], alpha, r[j])
		}
		at := func(p, lane int) Mem { return Mem{Base: dst, Disp: 4 * (p*w + off + lane)} }
		switch g {
		case 4:
			t := []VecVirtual{YMM(), YMM(), YMM(), YMM()}
			VUNPCKLPS(r[1], r[0], t[0]) // a0 b0 a1 b1 | a4 b4 a5 b5
			VUNPCKHPS(r[1], r[0], t[1]) // a2 b2 a3 b3 | a6 b6 a7 b7
			VUNPCKLPS(r[3], r[2], t[2]) // c0 d0 c1 d1 | c4 d4 c5 d5
			VUNPCKHPS(r[3], r[2], t[3]) // c2 d2 c3 d3 | c6 d6 c7 d7
			u := []VecVirtual{YMM(), YMM(), YMM(), YMM()}
			VSHUFPS(U8(0x44), t[2], t[0], u[0]) // a0 b0 c0 d0 | a4 b4 c4 d4
			VSHUFPS(U8(0xEE), t[2], t[0], u[1]) // a1 b1 c1 d1 | a5 …
			VSHUFPS(U8(0x44), t[3], t[1], u[2]) // a2 …       | a6 …
			VSHUFPS(U8(0xEE), t[3], t[1], u[3]) // a3 …       | a7 …
			for p := 0; p < 4; p++ {
				VMOVUPS(u[p].AsX(), at(p, 0))
			}
			for p := 0; p < 4; p++ {
				VEXTRACTF128(U8(1), u[p], at(p+4, 0))
			}
		case 2:
			lo, hi := YMM(), YMM()
			VUNPCKLPS(r[1], r[0], lo) // a0 b0 a1 b1 | a4 b4 a5 b5
			VUNPCKHPS(r[1], r[0], hi) // a2 b2 a3 b3 | a6 b6 a7 b7
			VMOVLPS(lo.AsX(), at(0, 0))
			VMOVHPS(lo.AsX(), at(1, 0))
			VMOVLPS(hi.AsX(), at(2, 0))
			VMOVHPS(hi.AsX(), at(3, 0))
			lo4, hi4 := XMM(), XMM()
			VEXTRACTF128(U8(1), lo, lo4)
			VEXTRACTF128(U8(1), hi, hi4)
			VMOVLPS(lo4, at(4, 0))
			VMOVHPS(lo4, at(5, 0))
			VMOVLPS(hi4, at(6, 0))
			VMOVHPS(hi4, at(7, 0))
		default:
			panic("group of 4 or 2 rows")
		}
		off += g
		if gi < len(groups)-1 {
			LEAQ(Mem{Base: ptr, Index: l1, Scale: 4}, ptr)
		}
	}
	ADDQ(U32(32), src)
	ADDQ(U32(4*8*w), dst)
	DECQ(n)
	JNZ(LabelRef(name + "_loop"))
	Label(name + "_end")
	VZEROUPPER()
	RET()
}

// copyPack writes a routine that packs kc rows of w floats (w = sum(pieces),
// pieces of 8, 4 or 2 floats) of a row-major matrix whose rows run along the
// strip's width (op(A) = Aᵀ, or op(B) = B) into a k-major strip:
//
//	dst[p*w + j] = alpha · src[p*lds + j]    for j < w, p < kc
func copyPack(name string, pieces []int) {
	w := 0
	for _, g := range pieces {
		w += g
	}
	TEXT(name, NOSPLIT, "func(kc int, src *float32, lds int, dst *float32, alpha float32)")
	Pragma("noescape")
	Doc(fmt.Sprintf("%s packs kc rows of %d floats of src into dst (stride %d), scaled by alpha.", name, w, w))
	n := Load(Param("kc"), GP64())
	src := Load(Param("src"), GP64())
	l1 := Load(Param("lds"), GP64())
	dst := Load(Param("dst"), GP64())
	alpha := YMM()
	VBROADCASTSS(paramAddr("alpha"), alpha)
	SHLQ(U8(2), l1)

	TESTQ(n, n)
	JZ(LabelRef(name + "_end"))
	Label(name + "_loop")
	off := 0
	for _, g := range pieces {
		m := Mem{Base: src, Disp: 4 * off}
		d := Mem{Base: dst, Disp: 4 * off}
		switch g {
		case 8:
			v := YMM()
			VMULPS(m, alpha, v)
			VMOVUPS(v, d)
		case 4:
			v := XMM()
			VMULPS(m, alpha.AsX(), v)
			VMOVUPS(v, d)
		case 2:
			v := XMM()
			VMOVSD(m, v)
			VMULPS(v, alpha.AsX(), v)
			VMOVSD(v, d)
		default:
			panic("piece of 8, 4 or 2 floats")
		}
		off += g
	}
	ADDQ(l1, src)
	ADDQ(U32(4*w), dst)
	DECQ(n)
	JNZ(LabelRef(name + "_loop"))
	Label(name + "_end")
	VZEROUPPER()
	RET()
}

// rowAXPY4 writes rowAXPY4AVX2:
//
//	c[j] += (a[0]·b[j] + a[2]·b[2·ldb+j]) + (a[1]·b[ldb+j] + a[3]·b[3·ldb+j]),  j < n
//
// for n ≥ 1, eight lanes at a time and the last n mod 8 through masks. Four
// rows of B per pass over the row of C quarter C's loads and stores (the
// loop is bound by loads: five per eight multiply-adds); the two partial
// sums keep the chains of dependent FMAs short.
func rowAXPY4(tab Mem) {
	name := "rowAXPY4AVX2"
	TEXT(name, NOSPLIT, "func(n int, c, b *float32, ldb int, a *float32)")
	Pragma("noescape")
	Doc(name + " adds a[0]·b[0:n] + a[1]·b[ldb:ldb+n] + a[2]·b[2·ldb:…] + a[3]·b[3·ldb:…] to c[0:n] (see the generator, internal/sgemm/asm).")
	n := Load(Param("n"), RCX)
	pc := Load(Param("c"), RDX)
	b0 := Load(Param("b"), RSI)
	pa := Load(Param("a"), RDI)
	as := []VecPhysical{Y0, Y1, Y2, Y3}
	for i, a := range as {
		VBROADCASTSS(Mem{Base: pa, Disp: 4 * i}, a)
	}
	bs, off, at := fourRows(b0)
	b1, b2, b3 := bs[1], bs[2], bs[3]

	Label(name + "_loop")
	CMPQ(n, U8(8))
	JB(LabelRef(name + "_tail"))
	VMULPS(at(b0), Y0, Y4)
	VMULPS(at(b1), Y1, Y5)
	VFMADD231PS(at(b2), Y2, Y4)
	VFMADD231PS(at(b3), Y3, Y5)
	VADDPS(Y5, Y4, Y4)
	VADDPS(at(pc), Y4, Y4)
	VMOVUPS(Y4, at(pc))
	ADDQ(U8(32), off)
	SUBQ(U8(8), n)
	JMP(LabelRef(name + "_loop"))

	Label(name + "_tail")
	TESTQ(n, n)
	JZ(LabelRef(name + "_done"))
	mask, t := firstLanes(tab, n), Y7
	VMASKMOVPS(at(b0), mask, t)
	VMULPS(t, Y0, Y4)
	VMASKMOVPS(at(b1), mask, t)
	VMULPS(t, Y1, Y5)
	VMASKMOVPS(at(b2), mask, t)
	VFMADD231PS(t, Y2, Y4)
	VMASKMOVPS(at(b3), mask, t)
	VFMADD231PS(t, Y3, Y5)
	VADDPS(Y5, Y4, Y4)
	VMASKMOVPS(at(pc), mask, t)
	VADDPS(t, Y4, Y4)
	VMASKMOVPS(Y4, mask, at(pc))

	Label(name + "_done")
	VZEROUPPER()
	RET()
}

// rowDot4 writes rowDot4AVX2:
//
//	out[q] = Σ_p a[p]·b[q·ldb+p],  q < 4, p < k
//
// for k ≥ 1, eight lanes at a time and the last k mod 8 through masks, with
// one float32 accumulator per row of B (the loop is bound by loads: five per
// four FMAs), summed across lanes at the end.
func rowDot4(tab Mem) {
	name := "rowDot4AVX2"
	TEXT(name, NOSPLIT, "func(k int, a, b *float32, ldb int, out *float32)")
	Pragma("noescape")
	Doc(name + " sets out[q] = a[0:k]·b[q·ldb:q·ldb+k] for q < 4 (see the generator, internal/sgemm/asm).")
	k := Load(Param("k"), RCX)
	pa := Load(Param("a"), RDX)
	b0 := Load(Param("b"), RSI)
	bs, off, at := fourRows(b0)
	acc := []VecPhysical{Y0, Y1, Y2, Y3}
	for _, v := range acc {
		VXORPS(v, v, v)
	}

	Label(name + "_loop")
	CMPQ(k, U8(8))
	JB(LabelRef(name + "_tail"))
	VMOVUPS(at(pa), Y4)
	for q, b := range bs {
		VFMADD231PS(at(b), Y4, acc[q])
	}
	ADDQ(U8(32), off)
	SUBQ(U8(8), k)
	JMP(LabelRef(name + "_loop"))

	Label(name + "_tail")
	TESTQ(k, k)
	JZ(LabelRef(name + "_sum"))
	mask, t := firstLanes(tab, k), Y7
	VMASKMOVPS(at(pa), mask, Y4)
	for q, b := range bs {
		VMASKMOVPS(at(b), mask, t)
		VFMADD231PS(t, Y4, acc[q])
	}

	// Sum each accumulator's lanes: out = (Σ acc0, Σ acc1, Σ acc2, Σ acc3).
	Label(name + "_sum")
	VHADDPS(Y1, Y0, Y0) // (a0+a1 pairs of acc0, of acc1, …) per 128-bit half
	VHADDPS(Y3, Y2, Y2)
	VHADDPS(Y2, Y0, Y0) // per half: Σ of 4 lanes of acc0, acc1, acc2, acc3
	VEXTRACTF128(U8(1), Y0, X1)
	VADDPS(X1, X0, X0)
	po := Load(Param("out"), RDI)
	VMOVUPS(X0, Mem{Base: po})
	VZEROUPPER()
	RET()
}

// fourRows loads the leading dimension ldb and returns the pointers to four
// rows of B from b0 (b0, b0 + ldb, …, in R9–R11 after b0) and the address of
// byte off (R12, zeroed here) of a row: both kernels step off through all
// four rows together.
func fourRows(b0 Register) (bs []Register, off Register, at func(Register) Mem) {
	ldb := Load(Param("ldb"), R8)
	SHLQ(U8(2), ldb)
	bs = []Register{b0, R9, R10, R11}
	for i := 1; i < 4; i++ {
		LEAQ(Mem{Base: bs[i-1], Index: ldb, Scale: 1}, bs[i])
	}
	off = R12
	XORQ(off, off)
	return bs, off, func(base Register) Mem { return Mem{Base: base, Index: off, Scale: 1} }
}

// firstLanes loads into Y6 the mask of the first n lanes (1 ≤ n < 8):
// maskTab[16-n : 24-n].
func firstLanes(tab Mem, n Register) VecPhysical {
	LEAQ(tab, RBX)
	MOVQ(U32(16), RAX)
	SUBQ(n, RAX)
	VMOVUPS(Mem{Base: RBX, Index: RAX, Scale: 4}, Y6)
	return Y6
}
