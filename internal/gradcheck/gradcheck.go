// Package gradcheck compares the symbolic gradients of a Gorgonia graph with
// central finite differences, in float64. Tests of ops and blocks use it.
package gradcheck

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Config tunes a check.
type Config struct {
	Step      float64 // finite-difference step h (default 1e-6)
	Tol       float64 // max |analytic − numeric| / max(1, |numeric|) (default 1e-6)
	MaxProbes int     // elements probed per input, spread evenly (default all)
	// BeforeRun, if set, runs before every forward pass (to pin random state,
	// e.g. a DropoutRNG's call counter).
	BeforeRun func()
}

// Result reports the worst disagreement found.
type Result struct {
	MaxErr float64
	Where  string
	Probes int
}

// Check differentiates L = Σ_k Σ outs[k] ⊙ R_k (R_k fixed random tensors) with
// respect to wrt, whose values must be set, and compares each gradient with
// (L(x+h) − L(x−h)) / 2h, element by element.
func Check(g *G.ExprGraph, outs []*G.Node, wrt []*G.Node, cfg Config) (Result, error) {
	if cfg.Step == 0 {
		cfg.Step = 1e-6
	}
	if cfg.Tol == 0 {
		cfg.Tol = 1e-6
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var cost *G.Node
	for k, out := range outs {
		if out.Dtype() != tensor.Float64 {
			return Result{}, errors.Errorf("gradcheck: output %d is %v, want Float64", k, out.Dtype())
		}
		name := G.WithName(fmt.Sprintf("gradcheck.R%d", k))
		var s *G.Node
		var err error
		if out.IsScalar() {
			r := G.NewScalar(g, tensor.Float64, name, G.WithValue(rng.NormFloat64()))
			if s, err = G.Mul(out, r); err != nil {
				return Result{}, errors.Wrap(err, "gradcheck")
			}
		} else {
			r := tensor.New(tensor.WithShape(out.Shape().Clone()...), tensor.WithBacking(randn(rng, out.Shape().TotalSize())))
			rn := G.NewTensor(g, tensor.Float64, out.Dims(), G.WithShape(out.Shape().Clone()...), G.WithValue(r), name)
			prod, err := G.HadamardProd(out, rn)
			if err != nil {
				return Result{}, errors.Wrap(err, "gradcheck")
			}
			if s, err = G.Sum(prod); err != nil {
				return Result{}, errors.Wrap(err, "gradcheck")
			}
		}
		if cost == nil {
			cost = s
		} else if cost, err = G.Add(cost, s); err != nil {
			return Result{}, errors.Wrap(err, "gradcheck")
		}
	}
	grads, err := G.Grad(cost, wrt...)
	if err != nil {
		return Result{}, errors.Wrap(err, "gradcheck: Grad")
	}
	var costV G.Value
	G.Read(cost, &costV)
	gradV := make([]G.Value, len(grads))
	for i, gn := range grads {
		G.Read(gn, &gradV[i])
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	run := func() (float64, error) {
		if cfg.BeforeRun != nil {
			cfg.BeforeRun()
		}
		m.Reset()
		if err := m.RunAll(); err != nil {
			return 0, err
		}
		return costV.Data().(float64), nil
	}
	if _, err := run(); err != nil {
		return Result{}, errors.Wrap(err, "gradcheck: run")
	}
	analytic := make([][]float64, len(wrt))
	for i, v := range gradV {
		analytic[i] = append([]float64(nil), v.Data().([]float64)...)
	}
	var res Result
	for i, n := range wrt {
		data := n.Value().Data().([]float64)
		step := 1
		if cfg.MaxProbes > 0 && len(data) > cfg.MaxProbes {
			step = (len(data) + cfg.MaxProbes - 1) / cfg.MaxProbes
		}
		for j := 0; j < len(data); j += step {
			orig := data[j]
			data[j] = orig + cfg.Step
			lp, err := run()
			if err != nil {
				return res, err
			}
			data[j] = orig - cfg.Step
			lm, err := run()
			if err != nil {
				return res, err
			}
			data[j] = orig
			num := (lp - lm) / (2 * cfg.Step)
			e := math.Abs(analytic[i][j]-num) / math.Max(1, math.Abs(num))
			res.Probes++
			if e > res.MaxErr || math.IsNaN(e) {
				res.MaxErr = e
				res.Where = n.Name()
			}
		}
	}
	if res.MaxErr > cfg.Tol || math.IsNaN(res.MaxErr) {
		return res, errors.Errorf("gradcheck: gradient of %s off by %g (tolerance %g)", res.Where, res.MaxErr, cfg.Tol)
	}
	return res, nil
}

func randn(rng *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	return v
}

// Tensor returns a float64 tensor of the given shape with N(0, std²) values.
func Tensor(seed uint64, std float64, shape ...int) *tensor.Dense {
	rng := rand.New(rand.NewPCG(seed, 7))
	v := randn(rng, tensor.Shape(shape).TotalSize())
	for i := range v {
		v[i] *= std
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(v))
}
