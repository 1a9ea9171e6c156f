package train

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
)

func newAdamW(t testing.TB) Optimizer {
	opt, err := NewAdamW(AdamConfig{Beta1: 0.9, Beta2: 0.98, Eps: 1e-9, WeightDecay: 0.01})
	require.NoError(t, err)
	return opt
}

func TestTrainerLearnsAndCachesPrograms(t *testing.T) {
	m := newTinyLM(t, tensor.Float32, 1, tinyConfig{Vocab: 16, Dim: 16, Dropout: 0.1})
	tr, err := New(m, Config{Optimizer: newAdamW(t), Schedule: Constant(0.02), ClipNorm: 1, DropoutSeed: 3})
	require.NoError(t, err)
	defer tr.Close()
	var first, last StepResult
	for i := 0; i < 60; i++ {
		r, err := tr.Step(lmBatch(tensor.Float32, 16, 4, 8, i, nil))
		require.NoError(t, err)
		if i == 0 {
			first = r
		}
		last = r
	}
	assert.InDelta(t, math.Log(16), first.Loss, 1.5, "starts near log V")
	assert.Less(t, last.Loss, 0.3*first.Loss, "learns the sequence")
	assert.Equal(t, 60, last.Step)
	assert.Equal(t, 0.02, last.LR)
	assert.Equal(t, Stats{Builds: 1, Runs: 60, Steps: 60}, tr.Stats(), "one program for one key")
	assert.Positive(t, tr.DropoutCalls(), "dropout drew masks")

	ev, err := tr.Evaluate(lmBatch(tensor.Float32, 16, 4, 8, 100, nil))
	require.NoError(t, err)
	assert.Less(t, ev.Loss, first.Loss*0.3)
	assert.Equal(t, tensor.Shape{4, 8, 16}, ev.Outputs["logits"].Shape())
	calls := tr.DropoutCalls()
	_, err = tr.Evaluate(lmBatch(tensor.Float32, 16, 4, 8, 101, nil))
	require.NoError(t, err)
	assert.Equal(t, calls, tr.DropoutCalls(), "evaluation draws no dropout masks")
	// A second length bucket is a third program; reusing keys builds nothing.
	_, err = tr.Step(lmBatch(tensor.Float32, 16, 4, 4, 0, nil))
	require.NoError(t, err)
	_, err = tr.Step(lmBatch(tensor.Float32, 16, 4, 8, 0, nil), lmBatch(tensor.Float32, 16, 4, 4, 0, nil))
	require.NoError(t, err)
	assert.Equal(t, Stats{Builds: 3, Runs: 65, Steps: 62}, tr.Stats())
}

// TestAccumulationMatchesOneBatch checks that micro-batches weighted by their
// counted targets give exactly the update of the one batch they make up,
// with rows of different numbers of ignored targets.
func TestAccumulationMatchesOneBatch(t *testing.T) {
	ignore := []int{0, 3, 1, 5}
	whole := lmBatch(tensor.Float64, 12, 4, 6, 2, ignore)
	// The same rows, two at a time.
	a := lmBatch(tensor.Float64, 12, 2, 6, 2, ignore[:2])
	b := lmBatch(tensor.Float64, 12, 2, 6, 12, ignore[2:])
	require.Equal(t, whole.Weight, a.Weight+b.Weight)

	run := func(batches ...Batch) (*tinyLM, StepResult) {
		m := newTinyLM(t, tensor.Float64, 5, tinyConfig{Vocab: 12, Dim: 8})
		opt, err := NewSGD(SGDConfig{})
		require.NoError(t, err)
		tr, err := New(m, Config{Optimizer: opt, Schedule: Constant(1)})
		require.NoError(t, err)
		defer tr.Close()
		r, err := tr.Step(batches...)
		require.NoError(t, err)
		return m, r
	}
	m1, r1 := run(whole)
	m2, r2 := run(a, b)
	assert.InDelta(t, r1.Loss, r2.Loss, 1e-13)
	assert.InDelta(t, r1.GradNorm, r2.GradNorm, 1e-13)
	for _, name := range m1.store.Names() {
		w1, _ := m1.store.Get(name)
		w2, _ := m2.store.Get(name)
		assert.InDeltaSlice(t, w1.Data(), w2.Data(), 1e-13, name)
	}
	// Equal weights instead of counts would be a different (wrong) mean.
	a.Weight, b.Weight = 1, 1
	_, r3 := run(a, b)
	assert.Greater(t, math.Abs(r3.Loss-r1.Loss), 1e-3)
}

func TestTrainerErrors(t *testing.T) {
	m := newTinyLM(t, tensor.Float32, 1, tinyConfig{Vocab: 8, Dim: 4})
	_, err := New(m, Config{Schedule: Constant(1)})
	assert.ErrorContains(t, err, "Optimizer is nil")
	_, err = New(m, Config{Optimizer: newAdamW(t), Schedule: Constant(1), ClipNorm: -1})
	assert.ErrorContains(t, err, "clip norm -1")
	tr, err := New(m, Config{Optimizer: newAdamW(t), Schedule: Constant(1)})
	require.NoError(t, err)
	defer tr.Close()

	_, err = tr.Step()
	assert.ErrorContains(t, err, "at least one batch")
	b := lmBatch(tensor.Float32, 8, 2, 3, 0, nil)
	delete(b.Inputs, "targets")
	_, err = tr.Step(b)
	assert.ErrorContains(t, err, `lacks input "targets"`)
	b = lmBatch(tensor.Float32, 8, 2, 3, 0, nil)
	b.Inputs["mask"] = b.Inputs["targets"]
	_, err = tr.Step(b)
	assert.ErrorContains(t, err, `input "mask", which the graph does not take`)
	b = lmBatch(tensor.Float32, 8, 2, 3, 0, nil)
	b.Key.Len = 2
	_, err = tr.Step(b)
	assert.ErrorContains(t, err, `input "ids" is (6) int, the graph wants (4) int`)
	b = lmBatch(tensor.Float32, 8, 2, 3, 0, nil)
	b.Weight = -2
	_, err = tr.Step(b)
	assert.ErrorContains(t, err, "weight -2")
	_, err = tr.Step(Batch{Key: Key{Batch: 0, Len: 3}})
	assert.ErrorContains(t, err, "positive batch size")

	// A NaN weight makes the loss NaN: the step is refused and nothing moves.
	w, _ := m.store.Get("lm_head.bias")
	w.Data().([]float32)[0] = float32(math.NaN())
	emb, _ := m.store.Get("wte.weight")
	embBefore := append([]float32(nil), emb.Data().([]float32)...)
	_, err = tr.Step(lmBatch(tensor.Float32, 8, 2, 3, 0, nil))
	assert.ErrorContains(t, err, "train: step 1: loss NaN, gradient norm NaN: not updating")
	// Every gradient is NaN, the first in store order the embedding's; the
	// cause, the first NaN weight, is named too.
	assert.ErrorContains(t, err, `first parameter affected (store order): "wte.weight" (gradient[0] = NaN); first non-finite weight: "lm_head.bias" (value[0] = NaN)`)
	assert.Equal(t, embBefore, emb.Data())
	assert.Zero(t, tr.StepCount())
}

// sqrtModel's loss Σ a⊙x + Σ √b + Σ √c is finite while √ has an infinite
// gradient wherever b or c is 0.
type sqrtModel struct{ store *blocks.Store }

func (m sqrtModel) Store() *blocks.Store { return m.store }

func (m sqrtModel) Build(g *blocks.Graph, k Key) (Built, error) {
	x, err := g.Input("x", tensor.Shape{2, 2})
	if err != nil {
		return Built{}, err
	}
	var terms []*G.Node
	for _, name := range []string{"a", "b", "c"} {
		p, err := g.Param(name)
		if err != nil {
			return Built{}, err
		}
		if name == "a" {
			p = G.Must(G.HadamardProd(p, x))
		} else {
			p = G.Must(G.Sqrt(p))
		}
		terms = append(terms, G.Must(G.Sum(p)))
	}
	loss := G.Must(G.Add(G.Must(G.Add(terms[0], terms[1])), terms[2]))
	return Built{Loss: loss, Inputs: map[string]*G.Node{"x": x}}, nil
}

// TestNonFiniteGradientNamesParameter: a finite loss with infinite
// gradients in "b" and "c" is refused at step 2, naming "b" (the first in
// store order) and the element, and nothing changes.
func TestNonFiniteGradientNamesParameter(t *testing.T) {
	s, err := blocks.NewStore(tensor.Float64, 1)
	require.NoError(t, err)
	for _, p := range []struct {
		name  string
		shape tensor.Shape
		vals  []float64
	}{{"a", tensor.Shape{2, 2}, []float64{1, 2, 3, 4}}, {"b", tensor.Shape{3}, []float64{1, 4, 9}}, {"c", tensor.Shape{2}, []float64{0, 1}}} {
		_, err := s.Add(p.name, p.shape, blocks.Normal(0, 1))
		require.NoError(t, err)
		require.NoError(t, s.Set(p.name, p.vals))
	}
	opt, err := NewSGD(SGDConfig{})
	require.NoError(t, err)
	tr, err := New(sqrtModel{s}, Config{Optimizer: opt, Schedule: Constant(0)})
	require.NoError(t, err)
	defer tr.Close()
	x := Batch{Key: Key{Batch: 1, Len: 1}, Inputs: map[string]G.Value{
		"x": tensor.New(tensor.WithShape(2, 2), tensor.WithBacking([]float64{1, 1, 1, 1}))}}
	// c is 0 at element 0 already: its gradient is infinite.
	_, err = tr.Step(x)
	assert.ErrorContains(t, err, `train: step 1: loss 17, gradient norm +Inf: not updating; first parameter affected (store order): "c" (gradient[0] = +Inf)`)
	require.NoError(t, s.Set("c", []float64{1, 1}))
	_, err = tr.Step(x)
	require.NoError(t, err, "finite now")
	require.NoError(t, s.Set("b", []float64{1, 0, 9}))
	require.NoError(t, s.Set("c", []float64{0, 0}))
	_, err = tr.Step(x)
	assert.ErrorContains(t, err, `train: step 2: loss 14, gradient norm +Inf: not updating; first parameter affected (store order): "b" (gradient[1] = +Inf)`)
	assert.NotContains(t, err.Error(), "non-finite weight", "every weight is finite")
	assert.Equal(t, 1, tr.StepCount())
}

// evalOnly builds no loss: Evaluate works, Step refuses.
type evalOnly struct{ *tinyLM }

func (e evalOnly) Build(g *blocks.Graph, k Key) (Built, error) {
	b, err := e.tinyLM.Build(g, k)
	b.Loss = nil
	return b, err
}

func TestEvaluateWithoutLoss(t *testing.T) {
	m := evalOnly{newTinyLM(t, tensor.Float32, 1, tinyConfig{Vocab: 8, Dim: 4})}
	tr, err := New(m, Config{Optimizer: newAdamW(t), Schedule: Constant(1)})
	require.NoError(t, err)
	defer tr.Close()
	r, err := tr.Evaluate(lmBatch(tensor.Float32, 8, 2, 3, 0, nil))
	require.NoError(t, err)
	assert.True(t, math.IsNaN(r.Loss))
	assert.Equal(t, tensor.Shape{2, 3, 8}, r.Outputs["logits"].Shape())
	_, err = tr.Step(lmBatch(tensor.Float32, 8, 2, 3, 0, nil))
	assert.ErrorContains(t, err, "built no loss")
	var _ G.Value = r.Outputs["logits"]
}
