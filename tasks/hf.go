package tasks

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/pkg/errors"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/gpt"
	"github.com/seq2gpt/seq2gpt/internal/atomicfile"
	"github.com/seq2gpt/seq2gpt/safetensors"
)

// The files of a fine-tuned model directory: HuggingFace's config.json
// and model.safetensors, and TaskFile, which says what transformers'
// config cannot (the task, its transform, the special tokens, λ).
const (
	TaskFile = "task.json"

	// The HuggingFace classes a fine-tuned GPT is saved as.
	SequenceClassification = "OpenAIGPTForSequenceClassification"
	DoubleHeads            = "OpenAIGPTDoubleHeadsModel"
)

// Saver is a Body whose fine-tuned model has a HuggingFace layout.
type Saver interface {
	// HFConfig is the model's config.json in the body's HuggingFace head
	// class.
	HFConfig(m *Model) any
	// HFWeights are the model's tensors under that class's names.
	HFWeights(m *Model) map[string]*tensor.Dense
}

// Save writes m to dir in its body's HuggingFace layout (config.json,
// model.safetensors; see GPT.HFConfig and GPT.HFWeights) with task.json
// beside them, each file atomically.
func (m *Model) Save(dir string) error {
	s, ok := m.Body.(Saver)
	if !ok {
		return errors.Errorf("tasks: a %T body has no saved layout", m.Body)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return errors.Wrap(err, "tasks: save")
	}
	if err := writeJSON(filepath.Join(dir, gpt.ConfigFile), s.HFConfig(m)); err != nil {
		return err
	}
	if err := safetensors.Write(filepath.Join(dir, gpt.WeightsFile), s.HFWeights(m), map[string]string{"format": "pt"}); err != nil {
		return errors.Wrap(err, "tasks: save weights")
	}
	return m.WriteTaskFile(dir)
}

// CheckpointConfig is what a training checkpoint of m saves as its
// config.json (train.LoopConfig.Config): the HuggingFace config, so that
// LoadGPT reads the checkpoint as it reads a saved model (the
// checkpoint's weights keep the store's names, without the
// "transformer." prefix, which LoadGPT accepts too).
func (m *Model) CheckpointConfig() (any, error) {
	s, ok := m.Body.(Saver)
	if !ok {
		return nil, errors.Errorf("tasks: a %T body has no saved layout", m.Body)
	}
	return s.HFConfig(m), nil
}

// WriteTaskFile writes dir/task.json: the task, its transform and labels,
// the head's Config and the body's special tokens.
func (m *Model) WriteTaskFile(dir string) error {
	tf := taskFile{Task: m.Task.Name, Kind: m.Task.Kind.String(), Labels: m.Task.Labels, GLUE: m.Task.GLUE,
		Metric: m.Task.Metric, Constructed: m.Task.Constructed, Config: m.Config}
	if b, ok := m.Body.(*GPT); ok {
		tf.Tokens = &GPTTokens{Start: b.Start, Delim: b.Delim, Extract: b.Extract, Pad: b.Pad}
	}
	return writeJSON(filepath.Join(dir, TaskFile), tf)
}

// taskFile is task.json.
type taskFile struct {
	Task        string   `json:"task"`
	Kind        string   `json:"kind"`
	Labels      []string `json:"labels,omitempty"`
	GLUE        string   `json:"glue,omitempty"`
	Metric      string   `json:"metric,omitempty"`
	Constructed bool     `json:"constructed,omitempty"`
	Config      Config   `json:"config"`
	// Tokens are the GPT special tokens' ids.
	Tokens *GPTTokens `json:"gpt_tokens,omitempty"`
}

// GPTTokens are the ids of a GPT body's special tokens.
type GPTTokens struct {
	Start   int `json:"start"`
	Delim   int `json:"delim"`
	Extract int `json:"extract"`
	Pad     int `json:"pad"`
}

// gptConfig is gpt.Config's fields without its MarshalJSON, which writes
// the language model's architecture.
type gptConfig gpt.Config

// hfHeadConfig is config.json of an OpenAIGPT head model as transformers
// writes it: OpenAIGPTConfig (with its sequence-summary fields) and
// PretrainedConfig's label maps, problem type and padding id.
type hfHeadConfig struct {
	gptConfig
	ModelType           string            `json:"model_type"`
	Architectures       []string          `json:"architectures"`
	NCtx                int               `json:"n_ctx"`
	ID2Label            map[string]string `json:"id2label"`
	Label2ID            map[string]int    `json:"label2id"`
	ProblemType         *string           `json:"problem_type"`
	FinetuningTask      *string           `json:"finetuning_task"`
	PadTokenID          *int              `json:"pad_token_id"`
	SummaryType         string            `json:"summary_type"`
	SummaryUseProj      bool              `json:"summary_use_proj"`
	SummaryActivation   *string           `json:"summary_activation"`
	SummaryProjToLabels bool              `json:"summary_proj_to_labels"`
	SummaryFirstDropout float64           `json:"summary_first_dropout"`
	TieWordEmbeddings   bool              `json:"tie_word_embeddings"`
}

// HFConfig implements Saver: config.json as transformers writes it for
// OpenAIGPTForSequenceClassification (classification, entailment,
// similarity, regression) or, for multiple choice,
// OpenAIGPTDoubleHeadsModel: the body's keys, architectures, id2label and
// label2id, problem_type, pad_token_id, finetuning_task, and the summary_*
// fields (cls_index, a projection to one label, the head dropout before
// it).
func (b *GPT) HFConfig(m *Model) any {
	h := hfHeadOf(m.Task, SequenceClassification, DoubleHeads)
	pad, name := b.Pad, m.Task.Name
	return hfHeadConfig{gptConfig: gptConfig(b.Model.Config), ModelType: gpt.ModelType, Architectures: []string{h.arch},
		NCtx: b.Model.Config.NPositions, ID2Label: h.id2label, Label2ID: h.label2id, ProblemType: h.problem,
		PadTokenID: &pad, FinetuningTask: &name, SummaryType: "cls_index", SummaryUseProj: true,
		SummaryProjToLabels: true, SummaryFirstDropout: m.Config.HeadDropout, TieWordEmbeddings: true}
}

// hfHead is what a task says in any body's HF head config: the class
// (seqCls, or mc for multiple choice), id2label and label2id (one
// "LABEL_0" for a regression's score or the choices' scores), and
// problem_type (none for multiple choice).
type hfHead struct {
	arch     string
	id2label map[string]string
	label2id map[string]int
	problem  *string
}

func hfHeadOf(t Task, seqCls, mc string) hfHead {
	h := hfHead{arch: seqCls, id2label: map[string]string{}, label2id: map[string]int{}}
	labels, problem := t.Labels, "single_label_classification"
	switch t.Kind {
	case MultipleChoice:
		h.arch, labels, problem = mc, nil, ""
	case Regression:
		labels, problem = nil, "regression"
	}
	if len(labels) == 0 {
		labels = []string{"LABEL_0"}
	}
	for i, l := range labels {
		h.id2label[strconv.Itoa(i)] = l
		h.label2id[l] = i
	}
	if problem != "" {
		h.problem = &problem
	}
	return h
}

// HFWeights implements Saver with HuggingFace's names: the body under
// "transformer.", the head as Body.Head names it ("score.weight";
// "multiple_choice_head.summary.weight" and ".bias"), and for
// OpenAIGPTDoubleHeadsModel "lm_head.weight", the token embedding it is
// tied to.
//
// transformers reads a pair in one order: for a similarity task its
// logits for A $ B plus those for B $ A are this package's (the score
// layer has no bias).
func (b *GPT) HFWeights(m *Model) map[string]*tensor.Dense {
	ts := map[string]*tensor.Dense{}
	head := m.HeadLayout().Prefix + "."
	for _, n := range m.Store().Names() {
		t, _ := m.Store().Get(n)
		if strings.HasPrefix(n, head) {
			ts[n] = t
			continue
		}
		ts["transformer."+n] = t
	}
	if m.Task.Kind == MultipleChoice {
		ts["lm_head.weight"] = ts["transformer.tokens_embed.weight"]
	}
	return ts
}

func writeJSON(path string, v any) error {
	buf, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return errors.Wrapf(err, "tasks: encoding %s", path)
	}
	return errors.Wrap(atomicfile.WriteFile(path, append(buf, '\n')), "tasks")
}

// LoadGPT reads a fine-tuned GPT directory: one Save wrote, or one
// transformers wrote for OpenAIGPTForSequenceClassification or
// OpenAIGPTDoubleHeadsModel (safetensors). task and tokens, when not
// nil, say what the directory's task.json would (a directory transformers
// wrote has none): then the task is taken from them, else from task.json.
// The head's shape must fit the task; every missing or extra tensor is
// reported at once.
func LoadGPT(dir string, task *Task, tokens *GPTTokens) (*Model, error) {
	hc, err := readHeadConfig(dir)
	if err != nil {
		return nil, err
	}
	if hc.ModelType != "" && hc.ModelType != gpt.ModelType {
		return nil, errors.Errorf("tasks: %s holds a model of model_type %q, not a GPT (%q)", dir, hc.ModelType, gpt.ModelType)
	}
	if len(hc.Architectures) > 0 && hc.Architectures[0] == gpt.Architecture {
		return nil, errors.Errorf("tasks: %s holds a %s, a pre-trained language model with no task head: fine-tune it first", dir, gpt.Architecture)
	}
	tf, err := readTaskFile(dir)
	if err != nil {
		return nil, err
	}
	cfg := DefaultConfig()
	cfg.HeadDropout = hc.SummaryFirstDropout
	switch {
	case task != nil:
	case tf != nil:
		k, err := ParseKind(tf.Kind)
		if err != nil {
			return nil, errors.Wrapf(err, "tasks: %s", filepath.Join(dir, TaskFile))
		}
		task = &Task{Name: tf.Task, Kind: k, Labels: tf.Labels, GLUE: tf.GLUE, Metric: tf.Metric, Constructed: tf.Constructed}
		cfg = tf.Config
	default:
		return nil, errors.Errorf("tasks: %s has no %s: say which task its head is for", dir, TaskFile)
	}
	if tokens == nil && tf != nil {
		tokens = tf.Tokens
	}
	if tokens == nil {
		return nil, errors.Errorf("tasks: %s has no %s: give the special tokens' ids", dir, TaskFile)
	}
	want := SequenceClassification
	if task.Kind == MultipleChoice {
		want = DoubleHeads
	}
	if len(hc.Architectures) > 0 && hc.Architectures[0] != want {
		return nil, errors.Errorf("tasks: %s holds a %s, a %s task needs a %s", dir, hc.Architectures[0], task.Kind, want)
	}
	head := map[string]*tensor.Dense{}
	prefix := (&GPT{}).Head(task.Kind).Prefix + "."
	m, err := gpt.LoadWith(dir, func(name string, t *tensor.Dense) bool {
		if strings.HasPrefix(name, prefix) {
			head[strings.TrimPrefix(name, prefix)] = t
			return true
		}
		return false
	})
	if err != nil {
		return nil, err
	}
	body := &GPT{Model: m, Start: tokens.Start, Delim: tokens.Delim, Extract: tokens.Extract, Pad: tokens.Pad}
	for _, id := range []int{body.Start, body.Delim, body.Extract, body.Pad} {
		if id < 0 || id >= m.Config.VocabSize {
			return nil, errors.Errorf("tasks: special token id %d is outside the vocabulary of %d", id, m.Config.VocabSize)
		}
	}
	lay := body.Head(task.Kind)
	var problems []string
	for _, n := range []string{"weight", "bias"} {
		if _, ok := head[n]; !ok && (n == "weight" || lay.Bias) {
			problems = append(problems, "missing tensor "+prefix+n)
		}
	}
	for _, n := range slices.Sorted(maps.Keys(head)) {
		if n != "weight" && (n != "bias" || !lay.Bias) {
			problems = append(problems, "unexpected tensor "+prefix+n)
			continue
		}
		if _, err := m.Store.Add(prefix+n, head[n].Shape().Clone(), blocks.Zeros()); err != nil {
			return nil, err
		}
		if err := m.Store.SetTensor(prefix+n, head[n]); err != nil {
			return nil, err
		}
	}
	if len(problems) > 0 {
		return nil, errors.Errorf("tasks: %s: %s", filepath.Join(dir, gpt.WeightsFile), strings.Join(problems, "; "))
	}
	md, err := New(body, *task, cfg)
	if err != nil {
		return nil, errors.Wrapf(err, "tasks: %s", dir)
	}
	return md, nil
}

// readHeadConfig reads config.json's head fields (gpt.ReadConfig checks
// the body's).
func readHeadConfig(dir string) (hfHeadConfig, error) {
	hc := hfHeadConfig{SummaryFirstDropout: 0.1}
	path := filepath.Join(dir, gpt.ConfigFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return hc, errors.Wrap(err, "tasks")
	}
	if err := json.Unmarshal(b, &hc); err != nil {
		return hc, errors.Wrapf(err, "tasks: %s", path)
	}
	return hc, nil
}
