package vecmath

import "math"

// The softmax family over one row, from the kernels above: each is two or
// three passes over a row that stays in cache.

// Softmax sets dst = softmax(x) = e^(x − max x) / Σ e^(x − max x). A row
// that is all −Inf (every position masked) gives zeros, not NaN. x − max x
// is rounded to float32 first, as in every float32 softmax, so that beyond
// Exp's error an output carries a relative error of up to |x − max x|·2⁻²⁴.
func Softmax(dst, x []float32) {
	same("Softmax", len(x), len(dst))
	m := Max(x)
	if math.IsInf(float64(m), -1) {
		clear(dst)
		return
	}
	s := ExpSum(dst, x, m)
	Affine(dst, dst, float32(1/s), 0)
}

// LogSumExp returns log Σ e^x[i], with the row's maximum subtracted before
// the exponentials (−Inf for an empty or all −Inf row).
func LogSumExp(x []float32) float32 {
	m := Max(x)
	if math.IsInf(float64(m), 0) {
		return m
	}
	return float32(float64(m) + math.Log(SumExp(x, m)))
}

// LogSoftmax sets dst = x − LogSumExp(x) and returns LogSumExp(x).
func LogSoftmax(dst, x []float32) float32 {
	same("LogSoftmax", len(x), len(dst))
	lse := LogSumExp(x)
	Affine(dst, x, 1, -lse)
	return lse
}

// SoftmaxGrad sets dx = scale·y ⊙ (dy − Σ_j dy_j·y_j), the gradient of
// softmax(scale·x) through its output y.
func SoftmaxGrad(dx, y, dy []float32, scale float32) {
	same("SoftmaxGrad", len(y), len(dx), len(dy))
	dot := Dot(y, dy)
	MulAffine(dx, y, dy, scale, float32(-float64(scale)*dot))
}

// LogSoftmaxGrad sets dx = dy − e^y·Σ_j dy_j, the gradient of log-softmax
// through its output y. dx may be y, not dy.
func LogSoftmaxGrad(dx, y, dy []float32) {
	same("LogSoftmaxGrad", len(y), len(dx), len(dy))
	s := Sum(dy)
	Exp(dx, y)
	AXPY(dx, float32(-s), dx, dy)
}
