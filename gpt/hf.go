package gpt

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/pkg/errors"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/internal/atomicfile"
	"github.com/seq2gpt/seq2gpt/safetensors"
)

// The files of a HuggingFace openai-gpt model directory.
const (
	ConfigFile  = "config.json"
	WeightsFile = "model.safetensors"
)

// Save writes the model as a HuggingFace openai-gpt directory: config.json
// and model.safetensors with HF's names and layouts (Conv1D weights
// [in, out]). Both files are written atomically.
func (m *Model) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return errors.Wrap(err, "gpt: save")
	}
	cfg, err := json.MarshalIndent(m.Config, "", "  ")
	if err != nil {
		return errors.Wrap(err, "gpt: save config")
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, ConfigFile), append(cfg, '\n')); err != nil {
		return errors.Wrap(err, "gpt: save config")
	}
	ts := map[string]*tensor.Dense{}
	for _, n := range m.Store.Names() {
		ts[n], _ = m.Store.Get(n)
	}
	return errors.Wrap(safetensors.Write(filepath.Join(dir, WeightsFile), ts, map[string]string{"format": "pt"}), "gpt: save weights")
}

// ReadConfig reads and validates dir/config.json (see ParseConfig; keys it
// does not hold take transformers' defaults, the paper's configuration).
func ReadConfig(dir string) (Config, error) {
	path := filepath.Join(dir, ConfigFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, errors.Wrap(err, "gpt")
	}
	c, err := parseConfig(b, Paper())
	if err != nil {
		return Config{}, errors.Wrapf(err, "gpt: %s", path)
	}
	return c, nil
}

// Load reads a HuggingFace openai-gpt directory (config.json,
// model.safetensors), written by Save or by transformers'
// save_pretrained(safe_serialization=True). Names may carry the
// "transformer." prefix of OpenAIGPTLMHeadModel; lm_head.weight must equal
// the tied tokens_embed.weight; the attention's causal-mask buffers
// (h.{i}.attn.bias) are ignored. Every missing, extra or misshapen tensor
// is reported at once. The weights' header is read first: a config whose
// model is larger than the file's weights is refused before anything is
// allocated.
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
	path := filepath.Join(dir, WeightsFile)
	h, err := safetensors.ReadHeader(path)
	if err != nil {
		return nil, errors.Wrap(err, "gpt")
	}
	if err := fitsWeights(cfg, h); err != nil {
		return nil, errors.Wrapf(err, "gpt: %s does not fit %s", filepath.Join(dir, ConfigFile), path)
	}
	m, err := New(cfg, 0)
	if err != nil {
		return nil, err
	}
	ts, _, err := safetensors.Read(path)
	if err != nil {
		return nil, errors.Wrap(err, "gpt")
	}
	var problems []string
	seen := map[string]bool{}
	var lmHead, tokens *tensor.Dense
	for _, raw := range sortedKeys(ts) {
		t := ts[raw]
		name := strings.TrimPrefix(raw, "transformer.")
		switch {
		case name == "lm_head.weight":
			lmHead = t
			continue
		case isMaskBuffer(name, len(t.Shape())):
			continue
		case name == "tokens_embed.weight":
			tokens = t
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
		if err := m.Store.SetTensor(name, t); err != nil {
			problems = append(problems, err.Error())
		}
	}
	for _, n := range m.Store.Names() {
		if !seen[n] {
			problems = append(problems, "missing tensor "+n)
		}
	}
	if lmHead != nil && tokens != nil && len(problems) == 0 {
		a, aerr := blocks.Float64s(lmHead)
		b, berr := blocks.Float64s(tokens)
		if aerr != nil || berr != nil || !lmHead.Shape().Eq(tokens.Shape()) || !slices.Equal(a, b) {
			problems = append(problems, "lm_head.weight differs from tokens_embed.weight: GPT ties them")
		}
	}
	if len(problems) > 0 {
		return nil, errors.Errorf("gpt: %s: %s", path, strings.Join(problems, "; "))
	}
	return m, nil
}

// isMaskBuffer tells HF's causal-mask buffers h.{i}.attn.bias [1, 1, n, n]
// from the attention's weights.
func isMaskBuffer(name string, dims int) bool {
	return strings.HasPrefix(name, "h.") && strings.HasSuffix(name, ".attn.bias") && dims == 4
}

// fitsWeights checks, from the header alone, that the model cfg describes
// is no larger than the file's weights, so that building it allocates no
// more than the file justifies. (A config of the same size or smaller is
// built and compared tensor by tensor, every mismatch named.)
func fitsWeights(cfg Config, h safetensors.Header) error {
	want, err := cfg.NumParams()
	if err != nil {
		return err
	}
	var have int64
	layers := 0
	for _, raw := range h.Names() {
		info := h.Tensors[raw]
		name := strings.TrimPrefix(raw, "transformer.")
		if name == "lm_head.weight" || isMaskBuffer(name, len(info.Shape)) {
			continue
		}
		n := int64(1)
		for _, d := range info.Shape {
			n *= int64(d) // bounded by the file's size (safetensors checks)
		}
		have += n
		var i int
		if _, err := fmt.Sscanf(name, "h.%d.", &i); err == nil && i+1 > layers {
			layers = i + 1
		}
	}
	if int64(want) <= have {
		return nil
	}
	msg := fmt.Sprintf("the config's model has %d weights, the file %d", want, have)
	for _, e := range []struct {
		name string
		want []int
	}{{"tokens_embed.weight", []int{cfg.VocabSize, cfg.NEmbd}}, {"positions_embed.weight", []int{cfg.NPositions, cfg.NEmbd}}} {
		info, ok := h.Tensors[e.name]
		if !ok {
			info, ok = h.Tensors["transformer."+e.name]
		}
		if ok && !slices.Equal(info.Shape, e.want) {
			msg += fmt.Sprintf("; %s has shape %v, the config needs %v", e.name, info.Shape, e.want)
		}
	}
	if layers != cfg.NLayer {
		msg += fmt.Sprintf("; the file has %d layers, the config %d", layers, cfg.NLayer)
	}
	return errors.New(msg)
}

func sortedKeys(m map[string]*tensor.Dense) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
