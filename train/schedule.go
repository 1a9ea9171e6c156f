package train

import (
	"math"
	"strconv"

	"github.com/pkg/errors"
)

// Schedule gives the learning rate of each update. step counts updates from
// 1: LR(1) is the rate of the first update.
type Schedule interface {
	LR(step int) float64
}

// Constant is a fixed learning rate.
type Constant float64

// LR implements Schedule.
func (c Constant) LR(int) float64 { return float64(c) }

// Noam is the schedule of "Attention is all you need" (§5.3):
//
//	η(s) = factor · d_model^(−1/2) · min(s^(−1/2), s · warmup^(−3/2))
//
// a linear warm-up for warmup steps, then decay with the inverse square root
// of the step. The peak, at s = warmup, is factor·(d_model·warmup)^(−1/2).
// Why the warm-up: Adam's v̂ rests on few gradients over the first updates,
// and full-size steps then make a post-LayerNorm Transformer diverge.
type Noam struct {
	DModel, Warmup int
	Factor         float64
}

// NewNoam validates its arguments; the paper used factor 1, warmup 4000.
func NewNoam(dModel, warmup int, factor float64) (Noam, error) {
	if dModel <= 0 {
		return Noam{}, errors.Errorf("train: Noam d_model %d is not positive", dModel)
	}
	if warmup <= 0 {
		return Noam{}, errors.Errorf("train: Noam warm-up %d is not positive", warmup)
	}
	if !(factor > 0) || math.IsInf(factor, 0) {
		return Noam{}, errors.Errorf("train: Noam factor %v is not positive and finite", factor)
	}
	return Noam{DModel: dModel, Warmup: warmup, Factor: factor}, nil
}

// LR implements Schedule.
func (n Noam) LR(step int) float64 {
	s := float64(max(step, 1))
	return n.Factor / math.Sqrt(float64(n.DModel)) * math.Min(1/math.Sqrt(s), s*math.Pow(float64(n.Warmup), -1.5))
}

// Decay is the shape of a WarmupDecay schedule after its warm-up.
type Decay int

const (
	// Cosine anneals as ½(1 + cos πp), GPT-1's schedule.
	Cosine Decay = iota
	// Linear falls as 1 − p (BERT, GPT-1 fine-tuning).
	Linear
)

// WarmupDecay rises linearly from 0 to Peak over Warmup steps, then decays
// to Min at step Total and stays there:
//
//	η(s) = Peak · s / Warmup                                   s ≤ Warmup
//	η(s) = Min + (Peak − Min) · f(p),  p = (s − Warmup)/(Total − Warmup)
//
// with f(p) = ½(1 + cos πp) (Cosine) or 1 − p (Linear). GPT-1 pre-training
// used Peak 2.5e-4, Warmup 2000, cosine to 0.
type WarmupDecay struct {
	Peak, Min     float64
	Warmup, Total int
	Decay         Decay
}

// NewWarmupDecay validates its arguments.
func NewWarmupDecay(peak, min float64, warmup, total int, decay Decay) (WarmupDecay, error) {
	if !(peak > 0) || math.IsInf(peak, 0) {
		return WarmupDecay{}, errors.Errorf("train: warm-up peak rate %v is not positive and finite", peak)
	}
	if !(min >= 0 && min <= peak) {
		return WarmupDecay{}, errors.Errorf("train: final rate %v is not in [0, peak %v]", min, peak)
	}
	if warmup < 0 || total <= warmup {
		return WarmupDecay{}, errors.Errorf("train: warm-up %d and total %d steps need 0 ≤ warm-up < total", warmup, total)
	}
	if decay != Cosine && decay != Linear {
		return WarmupDecay{}, errors.Errorf("train: unknown decay %d", decay)
	}
	return WarmupDecay{Peak: peak, Min: min, Warmup: warmup, Total: total, Decay: decay}, nil
}

// LR implements Schedule.
func (w WarmupDecay) LR(step int) float64 {
	if step <= w.Warmup {
		return w.Peak * float64(step) / float64(w.Warmup)
	}
	p := math.Min(1, float64(step-w.Warmup)/float64(w.Total-w.Warmup))
	f := 1 - p
	if w.Decay == Cosine {
		f = 0.5 * (1 + math.Cos(math.Pi*p))
	}
	return w.Min + (w.Peak-w.Min)*f
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
