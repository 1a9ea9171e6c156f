package bert

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

// The files of a HuggingFace BERT model directory.
const (
	ConfigFile  = "config.json"
	WeightsFile = "model.safetensors"
)

// Save writes the model as a HuggingFace BertForPreTraining directory:
// config.json and model.safetensors with HF's names and layouts (the
// decoder tied to the word embeddings is not written twice, as
// save_pretrained does not). Both files are written atomically.
func (m *Model) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return errors.Wrap(err, "bert: save")
	}
	cfg, err := json.MarshalIndent(m.Config, "", "  ")
	if err != nil {
		return errors.Wrap(err, "bert: save config")
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, ConfigFile), append(cfg, '\n')); err != nil {
		return errors.Wrap(err, "bert: save config")
	}
	ts := map[string]*tensor.Dense{}
	for _, n := range m.Store.Names() {
		ts[n], _ = m.Store.Get(n)
	}
	return errors.Wrap(safetensors.Write(filepath.Join(dir, WeightsFile), ts, map[string]string{"format": "pt"}), "bert: save weights")
}

// ReadConfig reads and validates dir/config.json (HF's BertConfig, see
// ParseConfig; absent keys take BertConfig's defaults).
func ReadConfig(dir string) (Config, error) {
	path := filepath.Join(dir, ConfigFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, errors.Wrap(err, "bert")
	}
	c, err := parseConfig(b, Base())
	if err != nil {
		return Config{}, errors.Wrapf(err, "bert: %s", path)
	}
	return c, nil
}

// Load reads a HuggingFace BERT directory (config.json, model.safetensors)
// written by Save or by transformers' save_pretrained(safe_serialization=
// True) from BertForPreTraining or BertForMaskedLM (with a pooler): every
// tensor of the encoder, the pooler and the MLM head must be there. The
// NSP head (cls.seq_relationship) is loaded when present and turns
// Config.NSP on. Accepted and checked, not loaded: the decoder tied to the
// word embeddings (cls.predictions.decoder.weight and .bias, which must
// equal bert.embeddings.word_embeddings.weight and cls.predictions.bias)
// and the position_ids buffer. LayerNorm gains and biases may be named
// gamma and beta, as in checkpoints converted from BERT's TensorFlow
// release. Every missing, extra or misshapen tensor is reported at once.
// The weights' header is read first: a config whose model is larger than
// the file's weights is refused before anything is allocated.
func Load(dir string) (*Model, error) { return load(dir, true, nil) }

// LoadEncoder reads the encoder of a HuggingFace BERT directory, as
// BertModel.from_pretrained does: the embeddings, layers and pooler (named
// "bert.…", or without the prefix as BertModel saves them), leaving out
// the pre-training heads (cls.*) if the file has them. The model has no
// MLM head (see NewEncoder). claim, when not nil, is offered every other
// tensor by its name in the file — a fine-tuned model's head, such as
// "classifier.weight" — and returns whether it takes it; tensors nobody
// takes are reported as unexpected.
func LoadEncoder(dir string, claim func(name string, t *tensor.Dense) bool) (*Model, error) {
	return load(dir, false, claim)
}

func load(dir string, heads bool, claim func(string, *tensor.Dense) bool) (*Model, error) {
	cfg, err := ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, WeightsFile)
	h, err := safetensors.ReadHeader(path)
	if err != nil {
		return nil, errors.Wrap(err, "bert")
	}
	if !heads {
		cfg.NSP = false
	} else if _, ok := h.Tensors["cls.seq_relationship.weight"]; ok {
		cfg.NSP = true
	}
	if err := fitsWeights(cfg, h, heads); err != nil {
		return nil, errors.Wrapf(err, "bert: %s does not fit %s", filepath.Join(dir, ConfigFile), path)
	}
	raw, _, err := safetensors.Read(path)
	if err != nil {
		return nil, errors.Wrap(err, "bert")
	}
	m, err := build(cfg, 0, heads)
	if err != nil {
		return nil, err
	}
	var problems []string
	ts := map[string]*tensor.Dense{}
	from := map[string]string{} // our name → the file's
	for _, name := range sortedKeys(raw) {
		n := hfName(name)
		switch {
		case n == "":
		case !heads && strings.HasPrefix(n, "cls."): // BertModel drops the pre-training heads
		case claim != nil && !m.has(n) && claim(name, raw[name]):
		default:
			ts[n], from[n] = raw[name], name
		}
	}
	for _, name := range sortedKeys(ts) {
		t := ts[name]
		if tied, ok := tiedTo[name]; ok {
			p, _ := m.Store.Get(tied)
			if q, ok := ts[tied]; ok {
				p = q
			}
			a, aerr := blocks.Float64s(t)
			b, berr := blocks.Float64s(p)
			if aerr != nil || berr != nil || !t.Shape().Eq(p.Shape()) || !slices.Equal(a, b) {
				problems = append(problems, from[name]+" differs from "+tied+": BERT ties them")
			}
			continue
		}
		p, ok := m.Store.Get(name)
		if !ok {
			problems = append(problems, "unexpected tensor "+from[name])
			continue
		}
		if !p.Shape().Eq(t.Shape()) {
			problems = append(problems, errors.Errorf("%s has shape %v, the config needs %v", from[name], t.Shape(), p.Shape()).Error())
			continue
		}
		if err := m.Store.SetTensor(name, t); err != nil {
			problems = append(problems, err.Error())
		}
	}
	for _, n := range m.Store.Names() {
		if _, ok := ts[n]; !ok {
			problems = append(problems, "missing tensor "+n)
		}
	}
	if len(problems) > 0 {
		return nil, errors.Errorf("bert: %s: %s", path, strings.Join(problems, "; "))
	}
	return m, nil
}

// has reports whether the store holds name.
func (m *Model) has(name string) bool {
	_, ok := m.Store.Get(name)
	return ok
}

// tiedTo names the parameter each tied tensor of HF's layout repeats.
var tiedTo = map[string]string{
	"cls.predictions.decoder.weight": Encoder + ".embeddings.word_embeddings.weight",
	"cls.predictions.decoder.bias":   "cls.predictions.bias",
}

// hfName is the store name of a tensor of an HF file, "" for one to skip
// (the position_ids buffer).
func hfName(name string) string {
	if !strings.HasPrefix(name, Encoder+".") && !strings.HasPrefix(name, "cls.") {
		name = Encoder + "." + name // BertModel's own names
	}
	if strings.HasSuffix(name, ".position_ids") {
		return ""
	}
	if i := strings.LastIndex(name, "LayerNorm."); i >= 0 {
		switch name[i+len("LayerNorm."):] {
		case "gamma":
			name = name[:i] + "LayerNorm.weight"
		case "beta":
			name = name[:i] + "LayerNorm.bias"
		}
	}
	return name
}

func sortedKeys(m map[string]*tensor.Dense) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// fitsWeights checks, from the header alone, that the model cfg describes
// (with the MLM head when heads) is no larger than the file's weights
// (tied copies, buffers and, for an encoder, the heads left out), so that
// building it allocates no more than the file justifies. A config of the
// same size or smaller is built and compared tensor by tensor.
func fitsWeights(cfg Config, h safetensors.Header, heads bool) error {
	want, err := cfg.numParams(heads)
	if err != nil {
		return err
	}
	var have int64
	head := false
	for _, raw := range h.Names() {
		n := hfName(raw)
		head = head || strings.HasPrefix(n, "cls.predictions.")
		if _, tied := tiedTo[n]; n == "" || tied || (!heads && !strings.HasPrefix(n, Encoder+".")) {
			continue
		}
		k := int64(1)
		for _, d := range h.Tensors[raw].Shape {
			k *= int64(d) // bounded by the file's size (safetensors checks)
		}
		have += k
	}
	if int64(want) <= have {
		return nil
	}
	msg := fmt.Sprintf("the config's model has %d weights, the file %d", want, have)
	if heads && !head {
		msg += "; the file has no MLM head (cls.predictions.*), as a BertModel's or a fine-tuned model's has none: LoadEncoder reads it"
	}
	return errors.New(msg)
}
