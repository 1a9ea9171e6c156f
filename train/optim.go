package train

import (
	"math"
	"sort"
	"strings"

	"github.com/pkg/errors"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/internal/vecmath"
)

// Param is one trainable tensor and its gradient, of the same shape and
// element type. A nil Grad means the parameter took no part in the loss:
// optimizers leave it and its state alone, as PyTorch does for p.grad None.
type Param struct {
	Name  string
	Value *tensor.Dense
	Grad  *tensor.Dense
}

// Optimizer updates parameters in place from their gradients.
type Optimizer interface {
	// Step applies one update with learning rate lr.
	Step(lr float64, params []Param) error
	// State is the optimizer's state, for checkpoints: per-parameter update
	// counts and slot tensors named "<slot>.<parameter>". The tensors are
	// the optimizer's own; callers must not modify them.
	State() State
	// SetState replaces the state with a copy of s.
	SetState(s State) error
	// Kind names the algorithm and its settings, to check that a checkpoint
	// is resumed with the optimizer that wrote it.
	Kind() string
}

// A ScaledOptimizer applies an update from the gradients scaled by a
// factor, without scaling them first: the Trainer passes the clipping
// coefficient (ClipCoefficient) to one, saving a pass over the gradients.
// StepScaled(lr, 1, params) is Step(lr, params).
type ScaledOptimizer interface {
	Optimizer
	StepScaled(lr, gradScale float64, params []Param) error
}

// State is an optimizer's state.
type State struct {
	Steps   map[string]int64
	Tensors map[string]*tensor.Dense
}

// AdamConfig configures Adam and AdamW.
//
// By default weight decay applies to every parameter, as torch.optim does
// with one parameter group. GPT-1's optimizer and nanoGPT decay only the
// weight matrices: a bias or a LayerNorm gain is a shift or a scale, not a
// feature detector, and pulling it to zero only fights the normalisation.
// DecayMatricesOnly and NoDecay give that (torch: two parameter groups, one
// with weight_decay 0).
type AdamConfig struct {
	Beta1, Beta2 float64
	Eps          float64
	WeightDecay  float64
	// DecayMatricesOnly applies weight decay only to parameters of two or
	// more dimensions (nanoGPT's rule: p.dim() >= 2), leaving biases and
	// LayerNorm gains and shifts undecayed.
	DecayMatricesOnly bool
	// NoDecay exempts parameters whose names end with one of these
	// suffixes, e.g. the embeddings: {"embed.weight"} matches GPT-1's
	// "tokens_embed.weight" and "positions_embed.weight", {"wte.weight",
	// "wpe.weight"} GPT-2's.
	NoDecay []string
}

// decays reports whether the parameter name of the given shape is decayed.
func (c AdamConfig) decays(name string, shape tensor.Shape) bool {
	if c.WeightDecay == 0 {
		return false
	}
	if c.DecayMatricesOnly && shape.Dims() < 2 {
		return false
	}
	for _, s := range c.NoDecay {
		if strings.HasSuffix(name, s) {
			return false
		}
	}
	return true
}

// DefaultAdamConfig is torch.optim.Adam's default: β₁ 0.9, β₂ 0.999,
// ε 1e-8, no weight decay.
func DefaultAdamConfig() AdamConfig {
	return AdamConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
}

func (c AdamConfig) validate(name string) error {
	if !(c.Beta1 >= 0 && c.Beta1 < 1) {
		return errors.Errorf("train: %s β₁ %v is not in [0, 1)", name, c.Beta1)
	}
	if !(c.Beta2 >= 0 && c.Beta2 < 1) {
		return errors.Errorf("train: %s β₂ %v is not in [0, 1)", name, c.Beta2)
	}
	if !(c.Eps > 0) || math.IsInf(c.Eps, 0) {
		return errors.Errorf("train: %s ε %v is not positive and finite", name, c.Eps)
	}
	if !(c.WeightDecay >= 0) || math.IsInf(c.WeightDecay, 0) {
		return errors.Errorf("train: %s weight decay %v is not non-negative and finite", name, c.WeightDecay)
	}
	for _, s := range c.NoDecay {
		if s == "" || strings.ContainsAny(s, ",|()") {
			return errors.Errorf("train: %s NoDecay suffix %q is empty or has one of \",|()\"", name, s)
		}
	}
	return nil
}

// Adam is the optimizer of Kingma & Ba (2015) as torch.optim.Adam and, with
// decoupled weight decay, torch.optim.AdamW (Loshchilov & Hutter 2019).
// At update t of a parameter θ with gradient g:
//
//	g   ← g + λ·θ                 (Adam with weight decay λ: L2 in the gradient)
//	θ   ← θ·(1 − η·λ)             (AdamW: decay taken out of the adaptive step)
//	m   ← β₁·m + (1 − β₁)·g
//	v   ← β₂·v + (1 − β₂)·g²
//	m̂   = m / (1 − β₁ᵗ),  v̂ = v / (1 − β₂ᵗ)
//	θ   ← θ − η·m̂ / (√v̂ + ε)
//
// with ε added to √v̂ (not to v̂), as PyTorch does. The decoupled form is
// why AdamW exists: with L2 in the gradient, the decay of a weight with a
// large v is divided away by √v̂; AdamW decays every weight at the same rate.
// The moments m and v are kept in the parameter's element type. A float32
// parameter is updated in one vectorised pass (internal/vecmath.AdamUpdate,
// float32 arithmetic as torch's); a float64 one in float64.
//
// The Trainer hands Adam the clipping coefficient instead of scaling the
// gradients first (StepScaled), so that clipping and the update are one
// pass over the gradients.
type Adam struct {
	cfg       AdamConfig
	decoupled bool
	m, v      map[string]*tensor.Dense
	steps     map[string]int64
}

// NewAdam returns Adam with L2 weight decay added to the gradient.
func NewAdam(cfg AdamConfig) (*Adam, error) {
	if err := cfg.validate("Adam"); err != nil {
		return nil, err
	}
	cfg.NoDecay = append([]string(nil), cfg.NoDecay...) // the caller's slice may change
	return &Adam{cfg: cfg, m: map[string]*tensor.Dense{}, v: map[string]*tensor.Dense{}, steps: map[string]int64{}}, nil
}

// NewAdamW returns Adam with decoupled weight decay (torch.optim.AdamW,
// whose default decay is 0.01).
func NewAdamW(cfg AdamConfig) (*Adam, error) {
	if err := cfg.validate("AdamW"); err != nil {
		return nil, err
	}
	a, _ := NewAdam(cfg)
	a.decoupled = true
	return a, nil
}

// Kind implements Optimizer.
func (a *Adam) Kind() string {
	name := "adam"
	if a.decoupled {
		name = "adamw"
	}
	k := fmtKind(name, a.cfg.Beta1, a.cfg.Beta2, a.cfg.Eps, a.cfg.WeightDecay)
	// The decay policy is part of the kind (so that a checkpoint is not
	// resumed under another), but only when set: checkpoints of the
	// default keep their kind.
	if a.cfg.DecayMatricesOnly {
		k += ",matrices"
	}
	if len(a.cfg.NoDecay) > 0 {
		k += ",nodecay=" + strings.Join(a.cfg.NoDecay, "|")
	}
	return k
}

// Step implements Optimizer.
func (a *Adam) Step(lr float64, params []Param) error { return a.StepScaled(lr, 1, params) }

// StepScaled is Step with every gradient taken as gradScale·g (in the
// element type's arithmetic, as if the gradients had been scaled in place
// first) and left unchanged: a ScaledOptimizer.
func (a *Adam) StepScaled(lr, gradScale float64, params []Param) error {
	if err := checkLR(lr); err != nil {
		return err
	}
	if !(gradScale >= 0) || math.IsInf(gradScale, 0) {
		return errors.Errorf("train: gradient scale %v is not non-negative and finite", gradScale)
	}
	for _, p := range params {
		if p.Grad == nil {
			continue
		}
		if err := checkParam(p); err != nil {
			return err
		}
		m, err := slot(a.m, p)
		if err != nil {
			return errors.Wrap(err, "Adam exp_avg")
		}
		v, err := slot(a.v, p)
		if err != nil {
			return errors.Wrap(err, "Adam exp_avg_sq")
		}
		a.steps[p.Name]++
		t := float64(a.steps[p.Name])
		wd := 0.0
		if a.cfg.decays(p.Name, p.Value.Shape()) {
			wd = a.cfg.WeightDecay
		}
		h := adamStep{
			gscale: gradScale, b1: a.cfg.Beta1, b2: a.cfg.Beta2, eps: a.cfg.Eps,
			step:   lr / (1 - math.Pow(a.cfg.Beta1, t)),
			invbc2: 1 / math.Sqrt(1-math.Pow(a.cfg.Beta2, t)),
			decay:  1,
		}
		if a.decoupled {
			h.decay = 1 - lr*wd
		} else {
			h.l2 = wd
		}
		switch w := p.Value.Data().(type) {
		case []float32:
			vecmath.AdamUpdate(w, p.Grad.Data().([]float32), m.Data().([]float32), v.Data().([]float32), vecmath.AdamStep{
				GradScale: h.gscale, L2: h.l2, Decay: h.decay, Beta1: h.b1, Beta2: h.b2,
				InvBC2: h.invbc2, Eps: h.eps, Step: h.step,
			})
		case []float64:
			adamUpdate(h, w, p.Grad.Data().([]float64), m.Data().([]float64), v.Data().([]float64))
		}
	}
	return nil
}

// adamStep is one update's coefficients (vecmath.AdamStep's, in float64).
type adamStep struct {
	gscale, l2, decay, b1, b2, eps, invbc2, step float64
}

// adamUpdate is one pass over a float64 parameter, with no allocation.
func adamUpdate(h adamStep, w, g, m, v []float64) {
	for i := range w {
		wi := w[i]
		gi := h.gscale*g[i] + h.l2*wi
		wi *= h.decay
		mi := h.b1*m[i] + (1-h.b1)*gi
		vi := h.b2*v[i] + (1-h.b2)*gi*gi
		m[i], v[i] = mi, vi
		w[i] = wi - h.step*mi/(math.Sqrt(vi)*h.invbc2+h.eps)
	}
}

// State implements Optimizer: slots "exp_avg.<name>" and "exp_avg_sq.<name>".
func (a *Adam) State() State {
	s := State{Steps: map[string]int64{}, Tensors: map[string]*tensor.Dense{}}
	for name, n := range a.steps {
		s.Steps[name] = n
		s.Tensors["exp_avg."+name] = a.m[name]
		s.Tensors["exp_avg_sq."+name] = a.v[name]
	}
	return s
}

// SetState implements Optimizer.
func (a *Adam) SetState(s State) error {
	m, v := map[string]*tensor.Dense{}, map[string]*tensor.Dense{}
	steps := map[string]int64{}
	for name, n := range s.Steps {
		tm, ok1 := s.Tensors["exp_avg."+name]
		tv, ok2 := s.Tensors["exp_avg_sq."+name]
		if !ok1 || !ok2 {
			return errors.Errorf("train: Adam state for %q lacks exp_avg or exp_avg_sq", name)
		}
		if !tm.Shape().Eq(tv.Shape()) || tm.Dtype() != tv.Dtype() {
			return errors.Errorf("train: Adam state for %q: exp_avg %v %v and exp_avg_sq %v %v disagree",
				name, tm.Shape(), tm.Dtype(), tv.Shape(), tv.Dtype())
		}
		if n <= 0 {
			return errors.Errorf("train: Adam state for %q has step count %d", name, n)
		}
		m[name], v[name], steps[name] = tm.Clone().(*tensor.Dense), tv.Clone().(*tensor.Dense), n
	}
	if len(s.Tensors) != 2*len(s.Steps) {
		return errors.Errorf("train: Adam state has %d tensors for %d parameters", len(s.Tensors), len(s.Steps))
	}
	a.m, a.v, a.steps = m, v, steps
	return nil
}

// SGDConfig configures SGD.
type SGDConfig struct {
	Momentum    float64
	Dampening   float64
	WeightDecay float64
	Nesterov    bool
}

// SGD is stochastic gradient descent with momentum, as torch.optim.SGD:
//
//	g ← g + λ·θ
//	b ← g                        (first update)
//	b ← μ·b + (1 − τ)·g          (later updates; τ the dampening)
//	d = g + μ·b  (Nesterov)  or  d = b
//	θ ← θ − η·d
//
// With μ = 0 there is no buffer and d = g.
type SGD struct {
	cfg SGDConfig
	buf map[string]*tensor.Dense
}

// NewSGD validates cfg and returns the optimizer.
func NewSGD(cfg SGDConfig) (*SGD, error) {
	if !(cfg.Momentum >= 0) || math.IsInf(cfg.Momentum, 0) {
		return nil, errors.Errorf("train: SGD momentum %v is not non-negative and finite", cfg.Momentum)
	}
	if !(cfg.Dampening >= 0 && cfg.Dampening <= 1) {
		return nil, errors.Errorf("train: SGD dampening %v is not in [0, 1]", cfg.Dampening)
	}
	if !(cfg.WeightDecay >= 0) || math.IsInf(cfg.WeightDecay, 0) {
		return nil, errors.Errorf("train: SGD weight decay %v is not non-negative and finite", cfg.WeightDecay)
	}
	if cfg.Nesterov && (cfg.Momentum == 0 || cfg.Dampening != 0) {
		return nil, errors.Errorf("train: SGD Nesterov momentum needs momentum > 0 and dampening 0, got %v and %v",
			cfg.Momentum, cfg.Dampening)
	}
	return &SGD{cfg: cfg, buf: map[string]*tensor.Dense{}}, nil
}

// Kind implements Optimizer.
func (s *SGD) Kind() string {
	k := fmtKind("sgd", s.cfg.Momentum, s.cfg.Dampening, s.cfg.WeightDecay)
	if s.cfg.Nesterov {
		k += ",nesterov"
	}
	return k
}

// Step implements Optimizer.
func (s *SGD) Step(lr float64, params []Param) error {
	if err := checkLR(lr); err != nil {
		return err
	}
	for _, p := range params {
		if p.Grad == nil {
			continue
		}
		if err := checkParam(p); err != nil {
			return err
		}
		var b *tensor.Dense
		first := false
		if s.cfg.Momentum != 0 {
			_, first = s.buf[p.Name]
			first = !first
			var err error
			if b, err = slot(s.buf, p); err != nil {
				return errors.Wrap(err, "SGD momentum_buffer")
			}
		}
		switch w := p.Value.Data().(type) {
		case []float32:
			sgdUpdate(s.cfg, lr, first, w, p.Grad.Data().([]float32), bufData[float32](b))
		case []float64:
			sgdUpdate(s.cfg, lr, first, w, p.Grad.Data().([]float64), bufData[float64](b))
		}
	}
	return nil
}

func bufData[T float32 | float64](b *tensor.Dense) []T {
	if b == nil {
		return nil
	}
	return b.Data().([]T)
}

func sgdUpdate[T float32 | float64](c SGDConfig, lr float64, first bool, w, g, b []T) {
	for i := range w {
		wi, d := float64(w[i]), float64(g[i])
		if c.WeightDecay != 0 {
			d += c.WeightDecay * wi
		}
		if b != nil {
			bi := d
			if !first {
				bi = c.Momentum*float64(b[i]) + (1-c.Dampening)*d
			}
			b[i] = T(bi)
			if c.Nesterov {
				d += c.Momentum * bi
			} else {
				d = bi
			}
		}
		w[i] = T(wi - lr*d)
	}
}

// State implements Optimizer: slots "momentum_buffer.<name>"; Steps counts
// 1 for each parameter with a buffer.
func (s *SGD) State() State {
	st := State{Steps: map[string]int64{}, Tensors: map[string]*tensor.Dense{}}
	for name, b := range s.buf {
		st.Steps[name] = 1
		st.Tensors["momentum_buffer."+name] = b
	}
	return st
}

// SetState implements Optimizer.
func (s *SGD) SetState(st State) error {
	buf := map[string]*tensor.Dense{}
	for name := range st.Steps {
		b, ok := st.Tensors["momentum_buffer."+name]
		if !ok {
			return errors.Errorf("train: SGD state for %q lacks momentum_buffer", name)
		}
		buf[name] = b.Clone().(*tensor.Dense)
	}
	if len(st.Tensors) != len(buf) {
		return errors.Errorf("train: SGD state has %d tensors for %d parameters", len(st.Tensors), len(buf))
	}
	s.buf = buf
	return nil
}

// ClipGradNorm scales every gradient by min(1, maxNorm / (‖g‖ + 10⁻⁶)),
// where ‖g‖ is the 2-norm of all gradients together, as
// torch.nn.utils.clip_grad_norm_. It returns ‖g‖ before clipping. Clipping
// the global norm keeps the direction of the update, which clamping each
// element (Gorgonia's WithClip) does not.
func ClipGradNorm(params []Param, maxNorm float64) (float64, error) {
	total := GradNorm(params)
	coef, err := ClipCoefficient(total, maxNorm)
	if err != nil {
		return 0, err
	}
	ScaleGrads(params, coef)
	return total, nil
}

// ClipCoefficient is the factor ClipGradNorm scales the gradients by for a
// global norm: min(1, maxNorm / (norm + 10⁻⁶)).
func ClipCoefficient(norm, maxNorm float64) (float64, error) {
	if !(maxNorm > 0) {
		return 0, errors.Errorf("train: clip norm %v is not positive", maxNorm)
	}
	return math.Min(1, maxNorm/(norm+1e-6)), nil
}

// ScaleGrads multiplies every gradient by coef in place (nothing for 1).
func ScaleGrads(params []Param, coef float64) {
	if coef == 1 {
		return
	}
	for _, p := range params {
		if p.Grad == nil {
			continue
		}
		switch g := p.Grad.Data().(type) {
		case []float32:
			vecmath.Affine(g, g, float32(coef), 0)
		case []float64:
			for i := range g {
				g[i] *= coef
			}
		}
	}
}

// GradNorm is the 2-norm of all gradients together, summed in float64.
func GradNorm(params []Param) float64 {
	var ss float64
	for _, p := range params {
		if p.Grad == nil {
			continue
		}
		switch g := p.Grad.Data().(type) {
		case []float32:
			ss += vecmath.Dot(g, g)
		case []float64:
			for _, x := range g {
				ss += x * x
			}
		}
	}
	return math.Sqrt(ss)
}

func checkLR(lr float64) error {
	if !(lr >= 0) || math.IsInf(lr, 0) {
		return errors.Errorf("train: learning rate %v is not non-negative and finite", lr)
	}
	return nil
}

func checkParam(p Param) error {
	if p.Value == nil {
		return errors.Errorf("train: parameter %q has no value", p.Name)
	}
	if !p.Value.Shape().Eq(p.Grad.Shape()) || p.Value.Dtype() != p.Grad.Dtype() {
		return errors.Errorf("train: parameter %q is %v %v but its gradient is %v %v",
			p.Name, p.Value.Shape(), p.Value.Dtype(), p.Grad.Shape(), p.Grad.Dtype())
	}
	if p.Value.Dtype() != tensor.Float32 && p.Value.Dtype() != tensor.Float64 {
		return errors.Errorf("train: parameter %q has element type %v, want Float32 or Float64", p.Name, p.Value.Dtype())
	}
	return nil
}

// slot returns the state tensor of p in m, creating it as zeros.
func slot(m map[string]*tensor.Dense, p Param) (*tensor.Dense, error) {
	if t, ok := m[p.Name]; ok {
		if !t.Shape().Eq(p.Value.Shape()) || t.Dtype() != p.Value.Dtype() {
			return nil, errors.Errorf("train: state of %q is %v %v, parameter is %v %v",
				p.Name, t.Shape(), t.Dtype(), p.Value.Shape(), p.Value.Dtype())
		}
		return t, nil
	}
	t := tensor.New(tensor.Of(p.Value.Dtype()), tensor.WithShape(p.Value.Shape().Clone()...))
	m[p.Name] = t
	return t, nil
}

func fmtKind(name string, vals ...float64) string {
	s := name + "("
	for i, v := range vals {
		if i > 0 {
			s += ","
		}
		s += formatFloat(v)
	}
	return s + ")"
}

func sortedKeys[V any](m map[string]V) []string {
	k := make([]string, 0, len(m))
	for n := range m {
		k = append(k, n)
	}
	sort.Strings(k)
	return k
}
