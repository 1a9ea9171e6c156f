package train

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// mse runs MSELoss on pred and target and returns the loss and ∂L/∂pred.
func mse(t *testing.T, pred, target *tensor.Dense) (float64, []float64) {
	t.Helper()
	g := G.NewGraph()
	p := G.NewTensor(g, pred.Dtype(), pred.Dims(), G.WithShape(pred.Shape()...), G.WithName("pred"), G.WithValue(pred))
	tg := G.NewTensor(g, target.Dtype(), target.Dims(), G.WithShape(target.Shape()...), G.WithName("target"), G.WithValue(target))
	loss, err := MSELoss(p, tg)
	require.NoError(t, err)
	grads, err := G.Grad(loss, p)
	require.NoError(t, err)
	var lv, gv G.Value
	G.Read(loss, &lv)
	G.Read(grads[0], &gv)
	m := G.NewTapeMachine(g)
	defer m.Close()
	require.NoError(t, m.RunAll())
	l, err := scalar(lv)
	require.NoError(t, err)
	return l, f64s(gv.(*tensor.Dense))
}

// TestMSEMatchesTorch checks loss and gradient against F.mse_loss on
// matrix, vector and column shapes, in float32 and float64.
func TestMSEMatchesTorch(t *testing.T) {
	var fx map[string]struct {
		Pred   fixTensor `json:"pred"`
		Target fixTensor `json:"target"`
		Loss   float64   `json:"loss"`
		Grad   []float64 `json:"grad"`
	}
	loadFixture(t, "mse.json", &fx)
	require.Len(t, fx, 3)
	for name, c := range fx {
		for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
			pred := c.Pred.dense(dt)
			target := c.Target.dense(dt)
			before := f64s(target)
			loss, grad := mse(t, pred, target)
			// torch computed in float32: its values carry float32 rounding.
			const tol = 1e-6
			assert.InDelta(t, c.Loss, loss, tol*math.Max(1, c.Loss), "%s %v loss", name, dt)
			require.Len(t, grad, len(c.Grad))
			for i, want := range c.Grad {
				assert.InDelta(t, want, grad[i], tol*math.Max(1, math.Abs(want)), "%s %v grad[%d]", name, dt, i)
			}
			assert.Equal(t, before, f64s(target), "the target is not overwritten")
		}
	}
}

// TestMSEGradientCheck compares the gradient with central differences in
// float64.
func TestMSEGradientCheck(t *testing.T) {
	pred := tensor.New(tensor.WithShape(3, 4), tensor.WithBacking([]float64{
		0.3, -1.2, 2.5, 0, 1, -0.7, 0.05, 3, -2, 0.9, 1.1, -0.4}))
	target := tensor.New(tensor.WithShape(3, 4), tensor.WithBacking([]float64{
		1, 0.2, -0.5, 0.1, 1, 2, -1, 0.5, 0.3, -0.9, 1.1, 0}))
	_, grad := mse(t, pred, target)
	const h = 1e-6
	d := pred.Data().([]float64)
	for i := range d {
		x := d[i]
		d[i] = x + h
		up, _ := mse(t, pred, target)
		d[i] = x - h
		down, _ := mse(t, pred, target)
		d[i] = x
		assert.InDelta(t, (up-down)/(2*h), grad[i], 1e-8, "grad[%d]", i)
	}
	// The gradient is 2(p − t)/n: element 10, where p = t, has none.
	assert.Zero(t, grad[10])
}

func TestMSEErrors(t *testing.T) {
	g := G.NewGraph()
	a := G.NewMatrix(g, tensor.Float32, G.WithShape(2, 3), G.WithName("a"))
	b := G.NewMatrix(g, tensor.Float32, G.WithShape(3, 2), G.WithName("b"))
	_, err := MSELoss(a, b)
	assert.ErrorContains(t, err, `prediction "a" is (2, 3) float32, target "b" is (3, 2) float32`)
	_, err = MSELoss(a, nil)
	assert.ErrorContains(t, err, "needs a prediction and a target")
}
