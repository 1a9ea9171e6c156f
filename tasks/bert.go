package tasks

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/bert"
	"github.com/seq2gpt/seq2gpt/blocks"
)

// The HuggingFace classes a fine-tuned BERT is saved as.
const (
	BertSequenceClassification = "BertForSequenceClassification"
	BertMultipleChoice         = "BertForMultipleChoice"
)

// BERT is BERT as a task body (Devlin et al. 2018, §3.2 and §4, Figure 4):
// an input is [CLS] a [SEP] or [CLS] a [SEP] b [SEP], with segment ids 0
// through the first [SEP] and 1 after it; the feature is the pooled [CLS]
// state, tanh(h_L,[CLS]·W_pᵀ + b_p); a pair is read in one order (the
// segment embeddings tell its parts apart); padding is kept out of the
// attention by the padding mask; and there is no auxiliary objective:
// BERT is fine-tuned on the task's loss alone, so λ has no effect and New
// refuses a Config.LMCoef other than 0. Multiple choice is HF's
// BertForMultipleChoice: each choice's [CLS] context [SEP] answer [SEP]
// gets one score from the pooled state, and the softmax is over the
// choices. An input too long for max_position_embeddings loses text
// tokens, never its [CLS] and [SEP]s (Encode).
type BERT struct {
	Model    *bert.Model
	Specials bert.Specials
}

var (
	_ Body  = (*BERT)(nil)
	_ Saver = (*BERT)(nil)
)

// NewBERT makes m, pre-trained with a vocabulary whose special tokens have
// the ids sp (bert.AddSpecials on its tokenizer), a task body. Fine-tuning
// reads the encoder only: a model with the pre-training heads can be
// given, but bert.LoadEncoder leaves them behind (they would be saved with
// the fine-tuned model, unused).
func NewBERT(m *bert.Model, sp bert.Specials) (*BERT, error) {
	if m == nil {
		return nil, errors.New("tasks: NewBERT needs a model")
	}
	if err := sp.Validate(m.Config.VocabSize); err != nil {
		return nil, errors.Wrap(err, "tasks")
	}
	if sp.PAD != m.Config.PadTokenID {
		return nil, errors.Errorf("tasks: %s is %d, the model's pad_token_id %d", bert.PADToken, sp.PAD, m.Config.PadTokenID)
	}
	return &BERT{Model: m, Specials: sp}, nil
}

// Store implements Body.
func (b *BERT) Store() *blocks.Store { return b.Model.Store }

// Width implements Body.
func (b *BERT) Width() int { return b.Model.Config.HiddenSize }

// Template implements Body: [CLS] a [SEP] b [SEP], segment ids, the
// feature at [CLS], one order, max_position_embeddings tokens at most.
func (b *BERT) Template() Template {
	sp := b.Specials
	return Template{Begin: []int{sp.CLS}, Sep: []int{sp.SEP}, End: []int{sp.SEP},
		Pool: PoolFirst, Segments: true, MaxLen: b.Model.Config.MaxPositionEmbeddings}
}

// Head implements Body with HF's layout: "classifier" with a bias, [K, d]
// for BertForSequenceClassification (K = 1 for regression), [1, d] for
// BertForMultipleChoice.
func (b *BERT) Head(Kind) HeadLayout { return HeadLayout{Prefix: "classifier", Bias: true} }

// Features implements Body. Inputs: "ids", "segments" (tensor.Int [n·T])
// and "mask" ([n, T, T], −∞ at padded keys).
//
//	h_L = BERT(ids, segments, mask)          [n, T, d]
//	feature = tanh(h_L,0·W_pᵀ + b_p)         [n, d]
func (b *BERT) Features(g *blocks.Graph, n, steps int, _ bool) (BodyGraph, error) {
	var bg BodyGraph
	m := b.Model
	err := blocks.Build(func() error {
		in := blocks.Must(m.NewInputs(g, n, steps))
		bg.Inputs = in.Nodes()
		bg.Features = blocks.Must(m.Pool(g, blocks.Must(m.Encode(g, in))))
		return nil
	})
	return bg, err
}

// Feed implements Body: each sequence padded with [PAD] to steps tokens,
// its segment ids, and the padding mask.
func (b *BERT) Feed(seqs []Sequence, n, steps int, _ bool) (map[string]G.Value, error) {
	if len(seqs) > n {
		return nil, errors.Errorf("tasks: %d sequences for %d rows", len(seqs), n)
	}
	in := make([]bert.Sequence, len(seqs))
	for i, s := range seqs {
		in[i] = bert.Sequence{IDs: s.IDs, Segments: s.Types}
	}
	r, err := b.Model.Pad(in, n, steps)
	if err != nil {
		return nil, errors.Wrap(err, "tasks")
	}
	return b.Model.Values(r)
}

// bertHeadConfig is config.json of a BERT head model as transformers
// writes it: BertConfig and PretrainedConfig's label maps, problem type
// and classifier dropout.
type bertHeadConfig struct {
	bertConfig
	ModelType         string            `json:"model_type"`
	Architectures     []string          `json:"architectures"`
	ID2Label          map[string]string `json:"id2label"`
	Label2ID          map[string]int    `json:"label2id"`
	ProblemType       *string           `json:"problem_type"`
	FinetuningTask    *string           `json:"finetuning_task"`
	ClassifierDropout *float64          `json:"classifier_dropout"`
}

// bertConfig is bert.Config's fields without its MarshalJSON, which writes
// the pre-training architecture.
type bertConfig bert.Config

// HFConfig implements Saver: config.json as transformers writes it for
// BertForSequenceClassification (classification, entailment, similarity,
// regression) or BertForMultipleChoice: the BertConfig keys,
// architectures, id2label and label2id, problem_type, finetuning_task and
// classifier_dropout (the head dropout).
func (b *BERT) HFConfig(m *Model) any {
	h := hfHeadOf(m.Task, BertSequenceClassification, BertMultipleChoice)
	name, drop := m.Task.Name, m.Config.HeadDropout
	hc := bertHeadConfig{bertConfig: bertConfig(b.Model.Config), ModelType: bert.ModelType, Architectures: []string{h.arch},
		ID2Label: h.id2label, Label2ID: h.label2id, ProblemType: h.problem, FinetuningTask: &name, ClassifierDropout: &drop}
	hc.NSP = false
	return hc
}

// HFWeights implements Saver: the store's names are HF's already
// ("bert.…" and "classifier.…").
func (b *BERT) HFWeights(m *Model) map[string]*tensor.Dense {
	ts := map[string]*tensor.Dense{}
	for _, n := range m.Store().Names() {
		ts[n], _ = m.Store().Get(n)
	}
	return ts
}

// LoadBERT reads a fine-tuned BERT directory: one Save wrote, a training
// checkpoint of one, or one transformers wrote for
// BertForSequenceClassification or BertForMultipleChoice (safetensors);
// sp are its vocabulary's special tokens (bert.AddSpecials on the
// tokenizer saved beside it). task, when not nil, says what the
// directory's task.json would (a directory transformers wrote has none).
// The head's shape must fit the task; every missing or extra head tensor
// is reported at once.
func LoadBERT(dir string, sp bert.Specials, task *Task) (*Model, error) {
	hc := bertHeadConfig{}
	path := filepath.Join(dir, bert.ConfigFile)
	js, err := os.ReadFile(path)
	if err != nil {
		return nil, errors.Wrap(err, "tasks")
	}
	if err := json.Unmarshal(js, &hc); err != nil {
		return nil, errors.Wrapf(err, "tasks: %s", path)
	}
	if hc.ModelType != bert.ModelType {
		return nil, errors.Errorf("tasks: %s holds a model of model_type %q, not a BERT (%q)", dir, hc.ModelType, bert.ModelType)
	}
	if len(hc.Architectures) > 0 && hc.Architectures[0] != BertSequenceClassification && hc.Architectures[0] != BertMultipleChoice {
		return nil, errors.Errorf("tasks: %s holds a %s, a pre-trained BERT with no task head: fine-tune it first", dir, hc.Architectures[0])
	}
	tf, err := readTaskFile(dir)
	if err != nil {
		return nil, err
	}
	cfg := DefaultConfig()
	cfg.LMCoef = 0
	if hc.ClassifierDropout != nil {
		cfg.HeadDropout = *hc.ClassifierDropout
	} else if hc.HiddenDropoutProb > 0 {
		cfg.HeadDropout = hc.HiddenDropoutProb // BertForSequenceClassification's default
	}
	switch {
	case task != nil:
	case tf != nil:
		k, err := ParseKind(tf.Kind)
		if err != nil {
			return nil, errors.Wrapf(err, "tasks: %s", dir)
		}
		task = &Task{Name: tf.Task, Kind: k, Labels: tf.Labels, GLUE: tf.GLUE, Metric: tf.Metric, Constructed: tf.Constructed}
		cfg = tf.Config
	default:
		return nil, errors.Errorf("tasks: %s has no %s: say which task its head is for", dir, TaskFile)
	}
	want := BertSequenceClassification
	if task.Kind == MultipleChoice {
		want = BertMultipleChoice
	}
	if len(hc.Architectures) > 0 && hc.Architectures[0] != want {
		return nil, errors.Errorf("tasks: %s holds a %s, a %s task needs a %s", dir, hc.Architectures[0], task.Kind, want)
	}
	head := map[string]*tensor.Dense{}
	m, err := bert.LoadEncoder(dir, func(name string, t *tensor.Dense) bool {
		if strings.HasPrefix(name, "classifier.") {
			head[name] = t
			return true
		}
		return false
	})
	if err != nil {
		return nil, err
	}
	body, err := NewBERT(m, sp)
	if err != nil {
		return nil, err
	}
	lay := body.Head(task.Kind)
	var problems []string
	for _, n := range []string{lay.Prefix + ".weight", lay.Prefix + ".bias"} {
		if _, ok := head[n]; !ok {
			problems = append(problems, "missing tensor "+n)
		}
	}
	for _, n := range slices.Sorted(maps.Keys(head)) {
		if n != lay.Prefix+".weight" && n != lay.Prefix+".bias" {
			problems = append(problems, "unexpected tensor "+n)
			continue
		}
		if _, err := m.Store.Add(n, head[n].Shape().Clone(), blocks.Zeros()); err != nil {
			return nil, err
		}
		if err := m.Store.SetTensor(n, head[n]); err != nil {
			return nil, err
		}
	}
	if len(problems) > 0 {
		return nil, errors.Errorf("tasks: %s: %s", filepath.Join(dir, bert.WeightsFile), strings.Join(problems, "; "))
	}
	md, err := New(body, *task, cfg)
	if err != nil {
		return nil, errors.Wrapf(err, "tasks: %s", dir)
	}
	return md, nil
}

// readTaskFile reads dir/task.json; nil when there is none.
func readTaskFile(dir string) (*taskFile, error) {
	b, err := os.ReadFile(filepath.Join(dir, TaskFile))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, errors.Wrap(err, "tasks")
	}
	tf := &taskFile{Config: DefaultConfig()}
	if err := json.Unmarshal(b, tf); err != nil {
		return nil, errors.Wrapf(err, "tasks: %s", filepath.Join(dir, TaskFile))
	}
	return tf, nil
}
