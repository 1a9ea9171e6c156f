package train

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

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
//	                       position, Run's best-evaluation state
//
// Each file is written atomically; trainer.json is written last, so a
// directory whose trainer.json is present and readable holds a complete
// checkpoint (a crash mid-save leaves the previous trainer.json, whose step
// may then disagree with newer weights: save each checkpoint to a new
// directory to keep the previous one whole, as Run does; see
// CheckpointPath).
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

// LoadOptions relaxes LoadWeightsWith.
type LoadOptions struct {
	// Partial loads the tensors the file and the model share and reports
	// the model's tensors the file lacks (Missing) and the file's the model
	// lacks (Unexpected) instead of failing: new task heads on a pretrained
	// body, or a body without the pre-training head. Shape and dtype
	// mismatches of shared names are still errors.
	Partial bool
	// ConvertDtype accepts F32 tensors into a Float64 store and F64 into a
	// Float32 one (rounding), e.g. torch's float32 weights for a float64
	// gradient check.
	ConvertDtype bool
}

// LoadReport says what LoadWeightsWith did: names in store order (Loaded,
// Missing) or sorted (Unexpected).
type LoadReport struct {
	Loaded, Missing, Unexpected []string
}

// LoadWeights sets every tensor of s from a safetensors file, which must
// hold exactly the store's names with the same shapes and element type.
// Every mismatch is reported in one error, each named, and on error the
// store is left unchanged.
func LoadWeights(path string, s *blocks.Store) error {
	_, err := LoadWeightsWith(path, s, LoadOptions{})
	return err
}

// LoadWeightsPartial loads the tensors a file shares with the store (see
// LoadOptions.Partial) and reports which were loaded, missing and
// unexpected.
func LoadWeightsPartial(path string, s *blocks.Store) (LoadReport, error) {
	return LoadWeightsWith(path, s, LoadOptions{Partial: true})
}

// LoadWeightsWith loads a safetensors file into s, validating every name,
// shape and element type first and reporting all mismatches at once (a
// checkpoint of another configuration usually differs in many tensors, and
// one error at a time would make fixing it a loop). On error nothing is set.
// A truncated or corrupt file is an error.
func LoadWeightsWith(path string, s *blocks.Store, o LoadOptions) (LoadReport, error) {
	var rep LoadReport
	ts, _, err := ReadSafetensors(path)
	if err != nil {
		return rep, err
	}
	var problems []string
	for _, name := range s.Names() {
		w, _ := s.Get(name)
		f, ok := ts[name]
		if !ok {
			rep.Missing = append(rep.Missing, name)
			if !o.Partial {
				problems = append(problems, fmt.Sprintf("missing %q %v", name, w.Shape()))
			}
			continue
		}
		ok = true
		if !w.Shape().Eq(f.Shape()) {
			problems = append(problems, fmt.Sprintf("%q has shape %v, the model's is %v", name, f.Shape(), w.Shape()))
			ok = false
		}
		switch {
		case f.Dtype() != tensor.Float32 && f.Dtype() != tensor.Float64:
			problems = append(problems, fmt.Sprintf("%q is %v, want a float type", name, f.Dtype()))
			ok = false
		case f.Dtype() != w.Dtype() && !o.ConvertDtype:
			problems = append(problems, fmt.Sprintf("%q is %v, the model's is %v (LoadOptions.ConvertDtype converts)",
				name, f.Dtype(), w.Dtype()))
			ok = false
		}
		if ok {
			rep.Loaded = append(rep.Loaded, name)
		}
	}
	for _, name := range sortedKeys(ts) {
		if _, ok := s.Get(name); !ok {
			rep.Unexpected = append(rep.Unexpected, name)
			if !o.Partial {
				problems = append(problems, fmt.Sprintf("unexpected %q %v", name, ts[name].Shape()))
			}
		}
	}
	if len(problems) > 0 {
		return LoadReport{}, errors.Errorf("train: %s does not match the model (%d problems): %s",
			path, len(problems), strings.Join(problems, "; "))
	}
	for _, name := range rep.Loaded {
		if err := s.Set(name, f64sOf(ts[name])); err != nil {
			return LoadReport{}, errors.Wrapf(err, "train: %s", path)
		}
	}
	return rep, nil
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
