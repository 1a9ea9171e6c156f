package train

import (
	"fmt"
	"math"
)

// NonFiniteError is a step refused because its loss or gradient norm is NaN
// or infinite; the parameters are unchanged. It says where the first
// non-finite number sits, in store order, so a caller can act (lower the
// learning rate, skip the batch, stop and look at Param):
//
//	var nf *train.NonFiniteError
//	if errors.As(err, &nf) { log.Printf("step %d: %s[%d] = %v", nf.Step, nf.Param, nf.Index, nf.Value) }
type NonFiniteError struct {
	Step     int     // the update refused (StepCount()+1)
	Loss     float64 // the step's loss
	GradNorm float64 // the global gradient norm
	// Param is the first parameter, in store order, whose gradient or
	// value holds a NaN or an infinity ("" when none does: then the
	// inputs are to blame). Index and Value are that element; InValue
	// says it is in the parameter's value rather than its gradient.
	Param   string
	Index   int
	Value   float64
	InValue bool
	// Weight, WeightIndex and WeightValue name the first non-finite weight
	// when that is another parameter than Param: a non-finite weight
	// usually makes every gradient non-finite, so the first gradient alone
	// would point at the wrong place.
	Weight      string
	WeightIndex int
	WeightValue float64
}

func (e *NonFiniteError) Error() string {
	return fmt.Sprintf("train: step %d: loss %v, gradient norm %v: not updating; %s", e.Step, e.Loss, e.GradNorm, e.blame())
}

func (e *NonFiniteError) blame() string {
	if e.Param == "" {
		return "no parameter or gradient is NaN or infinite (look at the inputs)"
	}
	where := "gradient"
	if e.InValue {
		where = "value"
	}
	s := fmt.Sprintf("first parameter affected (store order): %q (%s[%d] = %v)", e.Param, where, e.Index, e.Value)
	if e.Weight != "" {
		s += fmt.Sprintf("; first non-finite weight: %q (value[%d] = %v)", e.Weight, e.WeightIndex, e.WeightValue)
	}
	return s
}

// nonFinite builds the error of a refused step: the first parameter, in
// store order, whose gradient or value holds a NaN or an infinity, and the
// first non-finite weight when that is another parameter.
func nonFinite(step int, loss, norm float64, params []Param) *NonFiniteError {
	e := &NonFiniteError{Step: step, Loss: loss, GradNorm: norm}
	weight := false
	for _, p := range params {
		if !weight {
			if i, x, bad := firstNonFinite(p.Value); bad {
				weight = true
				if e.Param == "" {
					e.Param, e.Index, e.Value, e.InValue = p.Name, i, x, true
				} else {
					e.Weight, e.WeightIndex, e.WeightValue = p.Name, i, x
				}
			}
		}
		if e.Param == "" && p.Grad != nil {
			if i, x, bad := firstNonFinite(p.Grad); bad {
				e.Param, e.Index, e.Value = p.Name, i, x
			}
		}
	}
	return e
}

func isFinite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
