#!/usr/bin/python3
"""Fits the polynomial coefficients of internal/vecmath and writes coeffs.go.

    cd internal/vecmath && /usr/bin/python3 fit/fit.py | gofmt > coeffs.go
    go generate   # the assembly reads its constants from coeffs.go

Each approximation is a minimax (Remez exchange) fit in mpmath at 40 digits,
of a smooth function on an interval, with the error weighted as the kernel
needs it (relative, or absolute where the result is 1 − something). The
coefficients are then rounded to float32 and the weighted error of the rounded
polynomial, still evaluated exactly, is printed beside each set (the kernels'
own float32 rounding comes on top; the Go tests measure the whole).

Needs python3-mpmath (Debian). Deterministic: the output depends on nothing
but this file.
"""
import struct
import sys

import mpmath as mp

mp.mp.dps = 40


def f32(x):
    """x rounded to the nearest float32, as an mpf."""
    return mp.mpf(struct.unpack("<f", struct.pack("<f", float(x)))[0])


def hexf(x):
    """A float32 value as an exact Go hex-float literal, e.g. 0x1.62e43p-01."""
    v = float(f32(x))
    if v == 0:
        return "0"
    sign, h = ("-", float.hex(-v)) if v < 0 else ("", float.hex(v))
    mant, exp = h[2:].split("p")  # "1.62e4300000000", "-1"
    mant = mant.rstrip("0").rstrip(".")
    return f"{sign}0x{mant}p{int(exp):+d}"


def remez(f, powers, w, a, b, var=lambda x: x, grid=1500, iters=40):
    """Coefficients c of sum c_k·var(x)^powers[k] minimising
    max |w(x)·(f(x) − sum)| over [a, b], and that maximum."""
    n = len(powers)
    a, b = mp.mpf(a), mp.mpf(b)
    cheb = lambda i, m: a + (b - a) * (1 - mp.cos(mp.pi * i / m)) / 2
    xs = [cheb(i, grid - 1) for i in range(grid)]
    fx, wx, vx = [f(x) for x in xs], [w(x) for x in xs], [var(x) for x in xs]
    ref = [cheb(i, n) for i in range(n + 1)]
    best = None
    for _ in range(iters):
        A = mp.matrix(n + 1, n + 1)
        rhs = mp.matrix(n + 1, 1)
        for i, x in enumerate(ref):
            v = var(x)
            for k in range(n):
                A[i, k] = v ** powers[k]
            A[i, n] = (-1) ** i / w(x)
            rhs[i] = f(x)
        sol = mp.lu_solve(A, rhs)
        c = [sol[k] for k in range(n)]
        err = [wx[j] * (fx[j] - sum(ck * vx[j] ** p for ck, p in zip(c, powers))) for j in range(grid)]
        m = max(abs(e) for e in err)
        if best is None or m < best[1]:
            best = (c, m)
        # The extrema of alternating runs of the error, trimmed to n+1.
        ext, j = [], 0
        while j < grid:
            s, k = mp.sign(err[j]), j
            while j < grid and mp.sign(err[j]) == s:
                if abs(err[j]) > abs(err[k]):
                    k = j
                j += 1
            ext.append(k)
        while len(ext) > n + 1:
            ext.pop(0 if abs(err[ext[0]]) < abs(err[ext[-1]]) else -1)
        if len(ext) < n + 1 or m <= abs(sol[n]) * (1 + mp.mpf("1e-4")):
            break
        ref = [xs[k] for k in ext]
    return best


def rounded_error(f, c, w, a, b, var=lambda x: x, grid=3000):
    a, b = mp.mpf(a), mp.mpf(b)
    c32 = [x if i == 0 and f32(x) != x else f32(x) for i, x in enumerate(c)]
    m = 0
    grid *= 3
    for i in range(grid):
        x = a + (b - a) * i / (grid - 1)
        m = max(m, abs(w(x) * (f(x) - mp.polyval(c32[::-1], var(x)))))
    return m


def hex64(x):
    """A float64 value as an exact Go hex-float literal."""
    v = float(x)
    sign, h = ("-", float.hex(-v)) if v < 0 else ("", float.hex(v))
    mant, exp = h[2:].split("p")
    mant = mant.rstrip("0").rstrip(".")
    return f"{sign}0x{mant}p{int(exp):+d}"


out = []
emit = out.append


def block(name, doc, coeffs, err, err32):
    emit("")
    for line in doc:
        emit("// " + line)
    emit(f"// Weighted error of the fit {mp.nstr(err, 3)}; with float32 coefficients {mp.nstr(err32, 3)}.")
    emit(f"var {name} = [{len(coeffs)}]float32{{")
    for k, x in enumerate(coeffs):
        emit(f"\t{hexf(x)}, // c{k} ≈ {mp.nstr(f32(x), 9)}")
    emit("}")


def fit(name, doc, f, degree, w, a, b, var=lambda x: x, c0=None):
    """The minimax fit, then its coefficients rounded to float32 one at a
    time from the lowest order, refitting the higher ones after each (the
    greedy heuristic of Sollya's fpminimax): the rounding of a low-order
    coefficient is partly absorbed by the others. With c0, the constant term
    is that exact value, written as c0 (its float32) plus name+"C0Lo" (the
    rest), which the kernels add separately."""
    _, err = remez(f, list(range(degree + 1)), w, a, b, var)
    fixed = [] if c0 is None else [c0]
    for k in range(len(fixed), degree + 1):
        rest = lambda x, fixed=tuple(fixed): f(x) - sum(c * var(x) ** i for i, c in enumerate(fixed))
        c, _ = remez(rest, list(range(k, degree + 1)), w, a, b, var)
        fixed.append(f32(c[0]))
    if c0 is None:
        block(name, doc, fixed, err, rounded_error(f, fixed, w, a, b, var))
        return
    hi = f32(c0)
    lo = c0 - hi
    errs = rounded_error(f, [hi + f32(lo)] + fixed[1:], w, a, b, var)
    block(name, doc, [hi] + fixed[1:], err, errs)
    emit(f"\n// {name}C0Lo is the exact c0 minus {name}[0].")
    emit(f"const {name}C0Lo = {hexf(lo)}")


def const(name, value, doc):
    emit(f"\t{name} = {hexf(value)} // {doc}")


ln2 = mp.log(2)
rmax = mp.mpf("0.35")  # |r| ≤ ln2/2 = 0.3466 plus the rounding of n


def p_exp(r):
    return (mp.expm1(r) - r) / r ** 2 if r != 0 else mp.mpf(1) / 2


def erf_over_x(s):  # erf(√s)/√s
    return mp.erf(mp.sqrt(s)) / mp.sqrt(s) if s != 0 else 2 / mp.sqrt(mp.pi)


def phi_over_x(s):  # (Φ(√s) − ½)/√s
    return (mp.ncdf(mp.sqrt(s)) - mp.mpf(1) / 2) / mp.sqrt(s) if s != 0 else 1 / mp.sqrt(2 * mp.pi)


TANH_T = mp.mpf("0.625")


def tanh_over_x3(s):  # (tanh(√s) − √s)/s^{3/2}
    if s == 0:
        return -mp.mpf(1) / 3
    x = mp.sqrt(s)
    return (mp.tanh(x) - x) / x ** 3


# The branch points and tail variables' p as the kernels have them: float32
# values (0.3 is not one; the fit must see the p the kernels use).
ERF_T, ERF_P, ERF_MAX = f32("1"), f32("0.5"), f32(4)
GELU_T, GELU_P, GELU_MAX = f32("0.75"), f32("0.3"), f32(15)


def erfc_scaled(u):  # erfc(a)·e^{a²} at a = (1/u − 1)/p
    a = (1 / u - 1) / ERF_P
    return mp.erfc(a) * mp.exp(a * a)


def mills(u):  # Q(x)·e^{x²/2} at x = (1/u − 1)/p, Q(x) = 1 − Φ(x)
    x = (1 / u - 1) / GELU_P
    return mp.ncdf(-x) * mp.exp(x * x / 2)


emit("// Code generated by fit/fit.py (python3 + mpmath). DO NOT EDIT.")
emit("")
emit("package vecmath")
emit("")
emit("// Constants of the range reductions and branch points (exact float32 values).")
emit("const (")
const("log2e", 1 / ln2, "log₂e")
const("ln2Hi", mp.mpf("0.693359375"), "ln 2, high part: 9 bits, so n·ln2Hi is exact for |n| < 2¹⁵")
const("ln2Lo", ln2 - mp.mpf("0.693359375"), "ln 2 − ln2Hi")
const("expMax", 89, "exp(x) overflows above 88.72; clamping to 89 keeps n small")
const("expMin", -170, "exp(x) rounds to 0 below −103.97; −170 keeps e^x·v exact to scale for v up to 2⁹⁰")
const("tanhT", TANH_T, "tanh: the polynomial below |x|, (e^{2|x|} − 1)/(e^{2|x|} + 1) above")
const("tanhMax", 10, "tanh(x) rounds to ±1 beyond 9.01")
const("erfT", ERF_T, "erf: the polynomial below, 1 − erfc above")
const("erfP", ERF_P, "erf tail variable u = 1/(1 + erfP·a)")
const("erfMax", ERF_MAX, "erf(x) rounds to ±1 beyond 3.92")
const("geluT", GELU_T, "GELU (erf form): the polynomial below |x|, the tail above")
const("geluP", GELU_P, "GELU tail variable u = 1/(1 + geluP·|x|)")
const("geluMax", GELU_MAX, "x·Q(x) underflows beyond 14.1")
const("geluTanhMin", -12, "x·σ(w(x)) underflows below −10.9")
const("invSqrt2Pi", 1 / mp.sqrt(2 * mp.pi), "1/√(2π)")
const("gelu2K1", 2 * mp.sqrt(2 / mp.pi), "2√(2/π): w = x·(gelu2K1 + gelu2K3·x²) = 2·√(2/π)·(x + 0.044715·x³)")
const("gelu2K3", 2 * mp.sqrt(2 / mp.pi) * mp.mpf("0.044715"), "2√(2/π)·0.044715")
emit(f"\tgelu2K1x64 = {hex64(2 * mp.sqrt(2 / mp.pi))} // gelu2K1 in float64, for w in float64")
emit(f"\tgelu2K3x64 = {hex64(2 * mp.sqrt(2 / mp.pi) * mp.mpf('0.044715'))} // gelu2K3 in float64")
emit(f"\tgelu6K3x64 = {hex64(6 * mp.sqrt(2 / mp.pi) * mp.mpf('0.044715'))} // 3·gelu2K3: w′(x) = gelu2K1 + gelu6K3·x², in float64")
emit(")")

fit("expPoly", [
    "expPoly is P in e^r = 1 + r + r²·P(r), |r| ≤ 0.35, minimax in the relative",
    "error of P (so that e^r − 1 = r + r²·P(r) is as accurate as e^r).",
], p_exp, 5, lambda r: 1 / p_exp(r), -rmax, rmax)
fit("tanhPoly", [
    "tanhPoly is P in tanh(x) = x + x³·P(x²) for |x| ≤ tanhT, minimax in the",
    "relative error of tanh.",
], tanh_over_x3, 4, lambda s: s ** mp.mpf(1.5) / mp.tanh(mp.sqrt(s)), mp.mpf("1e-8"), TANH_T ** 2)
fit("erfPoly", [
    "erfPoly is P in erf(x) = x·P(x²) for |x| ≤ erfT, minimax relative error,",
    "with c0 = 2/√π exactly (erfPolyC0Lo), its rounding being half of float32's",
    "error budget otherwise.",
], erf_over_x, 6, lambda s: 1 / erf_over_x(s), 0, ERF_T ** 2, c0=2 / mp.sqrt(mp.pi))
fit("erfTail", [
    "erfTail is P in erfc(a) = e^{−a²}·P(u), u = 1/(1 + erfP·a), erfT ≤ a ≤ erfMax,",
    "minimax in the error of erf = 1 − erfc (absolute: erf is near 1 there).",
], erfc_scaled, 5, lambda u: mp.exp(-((1 / u - 1) / ERF_P) ** 2), 1 / (1 + ERF_MAX * ERF_P), 1 / (1 + ERF_T * ERF_P))
fit("geluPoly", [
    "geluPoly is P in Φ(x) = ½ + x·P(x²) for |x| ≤ geluT (Φ the standard normal",
    "CDF), minimax relative error of Φ − ½.",
], phi_over_x, 5, lambda s: 1 / phi_over_x(s), 0, GELU_T ** 2)
fit("geluTail", [
    "geluTail is P in Q(x) = 1 − Φ(x) = e^{−x²/2}·P(u), u = 1/(1 + geluP·x),",
    "geluT ≤ x ≤ geluMax, minimax relative error (x·Q(x) is GELU's value at −x).",
], mills, 9, lambda u: 1 / mills(u), 1 / (1 + GELU_MAX * GELU_P), 1 / (1 + GELU_T * GELU_P))



def kappa_fit(cs, a, b, grid=200):
    """Least-squares line κ(u) ≈ k0 + k1·u of κ = u·P′(u)/P(u), the
    sensitivity of P to a relative error in u, on [a, b]."""
    rows, rhs = [], []
    for i in range(grid):
        u = a + (b - a) * mp.mpf(i) / (grid - 1)
        p = sum(c * u ** k for k, c in enumerate(cs))
        dp = sum(k * c * u ** (k - 1) for k, c in enumerate(cs) if k > 0)
        rows.append([1, u])
        rhs.append(u * dp / p)
    A, y = mp.matrix(rows), mp.matrix(rhs)
    sol = mp.lu_solve(A.T * A, A.T * y)
    worst = max(abs(y[i] - sol[0] - sol[1] * rows[i][1]) for i in range(grid))
    return sol[0], sol[1], worst


tail = [mp.mpf(float.fromhex(l.split(",")[0].strip())) for l in out[out.index("var geluTail = [10]float32{") + 1:][:10]]
k0, k1, kerr = kappa_fit(tail, 1 / (1 + GELU_MAX * GELU_P), 1 / (1 + GELU_T * GELU_P))
emit("")
emit("// geluKappa is κ(u) ≈ k0 + k1·u, the sensitivity u·P′(u)/P(u) of geluTail")
emit("// to a relative error in u, as a least-squares line (the kernels correct P")
emit(f"// for the rounding of u with it; its own error, {mp.nstr(kerr, 2)}, scales a term of 2⁻²³).")
emit(f"var geluKappa = [2]float32{{{hexf(k0)}, {hexf(k1)}}}")

sys.stdout.write("\n".join(out) + "\n")
