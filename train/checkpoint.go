package train

import (
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/pkg/errors"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
)

// A checkpoint is a directory:
//
//	model.safetensors      the Store's tensors under their state-dict names
//	config.json            the caller's model configuration
//	optimizer.safetensors  the optimizer's slot tensors ("exp_avg.<name>", …)
//	trainer.json           step, optimizer kind and per-parameter counts,
//	                       dropout seed and call count, the caller's data
//	                       position
//
// Each file is written atomically; trainer.json is written last, so a
// directory whose trainer.json is present and readable holds a complete
// checkpoint (a crash mid-save leaves the previous trainer.json, whose step
// may then disagree with newer weights: save each checkpoint to a new
// directory to keep the previous one whole).
const (
	ModelFile     = "model.safetensors"
	ConfigFile    = "config.json"
	OptimizerFile = "optimizer.safetensors"
	TrainerFile   = "trainer.json"

	checkpointFormat = "seq2gpt.train/1"
)

// trainerState is trainer.json.
type trainerState struct {
	Format         string           `json:"format"`
	Step           int              `json:"step"`
	ScheduleStep   int              `json:"schedule_step"`
	Optimizer      string           `json:"optimizer"`
	OptimizerSteps map[string]int64 `json:"optimizer_steps"`
	DropoutSeed    uint64           `json:"dropout_seed"`
	DropoutCalls   uint64           `json:"dropout_calls"`
	Dtype          string           `json:"dtype"`
	DataPosition   json.RawMessage  `json:"data_position,omitempty"`
	// Loop is Run's state: the best evaluation and the evaluations since.
	Loop *loopState `json:"loop,omitempty"`
}

// Save writes a checkpoint to dir (created if missing): the weights, config
// (any JSON-encodable value, or nil), the optimizer state and the trainer
// state, with dataPosition — an opaque value from the caller's data loader
// (epoch, shuffle seed, offset) — stored for Load to hand back. Resuming from
// it continues bit for bit as if training had not stopped.
func (t *Trainer) Save(dir string, config any, dataPosition json.RawMessage) error {
	if dataPosition != nil && !json.Valid(dataPosition) {
		return errors.Errorf("train: data position %q is not valid JSON", dataPosition)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return errors.Wrap(err, "train: checkpoint")
	}
	if err := SaveWeights(filepath.Join(dir, ModelFile), t.store); err != nil {
		return err
	}
	st := t.cfg.Optimizer.State()
	if err := WriteSafetensors(filepath.Join(dir, OptimizerFile), st.Tensors,
		map[string]string{"optimizer": t.cfg.Optimizer.Kind()}); err != nil {
		return err
	}
	if config != nil {
		b, err := json.MarshalIndent(config, "", "  ")
		if err != nil {
			return errors.Wrap(err, "train: encoding the model config")
		}
		if err := WriteFileAtomic(filepath.Join(dir, ConfigFile), append(b, '\n')); err != nil {
			return err
		}
	}
	ts := trainerState{
		Format: checkpointFormat, Step: t.step, ScheduleStep: t.step,
		Optimizer: t.cfg.Optimizer.Kind(), OptimizerSteps: st.Steps,
		DropoutSeed: t.cfg.DropoutSeed, DropoutCalls: t.dropout,
		Dtype: t.store.Dtype().String(), DataPosition: dataPosition,
	}
	if t.loop != (loopState{}) {
		ls := t.loop
		ts.Loop = &ls
	}
	b, err := json.MarshalIndent(ts, "", "  ")
	if err != nil {
		return errors.Wrap(err, "train: encoding the trainer state")
	}
	return WriteFileAtomic(filepath.Join(dir, TrainerFile), append(b, '\n'))
}

// Load restores a checkpoint that Save wrote into this Trainer — weights,
// optimizer state, step, dropout state — and returns the data position saved
// with it. The Trainer must have the same model parameters, optimizer kind
// and dropout seed; compiled programs stay valid (they share the Store's
// tensors, which Load overwrites in place).
func (t *Trainer) Load(dir string) (json.RawMessage, error) {
	b, err := os.ReadFile(filepath.Join(dir, TrainerFile))
	if err != nil {
		return nil, errors.Wrap(err, "train: checkpoint")
	}
	var ts trainerState
	if err := json.Unmarshal(b, &ts); err != nil {
		return nil, errors.Wrapf(err, "train: %s", filepath.Join(dir, TrainerFile))
	}
	if ts.Format != checkpointFormat {
		return nil, errors.Errorf("train: checkpoint format %q, want %q", ts.Format, checkpointFormat)
	}
	if kind := t.cfg.Optimizer.Kind(); ts.Optimizer != kind {
		return nil, errors.Errorf("train: checkpoint optimizer is %s, this trainer's is %s", ts.Optimizer, kind)
	}
	if ts.DropoutSeed != t.cfg.DropoutSeed {
		return nil, errors.Errorf("train: checkpoint dropout seed is %d, this trainer's is %d", ts.DropoutSeed, t.cfg.DropoutSeed)
	}
	if ts.Dtype != t.store.Dtype().String() {
		return nil, errors.Errorf("train: checkpoint dtype is %s, the store's is %v", ts.Dtype, t.store.Dtype())
	}
	if ts.Step < 0 || ts.ScheduleStep != ts.Step {
		return nil, errors.Errorf("train: checkpoint step %d and schedule step %d", ts.Step, ts.ScheduleStep)
	}
	opt, _, err := ReadSafetensors(filepath.Join(dir, OptimizerFile))
	if err != nil {
		return nil, err
	}
	if err := LoadWeights(filepath.Join(dir, ModelFile), t.store); err != nil {
		return nil, err
	}
	if ts.OptimizerSteps == nil {
		ts.OptimizerSteps = map[string]int64{}
	}
	if err := t.cfg.Optimizer.SetState(State{Steps: ts.OptimizerSteps, Tensors: opt}); err != nil {
		return nil, errors.Wrapf(err, "train: %s", filepath.Join(dir, OptimizerFile))
	}
	t.step, t.dropout = ts.Step, ts.DropoutCalls
	t.loop = loopState{}
	if ts.Loop != nil {
		t.loop = *ts.Loop
	}
	return ts.DataPosition, nil
}

// LoadConfig decodes dir's config.json into v.
func LoadConfig(dir string, v any) error {
	b, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		return errors.Wrap(err, "train: checkpoint config")
	}
	return errors.Wrapf(json.Unmarshal(b, v), "train: %s", filepath.Join(dir, ConfigFile))
}

// SaveWeights writes the store's tensors to a safetensors file, named as in
// the store (PyTorch state-dict names), with metadata format "pt" so that
// transformers-style loaders accept it.
func SaveWeights(path string, s *blocks.Store) error {
	ts := map[string]*tensor.Dense{}
	for _, name := range s.Names() {
		ts[name], _ = s.Get(name)
	}
	return WriteSafetensors(path, ts, map[string]string{"format": "pt"})
}

// LoadWeights sets every tensor of s from a safetensors file, which must hold
// exactly the store's names with the same shapes (F32 or F64; values are
// converted to the store's type).
func LoadWeights(path string, s *blocks.Store) error {
	ts, _, err := ReadSafetensors(path)
	if err != nil {
		return err
	}
	for _, name := range s.Names() {
		if _, ok := ts[name]; !ok {
			return errors.Errorf("train: %s lacks parameter %q", path, name)
		}
	}
	for _, name := range sortedKeys(ts) {
		w, ok := s.Get(name)
		if !ok {
			return errors.Errorf("train: %s has tensor %q, which the model does not", path, name)
		}
		if !w.Shape().Eq(ts[name].Shape()) {
			return errors.Errorf("train: %s: %q has shape %v, the model's is %v", path, name, ts[name].Shape(), w.Shape())
		}
		if ts[name].Dtype() != tensor.Float32 && ts[name].Dtype() != tensor.Float64 {
			return errors.Errorf("train: %s: %q is %v, want a float type", path, name, ts[name].Dtype())
		}
	}
	for _, name := range sortedKeys(ts) {
		if err := s.Set(name, f64sOf(ts[name])); err != nil {
			return errors.Wrap(err, "train")
		}
	}
	return nil
}

func f64sOf(t *tensor.Dense) []float64 {
	switch d := t.Data().(type) {
	case []float32:
		out := make([]float64, len(d))
		for i, x := range d {
			out[i] = float64(x)
		}
		return out
	case []float64:
		return d
	}
	return nil
}
