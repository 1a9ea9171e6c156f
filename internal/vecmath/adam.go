package vecmath

import "math"

// AdamStep is the coefficients of one Adam or AdamW update (AdamUpdate),
// in float64: the float32 kernel rounds each coefficient it derives (1 − β
// among them) once, from these; 1 − float32(0.999) would be 1.3·10⁻⁵ off
// 0.001.
type AdamStep struct {
	// GradScale multiplies the gradient before anything else: the global
	// norm clipping coefficient min(1, c/‖g‖), 1 for none. Folding it in
	// saves a pass over the gradients.
	GradScale float64
	// L2 is Adam's weight decay λ, added to the gradient (g + λ·w); 0 for
	// AdamW.
	L2 float64
	// Decay is AdamW's decoupled decay factor 1 − η·λ; 1 for Adam.
	Decay float64
	// Beta1 and Beta2 are the moments' decay rates β₁ and β₂.
	Beta1, Beta2 float64
	// InvBC2 is 1/√(1 − β₂ᵗ), the second moment's bias correction.
	InvBC2 float64
	// Eps is ε, added to √v̂.
	Eps float64
	// Step is η/(1 − β₁ᵗ), the step size with the first moment's bias
	// correction.
	Step float64
}

// AdamUpdate applies one Adam (or AdamW) update to w and its moments m and
// v from the gradient g, in one pass, in place, as torch.optim.Adam and
// AdamW do for float32 parameters:
//
//	g ← GradScale·g + L2·w,   w ← Decay·w
//	m ← β₁·m + (1 − β₁)·g,    v ← β₂·v + (1 − β₂)·g²
//	w ← w − Step·m / (√v·InvBC2 + ε)
//
// The assembly computes in float32 (as torch does), the pure-Go kernel in
// float64 rounded once per value.
func AdamUpdate(w, g, m, v []float32, s AdamStep) {
	same("AdamUpdate", len(w), len(g), len(m), len(v))
	if len(w) > 0 {
		active.adam(w, g, m, v, s)
	}
}

func goAdam(w, g, m, v []float32, s AdamStep) {
	gs, l2, decay := s.GradScale, s.L2, s.Decay
	b1, b2 := s.Beta1, s.Beta2
	c1, c2 := 1-b1, 1-b2
	invbc2, eps, step := s.InvBC2, s.Eps, s.Step
	for i := range w {
		wi := float64(w[i])
		gi := gs*float64(g[i]) + l2*wi
		wi *= decay
		mi := b1*float64(m[i]) + c1*gi
		vi := b2*float64(v[i]) + c2*gi*gi
		m[i], v[i] = float32(mi), float32(vi)
		w[i] = float32(wi - step*mi/(math.Sqrt(vi)*invbc2+eps))
	}
}
