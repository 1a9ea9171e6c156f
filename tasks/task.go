package tasks

import (
	"fmt"
	"math"
	"strings"

	"github.com/pkg/errors"

	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/metrics"
)

// Kind is one of the input transforms of GPT-1 (§3.3, Figure 1) and its
// head.
type Kind int

const (
	// Classification: [s] text [e] → softmax over the labels.
	Classification Kind = iota
	// Entailment: [s] premise $ hypothesis [e] → softmax over the labels.
	Entailment
	// Similarity: [s] A $ B [e] and [s] B $ A [e], their features added
	// (the pair has no order) → softmax over the labels.
	Similarity
	// MultipleChoice: [s] context $ answer_k [e] for each k → one score per
	// sequence, softmax over the k choices.
	MultipleChoice
	// Regression: the similarity transform with one output and a
	// mean-squared-error loss (STS-B).
	Regression
)

func (k Kind) String() string {
	switch k {
	case Classification:
		return "classification"
	case Entailment:
		return "entailment"
	case Similarity:
		return "similarity"
	case MultipleChoice:
		return "multiple-choice"
	case Regression:
		return "regression"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// ParseKind is the Kind called name (as Kind.String writes it).
func ParseKind(name string) (Kind, error) {
	for k := Classification; k <= Regression; k++ {
		if k.String() == name {
			return k, nil
		}
	}
	return 0, errors.Errorf("tasks: unknown kind %q (want classification, entailment, similarity, multiple-choice or regression)", name)
}

// pairs says whether the kind reads two segments.
func (k Kind) pairs() bool { return k == Entailment || k == Similarity || k == Regression }

// symmetric says whether the pair has no order.
func (k Kind) symmetric() bool { return k == Similarity || k == Regression }

// Task is a labelled task: its transform, its labels and how it is scored.
type Task struct {
	Name string
	Kind Kind
	// Labels are the class labels as the data writes them (Example.Label
	// indexes them); nil for Regression and MultipleChoice.
	Labels []string
	// GLUE is the task's directory name in the GLUE distribution ("SST-2")
	// for the GLUE tasks, "" for the others.
	GLUE string
	// Metric is the metrics.GLUE task whose official metrics score it
	// ("mrpc": F1 and accuracy); "" scores accuracy alone.
	Metric string
	// Constructed says the data set was built rather than collected.
	Constructed bool
}

// Outputs is the head's output count: the labels, or 1 (a score per
// choice, a regression value).
func (t Task) Outputs() int {
	if t.Kind == MultipleChoice || t.Kind == Regression {
		return 1
	}
	return len(t.Labels)
}

// Metrics names the task's metrics, the one checkpoints are chosen by
// first (higher is better for each).
func (t Task) Metrics() []string {
	if t.Kind == Regression {
		return []string{"pearson", "spearman"}
	}
	if t.Metric != "" {
		m, err := metrics.GLUEMetrics(t.Metric)
		if err == nil {
			return m
		}
	}
	return []string{"accuracy"}
}

// Validate checks that the task is complete.
func (t Task) Validate() error {
	if t.Name == "" {
		return errors.New("tasks: task has no name")
	}
	if t.Kind < Classification || t.Kind > Regression {
		return errors.Errorf("tasks: task %s has unknown kind %d", t.Name, t.Kind)
	}
	switch {
	case t.Kind == MultipleChoice || t.Kind == Regression:
		if len(t.Labels) != 0 {
			return errors.Errorf("tasks: %s task %s takes no labels, got %v", t.Kind, t.Name, t.Labels)
		}
	case len(t.Labels) < 2:
		return errors.Errorf("tasks: %s task %s needs at least 2 labels, got %v", t.Kind, t.Name, t.Labels)
	}
	if t.Metric != "" {
		if _, err := metrics.GLUEMetrics(t.Metric); err != nil {
			return errors.Wrapf(err, "tasks: task %s", t.Name)
		}
	}
	return nil
}

// Score computes the task's metrics (Metrics, in order) of predictions
// against the examples' gold labels or scores. An undefined metric (the
// MCC of constant predictions) is a Score that says so.
func (t Task) Score(exs []Example, preds []Prediction) (metrics.Scores, error) {
	if len(exs) != len(preds) {
		return nil, errors.Errorf("tasks: %d examples and %d predictions", len(exs), len(preds))
	}
	if len(exs) == 0 {
		return nil, errors.New("tasks: no examples to score")
	}
	if t.Kind == Regression {
		gold, pred := make([]float64, len(exs)), make([]float64, len(exs))
		for i, ex := range exs {
			if math.IsNaN(ex.Score) {
				return nil, errors.Errorf("tasks: example %s has no score", ex.ID)
			}
			gold[i], pred[i] = ex.Score, preds[i].Score
		}
		return metrics.STSB(gold, pred)
	}
	gold, pred := make([]int, len(exs)), make([]int, len(exs))
	for i, ex := range exs {
		if ex.Label < 0 {
			return nil, errors.Errorf("tasks: example %s has no label", ex.ID)
		}
		gold[i], pred[i] = ex.Label, preds[i].Label
	}
	if t.Metric != "" {
		return metrics.GLUE(t.Metric, gold, pred)
	}
	acc, err := metrics.Accuracy(gold, pred)
	if err != nil {
		return nil, err
	}
	return metrics.Scores{{Name: "accuracy", Value: acc}}, nil
}

// The GLUE tasks with GPT-1's transform for each (Table 2–4 of the paper:
// MRPC, QQP and STS-B as similarity, the NLI tasks as entailment), and
// the embedded data sets.
func registry() []Task {
	glue := func(name, dir string, k Kind) Task {
		t := Task{Name: name, Kind: k, GLUE: dir, Metric: name}
		if k != Regression {
			t.Labels = datasets.GLUETasks()[dir].Labels
		}
		return t
	}
	return []Task{
		glue("cola", "CoLA", Classification),
		glue("sst2", "SST-2", Classification),
		glue("mrpc", "MRPC", Similarity),
		glue("qqp", "QQP", Similarity),
		glue("stsb", "STS-B", Regression),
		glue("mnli", "MNLI", Entailment),
		glue("qnli", "QNLI", Entailment),
		glue("rte", "RTE", Entailment),
		glue("wnli", "WNLI", Entailment),
		{Name: "sentiment", Kind: Classification, Labels: datasets.SentimentLabels()},
		{Name: "paraphrase", Kind: Similarity, Labels: []string{"0", "1"}, Metric: "mrpc", Constructed: true},
		{Name: "cloze", Kind: MultipleChoice, Constructed: true},
	}
}

// Names lists the tasks Lookup knows: the GLUE tasks (cola, sst2, mrpc,
// qqp, stsb, mnli, qnli, rte, wnli) and the embedded sets (sentiment, the
// UCI review sentences; paraphrase, the constructed KJV–WEB pairs; cloze,
// the constructed WordNet items).
func Names() []string {
	var out []string
	for _, t := range registry() {
		out = append(out, t.Name)
	}
	return out
}

// Lookup returns the named task.
func Lookup(name string) (Task, error) {
	for _, t := range registry() {
		if t.Name == name {
			return t, nil
		}
	}
	return Task{}, errors.Errorf("tasks: unknown task %q (want one of %s)", name, strings.Join(Names(), ", "))
}

// Choice is a multiple-choice task over any data set (a JSON-lines file).
func Choice(name string) Task { return Task{Name: name, Kind: MultipleChoice} }
