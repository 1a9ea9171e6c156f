package train

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/pkg/errors"

	"github.com/seq2gpt/seq2gpt/internal/atomicfile"
)

// Data feeds the loop: the micro-batches of each step, and a position for
// exact resume.
type Data interface {
	// Next returns the micro-batches of the next optimizer step. It returns
	// io.EOF when the data is exhausted (a source of a fixed number of
	// epochs); Run then stops with Stopped "data".
	Next() ([]Batch, error)
	// Position says where the data order stands now (epoch, shuffle seed,
	// offset: anything JSON), so that Restore can continue from exactly the
	// next batch.
	Position() (json.RawMessage, error)
	// Restore goes back to a saved position.
	Restore(pos json.RawMessage) error
}

// Evaluator computes validation metrics (e.g. {"loss": 3.2, "ppl": 24.5}).
// It must not change the trainer's state: Trainer.Evaluate does not (no
// dropout masks drawn, no gradients), which is what keeps a run with
// evaluations bit-identical to one resumed between them.
type Evaluator func(t *Trainer) (map[string]float64, error)

// LoopConfig configures Run.
type LoopConfig struct {
	// Steps is the number of optimizer steps to run in total, counting the
	// steps already taken when resumed.
	Steps int
	// EvalEvery evaluates every N steps (counted from the start of training,
	// so a resumed run evaluates at the same steps); 0 evaluates only at the
	// end. Run always evaluates at the end (not when cancelled), unless the
	// last step was just evaluated.
	EvalEvery int
	// Metric picks the best checkpoint and drives early stopping; "loss" if
	// empty. Lower is better unless HigherIsBetter.
	Metric         string
	HigherIsBetter bool
	// Patience stops training after this many evaluations in a row without
	// a strict improvement of Metric (0: never).
	Patience int
	// CheckpointDir, if set, holds "<dir>/best", the checkpoint with the
	// best Metric, and "<dir>/last", the latest. Each is replaced as a whole
	// (see Resume), so a crash mid-save leaves the previous one loadable.
	CheckpointDir string
	// CheckpointEvery saves "<dir>/last" every N steps; with 0 it is saved
	// only at evaluations and when Run returns.
	CheckpointEvery int
	// Config is saved as config.json in each checkpoint (nil: none).
	Config any
}

// StepInfo describes one optimizer step, for Hooks.OnStep.
type StepInfo struct {
	Step       int // updates taken so far, this one included
	TotalSteps int // LoopConfig.Steps
	Loss       float64
	LR         float64
	GradNorm   float64 // before clipping
	// Tokens is this step's token count: the sum of its micro-batches'
	// weights (a weight of 0 counts 1, as in Trainer.Step).
	Tokens int64
	// RunTokens is the number of tokens of this Run so far, this step's
	// included.
	RunTokens int64
	// Elapsed is the time since Run started (evaluations and checkpoints
	// included), TokensPerSec is RunTokens / Elapsed.
	Elapsed      time.Duration
	TokensPerSec float64
}

// EvalInfo describes one evaluation, for Hooks.OnEval.
type EvalInfo struct {
	Step    int
	Metrics map[string]float64
	// Best says this evaluation improved on every earlier one (the first
	// always does); BestValue and BestStep are the best so far, this one
	// included.
	Best      bool
	BestValue float64
	BestStep  int
	// Bad is the number of evaluations in a row without improvement.
	Bad int
}

// Hooks are called by Run, on its goroutine; any may be nil.
type Hooks struct {
	OnStep func(StepInfo)
	OnEval func(EvalInfo)
	// BeforeCheckpoint writes the caller's own files (a tokenizer, say)
	// into dir, a checkpoint being assembled that is not yet in place, at
	// each save (SaveOptions.Files). They become part of the checkpoint,
	// listed in its manifest; an error fails the save and Run, and the
	// previous checkpoint stays.
	BeforeCheckpoint func(dir string) error
	// OnCheckpoint is called after a checkpoint is complete and in place in
	// dir ("<CheckpointDir>/best" or "<CheckpointDir>/last") at step.
	OnCheckpoint func(dir string, step int)

	// crash is called at each step of a checkpoint save (the crash tests
	// kill the process there); nil outside tests.
	crash crashPoint
}

// Reasons Run stops, in Summary.Stopped.
const (
	StoppedSteps         = "steps"          // LoopConfig.Steps reached
	StoppedEarlyStopping = "early-stopping" // Patience evaluations without improvement
	StoppedCancelled     = "cancelled"      // the context was cancelled
	StoppedData          = "data"           // Data.Next returned io.EOF
)

// Summary describes a Run.
type Summary struct {
	Steps        int   // optimizer steps taken in this Run
	Step         int   // the trainer's step count when Run returned
	Tokens       int64 // tokens of this Run (see StepInfo.Tokens)
	Elapsed      time.Duration
	TokensPerSec float64
	// BestMetric and BestStep are the best evaluation of the whole
	// training, earlier runs resumed from included (NaN and 0 before any).
	BestMetric float64
	BestStep   int
	Evals      int // evaluations in this Run
	// Stopped is why Run returned: "steps", "early-stopping", "cancelled" or
	// "data" (see the Stopped constants).
	Stopped string
	Losses  []float64 // training loss of every step of this Run
}

// loopState is what Run keeps across runs and checkpoints (trainer.json
// "loop"): the best evaluation so far and the count of evaluations without
// improvement, so that a resumed run keeps the same best checkpoint and
// stops early at the same evaluation as one that never stopped.
type loopState struct {
	Metric         string  `json:"metric"`
	HigherIsBetter bool    `json:"higher_is_better"`
	HasBest        bool    `json:"has_best"`
	BestValue      float64 `json:"best_value"`
	BestStep       int     `json:"best_step"`
	Bad            int     `json:"bad_evals"`
	Evals          int     `json:"evals"`
	LastEvalStep   int     `json:"last_eval_step"`
}

func (c LoopConfig) validate() (LoopConfig, error) {
	if c.Metric == "" {
		c.Metric = "loss"
	}
	if c.Steps <= 0 {
		return c, errors.Errorf("train: loop steps %d is not positive", c.Steps)
	}
	if c.EvalEvery < 0 || c.Patience < 0 || c.CheckpointEvery < 0 {
		return c, errors.Errorf("train: loop EvalEvery %d, Patience %d, CheckpointEvery %d: none may be negative",
			c.EvalEvery, c.Patience, c.CheckpointEvery)
	}
	return c, nil
}

// Run trains until cfg.Steps, early stopping, the end of the data, or ctx is
// cancelled (Ctrl-C): on cancel it saves "<dir>/last" (when CheckpointDir is
// set) and returns the summary with Stopped "cancelled" and a nil error.
// The context is checked between steps, so a cancelled Run has finished
// every step it began and its checkpoint resumes exactly.
//
// eval may be nil (no evaluations; then Patience must be 0). An error from
// a step, the data, the evaluator or a save ends the run and is returned
// with the summary so far; nothing is saved then, so "<dir>/last" stays the
// last good state.
func Run(ctx context.Context, t *Trainer, data Data, eval Evaluator, cfg LoopConfig, hooks Hooks) (Summary, error) {
	sum := Summary{BestMetric: math.NaN()}
	if t == nil || data == nil {
		return sum, errors.New("train: Run needs a trainer and data")
	}
	cfg, err := cfg.validate()
	if err != nil {
		return sum, err
	}
	if eval == nil && cfg.Patience > 0 {
		return sum, errors.Errorf("train: early stopping (patience %d) needs an evaluator", cfg.Patience)
	}
	ls := &t.loop
	if ls.Evals > 0 && (ls.Metric != cfg.Metric || ls.HigherIsBetter != cfg.HigherIsBetter) {
		return sum, errors.Errorf("train: the trainer's best evaluation is by %q (higher is better: %v), this run's metric is %q (%v)",
			ls.Metric, ls.HigherIsBetter, cfg.Metric, cfg.HigherIsBetter)
	}
	ls.Metric, ls.HigherIsBetter = cfg.Metric, cfg.HigherIsBetter
	if cfg.CheckpointDir != "" {
		// A crash mid-swap may have left only ".<name>.old": put it back.
		for _, name := range []string{BestCheckpoint, LastCheckpoint} {
			if err := recoverCheckpoint(cfg.CheckpointDir, name); err != nil {
				return sum, err
			}
		}
	}
	r := runner{t: t, data: data, eval: eval, cfg: cfg, hooks: hooks, sum: &sum, start: time.Now(), lastSaved: -1}

	stopped := ""
	if cfg.Patience > 0 && ls.Bad >= cfg.Patience {
		stopped = StoppedEarlyStopping
	}
	for stopped == "" && t.StepCount() < cfg.Steps {
		if ctx.Err() != nil {
			stopped = StoppedCancelled
			break
		}
		batches, err := data.Next()
		if err == io.EOF {
			stopped = StoppedData
			break
		}
		if err != nil {
			return r.finish(), errors.Wrapf(err, "train: data for step %d", t.StepCount()+1)
		}
		var tokens int64
		for _, b := range batches {
			w := b.Weight
			if w == 0 {
				w = 1
			}
			tokens += int64(math.Round(w))
		}
		res, err := t.Step(batches...)
		if err != nil {
			return r.finish(), err
		}
		sum.Steps++
		sum.Tokens += tokens
		sum.Losses = append(sum.Losses, res.Loss)
		if hooks.OnStep != nil {
			el := time.Since(r.start)
			hooks.OnStep(StepInfo{Step: res.Step, TotalSteps: cfg.Steps, Loss: res.Loss, LR: res.LR,
				GradNorm: res.GradNorm, Tokens: tokens, RunTokens: sum.Tokens, Elapsed: el,
				TokensPerSec: perSec(sum.Tokens, el)})
		}
		if eval != nil && cfg.EvalEvery > 0 && res.Step%cfg.EvalEvery == 0 {
			if err := r.evaluate(); err != nil {
				return r.finish(), err
			}
			if cfg.Patience > 0 && ls.Bad >= cfg.Patience {
				stopped = StoppedEarlyStopping
			}
		}
		if cfg.CheckpointEvery > 0 && res.Step%cfg.CheckpointEvery == 0 {
			if err := r.saveLast(); err != nil {
				return r.finish(), err
			}
		}
	}
	if stopped == "" {
		stopped = StoppedSteps
	}
	sum.Stopped = stopped
	if stopped != StoppedCancelled && eval != nil && ls.LastEvalStep != t.StepCount() {
		if err := r.evaluate(); err != nil {
			return r.finish(), err
		}
	}
	if err := r.saveLast(); err != nil {
		return r.finish(), err
	}
	return r.finish(), nil
}

// runner is the state of one Run.
type runner struct {
	t         *Trainer
	data      Data
	eval      Evaluator
	cfg       LoopConfig
	hooks     Hooks
	sum       *Summary
	start     time.Time
	lastSaved int
}

func perSec(tokens int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(tokens) / d.Seconds()
}

func (r *runner) finish() Summary {
	s := r.sum
	s.Step = r.t.StepCount()
	s.Elapsed = time.Since(r.start)
	s.TokensPerSec = perSec(s.Tokens, s.Elapsed)
	if ls := r.t.loop; ls.HasBest {
		s.BestMetric, s.BestStep = ls.BestValue, ls.BestStep
	}
	return *s
}

// evaluate runs the evaluator at the current step, updates the best state,
// saves "best" on improvement and "last" in any case.
func (r *runner) evaluate() error {
	step := r.t.StepCount()
	metrics, err := r.eval(r.t)
	if err != nil {
		return errors.Wrapf(err, "train: evaluation at step %d", step)
	}
	v, ok := metrics[r.cfg.Metric]
	if !ok {
		names := make([]string, 0, len(metrics))
		for k := range metrics {
			names = append(names, k)
		}
		sort.Strings(names)
		return errors.Errorf("train: evaluation at step %d has no metric %q (it has %v)", step, r.cfg.Metric, names)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return errors.Errorf("train: evaluation at step %d: metric %q is %v", step, r.cfg.Metric, v)
	}
	ls := &r.t.loop
	better := !ls.HasBest || (r.cfg.HigherIsBetter && v > ls.BestValue) || (!r.cfg.HigherIsBetter && v < ls.BestValue)
	if better {
		ls.HasBest, ls.BestValue, ls.BestStep, ls.Bad = true, v, step, 0
	} else {
		ls.Bad++
	}
	ls.Evals++
	ls.LastEvalStep = step
	r.sum.Evals++
	if r.hooks.OnEval != nil {
		m := make(map[string]float64, len(metrics))
		for k, x := range metrics {
			m[k] = x
		}
		r.hooks.OnEval(EvalInfo{Step: step, Metrics: m, Best: better, BestValue: ls.BestValue,
			BestStep: ls.BestStep, Bad: ls.Bad})
	}
	if better && r.cfg.CheckpointDir != "" {
		if err := r.save(BestCheckpoint); err != nil {
			return err
		}
	}
	return r.saveLast()
}

func (r *runner) saveLast() error {
	if r.cfg.CheckpointDir == "" || r.lastSaved == r.t.StepCount() {
		return nil
	}
	if err := r.save(LastCheckpoint); err != nil {
		return err
	}
	r.lastSaved = r.t.StepCount()
	return nil
}

func (r *runner) save(name string) error {
	pos, err := r.data.Position()
	if err != nil {
		return errors.Wrapf(err, "train: data position at step %d", r.t.StepCount())
	}
	dir, err := r.t.saveCheckpoint(r.cfg.CheckpointDir, name,
		&SaveOptions{Config: r.cfg.Config, DataPosition: pos, Files: r.hooks.BeforeCheckpoint}, r.hooks.crash)
	if err != nil {
		return err
	}
	if r.hooks.OnCheckpoint != nil {
		r.hooks.OnCheckpoint(dir, r.t.StepCount())
	}
	return nil
}

// The checkpoints Run keeps under LoopConfig.CheckpointDir.
const (
	BestCheckpoint = "best"
	LastCheckpoint = "last"
)

// saveCheckpoint replaces root/name with a checkpoint as a whole: it saves
// into root/.name.new, moves the old root/name to root/.name.old, renames
// the new one into place and only then removes the old one. A crash at any
// point leaves root/name or root/.name.old complete (CheckpointPath finds
// it); a failed save removes root/.name.new. Trainer.Save alone seals one
// directory with its manifest but keeps no previous checkpoint.
func (t *Trainer) saveCheckpoint(root, name string, o *SaveOptions, crash crashPoint) (_ string, err error) {
	final := filepath.Join(root, name)
	tmp := filepath.Join(root, "."+name+".new")
	old := filepath.Join(root, "."+name+".old")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", errors.Wrap(err, "train: checkpoint directory")
	}
	if err := recoverCheckpoint(root, name); err != nil {
		return "", err
	}
	if err := os.RemoveAll(tmp); err != nil {
		return "", errors.Wrapf(err, "train: removing %s", tmp)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(tmp)
		}
	}()
	if err := t.save(tmp, o, crash); err != nil {
		return "", err
	}
	if err := os.RemoveAll(old); err != nil {
		return "", errors.Wrapf(err, "train: removing %s", old)
	}
	crash.at("removed " + filepath.Base(old))
	if _, err := os.Stat(final); err == nil {
		if err := os.Rename(final, old); err != nil {
			return "", errors.Wrapf(err, "train: moving %s aside", final)
		}
		crash.at("moved " + name + " aside")
	}
	if err := os.Rename(tmp, final); err != nil {
		return "", errors.Wrapf(err, "train: renaming %s to %s", tmp, final)
	}
	crash.at("renamed into " + name)
	if err := atomicfile.SyncDir(root); err != nil {
		return "", errors.Wrap(err, "train: checkpoint")
	}
	crash.at("synced " + name)
	if err := os.RemoveAll(old); err != nil {
		return "", errors.Wrapf(err, "train: removing %s", old)
	}
	return final, nil
}

// recoverCheckpoint puts root/.name.old back in place of an incomplete (or
// missing) root/name: after a crash between the two renames of
// saveCheckpoint only .old is whole.
func recoverCheckpoint(root, name string) error {
	final := filepath.Join(root, name)
	old := filepath.Join(root, "."+name+".old")
	if complete(final) || !complete(old) {
		return nil
	}
	if err := os.RemoveAll(final); err != nil {
		return errors.Wrapf(err, "train: removing incomplete %s", final)
	}
	if err := os.Rename(old, final); err != nil {
		return errors.Wrapf(err, "train: recovering %s", old)
	}
	return errors.Wrap(atomicfile.SyncDir(root), "train: checkpoint")
}

// complete reports whether dir holds a complete checkpoint: its manifest
// and every file it lists, with the listed size (Trainer.Load checks the
// hashes).
func complete(dir string) bool {
	_, err := readManifest(dir, false)
	return err == nil
}

// CheckpointPath is the directory of the checkpoint name ("best" or "last")
// under a LoopConfig.CheckpointDir: root/name, or the previous checkpoint
// root/.name.old when a crash interrupted its replacement.
func CheckpointPath(root, name string) (string, error) {
	final := filepath.Join(root, name)
	if complete(final) {
		return final, nil
	}
	if old := filepath.Join(root, "."+name+".old"); complete(old) {
		return old, nil
	}
	_, err := readManifest(final, false)
	return "", errors.Errorf("train: no complete checkpoint %q in %s (%s)", name, root, strings.TrimPrefix(err.Error(), "train: "))
}

// Resume loads "<dir>/last" into t and restores data's position; it returns
// the step reached. The best evaluation so far and the count of evaluations
// without improvement come back too, so the next Run keeps the same best
// checkpoint and stops early when an uninterrupted run would have.
func Resume(t *Trainer, data Data, dir string) (int, error) {
	if t == nil || data == nil {
		return 0, errors.New("train: Resume needs a trainer and data")
	}
	path, err := CheckpointPath(dir, LastCheckpoint)
	if err != nil {
		return 0, err
	}
	pos, err := t.Load(path)
	if err != nil {
		return 0, err
	}
	if err := data.Restore(pos); err != nil {
		return 0, errors.Wrapf(err, "train: restoring the data position %s of %s", pos, path)
	}
	return t.StepCount(), nil
}
