package train

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/pkg/errors"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

// seqData yields step i's micro-batches (two length buckets, 2·6 + 3·4 = 24
// target tokens) from a counter, which is its position.
type seqData struct {
	next  int
	limit int // Next returns io.EOF at this step (0: never)
}

const seqTokens = 24

func (d *seqData) Next() ([]Batch, error) {
	if d.limit > 0 && d.next >= d.limit {
		return nil, io.EOF
	}
	i := d.next
	d.next++
	return []Batch{lmBatch(tensor.Float32, 16, 2, 6, i, nil), lmBatch(tensor.Float32, 16, 3, 4, 7*i, nil)}, nil
}

func (d *seqData) Position() (json.RawMessage, error) {
	return json.Marshal(map[string]int{"next": d.next})
}

func (d *seqData) Restore(pos json.RawMessage) error {
	var p struct {
		Next *int `json:"next"`
	}
	if err := json.Unmarshal(pos, &p); err != nil {
		return err
	}
	if p.Next == nil {
		return errors.Errorf("position %s has no next", pos)
	}
	d.next = *p.Next
	return nil
}

// lossEval is the validation loss on a fixed batch.
func lossEval(t *Trainer) (map[string]float64, error) {
	r, err := t.Evaluate(lmBatch(tensor.Float32, 16, 4, 6, 100, nil))
	if err != nil {
		return nil, err
	}
	return map[string]float64{"loss": r.Loss, "ppl": math.Exp(r.Loss)}, nil
}

// scripted returns a metric that depends only on the step (so a resumed run
// sees the same values), recording a copy of the weights at each call.
func scripted(m *tinyLM, name string, byStep map[int]float64, snaps map[int]map[string][]float32) Evaluator {
	return func(t *Trainer) (map[string]float64, error) {
		v, ok := byStep[t.StepCount()]
		if !ok {
			return nil, errors.Errorf("no scripted value at step %d", t.StepCount())
		}
		if snaps != nil {
			snaps[t.StepCount()] = snapshot(m)
		}
		return map[string]float64{name: v}, nil
	}
}

func snapshot(m *tinyLM) map[string][]float32 {
	out := map[string][]float32{}
	for _, n := range m.store.Names() {
		w, _ := m.store.Get(n)
		out[n] = append([]float32(nil), w.Data().([]float32)...)
	}
	return out
}

func stepOf(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, TrainerFile))
	require.NoError(t, err)
	var ts trainerState
	require.NoError(t, json.Unmarshal(b, &ts))
	return ts.Step
}

func TestRunEarlyStoppingKeepsBest(t *testing.T) {
	for _, higher := range []bool{false, true} {
		m, tr := resumeTrainer(t, 1)
		sign := 1.0
		if higher {
			sign = -1
		}
		// Best at step 6; 8 and 10 are worse than 6 (10 beats 8 but not
		// the best), so patience 2 stops at 10.
		vals := map[int]float64{2: 5, 4: 4, 6: 3, 8: 3.5, 10: 3.2, 12: 1}
		for k, v := range vals {
			vals[k] = sign * v
		}
		snaps := map[int]map[string][]float32{}
		dir := t.TempDir()
		var evals []EvalInfo
		sum, err := Run(context.Background(), tr, &seqData{}, scripted(m, "acc", vals, snaps), LoopConfig{
			Steps: 20, EvalEvery: 2, Metric: "acc", HigherIsBetter: higher, Patience: 2, CheckpointDir: dir,
			Config: tinyConfig{Vocab: 16, Dim: 8, Dropout: 0.2},
		}, Hooks{OnEval: func(e EvalInfo) { evals = append(evals, e) }})
		require.NoError(t, err)
		assert.Equal(t, StoppedEarlyStopping, sum.Stopped)
		assert.Equal(t, 10, sum.Steps)
		assert.Equal(t, 10, tr.StepCount())
		assert.Equal(t, 5, sum.Evals)
		assert.Equal(t, sign*3, sum.BestMetric)
		assert.Equal(t, 6, sum.BestStep)
		require.Len(t, evals, 5)
		assert.Equal(t, []bool{true, true, true, false, false},
			[]bool{evals[0].Best, evals[1].Best, evals[2].Best, evals[3].Best, evals[4].Best})
		assert.Equal(t, 2, evals[4].Bad)
		assert.Equal(t, 6, evals[4].BestStep)

		// The best checkpoint holds the weights of step 6, the last those
		// of step 10.
		assert.Equal(t, 6, stepOf(t, filepath.Join(dir, BestCheckpoint)))
		assert.Equal(t, 10, stepOf(t, filepath.Join(dir, LastCheckpoint)))
		best, _ := resumeTrainer(t, 77)
		_, err = LoadWeights(filepath.Join(dir, BestCheckpoint, ModelFile), best.store, nil)
		require.NoError(t, err)
		assert.Equal(t, snaps[6], snapshot(best))
		assert.NotEqual(t, snaps[10], snaps[6])
		var cfg tinyConfig
		require.NoError(t, LoadConfig(filepath.Join(dir, BestCheckpoint), &cfg))
		assert.Equal(t, 16, cfg.Vocab)
		require.NoError(t, tr.Close())

		// Running on after early stopping stops at once.
		again, err := Run(context.Background(), tr, &seqData{next: 10}, scripted(m, "acc", vals, nil),
			LoopConfig{Steps: 20, EvalEvery: 2, Metric: "acc", HigherIsBetter: higher, Patience: 2}, Hooks{})
		require.NoError(t, err)
		assert.Equal(t, StoppedEarlyStopping, again.Stopped)
		assert.Zero(t, again.Steps)
	}
}

// TestRunBestCheckpointByRealLoss: the best checkpoint, loaded into a fresh
// trainer, evaluates to exactly the best metric Run reported.
func TestRunBestCheckpointByRealLoss(t *testing.T) {
	_, tr := resumeTrainer(t, 1)
	defer tr.Close()
	dir := t.TempDir()
	var evals []EvalInfo
	sum, err := Run(context.Background(), tr, &seqData{}, lossEval, LoopConfig{
		Steps: 12, EvalEvery: 3, CheckpointDir: dir,
	}, Hooks{OnEval: func(e EvalInfo) { evals = append(evals, e) }})
	require.NoError(t, err)
	require.Len(t, evals, 4)
	best := evals[0]
	for _, e := range evals {
		if e.Metrics["loss"] < best.Metrics["loss"] {
			best = e
		}
		assert.InDelta(t, math.Exp(e.Metrics["loss"]), e.Metrics["ppl"], 1e-9)
	}
	assert.Equal(t, best.Step, sum.BestStep)
	assert.Equal(t, best.Metrics["loss"], sum.BestMetric)

	_, fresh := resumeTrainer(t, 5)
	defer fresh.Close()
	_, err = fresh.Load(filepath.Join(dir, BestCheckpoint))
	require.NoError(t, err)
	assert.Equal(t, sum.BestStep, fresh.StepCount())
	m, err := lossEval(fresh)
	require.NoError(t, err)
	assert.Equal(t, sum.BestMetric, m["loss"], "bit for bit")
}

// TestRunResumeIsBitIdentical: Run for 2N steps, and Run cancelled after N
// + Resume into a fresh trainer (other initial weights) + Run to 2N, give
// the same losses and weights bit for bit, the same best evaluation, and
// the split run's early-stopping count survives the resume.
func TestRunResumeIsBitIdentical(t *testing.T) {
	const n = 6
	cfg := func(dir string) LoopConfig {
		return LoopConfig{Steps: 2 * n, EvalEvery: 2, CheckpointDir: dir, CheckpointEvery: 5}
	}
	mA, trA := resumeTrainer(t, 1)
	defer trA.Close()
	sumA, err := Run(context.Background(), trA, &seqData{}, lossEval, cfg(t.TempDir()), Hooks{})
	require.NoError(t, err)
	require.Len(t, sumA.Losses, 2*n)

	_, trB := resumeTrainer(t, 1)
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sumB, err := Run(ctx, trB, &seqData{}, lossEval, cfg(dir), Hooks{OnStep: func(s StepInfo) {
		if s.Step == n {
			cancel()
		}
	}})
	require.NoError(t, err, "a cancelled run is not an error")
	assert.Equal(t, StoppedCancelled, sumB.Stopped)
	assert.Equal(t, n, sumB.Steps)
	assert.Equal(t, n/2, sumB.Evals, "no extra evaluation on cancel")
	assert.Equal(t, n, stepOf(t, filepath.Join(dir, LastCheckpoint)), "cancel saved the last checkpoint")
	require.NoError(t, trB.Close())

	mC, trC := resumeTrainer(t, 999)
	defer trC.Close()
	data := &seqData{}
	step, err := Resume(trC, data, dir)
	require.NoError(t, err)
	assert.Equal(t, n, step)
	assert.Equal(t, n, data.next)
	sumC, err := Run(context.Background(), trC, data, lossEval, cfg(dir), Hooks{})
	require.NoError(t, err)
	assert.Equal(t, StoppedSteps, sumC.Stopped)
	assert.Equal(t, n, sumC.Steps)
	assert.Equal(t, 2*n, sumC.Step)

	assert.Equal(t, sumA.Losses, append(sumB.Losses, sumC.Losses...), "losses bit for bit")
	assert.Equal(t, snapshot(mA), snapshot(mC), "weights bit for bit")
	assert.Equal(t, trA.DropoutCalls(), trC.DropoutCalls())
	assert.Equal(t, sumA.BestMetric, sumC.BestMetric)
	assert.Equal(t, sumA.BestStep, sumC.BestStep)
	assert.Equal(t, sumA.Evals, sumB.Evals+sumC.Evals)
}

func TestRunEarlyStoppingSurvivesResume(t *testing.T) {
	vals := map[int]float64{2: 5, 4: 4, 6: 3, 8: 3.5, 10: 3.2, 12: 1}
	m, tr := resumeTrainer(t, 1)
	dir := t.TempDir()
	loop := LoopConfig{Steps: 8, EvalEvery: 2, Patience: 2, CheckpointDir: dir}
	sum, err := Run(context.Background(), tr, &seqData{}, scripted(m, "loss", vals, nil), loop, Hooks{})
	require.NoError(t, err)
	assert.Equal(t, StoppedSteps, sum.Stopped)
	assert.Equal(t, 4, sum.Evals, "the end evaluation is step 8's own")
	require.NoError(t, tr.Close())

	m2, tr2 := resumeTrainer(t, 3)
	defer tr2.Close()
	data := &seqData{}
	_, err = Resume(tr2, data, dir)
	require.NoError(t, err)
	loop.Steps = 20
	sum, err = Run(context.Background(), tr2, data, scripted(m2, "loss", vals, nil), loop, Hooks{})
	require.NoError(t, err)
	assert.Equal(t, StoppedEarlyStopping, sum.Stopped, "one bad evaluation before the resume, one after")
	assert.Equal(t, 2, sum.Steps)
	assert.Equal(t, 10, sum.Step)
	assert.Equal(t, 3.0, sum.BestMetric)
	assert.Equal(t, 6, sum.BestStep)

	// A different metric cannot continue the saved best state.
	loop.Metric = "acc"
	_, err = Run(context.Background(), tr2, data, scripted(m2, "acc", vals, nil), loop, Hooks{})
	assert.ErrorContains(t, err, `best evaluation is by "loss"`)
}

func TestRunHooksAndSummary(t *testing.T) {
	_, tr := resumeTrainer(t, 1)
	defer tr.Close()
	noam, err := NewNoam(8, 3, 1)
	require.NoError(t, err)
	dir := t.TempDir()
	var steps []StepInfo
	var evals []EvalInfo
	type ckpt struct {
		name string
		step int
	}
	var ckpts []ckpt
	sum, err := Run(context.Background(), tr, &seqData{}, lossEval, LoopConfig{
		Steps: 7, EvalEvery: 4, CheckpointDir: dir, CheckpointEvery: 3,
	}, Hooks{
		OnStep: func(s StepInfo) { steps = append(steps, s) },
		OnEval: func(e EvalInfo) { evals = append(evals, e) },
		OnCheckpoint: func(d string, step int) {
			assert.True(t, complete(d), "complete when the hook runs")
			assert.Equal(t, step, stepOf(t, d))
			ckpts = append(ckpts, ckpt{filepath.Base(d), step})
		},
	})
	require.NoError(t, err)
	require.Len(t, steps, 7)
	for i, s := range steps {
		assert.Equal(t, i+1, s.Step)
		assert.Equal(t, 7, s.TotalSteps)
		assert.Equal(t, int64(seqTokens), s.Tokens)
		assert.Equal(t, int64(seqTokens*(i+1)), s.RunTokens)
		assert.Equal(t, noam.LR(i+1), s.LR)
		assert.Equal(t, sum.Losses[i], s.Loss)
		assert.Positive(t, s.GradNorm)
		assert.Positive(t, s.TokensPerSec)
		if i > 0 {
			assert.GreaterOrEqual(t, s.Elapsed, steps[i-1].Elapsed)
		}
	}
	require.Len(t, evals, 2)
	assert.Equal(t, 4, evals[0].Step)
	assert.Equal(t, 7, evals[1].Step, "the end evaluation")
	assert.True(t, evals[0].Best, "the first evaluation is the best so far")
	assert.Contains(t, ckpts, ckpt{"best", 4})
	var lasts []int
	for _, c := range ckpts {
		if c.name == "last" {
			lasts = append(lasts, c.step)
		}
	}
	assert.Equal(t, []int{3, 4, 6, 7}, lasts, "every 3 steps, at evaluations and at the end, once each")

	assert.Equal(t, 7, sum.Steps)
	assert.Equal(t, 7, sum.Step)
	assert.Equal(t, int64(7*seqTokens), sum.Tokens)
	assert.Equal(t, 2, sum.Evals)
	assert.Equal(t, StoppedSteps, sum.Stopped)
	assert.Len(t, sum.Losses, 7)
	assert.Positive(t, sum.Elapsed)
	assert.InDelta(t, float64(sum.Tokens)/sum.Elapsed.Seconds(), sum.TokensPerSec, 1e-6*sum.TokensPerSec)
	assert.Less(t, sum.Losses[6], sum.Losses[0], "it learns")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.Equal(t, []string{"best", "last"}, names, "no temporary directories left")
}

func TestRunStopsAtEndOfDataAndWithoutEvaluator(t *testing.T) {
	_, tr := resumeTrainer(t, 1)
	defer tr.Close()
	sum, err := Run(context.Background(), tr, &seqData{limit: 3}, nil, LoopConfig{Steps: 10}, Hooks{})
	require.NoError(t, err)
	assert.Equal(t, StoppedData, sum.Stopped)
	assert.Equal(t, 3, sum.Steps)
	assert.Zero(t, sum.Evals)
	assert.True(t, math.IsNaN(sum.BestMetric))
	assert.Zero(t, sum.BestStep)
}

// TestRunCancelledBeforeStart saves a loadable step-0 checkpoint.
func TestRunCancelledBeforeStart(t *testing.T) {
	_, tr := resumeTrainer(t, 1)
	defer tr.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	sum, err := Run(ctx, tr, &seqData{}, lossEval, LoopConfig{Steps: 10, CheckpointDir: dir}, Hooks{})
	require.NoError(t, err)
	assert.Equal(t, StoppedCancelled, sum.Stopped)
	assert.Zero(t, sum.Steps)
	assert.Zero(t, sum.Evals)
	_, tr2 := resumeTrainer(t, 2)
	defer tr2.Close()
	data := &seqData{next: 99}
	step, err := Resume(tr2, data, dir)
	require.NoError(t, err)
	assert.Zero(t, step)
	assert.Zero(t, data.next)
}

func TestRunErrors(t *testing.T) {
	m, tr := resumeTrainer(t, 1)
	defer tr.Close()
	ctx := context.Background()
	_, err := Run(ctx, tr, &seqData{}, nil, LoopConfig{}, Hooks{})
	assert.ErrorContains(t, err, "steps 0 is not positive")
	_, err = Run(ctx, tr, &seqData{}, nil, LoopConfig{Steps: 2, Patience: 1}, Hooks{})
	assert.ErrorContains(t, err, "patience 1) needs an evaluator")
	_, err = Run(ctx, tr, &seqData{}, nil, LoopConfig{Steps: 2, EvalEvery: -1}, Hooks{})
	assert.ErrorContains(t, err, "EvalEvery -1")
	_, err = Run(ctx, tr, &seqData{}, lossEval, LoopConfig{Steps: 1, Metric: "bleu"}, Hooks{})
	assert.ErrorContains(t, err, `evaluation at step 1 has no metric "bleu" (it has [loss ppl])`)
	_, err = Resume(tr, &seqData{}, t.TempDir())
	assert.ErrorContains(t, err, `no complete checkpoint "last"`)

	// A NaN in the weights stops the run with the step's error.
	w, _ := m.store.Get("mlp.linear1.bias")
	w.Data().([]float32)[1] = float32(math.NaN())
	sum, err := Run(ctx, tr, &seqData{}, nil, LoopConfig{Steps: 5}, Hooks{})
	assert.ErrorContains(t, err, "step 2")
	assert.Zero(t, sum.Steps)
}

// TestCheckpointSwapRecovers: a crash between moving the old checkpoint
// aside and renaming the new one into place leaves only .last.old, which
// CheckpointPath finds and the next save puts back before replacing it.
func TestCheckpointSwapRecovers(t *testing.T) {
	_, tr := resumeTrainer(t, 1)
	defer tr.Close()
	root := t.TempDir()
	_, err := tr.Step(lmBatch(tensor.Float32, 16, 2, 6, 0, nil))
	require.NoError(t, err)
	_, err = tr.saveCheckpoint(root, LastCheckpoint, &SaveOptions{DataPosition: json.RawMessage(`{"next":1}`)}, nil)
	require.NoError(t, err)
	// The crash: last moved aside, the new one half-written.
	require.NoError(t, os.Rename(filepath.Join(root, "last"), filepath.Join(root, ".last.old")))
	require.NoError(t, os.MkdirAll(filepath.Join(root, ".last.new"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, ".last.new", ModelFile), []byte("torn"), 0o644))
	p, err := CheckpointPath(root, LastCheckpoint)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(root, ".last.old"), p)
	_, tr2 := resumeTrainer(t, 2)
	defer tr2.Close()
	data := &seqData{}
	step, err := Resume(tr2, data, root)
	require.NoError(t, err)
	assert.Equal(t, 1, step)
	assert.Equal(t, 1, data.next)

	_, err = tr.Step(lmBatch(tensor.Float32, 16, 2, 6, 1, nil))
	require.NoError(t, err)
	_, err = tr.saveCheckpoint(root, LastCheckpoint, &SaveOptions{DataPosition: json.RawMessage(`{"next":2}`)}, nil)
	require.NoError(t, err)
	assert.Equal(t, 2, stepOf(t, filepath.Join(root, "last")))
	assert.NoDirExists(t, filepath.Join(root, ".last.old"))
	assert.NoDirExists(t, filepath.Join(root, ".last.new"))
}
