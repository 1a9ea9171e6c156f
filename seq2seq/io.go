package seq2seq

import (
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/pkg/errors"

	"github.com/seq2gpt/seq2gpt/internal/atomicfile"
	"github.com/seq2gpt/seq2gpt/train"
)

// WeightsFile is the weights' file name in a model directory.
const WeightsFile = train.ModelFile

// Save writes the model to dir: config.json (Config) and model.safetensors
// (every parameter under its torch state-dict name, float32 or float64 as
// the store is). The torch module Seq2Seq in testdata/gen_seq2seq.py loads
// it with load_state_dict. Both files are written atomically. A training
// checkpoint (train.Run with LoopConfig.Config = m.Config) has the same two
// files, so Load reads it too.
func (m *Model) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return errors.Wrap(err, "seq2seq: save")
	}
	b, err := json.MarshalIndent(m.Config, "", "  ")
	if err != nil {
		return errors.Wrap(err, "seq2seq: save config")
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, ConfigFile), append(b, '\n')); err != nil {
		return errors.Wrap(err, "seq2seq: save config")
	}
	return errors.Wrap(train.SaveWeights(filepath.Join(dir, WeightsFile), m.store), "seq2seq: save weights")
}

// Load reads a model directory written by Save (or a checkpoint of
// train.Run): its config and weights, float32. A directory of another
// model is a *WrongModelError; every missing, extra or misshapen tensor is
// reported at once.
func Load(dir string) (*Model, error) {
	cfg, err := ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	m, err := New(cfg, 0)
	if err != nil {
		return nil, err
	}
	if _, err := train.LoadWeights(filepath.Join(dir, WeightsFile), m.store, nil); err != nil {
		return nil, errors.Wrap(err, "seq2seq: load")
	}
	return m, nil
}
