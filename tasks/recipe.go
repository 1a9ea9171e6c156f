package tasks

import (
	"math"

	"github.com/pkg/errors"

	"github.com/seq2gpt/seq2gpt/train"
)

// Recipe is how a task model is trained. PaperRecipe is GPT-1's (§4.1,
// "Fine-tuning details", and the released finetune-transformer-lm code):
// Adam (β₁ 0.9, β₂ 0.999, ε 1e-8) at 6.25e-5 with a linear warm-up over
// 0.2% of training and a linear decay to 0, batches of 32, 3 epochs, the
// pre-training's decoupled weight decay 0.01 on matrices and gradient
// clipping at norm 1.
type Recipe struct {
	LR          float64 `json:"lr"`
	Batch       int     `json:"batch"`
	Epochs      int     `json:"epochs"`
	WarmupFrac  float64 `json:"warmup_frac"`
	WeightDecay float64 `json:"weight_decay"`
	ClipNorm    float64 `json:"clip_norm"`
}

// PaperRecipe is GPT-1's fine-tuning recipe.
func PaperRecipe() Recipe {
	return Recipe{LR: 6.25e-5, Batch: 32, Epochs: 3, WarmupFrac: 0.002, WeightDecay: 0.01, ClipNorm: 1}
}

// Validate checks the ranges.
func (r Recipe) Validate() error {
	switch {
	case !(r.LR > 0) || math.IsInf(r.LR, 0):
		return errors.Errorf("tasks: learning rate %v is not positive and finite", r.LR)
	case r.Batch <= 0:
		return errors.Errorf("tasks: batch %d is not positive", r.Batch)
	case r.Epochs <= 0:
		return errors.Errorf("tasks: epochs %d is not positive", r.Epochs)
	case !(r.WarmupFrac >= 0 && r.WarmupFrac < 1):
		return errors.Errorf("tasks: warm-up fraction %v is not in [0, 1)", r.WarmupFrac)
	case !(r.WeightDecay >= 0) || math.IsInf(r.WeightDecay, 0):
		return errors.Errorf("tasks: weight decay %v is not a finite number ≥ 0", r.WeightDecay)
	case !(r.ClipNorm >= 0) || math.IsInf(r.ClipNorm, 0):
		return errors.Errorf("tasks: clip norm %v is not a finite number ≥ 0", r.ClipNorm)
	}
	return nil
}

// Warmup is the number of warm-up steps of a run of steps: WarmupFrac of
// them, rounded up.
func (r Recipe) Warmup(steps int) int { return int(math.Ceil(r.WarmupFrac * float64(steps))) }

// Schedule is the learning rate over a run of steps: linear warm-up to LR,
// then linear decay to 0 at the last step.
func (r Recipe) Schedule(steps int) (train.Schedule, error) {
	w := r.Warmup(steps)
	if w >= steps {
		w = steps - 1
	}
	return train.NewWarmupDecay(r.LR, 0, w, steps, train.Linear)
}

// NewTrainer returns a Trainer of m for a run of steps (seed seeds the
// dropout masks).
func (r Recipe) NewTrainer(m *Model, steps int, seed uint64) (*train.Trainer, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	opt, err := train.NewAdamW(train.AdamConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: r.WeightDecay, DecayMatricesOnly: true})
	if err != nil {
		return nil, err
	}
	sched, err := r.Schedule(steps)
	if err != nil {
		return nil, err
	}
	return train.New(m, train.Config{Optimizer: opt, Schedule: sched, ClipNorm: r.ClipNorm, DropoutSeed: seed})
}
