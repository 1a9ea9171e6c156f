package vecmath

import "math"

// The pure-Go kernels: the same approximations as the assembly (the same
// branch points and coefficients, coeffs.go), evaluated in float64 and
// rounded once at the end, so that their error is the approximations' alone
// and never above the assembly's. Exact steps that the assembly does with
// FMA (x² as a rounded square plus its error) are exact here by float64.

// pow2 is 2ⁿ for an integral n in [−1022, 1023].
func pow2(n float64) float64 { return math.Float64frombits(uint64(int64(n)+1023) << 52) }

// poly evaluates c₀ + c₁x + … by Horner's rule.
func poly(c []float32, x float64) float64 {
	p := float64(c[len(c)-1])
	for i := len(c) - 2; i >= 0; i-- {
		p = p*x + float64(c[i])
	}
	return p
}

// exp64 is e^x, with x clamped to [−700, 700] (far beyond float32's range,
// within pow2's); NaN passes.
func exp64(x float64) float64 {
	if x > 700 {
		x = 700
	}
	if x < -700 {
		x = -700
	}
	if x != x {
		return x
	}
	n := math.RoundToEven(x * math.Log2E)
	r := x - n*math.Ln2
	return (1 + r + r*r*poly(expPoly[:], r)) * pow2(n)
}

// expm164 is e^x − 1 for 0 ≤ x ≤ 2·tanhMax.
func expm164(x float64) float64 {
	n := math.RoundToEven(x * math.Log2E)
	r := x - n*math.Ln2
	s := pow2(n)
	return s*(r+r*r*poly(expPoly[:], r)) + (s - 1)
}

func exp1(x float32) float32 { return float32(exp64(float64(x))) }

func tanh1(x float32) float32 {
	f := float64(x)
	a := math.Abs(f)
	if a < tanhT {
		s := f * f
		return float32(f + f*s*poly(tanhPoly[:], s))
	}
	if a > tanhMax {
		a = tanhMax
	}
	if a != a {
		return x
	}
	e := expm164(2 * a)
	return float32(math.Copysign(e/(e+2), float64(x)))
}

// sigmoid64 is 1/(1 + e^−x), from e = e^−|x| (which cannot overflow).
func sigmoid64(x float64) float64 {
	e := exp64(-math.Abs(x))
	if math.Signbit(x) {
		return e / (1 + e)
	}
	return 1 / (1 + e)
}

func sigmoid1(x float32) float32 { return float32(sigmoid64(float64(x))) }

func erf1(x float32) float32 {
	f := float64(x)
	a := math.Abs(f)
	if a < erfT {
		s := f * f
		return float32(f * (erfPolyC0Lo + float64(erfPoly[0]) + s*poly(erfPoly[1:], s)))
	}
	if a > erfMax {
		a = erfMax
	}
	u := 1 / (1 + erfP*a)
	erfc := exp64(-a*a) * poly(erfTail[:], u)
	return float32(math.Copysign(1-erfc, f))
}

// phi64 is Φ(x), the standard normal CDF, and e^{−x²/2} (0 beyond geluMax),
// for GELU's erf form.
func phi64(x float64) (phi, e float64) {
	a := math.Min(math.Abs(x), geluMax)
	if x != x {
		return x, x
	}
	e = exp64(-0.5 * a * a)
	if a < geluT {
		return 0.5 + x*poly(geluPoly[:], x*x), e
	}
	q := e * poly(geluTail[:], 1/(1+geluP*a))
	if x < 0 {
		return q, e
	}
	return 1 - q, e
}

// gelu1 is x·Φ(x); beyond −geluMax it is −0 (the limit; x·Φ(x) at −Inf
// would be −Inf·0).
func gelu1(x float32) float32 {
	f := float64(x)
	phi, _ := phi64(f)
	if f < -geluMax {
		return float32(-geluMax * phi)
	}
	return float32(f * phi)
}

// geluGrad1 is dy·(Φ(x) + x·φ(x)), φ(x) = e^{−x²/2}/√(2π).
func geluGrad1(x, dy float32) float32 {
	f := float64(x)
	phi, e := phi64(f)
	xc := math.Copysign(math.Min(math.Abs(f), geluMax), f)
	return float32(float64(dy) * (phi + xc*e*invSqrt2Pi))
}

// geluTanhW is w = 2·√(2/π)·(x + 0.044715·x³), the argument of σ in
// 0.5·x·(1 + tanh(w/2)) = x·σ(w), at xc = x clamped to ±12 (beyond, σ is 0
// or 1), and xl = x clamped below only (so that −Inf gives −0).
func geluTanhW(x float32) (xl, xc, w float64) {
	xl = math.Max(float64(x), geluTanhMin)
	xc = math.Min(xl, -geluTanhMin)
	if x != x {
		xl, xc = float64(x), float64(x)
	}
	return xl, xc, xc * (gelu2K1x64 + gelu2K3x64*xc*xc)
}

func geluTanh1(x float32) float32 {
	xl, _, w := geluTanhW(x)
	return float32(xl * sigmoid64(w))
}

// geluTanhGrad1 is dy·(σ(w) + x·σ(w)·σ(−w)·w′(x)).
func geluTanhGrad1(x, dy float32) float32 {
	_, xc, w := geluTanhW(x)
	s, sm := sigmoid64(w), sigmoid64(-w)
	return float32(float64(dy) * (s + xc*s*sm*(gelu2K1x64+gelu6K3x64*xc*xc)))
}

func goExp(dst, x []float32) {
	for i, v := range x {
		dst[i] = exp1(v)
	}
}

func goExpSum(dst, x []float32, shift float32) float64 {
	var s float64
	for i, v := range x {
		e := exp1(v - shift)
		dst[i] = e
		s += float64(e)
	}
	return s
}

func goSumExp(x []float32, shift float32) float64 {
	var s float64
	for _, v := range x {
		s += float64(exp1(v - shift))
	}
	return s
}

func goMax(x []float32) float32 {
	m := float32(math.Inf(-1))
	for _, v := range x {
		if v > m {
			m = v
		}
	}
	return m
}

func goSum(x []float32) float64 {
	var s float64
	for _, v := range x {
		s += float64(v)
	}
	return s
}

func goDot(x, y []float32) float64 {
	var s float64
	for i, v := range x {
		s += float64(v) * float64(y[i])
	}
	return s
}

func goAffine(dst, x []float32, a, b float32) {
	for i, v := range x {
		dst[i] = float32(float64(a)*float64(v) + float64(b))
	}
}

func goAXPY(dst []float32, a float32, x, y []float32) {
	for i, v := range x {
		dst[i] = float32(float64(a)*float64(v) + float64(y[i]))
	}
}

func goMulAffine(dst, x, y []float32, a, b float32) {
	for i, v := range x {
		dst[i] = float32(float64(v) * (float64(a)*float64(y[i]) + float64(b)))
	}
}

func goTanh(dst, x []float32) {
	for i, v := range x {
		dst[i] = tanh1(v)
	}
}

func goSigmoid(dst, x []float32) {
	for i, v := range x {
		dst[i] = sigmoid1(v)
	}
}

func goErf(dst, x []float32) {
	for i, v := range x {
		dst[i] = erf1(v)
	}
}

func goGELU(dst, x []float32) {
	for i, v := range x {
		dst[i] = gelu1(v)
	}
}

func goGELUGrad(dst, x, dy []float32) {
	for i, v := range x {
		dst[i] = geluGrad1(v, dy[i])
	}
}

func goGELUTanh(dst, x []float32) {
	for i, v := range x {
		dst[i] = geluTanh1(v)
	}
}

func goGELUTanhGrad(dst, x, dy []float32) {
	for i, v := range x {
		dst[i] = geluTanhGrad1(v, dy[i])
	}
}

func goTanhGrad(dst, y, dy []float32) {
	for i, v := range y {
		f := float64(v)
		dst[i] = float32(float64(dy[i]) * (1 - f*f))
	}
}

func goSigmoidGrad(dst, y, dy []float32) {
	for i, v := range y {
		f := float64(v)
		dst[i] = float32(float64(dy[i]) * f * (1 - f))
	}
}
