package gpt

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/pkg/errors"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/train"
)

// The files of a HuggingFace openai-gpt model directory.
const (
	ConfigFile  = "config.json"
	WeightsFile = "model.safetensors"
)

// hfConfig is config.json as transformers writes it for openai-gpt: the
// Config keys plus the fields transformers needs to pick the class.
type hfConfig struct {
	Config
	ModelType     string   `json:"model_type"`
	Architectures []string `json:"architectures,omitempty"`
	NCtx          int      `json:"n_ctx,omitempty"`
}

// Save writes the model as a HuggingFace openai-gpt directory: config.json
// and model.safetensors with HF's names and layouts (Conv1D weights
// [in, out]). Both files are written atomically.
func (m *Model) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return errors.Wrap(err, "gpt: save")
	}
	cfg, err := json.MarshalIndent(hfConfig{Config: m.Config, ModelType: "openai-gpt",
		Architectures: []string{"OpenAIGPTLMHeadModel"}, NCtx: m.Config.NPositions}, "", "  ")
	if err != nil {
		return errors.Wrap(err, "gpt: save config")
	}
	if err := train.WriteFileAtomic(filepath.Join(dir, ConfigFile), append(cfg, '\n')); err != nil {
		return errors.Wrap(err, "gpt: save config")
	}
	ts := map[string]*tensor.Dense{}
	for _, n := range m.Store.Names() {
		ts[n], _ = m.Store.Get(n)
	}
	return errors.Wrap(train.WriteSafetensors(filepath.Join(dir, WeightsFile), ts, map[string]string{"format": "pt"}), "gpt: save weights")
}

// ReadConfig reads and validates dir/config.json.
func ReadConfig(dir string) (Config, error) {
	path := filepath.Join(dir, ConfigFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, errors.Wrap(err, "gpt")
	}
	hc := hfConfig{Config: Paper()} // transformers' defaults for absent keys
	if err := json.Unmarshal(b, &hc); err != nil {
		return Config{}, errors.Wrapf(err, "gpt: %s", path)
	}
	if hc.ModelType != "" && hc.ModelType != "openai-gpt" {
		return Config{}, errors.Errorf("gpt: %s: model_type %q is not openai-gpt", path, hc.ModelType)
	}
	if err := hc.Config.Validate(); err != nil {
		return Config{}, errors.Wrapf(err, "gpt: %s", path)
	}
	return hc.Config, nil
}

// Load reads a HuggingFace openai-gpt directory (config.json,
// model.safetensors), written by Save or by transformers'
// save_pretrained(safe_serialization=True). Names may carry the
// "transformer." prefix of OpenAIGPTLMHeadModel; lm_head.weight must equal
// the tied tokens_embed.weight; the attention's causal-mask buffers
// (h.{i}.attn.bias) are ignored. Every missing, extra or misshapen tensor
// is reported at once.
func Load(dir string) (*Model, error) { return LoadWith(dir, nil) }

// LoadWith is Load for a directory that holds more than the language
// model, such as a task head's tensors: claim is called with each tensor
// that is not the model's own (its name as in the file) and returns true
// to take it; any tensor left unclaimed is an error, as in Load.
func LoadWith(dir string, claim func(name string, t *tensor.Dense) bool) (*Model, error) {
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
		return nil, errors.Wrap(err, "gpt")
	}
	var problems []string
	seen := map[string]bool{}
	var lmHead *tensor.Dense
	for _, raw := range sortedKeys(ts) {
		t := ts[raw]
		name := strings.TrimPrefix(raw, "transformer.")
		switch {
		case name == "lm_head.weight":
			lmHead = t
			continue
		case strings.HasPrefix(name, "h.") && strings.HasSuffix(name, ".attn.bias") && t.Dims() == 4:
			continue
		}
		p, ok := m.Store.Get(name)
		if !ok {
			if claim == nil || !claim(raw, t) {
				problems = append(problems, "unexpected tensor "+raw)
			}
			continue
		}
		seen[name] = true
		if !p.Shape().Eq(t.Shape()) {
			problems = append(problems, errors.Errorf("%s has shape %v, the config needs %v", raw, t.Shape(), p.Shape()).Error())
			continue
		}
		if err := m.Store.Set(name, asFloat64s(t)); err != nil {
			problems = append(problems, err.Error())
		}
	}
	for _, n := range m.Store.Names() {
		if !seen[n] {
			problems = append(problems, "missing tensor "+n)
		}
	}
	if lmHead != nil && len(problems) == 0 {
		we, _ := m.Store.Get("tokens_embed.weight")
		if !lmHead.Shape().Eq(we.Shape()) || !slices.Equal(asFloat64s(lmHead), asFloat64s(we)) {
			problems = append(problems, "lm_head.weight differs from tokens_embed.weight: GPT ties them")
		}
	}
	if len(problems) > 0 {
		return nil, errors.Errorf("gpt: %s: %s", path, strings.Join(problems, "; "))
	}
	return m, nil
}

func sortedKeys(m map[string]*tensor.Dense) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func asFloat64s(t *tensor.Dense) []float64 {
	switch d := t.Data().(type) {
	case []float32:
		out := make([]float64, len(d))
		for i, v := range d {
			out[i] = float64(v)
		}
		return out
	case []float64:
		return d
	case []int64:
		out := make([]float64, len(d))
		for i, v := range d {
			out[i] = float64(v)
		}
		return out
	}
	return nil
}
