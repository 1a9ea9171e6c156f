package train

import (
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

type optimFixture struct {
	Init     map[string]fixTensor   `json:"init"`
	Grads    []map[string][]float64 `json:"grads"`
	Schedule struct {
		DModel int     `json:"d_model"`
		Warmup int     `json:"warmup"`
		Factor float64 `json:"factor"`
	} `json:"schedule"`
	Runs map[string]struct {
		Options map[string]any         `json:"options"`
		Clip    *float64               `json:"clip"`
		LRs     []float64              `json:"lrs"`
		Norms   []float64              `json:"norms"`
		Params  []map[string][]float64 `json:"params"`
	} `json:"runs"`
}

func newOptimizer(t *testing.T, name string, o map[string]any) Optimizer {
	t.Helper()
	num := func(k string) float64 {
		if v, ok := o[k]; ok {
			if b, ok := v.(bool); ok {
				if b {
					return 1
				}
				return 0
			}
			return v.(float64)
		}
		return 0
	}
	betas := func() (float64, float64) {
		b := o["betas"].([]any)
		return b[0].(float64), b[1].(float64)
	}
	switch {
	case strings.HasPrefix(name, "adam"):
		b1, b2 := betas()
		cfg := AdamConfig{Beta1: b1, Beta2: b2, Eps: num("eps"), WeightDecay: num("weight_decay"),
			DecayMatricesOnly: num("decay_matrices_only") == 1}
		if nd, ok := o["no_decay"].([]any); ok {
			for _, s := range nd {
				cfg.NoDecay = append(cfg.NoDecay, s.(string))
			}
		}
		var opt *Adam
		var err error
		if strings.HasPrefix(name, "adamw") {
			opt, err = NewAdamW(cfg)
		} else {
			opt, err = NewAdam(cfg)
		}
		require.NoError(t, err)
		return opt
	default:
		opt, err := NewSGD(SGDConfig{Momentum: num("momentum"), Dampening: num("dampening"),
			WeightDecay: num("weight_decay"), Nesterov: num("nesterov") == 1})
		require.NoError(t, err)
		return opt
	}
}

// TestOptimizersMatchTorch replays torch.optim's trajectories: the same
// initial float32 weights, the same gradients, clip_grad_norm_ and a Noam
// LambdaLR, including a step on which one parameter has no gradient.
func TestOptimizersMatchTorch(t *testing.T) {
	var fx optimFixture
	loadFixture(t, "optim.json", &fx)
	sched, err := NewNoam(fx.Schedule.DModel, fx.Schedule.Warmup, fx.Schedule.Factor)
	require.NoError(t, err)
	names := []string{"w", "b", "c"}
	require.Len(t, fx.Runs, 9)
	for name, run := range fx.Runs {
		t.Run(name, func(t *testing.T) {
			opt := newOptimizer(t, name, run.Options)
			vals := map[string]*tensor.Dense{}
			for _, n := range names {
				vals[n] = fx.Init[n].dense(tensor.Float32)
			}
			for s, grads := range fx.Grads {
				var params []Param
				for _, n := range names {
					p := Param{Name: n, Value: vals[n]}
					if grads[n] != nil {
						p.Grad = fixTensor{Shape: vals[n].Shape(), Data: grads[n]}.dense(tensor.Float32)
					}
					params = append(params, p)
				}
				lr := sched.LR(s + 1)
				assert.InDelta(t, run.LRs[s], lr, 1e-12*run.LRs[s], "lr at step %d", s+1)
				if run.Clip != nil {
					norm, err := ClipGradNorm(params, *run.Clip)
					require.NoError(t, err)
					assert.InDelta(t, run.Norms[s], norm, 1e-5*norm, "grad norm at step %d", s+1)
				}
				require.NoError(t, opt.Step(lr, params))
				for _, n := range names {
					got := f64s(vals[n])
					for i, want := range run.Params[s][n] {
						require.InDelta(t, want, got[i], 2e-6*math.Max(1, math.Abs(want)),
							"%s: %s[%d] after step %d", name, n, i, s+1)
					}
				}
			}
			// The skipped parameter took one update fewer.
			st := opt.State()
			if _, isSGD := opt.(*SGD); !isSGD {
				assert.Equal(t, int64(len(fx.Grads)), st.Steps["w"])
				assert.Equal(t, int64(len(fx.Grads)-1), st.Steps["c"])
			}
		})
	}
}

// TestDecayPolicy: the matrices-only fixtures differ from decay-everything
// exactly where the policy says (so the parity above tests the policy), and
// the policy is part of the optimizer's kind.
func TestDecayPolicy(t *testing.T) {
	var fx optimFixture
	loadFixture(t, "optim.json", &fx)
	all, mat := fx.Runs["adamw"].Params, fx.Runs["adamw_matrices"].Params
	last := len(all) - 1
	assert.Equal(t, all[last]["w"], mat[last]["w"], "a matrix decays in both")
	assert.Equal(t, all[last]["c"], mat[last]["c"], "a matrix decays in both")
	assert.NotEqual(t, all[last]["b"], mat[last]["b"], "the vector b decays only with decay everywhere")

	cfg := AdamConfig{Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 0.1, DecayMatricesOnly: true,
		NoDecay: []string{"embed.weight"}}
	for name, want := range map[string]bool{
		"h.0.attn.c_attn.weight": true, "h.0.attn.c_attn.bias": false, "h.0.ln_1.weight": false,
		"tokens_embed.weight": false, "positions_embed.weight": false, "lm_head.weight": true,
	} {
		shape := tensor.Shape{4, 4}
		if strings.Contains(name, "bias") || strings.Contains(name, "ln_") {
			shape = tensor.Shape{4}
		}
		assert.Equal(t, want, cfg.decays(name, shape), name)
	}
	a, err := NewAdamW(cfg)
	require.NoError(t, err)
	assert.Equal(t, "adamw(0.9,0.99,1e-08,0.1),matrices,nodecay=embed.weight", a.Kind())
	cfg.NoDecay[0] = "changed"
	assert.Contains(t, a.Kind(), "nodecay=embed.weight", "the optimizer keeps its own copy")
	_, err = NewAdam(AdamConfig{Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, NoDecay: []string{""}})
	assert.ErrorContains(t, err, `NoDecay suffix ""`)
}

func TestOptimizerStateRoundTrip(t *testing.T) {
	mk := func() []Param {
		w := tensor.New(tensor.WithShape(2, 2), tensor.WithBacking([]float64{1, 2, 3, 4}))
		g := tensor.New(tensor.WithShape(2, 2), tensor.WithBacking([]float64{0.1, -0.2, 0.3, -0.4}))
		return []Param{{Name: "w", Value: w, Grad: g}}
	}
	for _, mkOpt := range []func() (Optimizer, error){
		func() (Optimizer, error) {
			return NewAdamW(AdamConfig{Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 0.1})
		},
		func() (Optimizer, error) { return NewSGD(SGDConfig{Momentum: 0.9}) },
	} {
		a, err := mkOpt()
		require.NoError(t, err)
		pa := mk()
		for i := 0; i < 3; i++ {
			require.NoError(t, a.Step(0.1, pa))
		}
		b, err := mkOpt()
		require.NoError(t, err)
		assert.Equal(t, a.Kind(), b.Kind())
		pb := mk()
		copy(pb[0].Value.Data().([]float64), pa[0].Value.Data().([]float64))
		require.NoError(t, b.SetState(a.State()))
		require.NoError(t, a.Step(0.1, pa))
		require.NoError(t, b.Step(0.1, pb))
		assert.Equal(t, pa[0].Value.Data(), pb[0].Value.Data(), a.Kind())
	}
}

func TestOptimizerValidation(t *testing.T) {
	_, err := NewAdam(AdamConfig{Beta1: 1, Beta2: 0.999, Eps: 1e-8})
	assert.ErrorContains(t, err, "β₁ 1")
	_, err = NewAdamW(AdamConfig{Beta1: 0.9, Beta2: 0.999, Eps: 0})
	assert.ErrorContains(t, err, "ε 0")
	_, err = NewAdam(AdamConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: -1})
	assert.ErrorContains(t, err, "weight decay -1")
	_, err = NewSGD(SGDConfig{Nesterov: true})
	assert.ErrorContains(t, err, "Nesterov")
	_, err = NewSGD(SGDConfig{Dampening: 2})
	assert.ErrorContains(t, err, "dampening 2")

	opt, err := NewAdam(DefaultAdamConfig())
	require.NoError(t, err)
	w := tensor.New(tensor.WithShape(2), tensor.Of(tensor.Float32))
	g := tensor.New(tensor.WithShape(3), tensor.Of(tensor.Float32))
	assert.ErrorContains(t, opt.Step(0.1, []Param{{Name: "w", Value: w, Grad: g}}), `"w" is (2) float32 but its gradient is (3)`)
	assert.ErrorContains(t, opt.Step(math.NaN(), nil), "learning rate NaN")
	_, err = ClipGradNorm(nil, 0)
	assert.ErrorContains(t, err, "clip norm 0")
}

func TestClipGradNormKeepsSmallGradients(t *testing.T) {
	g := tensor.New(tensor.WithShape(2), tensor.WithBacking([]float64{3, 4}))
	p := []Param{{Name: "w", Value: g.Clone().(*tensor.Dense), Grad: g}}
	norm, err := ClipGradNorm(p, 10)
	require.NoError(t, err)
	assert.Equal(t, 5.0, norm)
	assert.Equal(t, []float64{3, 4}, g.Data())
	_, err = ClipGradNorm(p, 1)
	require.NoError(t, err)
	assert.InDelta(t, 1, GradNorm(p), 1e-6)
}

// TestStepScaledIsClipThenStep: Adam's clipping coefficient folded into its
// update gives the update of gradients clipped in place first, and leaves
// the gradients as they were; the Trainer's path takes it.
func TestStepScaledIsClipThenStep(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		mk := func() []Param {
			var ps []Param
			for i, shape := range []tensor.Shape{{3, 5}, {7}, {33}} {
				w := fixTensor{Shape: shape, Data: make([]float64, shape.TotalSize())}
				g := fixTensor{Shape: shape, Data: make([]float64, shape.TotalSize())}
				for j := range w.Data {
					w.Data[j] = math.Sin(float64(7*i + 3*j))
					g.Data[j] = 2 * math.Cos(float64(5*i+j))
				}
				ps = append(ps, Param{Name: string(rune('a' + i)), Value: w.dense(dt), Grad: g.dense(dt)})
			}
			return ps
		}
		p1, p2 := mk(), mk()
		cfg := AdamConfig{Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 0.1}
		a1, err := NewAdamW(cfg)
		require.NoError(t, err)
		a2, err := NewAdamW(cfg)
		require.NoError(t, err)
		var so ScaledOptimizer = a1 // Adam is one
		for step := 0; step < 3; step++ {
			before := f64s(p1[0].Grad)
			coef, err := ClipCoefficient(GradNorm(p1), 0.5)
			require.NoError(t, err)
			require.Less(t, coef, 1.0)
			require.NoError(t, so.StepScaled(0.01, coef, p1))
			assert.Equal(t, before, f64s(p1[0].Grad), "%v: the gradients are left unchanged", dt)
			for i := range p2 { // the same gradients, to be clipped in place
				p2[i].Grad = p1[i].Grad.Clone().(*tensor.Dense)
			}
			_, err = ClipGradNorm(p2, 0.5)
			require.NoError(t, err)
			require.NoError(t, a2.Step(0.01, p2))
			for i := range p1 {
				w1, w2 := f64s(p1[i].Value), f64s(p2[i].Value)
				for j := range w1 {
					// Bit for bit where the gradient is scaled in the
					// element type (float32 assembly, float64); the pure-Go
					// float32 kernel scales it in float64.
					assert.InDelta(t, w2[j], w1[j], 1e-7*math.Max(1, math.Abs(w2[j])), "%v %s[%d] step %d", dt, p1[i].Name, j, step)
				}
			}
		}
		assert.ErrorContains(t, a1.StepScaled(0.01, -1, p1), "gradient scale -1")
		assert.ErrorContains(t, a1.StepScaled(0.01, math.NaN(), p1), "gradient scale NaN")
	}
}

// recorder is an Optimizer (not a ScaledOptimizer) that records the norm of
// the gradients it is given.
type recorder struct{ norms []float64 }

func (r *recorder) Step(_ float64, params []Param) error {
	r.norms = append(r.norms, GradNorm(params))
	return nil
}
func (r *recorder) State() State         { return State{} }
func (r *recorder) SetState(State) error { return nil }
func (r *recorder) Kind() string         { return "recorder" }

// TestTrainerClipsForOtherOptimizers: an optimizer that cannot take the
// clipping coefficient gets gradients clipped in place, as before.
func TestTrainerClipsForOtherOptimizers(t *testing.T) {
	m := newTinyLM(t, tensor.Float32, 3, tinyConfig{Vocab: 8, Dim: 4})
	rec := &recorder{}
	tr, err := New(m, Config{Optimizer: rec, Schedule: Constant(1), ClipNorm: 1e-3})
	require.NoError(t, err)
	defer tr.Close()
	r, err := tr.Step(lmBatch(tensor.Float32, 8, 2, 3, 0, nil))
	require.NoError(t, err)
	require.Len(t, rec.norms, 1)
	assert.Greater(t, r.GradNorm, 1e-2, "the step reports the norm before clipping")
	assert.InDelta(t, 1e-3, rec.norms[0], 1e-6, "the optimizer saw clipped gradients")
}
