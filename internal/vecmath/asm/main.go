// Command asm generates internal/vecmath's amd64 assembly (kernels_amd64.s)
// and its Go declarations (kernels_amd64.go) with avo. Run it through
// go generate in internal/vecmath; the generated files are never edited by
// hand.
//
// It lives in a module of its own so that avo is a dependency of this
// generator only, not of the seq2gpt module that users build. The
// approximations' coefficients and constants are read from the package's
// coeffs.go (written by fit/fit.py), so that the assembly and the pure-Go
// kernels share one copy of them.
//
// Every kernel is one loop over 8 floats a step (AVX2 + FMA, ymm registers),
// then at most one partial step whose loads and stores are masked
// (VMASKMOVPS), so that the last elements are computed exactly as the others
// are and nothing past the slices is touched. The bodies are written with
// virtual registers; the constants are 8-wide vectors in one read-only
// table, used as memory operands.
package main

import (
	"flag"
	"fmt"
	"go/ast"
	"go/constant"
	"go/parser"
	"go/token"
	"log"
	"math"
	"strings"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

var coeffsPath = flag.String("coeffs", "../coeffs.go", "the package's coeffs.go, read for the constants")

// consts are coeffs.go's constants and coefficient arrays by name.
var (
	consts   = map[string][]float32{}
	consts64 = map[string]float64{} // the constants named …x64, in float64
)

func main() {
	flag.Parse()
	readCoeffs(*coeffsPath)
	ConstraintExpr("amd64,!noasm")

	for _, k := range specs {
		k.generate()
	}
	emitTables()
	Generate()
}

// readCoeffs parses coeffs.go: its untyped constants and its [N]float32
// arrays, each value an exact float32.
func readCoeffs(path string) {
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		log.Fatal(err)
	}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, name := range vs.Names {
				switch v := vs.Values[i].(type) {
				case *ast.CompositeLit:
					for _, e := range v.Elts {
						consts[name.Name] = append(consts[name.Name], eval(e))
					}
				default:
					if strings.HasSuffix(name.Name, "x64") {
						consts64[name.Name] = eval64(v)
						continue
					}
					consts[name.Name] = []float32{eval(v)}
				}
			}
		}
	}
}

func eval(e ast.Expr) float32 {
	f := eval64(e)
	if float64(float32(f)) != f {
		log.Fatalf("coeffs: %v is not a float32", f)
	}
	return float32(f)
}

func eval64(e ast.Expr) float64 {
	var v constant.Value
	switch e := e.(type) {
	case *ast.BasicLit:
		v = constant.MakeFromLiteral(e.Value, e.Kind, 0)
	case *ast.UnaryExpr:
		v = constant.UnaryOp(e.Op, constant.MakeFromLiteral(e.X.(*ast.BasicLit).Value, e.X.(*ast.BasicLit).Kind, 0), 0)
	default:
		log.Fatalf("coeffs: cannot evaluate %T", e)
	}
	f, _ := constant.Float64Val(v)
	return f
}

// c is the named constant of coeffs.go.
func c(name string) float32 {
	v, ok := consts[name]
	if !ok || len(v) != 1 {
		log.Fatalf("coeffs: no constant %s", name)
	}
	return v[0]
}

// c64 is the named float64 constant of coeffs.go.
func c64(name string) float64 {
	v, ok := consts64[name]
	if !ok {
		log.Fatalf("coeffs: no float64 constant %s", name)
	}
	return v
}

// coeffs is the named coefficient array of coeffs.go.
func coeffs(name string) []float32 {
	v, ok := consts[name]
	if !ok {
		log.Fatalf("coeffs: no array %s", name)
	}
	return v
}

// The constant table: every distinct 32-bit value used, as an 8-wide
// vector, in order of first use.
var (
	tabIndex = map[uint32]int{}
	tabBits  []uint32
	// 64-bit rows (kd): their index in tabBits and their two halves.
	tab64Index = map[[2]uint32]int{}
	tab64Rows  = map[int][2]uint32{}
	tab        = NewStaticSymbol("vconst")
	maskSym    = NewStaticSymbol("maskTab")
)

// kb is the vector of 8 copies of the 32-bit pattern b, as a memory operand.
func kb(b uint32) Mem {
	i, ok := tabIndex[b]
	if !ok {
		i = len(tabBits)
		tabIndex[b] = i
		tabBits = append(tabBits, b)
	}
	return NewDataAddr(tab, 32*i)
}

// k is the vector of 8 copies of v.
func k(v float32) Mem { return kb(math.Float32bits(v)) }

// kd is the vector of 4 copies of the float64 v.
func kd(v float64) Mem {
	b := math.Float64bits(v)
	key := [2]uint32{uint32(b), uint32(b >> 32)}
	i, ok := tab64Index[key]
	if !ok {
		i = len(tabBits)
		tab64Index[key] = i
		tabBits = append(tabBits, 0) // a placeholder row, written in emitTables
		tab64Rows[i] = key
	}
	return NewDataAddr(tab, 32*i)
}

const (
	signBit = 0x80000000
	absMask = 0x7fffffff
)

func emitTables() {
	GLOBL("vconst", RODATA|NOPTR)
	for i, b := range tabBits {
		for j := 0; j < 8; j++ {
			if r, ok := tab64Rows[i]; ok {
				b = r[j%2]
			}
			DATA(32*i+4*j, U32(b))
		}
	}
	// maskTab: 8 all-ones words then 8 zeros; the 8 words at
	// &maskTab[8−n] select the first n lanes.
	GLOBL("maskTab", RODATA|NOPTR)
	for i := 0; i < 16; i++ {
		v := uint32(0)
		if i < 8 {
			v = 0xffffffff
		}
		DATA(4*i, U32(v))
	}
}

// paramAddr is the frame address of a float32 argument, for a VEX broadcast
// straight from memory.
func paramAddr(name string) Mem {
	b, err := Param(name).Resolve()
	if err != nil {
		panic(err)
	}
	return b.Addr
}

// Vector helpers on virtual registers. a, b: registers or memory operands
// where the instruction allows one (the first operand of each helper).

type V = VecVirtual

func mov(a Op) V           { r := YMM(); VMOVUPS(a, r); return r }
func add(a Op, b V) V      { r := YMM(); VADDPS(a, b, r); return r }
func sub(a V, b Op) V      { r := YMM(); VSUBPS(b, a, r); return r } // a − b
func mul(a Op, b V) V      { r := YMM(); VMULPS(a, b, r); return r }
func div(a V, b Op) V      { r := YMM(); VDIVPS(b, a, r); return r } // a / b
func and(a Op, b V) V      { r := YMM(); VANDPS(a, b, r); return r }
func or(a Op, b V) V       { r := YMM(); VORPS(a, b, r); return r }
func xor(a Op, b V) V      { r := YMM(); VXORPS(a, b, r); return r }
func abs(x V) V            { return and(kb(absMask), x) }
func neg(x V) V            { return xor(kb(signBit), x) }
func signOf(x V) V         { return and(kb(signBit), x) }
func fma(a V, b Op, c V) V { r := mov(c); VFMADD231PS(b, a, r); return r } // a·b + c

// blend is mask's sign bit set ? set : clear, lane by lane.
func blend(mask V, set Op, clear V) V { r := YMM(); VBLENDVPS(mask, set, clear, r); return r }

// lt is the lane mask a < b.
func lt(a V, b Op) V { r := YMM(); VCMPPS(U8(1), b, a, r); return r }

// minKeepNaN is min(x, hi) with a NaN x kept (MINPS returns its second
// source when either is NaN, so hi goes first).
func minKeepNaN(x V, hi float32) V { h := mov(k(hi)); r := YMM(); VMINPS(x, h, r); return r }

// maxKeepNaN is max(x, lo) with a NaN x kept.
func maxKeepNaN(x V, lo float32) V { l := mov(k(lo)); r := YMM(); VMAXPS(x, l, r); return r }

// horner is c₀ + c₁x + … .
func horner(cs []float32, x V) V {
	p := mov(k(cs[len(cs)-1]))
	for i := len(cs) - 2; i >= 0; i-- {
		VFMADD213PS(k(cs[i]), x, p) // p = x·p + cᵢ
	}
	return p
}

// square is x² as h + l: h the rounded square, l its exact error.
func square(x V) (h, l V) {
	h = mul(x, x)
	l = mov(h)
	VFMSUB231PS(x, x, l) // l = x·x − h
	return h, l
}

// reduce splits t (+ tlo, a small correction, when not nil) into
// n·ln 2 + rhi + rlo: n integral (as a float), rhi = t − n·ln2Hi exact and
// rlo = tlo − n·ln2Lo small, and returns n, rhi and inner = rlo + r²·P(r),
// r = rhi + rlo, |r| ≤ 0.35, so that e^r − 1 = rhi + inner. Keeping rhi
// apart from the small terms saves the rounding of r.
func reduce(t, tlo V) (n, rhi, inner V) {
	n = mul(k(c("log2e")), t)
	VROUNDPS(U8(0), n, n) // to nearest, ties to even
	rhi = mov(t)
	VFNMADD231PS(k(c("ln2Hi")), n, rhi) // rhi = t − n·ln2Hi (exact)
	var rlo V
	if tlo == nil {
		rlo = mul(k(-c("ln2Lo")), n)
	} else {
		rlo = mov(tlo)
		VFNMADD231PS(k(c("ln2Lo")), n, rlo)
	}
	r := add(rlo, rhi)
	p := horner(coeffs("expPoly"), r)
	inner = fma(mul(r, r), p, rlo) // rlo + r²·P(r)
	return n, rhi, inner
}

// expm1r is e^r − 1 from reduce's parts, rounded once.
func expm1r(rhi, inner V) V { return add(inner, rhi) }

// expr is e^r = 1 + rhi + inner from reduce's parts, rounded once: 1 + rhi
// with its exact error (Fast2Sum, |rhi| < 1), then the rest.
func expr(rhi, inner V) V {
	t := add(one(), rhi)
	e1 := add(rhi, sub(mov(one()), t)) // (1 − t) + rhi, exact
	return add(add(e1, inner), t)
}

// pow2 is 2ⁿ for an integral n in [−126, 127].
func pow2(n V) V {
	i := YMM()
	VCVTPS2DQ(n, i)
	VPADDD(kb(127), i, i)
	VPSLLD(U8(23), i, i)
	return i
}

// expParts is e^(t + tlo) as (1 + q)·s1·s2: q = e^r − 1 in [−0.3, 0.42]
// and two powers of two, so that n down to −252 (subnormal and zero
// results) is exact, and so that a caller can fold q into a product,
// v·(1 + q) = fma(q, v, v) with one rounding, before the scaling rounds.
// clamp: t may be any float32 (it is clamped to [expMin, expMax], NaN
// kept), else −252 ≤ t ≤ 88.
func expParts(t, tlo V, clamp bool) (q, s1, s2 V) {
	if clamp {
		t = maxKeepNaN(minKeepNaN(t, c("expMax")), c("expMin"))
	}
	n, rhi, inner := reduce(t, tlo)
	s1, s2 = split(n)
	return expm1r(rhi, inner), s1, s2
}

// times1p is v·(1 + q), rounded once.
func times1p(q, v V) V { return fma(q, v, v) }

// scaled is v·s1·s2, rounded once at the end where it is subnormal.
func scaled(v, s1, s2 V) V { return mul(s2, mul(s1, v)) }

// expv is e^t for any float32 t (clamp) or −87 ≤ t ≤ 88 (no clamp: one
// scaling).
func expv(t V, clamp bool) V {
	if clamp {
		t = maxKeepNaN(minKeepNaN(t, c("expMax")), c("expMin"))
	}
	n, rhi, inner := reduce(t, nil)
	e := expr(rhi, inner)
	if !clamp {
		return mul(pow2(n), e)
	}
	s1, s2 := split(n)
	return scaled(e, s1, s2)
}

// split is 2ⁿ as two factors 2^⌊n/2⌋ and 2^(n−⌊n/2⌋), each normal for
// n ≥ −252.
func split(n V) (s1, s2 V) {
	i := YMM()
	VCVTPS2DQ(n, i)
	s1, s2 = YMM(), YMM()
	VPSRAD(U8(1), i, s1)
	VPSUBD(s1, i, s2) // n2 = n − n1
	for _, s := range []V{s1, s2} {
		VPADDD(kb(127), s, s)
		VPSLLD(U8(23), s, s)
	}
	return s1, s2
}

// expm1v is e^t − 1 for 0 ≤ t ≤ 88 (or NaN).
func expm1v(t V) V {
	n, rhi, inner := reduce(t, nil)
	q := expm1r(rhi, inner)
	s := pow2(n)
	sm1 := sub(s, k(1))
	VFMADD213PS(sm1, s, q) // q = s·q + (s − 1)
	return q
}

// The kernels.

// reduction is what a kernel returns.
type reduction int

const (
	none  reduction = iota
	sum64           // Σ of the values, in float64
	max32           // the largest value (NaN ignored)
	dot64           // Σ in[0]·in[1], products and sum in float64
)

type spec struct {
	name   string   // the Go function is name+"AVX2"
	doc    string   // what it computes
	dst    bool     // it stores a value per element into dst
	ins    []string // input slices, after dst
	inout  []string // slices read and updated in place, after ins
	floats []string // float32 arguments, after n
	red    reduction
	body   func(in, f []V) V
	// update, for kernels with inout slices: their new values, from the
	// loaded ins then inouts.
	update func(in, f []V) []V
}

var one = func() Mem { return k(1) }

var specs = []spec{
	{name: "exp", doc: "dst[i] = e^x[i]", dst: true, ins: []string{"x"},
		body: func(in, _ []V) V { return expv(in[0], true) }},
	{name: "expSum", doc: "dst[i] = e^(x[i]−shift) and returns their sum", dst: true, ins: []string{"x"}, floats: []string{"shift"}, red: sum64,
		body: func(in, f []V) V { return expv(sub(in[0], f[0]), true) }},
	{name: "sumExp", doc: "returns Σ e^(x[i]−shift)", ins: []string{"x"}, floats: []string{"shift"}, red: sum64,
		body: func(in, f []V) V { return expv(sub(in[0], f[0]), true) }},
	{name: "max", doc: "returns the largest x[i], NaN ignored", ins: []string{"x"}, red: max32,
		body: func(in, _ []V) V { return in[0] }},
	{name: "sum", doc: "returns Σ x[i]", ins: []string{"x"}, red: sum64,
		body: func(in, _ []V) V { return in[0] }},
	{name: "dot", doc: "returns Σ x[i]·y[i]", ins: []string{"x", "y"}, red: dot64},
	{name: "affine", doc: "dst[i] = a·x[i] + b", dst: true, ins: []string{"x"}, floats: []string{"a", "b"},
		body: func(in, f []V) V { return fma(in[0], f[0], f[1]) }},
	{name: "axpy", doc: "dst[i] = a·x[i] + y[i]", dst: true, ins: []string{"x", "y"}, floats: []string{"a"},
		body: func(in, f []V) V { return fma(in[0], f[0], in[1]) }},
	{name: "mulAffine", doc: "dst[i] = x[i]·(a·y[i] + b)", dst: true, ins: []string{"x", "y"}, floats: []string{"a", "b"},
		body: func(in, f []V) V { return mul(in[0], fma(in[1], f[0], f[1])) }},
	{name: "tanh", doc: "dst[i] = tanh(x[i])", dst: true, ins: []string{"x"}, body: tanhBody},
	{name: "sigmoid", doc: "dst[i] = σ(x[i])", dst: true, ins: []string{"x"}, body: sigmoidBody},
	{name: "erf", doc: "dst[i] = erf(x[i])", dst: true, ins: []string{"x"}, body: erfBody},
	{name: "gelu", doc: "dst[i] = x·Φ(x) at x[i]", dst: true, ins: []string{"x"},
		body: func(in, _ []V) V { return geluBody(in[0], nil) }},
	{name: "geluGrad", doc: "dst[i] = dy[i]·(Φ(x) + x·φ(x)) at x[i]", dst: true, ins: []string{"x", "dy"},
		body: func(in, _ []V) V { return geluBody(in[0], in[1]) }},
	{name: "geluTanh", doc: "dst[i] = x·σ(w(x)) at x[i]", dst: true, ins: []string{"x"},
		body: func(in, _ []V) V { return geluTanhBody(in[0], nil) }},
	{name: "geluTanhGrad", doc: "dst[i] = dy[i]·(σ(w) + x·σ(w)·σ(−w)·w′(x)) at x[i]", dst: true, ins: []string{"x", "dy"},
		body: func(in, _ []V) V { return geluTanhBody(in[0], in[1]) }},
	{name: "tanhGrad", doc: "dst[i] = dy[i]·(1 − y[i]²)", dst: true, ins: []string{"y", "dy"},
		body: func(in, _ []V) V {
			t := mov(one())
			VFNMADD231PS(in[0], in[0], t) // t = 1 − y·y
			return mul(in[1], t)
		}},
	{name: "sigmoidGrad", doc: "dst[i] = dy[i]·y[i]·(1 − y[i])", dst: true, ins: []string{"y", "dy"},
		body: func(in, _ []V) V { return mul(in[1], mul(in[0], sub(mov(one()), in[0]))) }},
	{name: "adam", doc: "one Adam/AdamW update of w, m and v from the gradient g (see adamUpdate)",
		ins: []string{"grad"}, inout: []string{"w", "m", "v"}, // not "g": the Go assembler's goroutine register
		floats: []string{"gscale", "l2", "decay", "b1", "c1", "b2", "c2", "invbc2", "eps", "step"},
		update: adamUpdate},
}

// adamUpdate is, per element, with the gradient scaled by gscale (the
// clipping coefficient) and L2 weight decay l2 (Adam) or decoupled decay
// (AdamW: decay = 1 − lr·λ):
//
//	g ← gscale·g + l2·w;  w ← decay·w
//	m ← b1·m + c1·g;      v ← b2·v + c2·g²        (c = 1 − b)
//	w ← w − step·m/(√v·invbc2 + eps)
func adamUpdate(in, f []V) []V {
	g, w, m, v := in[0], in[1], in[2], in[3]
	gscale, l2, decay, b1, c1, b2, c2, invbc2, eps, step := f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9]
	g = fma(w, l2, mul(g, gscale))
	w = mul(w, decay)
	m = fma(m, b1, mul(g, c1))
	v = fma(v, b2, mul(mul(g, g), c2))
	sq := YMM()
	VSQRTPS(v, sq)
	den := fma(sq, invbc2, eps)
	t := mul(div(m, den), step)
	w = sub(w, t)
	return []V{w, m, v}
}

// tanh(x) = x + x³·P(x²) for |x| < tanhT, else sign(x)·m/(m + 2) with
// m = e^{2a} − 1, a = min(|x|, tanhMax).
func tanhBody(in, _ []V) V {
	x := in[0]
	ax := abs(x)
	s := mul(x, x)
	small := fma(mul(x, s), horner(coeffs("tanhPoly"), s), x)

	a := minKeepNaN(ax, c("tanhMax"))
	m := expm1v(add(a, a))
	big := or(signOf(x), div(m, add(k(2), m)))
	return blend(lt(ax, k(c("tanhT"))), small, big)
}

// σ(x) = r = 1/(1 + e) for x ≥ 0 and e·r for x < 0, e = e^{−|x|} =
// (1 + q)·2ⁿ; e·r is formed as (1 + q)·r with one rounding, then scaled by
// 2ⁿ (once more only where it is subnormal).
func sigmoidBody(in, _ []V) V {
	x := in[0]
	q, s1, s2 := expParts(neg(abs(x)), nil, true)
	r := div(mov(one()), add(one(), scaled(add(one(), q), s1, s2)))
	return blend(x, scaled(times1p(q, r), s1, s2), r)
}

// erf(x) = x·c₀ + x·(c₀lo + s·R(s)), s = x², for |x| < erfT (c₀ = 2/√π
// split in two); else sign(x)·(1 − e^{−a²}·P(u)), a = min(|x|, erfMax),
// u = 1/(1 + erfP·a).
func erfBody(in, _ []V) V {
	x := in[0]
	ax := abs(x)
	p := coeffs("erfPoly")
	s := mul(x, x)
	t := fma(s, horner(p[1:], s), mov(k(c("erfPolyC0Lo"))))
	small := fma(x, k(p[0]), mul(x, t))

	a := minKeepNaN(ax, c("erfMax"))
	h, l := square(a)
	e := expv(neg(h), false)
	VFNMADD231PS(l, e, e) // e^{−h−l} ≈ e^{−h}·(1 − l)
	u := div(mov(one()), fma(a, k(c("erfP")), mov(one())))
	erfc := mul(e, horner(coeffs("erfTail"), u))
	tail := or(signOf(x), sub(mov(one()), erfc))
	return blend(lt(ax, k(c("erfT"))), small, tail)
}

// geluBody is x·Φ(x), or with dy, dy·(Φ(x) + x·φ(x)). Φ(x) = ½ + x·P(x²)
// for |x| < geluT; beyond, with a = min(|x|, geluMax), e = e^{−a²/2},
// u = 1/(1 + geluP·a) and S = P(u), Φ is Q = e·S for x < 0 and 1 − Q for
// x ≥ 0. For x < 0 the value is scaled by e's power of two last, so that it
// rounds once where it is subnormal:
//
//	x·Φ(x)         = −(a·S)·e            (x < 0)   x·(1 − e·S)   (x ≥ 0)
//	Φ(x) + x·φ(x)  = (S − a/√(2π))·e     (x < 0)   1 − that      (x ≥ 0)
func geluBody(x, dy V) V {
	ax := abs(x)
	phiS := horner(coeffs("geluPoly"), mul(x, x))
	VFMADD213PS(k(0.5), x, phiS) // ½ + x·P(x²)
	small := lt(ax, k(c("geluT")))

	a := minKeepNaN(ax, c("geluMax"))
	h, l := square(a)
	// e^{−(h+l)/2}: −l/2 goes into the reduced argument.
	q, s1, s2 := expParts(mul(k(-0.5), h), mul(k(-0.5), l), false)
	sv := geluTail(a)
	if dy == nil {
		yn := or(kb(signBit), scaled(times1p(q, mul(a, sv)), s1, s2)) // −(a·S)·e
		yp := mul(x, sub(mov(one()), scaled(times1p(q, sv), s1, s2))) // x·(1 − Q)
		return blend(small, mul(x, phiS), blend(x, yn, yp))
	}
	ac := mul(k(c("invSqrt2Pi")), a)
	dn := scaled(times1p(q, sub(sv, ac)), s1, s2) // (S − a/√(2π))·e, x < 0
	dp := sub(mov(one()), dn)                     // x ≥ 0
	e := scaled(add(one(), q), s1, s2)
	ds := add(phiS, or(signOf(x), mul(e, ac))) // Φ + x·φ(x) near 0
	return mul(dy, blend(small, ds, blend(x, dn, dp)))
}

// geluTail is S = P(u), u = 1/(1 + geluP·a), corrected for the rounding of
// u: P is about twice as sensitive to u as u to a (κ = u·P′/P ≈ 1.2 to
// 2.4), so that u's half-ulp roundings (of 1 + geluP·a and of the division)
// would cost GELU two ulp. With u_exact = u·(1 + δ), δ = ρ − dl·u from the
// exact residual ρ = 1 − d·u and d's rounding error dl, P(u_exact) ≈
// P(u)·(1 + κ(u)·δ).
func geluTail(a V) V {
	p := k(c("geluP"))
	d := fma(a, p, mov(one()))
	dl := fma(a, p, sub(mov(one()), d)) // a·p + 1 − d, exactly
	u := div(mov(one()), d)
	delta := mov(one())
	VFNMADD231PS(u, d, delta)  // ρ = 1 − d·u
	VFNMADD231PS(u, dl, delta) // δ = ρ − dl·u
	sv := horner(coeffs("geluTail"), u)
	kappa := fma(u, k(coeffs("geluKappa")[1]), mov(k(coeffs("geluKappa")[0])))
	return fma(sv, mul(kappa, delta), sv)
}

// geluTanhBody is x·σ(w), or with dy, dy·σ(w)·(1 + x·σ(−w)·w′), with
// w = x·(gelu2K1 + gelu2K3·x²) and σ(±w) = (1 or e)/(1 + e), e = e^{−|w|}.
// w is computed in float64 from x clamped to ±12 (beyond, σ is 0 or 1) and
// carried as wh + wl: e^{−|w|} is accurate to the last bit only if w is
// accurate to about 2⁻²⁴ absolute, not relative. For w < 0 the value is
// scaled by e's power of two last (it is subnormal below x ≈ −10.5). The
// value's x is clamped only below, at geluTanhMin, so that −Inf gives −0
// and +Inf gives +Inf.
func geluTanhBody(x, dy V) V {
	xl := maxKeepNaN(x, c("geluTanhMin"))
	xc := minKeepNaN(xl, -c("geluTanhMin"))
	wh, wl, xw := geluTanhW(xc, dy != nil)
	// e^{−|w|}: −|w| = −|wh| − sign(wh)·wl.
	tlo := xor(xor(kb(signBit), signOf(wh)), wl)
	q, s1, s2 := expParts(neg(abs(wh)), tlo, true)
	e := scaled(add(one(), q), s1, s2)
	den := add(one(), e)
	// σ(w)·v = v·(1 + q)/(1 + e) scaled by e's powers of two for w < 0,
	// v/(1 + e) for w ≥ 0.
	t1, t2 := blend(wh, s1, mov(one())), blend(wh, s2, mov(one()))
	sigTimes := func(v V) V { return scaled(div(blend(wh, times1p(q, v), v), den), t1, t2) }
	if dy == nil {
		return sigTimes(xl)
	}
	sigm := div(blend(wh, one(), e), den) // σ(−w)
	g := fma(xw, sigm, mov(one()))        // 1 + x·w′·σ(−w)
	return mul(dy, sigTimes(g))
}

// geluTanhW is w(x) = x·(K1 + K3·x²) in float64, returned as its float32
// rounding wh and the rest wl, and with withGrad x·w′(x) = x·(K1 + 3·K3·x²)
// rounded to float32.
func geluTanhW(x V, withGrad bool) (wh, wl, xw V) {
	var hs, ls, xs [2]VecVirtual
	for half := 0; half < 2; half++ {
		xh := x.AsX()
		if half == 1 {
			xh = XMM()
			VEXTRACTF128(U8(1), x, xh)
		}
		d := YMM()
		VCVTPS2PD(xh, d)
		s := YMM()
		VMULPD(d, d, s)
		q := mov(kd(c64("gelu2K1x64")))
		VFMADD231PD(kd(c64("gelu2K3x64")), s, q) // q = s·K3 + K1
		w := YMM()
		VMULPD(q, d, w)
		hs[half] = XMM()
		VCVTPD2PSY(w, hs[half])
		back := YMM()
		VCVTPS2PD(hs[half], back)
		VSUBPD(back, w, w)
		ls[half] = XMM()
		VCVTPD2PSY(w, ls[half])
		if withGrad {
			p := mov(kd(c64("gelu2K1x64")))
			VFMADD231PD(kd(c64("gelu6K3x64")), s, p) // w′ = s·3K3 + K1
			VMULPD(d, p, p)
			xs[half] = XMM()
			VCVTPD2PSY(p, xs[half])
		}
	}
	join := func(h [2]VecVirtual) V {
		r := YMM()
		VINSERTF128(U8(1), h[1], h[0].AsY(), r)
		return r
	}
	wh, wl = join(hs), join(ls)
	if withGrad {
		xw = join(xs)
	}
	return wh, wl, xw
}

func (s spec) signature() string {
	var args []string
	if s.dst {
		args = append(args, "dst")
	}
	args = append(args, s.ins...)
	args = append(args, s.inout...)
	sig := strings.Join(args, ", ") + " *float32, n int"
	if len(s.floats) > 0 {
		sig += ", " + strings.Join(s.floats, ", ") + " float32"
	}
	sig = "func(" + sig + ")"
	switch s.red {
	case sum64, dot64:
		sig += " float64"
	case max32:
		sig += " float32"
	}
	return sig
}

func (s spec) generate() {
	name := s.name + "AVX2"
	TEXT(name, NOSPLIT, s.signature())
	Pragma("noescape")
	Doc(fmt.Sprintf("%s sets or returns, for n ≥ 1 elements: %s (see the generator, internal/vecmath/asm).", name, s.doc))

	var ptrs []Register
	var dst Register
	if s.dst {
		dst = Load(Param("dst"), GP64())
		ptrs = append(ptrs, dst)
	}
	var ins []Register
	for _, p := range append(append([]string(nil), s.ins...), s.inout...) {
		r := Load(Param(p), GP64())
		ins = append(ins, r)
		ptrs = append(ptrs, r)
	}
	n := Load(Param("n"), GP64())
	var fl []V
	for _, f := range s.floats {
		r := YMM()
		VBROADCASTSS(paramAddr(f), r)
		fl = append(fl, r)
	}
	var acc0, acc1 V
	switch s.red {
	case sum64, dot64:
		acc0, acc1 = YMM(), YMM()
		VXORPD(acc0, acc0, acc0)
		VXORPD(acc1, acc1, acc1)
	case max32:
		acc0 = mov(k(float32(math.Inf(-1))))
	}

	// step computes one vector of results; mask is nil for a full step.
	step := func(mask V) {
		var in []V
		for _, p := range ins {
			v := YMM()
			if mask == nil {
				VMOVUPS(Mem{Base: p}, v)
			} else {
				VMASKMOVPS(Mem{Base: p}, mask, v)
			}
			in = append(in, v)
		}
		if s.red == dot64 {
			for h := 0; h < 2; h++ {
				xd, yd := YMM(), YMM()
				xh, yh := in[0].AsX(), in[1].AsX()
				if h == 1 {
					xh, yh = XMM(), XMM()
					VEXTRACTF128(U8(1), in[0], xh)
					VEXTRACTF128(U8(1), in[1], yh)
				}
				VCVTPS2PD(xh, xd)
				VCVTPS2PD(yh, yd)
				VFMADD231PD(xd, yd, []V{acc0, acc1}[h])
			}
			return
		}
		if s.update != nil {
			outs := s.update(in, fl)
			for j, o := range outs {
				at := Mem{Base: ins[len(s.ins)+j]}
				if mask == nil {
					VMOVUPS(o, at)
				} else {
					VMASKMOVPS(o, mask, at)
				}
			}
			return
		}
		v := s.body(in, fl)
		if s.dst {
			if mask == nil {
				VMOVUPS(v, Mem{Base: dst})
			} else {
				VMASKMOVPS(v, mask, Mem{Base: dst})
			}
		}
		switch s.red {
		case sum64:
			if mask != nil {
				v = and(mask, v)
			}
			lo, hi := YMM(), YMM()
			h := XMM()
			VCVTPS2PD(v.AsX(), lo)
			VEXTRACTF128(U8(1), v, h)
			VCVTPS2PD(h, hi)
			VADDPD(lo, acc0, acc0)
			VADDPD(hi, acc1, acc1)
		case max32:
			if mask != nil {
				v = blend(mask, v, mov(k(float32(math.Inf(-1)))))
			}
			VMAXPS(acc0, v, acc0) // acc = v > acc ? v : acc (a NaN v is ignored)
		}
	}

	Label(name + "_loop")
	CMPQ(n, U8(8))
	JB(LabelRef(name + "_tail"))
	step(nil)
	for _, p := range ptrs {
		ADDQ(U8(32), p)
	}
	SUBQ(U8(8), n)
	JMP(LabelRef(name + "_loop"))

	Label(name + "_tail")
	TESTQ(n, n)
	JZ(LabelRef(name + "_done"))
	tabp, off := GP64(), GP64()
	LEAQ(NewDataAddr(maskSym, 0), tabp)
	MOVQ(U32(8), off)
	SUBQ(n, off)
	mask := YMM()
	VMOVUPS(Mem{Base: tabp, Index: off, Scale: 4}, mask)
	step(mask)

	Label(name + "_done")
	switch s.red {
	case sum64, dot64:
		VADDPD(acc1, acc0, acc0)
		h := XMM()
		VEXTRACTF128(U8(1), acc0, h)
		VADDPD(acc0.AsX(), h, h)
		t := XMM()
		VUNPCKHPD(h, h, t)
		VADDSD(t, h, h)
		VZEROUPPER()
		Store(h, ReturnIndex(0))
	case max32:
		h := XMM()
		VEXTRACTF128(U8(1), acc0, h)
		VMAXPS(acc0.AsX(), h, h)
		t := XMM()
		VMOVHLPS(h, h, t)
		VMAXPS(t, h, h)
		VSHUFPS(U8(0x55), h, h, t)
		VMAXPS(t, h, h)
		VZEROUPPER()
		Store(h, ReturnIndex(0))
	default:
		VZEROUPPER()
	}
	RET()
}
