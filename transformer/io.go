package transformer

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pkg/errors"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/internal/atomicfile"
	"github.com/seq2gpt/seq2gpt/safetensors"
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

// FileConfig is what config.json holds: model_type "transformer", then the
// Config keys. Give it to train.LoopConfig.Config so that the Trainer's
// checkpoints are model directories Load reads.
func (m *Model) FileConfig() any {
	return fileConfig{ModelType: ModelType, Architectures: []string{"Translator"}, Config: m.Config}
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
	b, err := json.MarshalIndent(m.FileConfig(), "", "  ")
	if err != nil {
		return errors.Wrap(err, "transformer: save config")
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, ConfigFile), append(b, '\n')); err != nil {
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
// once. The weights' header is read first: a config whose model is larger
// than the file's weights is refused before anything is allocated.
func Load(dir string) (*Model, error) {
	cfg, err := ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, WeightsFile)
	h, err := safetensors.ReadHeader(path)
	if err != nil {
		return nil, errors.Wrap(err, "transformer")
	}
	aliases := cfg.aliases()
	var have float64
	for name, info := range h.Tensors {
		if _, ok := aliases[name]; ok {
			continue
		}
		n := 1.0
		for _, d := range info.Shape {
			n *= float64(d)
		}
		have += n
	}
	if want := cfg.NumParams(); want > have {
		return nil, errors.Errorf("transformer: %s does not fit %s: the config's model has %.0f weights, the file %.0f",
			filepath.Join(dir, ConfigFile), path, want, have)
	}
	m, err := New(cfg, 0)
	if err != nil {
		return nil, err
	}
	ts, _, err := safetensors.Read(path)
	if err != nil {
		return nil, errors.Wrap(err, "transformer")
	}
	var problems []string
	for alias, name := range aliases {
		a, ok := ts[alias]
		if !ok {
			continue
		}
		if w, ok := ts[name]; !ok {
			ts[name] = a
		} else if !a.Shape().Eq(w.Shape()) || !equal(a, w) {
			problems = append(problems, alias+" differs from "+name+", which the config shares with it")
		}
		delete(ts, alias)
	}
	for _, n := range m.Store.Names() {
		w, _ := m.Store.Get(n)
		switch f, ok := ts[n]; {
		case !ok:
			problems = append(problems, fmt.Sprintf("missing tensor %s %v", n, w.Shape()))
		case !f.Shape().Eq(w.Shape()):
			problems = append(problems, fmt.Sprintf("%s has shape %v, the config needs %v", n, f.Shape(), w.Shape()))
		}
	}
	var extra []string
	for n := range ts {
		if _, ok := m.Store.Get(n); !ok {
			extra = append(extra, "unexpected tensor "+n)
		}
	}
	slices.Sort(extra)
	if problems = append(problems, extra...); len(problems) == 0 {
		for _, n := range m.Store.Names() {
			if err := m.Store.SetTensor(n, ts[n]); err != nil {
				problems = append(problems, err.Error())
			}
		}
	}
	if len(problems) > 0 {
		return nil, errors.Errorf("transformer: %s does not fit the config (%d problems): %s", path, len(problems), strings.Join(problems, "; "))
	}
	return m, nil
}

// aliases maps the second name of each tensor the config shares to the
// name the store holds it under.
func (c Config) aliases() map[string]string {
	a := map[string]string{}
	tgt := "tgt_embed.weight"
	if c.ShareEmbeddings {
		a[tgt], tgt = "src_embed.weight", "src_embed.weight"
	}
	if c.TieOutput {
		a["generator.weight"] = tgt
	}
	return a
}

// equal says whether two tensors hold the same values.
func equal(a, b *tensor.Dense) bool {
	x, errA := blocks.Float64s(a)
	y, errB := blocks.Float64s(b)
	return errA == nil && errB == nil && slices.Equal(x, y)
}
