package transformer

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pkg/errors"

	"github.com/seq2gpt/seq2gpt/train"
)

// The files of a model directory.
const (
	ConfigFile  = "config.json"
	WeightsFile = "model.safetensors"
)

// fileConfig is config.json: the model type, then the Config keys.
type fileConfig struct {
	ModelType     string   `json:"model_type"`
	Architectures []string `json:"architectures,omitempty"`
	Config
}

// Save writes the model as a directory: config.json (model_type
// "transformer" and the Config keys) and model.safetensors with the
// store's names (each shared tensor once: no tgt_embed.weight with
// ShareEmbeddings, no generator.weight with TieOutput). Both files are
// written atomically.
func (m *Model) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return errors.Wrap(err, "transformer: save")
	}
	b, err := json.MarshalIndent(fileConfig{ModelType: ModelType, Architectures: []string{"Translator"}, Config: m.Config}, "", "  ")
	if err != nil {
		return errors.Wrap(err, "transformer: save config")
	}
	if err := train.WriteFileAtomic(filepath.Join(dir, ConfigFile), append(b, '\n')); err != nil {
		return errors.Wrap(err, "transformer: save config")
	}
	return errors.Wrap(train.SaveWeights(filepath.Join(dir, WeightsFile), m.Store), "transformer: save weights")
}

// ReadConfig reads and validates dir/config.json. Its model_type must be
// "transformer"; keys it lacks take Base's values.
func ReadConfig(dir string) (Config, error) {
	path := filepath.Join(dir, ConfigFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, errors.Wrap(err, "transformer")
	}
	fc := fileConfig{Config: Base()}
	if err := json.Unmarshal(b, &fc); err != nil {
		return Config{}, errors.Wrapf(err, "transformer: %s", path)
	}
	if fc.ModelType != ModelType {
		return Config{}, errors.Errorf("transformer: %s: model_type %q is not %q: this is not a Transformer model directory", path, fc.ModelType, ModelType)
	}
	if err := fc.Config.Validate(); err != nil {
		return Config{}, errors.Wrapf(err, "transformer: %s", path)
	}
	return fc.Config, nil
}

// Load reads a model directory that Save wrote, or one written from the
// torch Translator of the package doc: its state dict may also carry the
// second name of a shared tensor (tgt_embed.weight with
// share_embeddings, generator.weight with tie_output), which must then
// equal the first. Every missing, extra or misshapen tensor is reported at
// once.
func Load(dir string) (*Model, error) {
	cfg, err := ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	m, err := New(cfg, 0)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, WeightsFile)
	ts, _, err := train.ReadSafetensors(path)
	if err != nil {
		return nil, errors.Wrap(err, "transformer")
	}
	aliases := map[string]string{} // a shared tensor's second name → its store name
	if cfg.ShareEmbeddings {
		aliases["tgt_embed.weight"] = "src_embed.weight"
	}
	if cfg.TieOutput {
		aliases["generator.weight"] = m.TgtEmbed.Prefix + ".weight"
	}
	var problems []string
	for alias, name := range aliases {
		if a, ok := ts[alias]; ok {
			if w, ok := ts[name]; ok && (!a.Shape().Eq(w.Shape()) || !slices.Equal(float64s(a.Data()), float64s(w.Data()))) {
				problems = append(problems, alias+" differs from "+name+", which the config shares with it")
			}
			if _, ok := ts[name]; !ok {
				ts[name] = a
			}
			delete(ts, alias)
		}
	}
	for _, n := range m.Store.Names() {
		w, _ := m.Store.Get(n)
		f, ok := ts[n]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("missing tensor %s %v", n, w.Shape()))
		case !f.Shape().Eq(w.Shape()):
			problems = append(problems, fmt.Sprintf("%s has shape %v, the config needs %v", n, f.Shape(), w.Shape()))
		case float64s(f.Data()) == nil:
			problems = append(problems, fmt.Sprintf("%s is %v, want a float type", n, f.Dtype()))
		}
	}
	var extra []string
	for n := range ts {
		if _, ok := m.Store.Get(n); !ok {
			extra = append(extra, "unexpected tensor "+n)
		}
	}
	slices.Sort(extra)
	if problems = append(problems, extra...); len(problems) > 0 {
		return nil, errors.Errorf("transformer: %s does not fit the config (%d problems): %s", path, len(problems), strings.Join(problems, "; "))
	}
	for _, n := range m.Store.Names() {
		if err := m.Store.Set(n, float64s(ts[n].Data())); err != nil {
			return nil, errors.Wrapf(err, "transformer: %s", path)
		}
	}
	return m, nil
}

// float64s is float data as float64 (nil for other types).
func float64s(data any) []float64 {
	switch d := data.(type) {
	case []float32:
		out := make([]float64, len(d))
		for i, v := range d {
			out[i] = float64(v)
		}
		return out
	case []float64:
		return d
	}
	return nil
}
