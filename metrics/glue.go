package metrics

import (
	"fmt"
	"strings"

	"github.com/pkg/errors"
)

// Score is one metric's value on a GLUE task.
type Score struct {
	Name string // "accuracy", "f1", "mcc", "pearson" or "spearman"
	// Value is a fraction (accuracy, F1) or a correlation in [−1, 1], not a
	// percentage; it is 0 when Undefined is set.
	Value float64
	// Undefined, when not empty, says why the metric has no value on this
	// input (for example "every prediction is 1" for CoLA's MCC).
	Undefined string
}

// Defined reports whether the score has a value.
func (s Score) Defined() bool { return s.Undefined == "" }

// String is "mcc 0.5123", or "mcc undefined (every prediction is 1)".
func (s Score) String() string {
	if !s.Defined() {
		return fmt.Sprintf("%s undefined (%s)", s.Name, s.Undefined)
	}
	return fmt.Sprintf("%s %.4f", s.Name, s.Value)
}

// Scores are a task's metrics in its official order; the first is the one
// to select checkpoints by.
type Scores []Score

// String joins the scores with commas: "f1 0.8123, accuracy 0.7500".
func (s Scores) String() string {
	parts := make([]string, len(s))
	for i, sc := range s {
		parts[i] = sc.String()
	}
	return strings.Join(parts, ", ")
}

// Get returns the score called name.
func (s Scores) Get(name string) (Score, bool) {
	for _, sc := range s {
		if sc.Name == name {
			return sc, true
		}
	}
	return Score{}, false
}

// glueTask is one GLUE task's official metrics and label count (0 for the
// regression task STS-B).
type glueTask struct {
	name    string
	metrics []string
	labels  int
}

// glueTasks are the GLUE tasks (Wang et al., 2019) with the metrics the
// benchmark reports for them, in its order. MNLI is scored separately on
// its matched and mismatched sets; AX is the diagnostic set, scored like
// MNLI's labels with the multi-class MCC.
var glueTasks = []glueTask{
	{"cola", []string{"mcc"}, 2},
	{"sst2", []string{"accuracy"}, 2},
	{"mrpc", []string{"f1", "accuracy"}, 2},
	{"qqp", []string{"f1", "accuracy"}, 2},
	{"stsb", []string{"pearson", "spearman"}, 0},
	{"mnli", []string{"accuracy"}, 3},
	{"mnli-mm", []string{"accuracy"}, 3},
	{"qnli", []string{"accuracy"}, 2},
	{"rte", []string{"accuracy"}, 2},
	{"wnli", []string{"accuracy"}, 2},
	{"ax", []string{"mcc"}, 3},
}

// GLUETaskNames lists the task names GLUE and GLUEMetrics accept.
// Spelling is loose: case, "-" and "_" are ignored, so "SST-2", "STS-B" and
// "MNLI" (the datasets package's names) work, "mnli-m" and "mnli_matched"
// mean mnli, "mnli_mismatched" means mnli-mm.
func GLUETaskNames() []string {
	names := make([]string, len(glueTasks))
	for i, t := range glueTasks {
		names[i] = t.name
	}
	return names
}

func findGLUETask(task string) (glueTask, error) {
	key := strings.NewReplacer("-", "", "_", "").Replace(strings.ToLower(task))
	switch key {
	case "mnlim", "mnlimatched":
		key = "mnli"
	case "mnlimismatched":
		key = "mnlimm"
	}
	for _, t := range glueTasks {
		if strings.ReplaceAll(t.name, "-", "") == key {
			return t, nil
		}
	}
	return glueTask{}, errors.Errorf("unknown GLUE task %q; known: %s", task, strings.Join(GLUETaskNames(), ", "))
}

// GLUEMetrics names the metrics a task reports, its main one first: CoLA
// mcc; MRPC and QQP f1, accuracy; STS-B pearson, spearman; the others
// accuracy.
func GLUEMetrics(task string) ([]string, error) {
	t, err := findGLUETask(task)
	if err != nil {
		return nil, err
	}
	return append([]string(nil), t.metrics...), nil
}

// GLUE scores a classification task's predictions with its official
// metrics. Labels are the indices of the task's label list (as
// datasets.Example.Label has them; for MRPC and QQP label 1, "is a
// paraphrase", is F1's positive label), and one outside the task's labels
// is an error naming it. An undefined metric (MCC of a constant model) is
// a Score with Undefined set, not an error. STS-B is a regression task:
// score it with STSB.
func GLUE(task string, gold, pred []int) (Scores, error) {
	t, err := findGLUETask(task)
	if err != nil {
		return nil, err
	}
	if t.labels == 0 {
		return nil, errors.Errorf("GLUE %s is a regression task: score it with STSB", t.name)
	}
	if err := checkPairs("GLUE "+t.name, len(gold), len(pred)); err != nil {
		return nil, err
	}
	for i := range gold {
		if gold[i] < 0 || gold[i] >= t.labels {
			return nil, errors.Errorf("GLUE %s: gold label %d is %d, outside the task's labels 0–%d", t.name, i, gold[i], t.labels-1)
		}
		if pred[i] < 0 || pred[i] >= t.labels {
			return nil, errors.Errorf("GLUE %s: prediction %d is %d, outside the task's labels 0–%d", t.name, i, pred[i], t.labels-1)
		}
	}
	out := make(Scores, 0, len(t.metrics))
	for _, m := range t.metrics {
		var v float64
		switch m {
		case "accuracy":
			v, err = Accuracy(gold, pred)
		case "f1":
			v, err = F1(gold, pred, 1)
		case "mcc":
			v, err = MCC(gold, pred)
		}
		sc, err := toScore(m, v, err)
		if err != nil {
			return nil, err
		}
		out = append(out, sc)
	}
	return out, nil
}

// STSB scores STS-B similarity predictions with its official metrics,
// Pearson's and Spearman's correlation with the gold scores (0–5). An
// undefined correlation (constant predictions) is a Score with Undefined
// set, not an error.
func STSB(gold, pred []float64) (Scores, error) {
	if err := checkFloats("GLUE stsb", gold, pred); err != nil {
		return nil, err
	}
	p, err := Pearson(gold, pred)
	ps, err := toScore("pearson", p, err)
	if err != nil {
		return nil, err
	}
	s, err := Spearman(gold, pred)
	ss, err := toScore("spearman", s, err)
	if err != nil {
		return nil, err
	}
	return Scores{ps, ss}, nil
}

// toScore turns a metric's result into a Score, keeping an undefined value
// as a Score that says so and passing other errors on.
func toScore(name string, v float64, err error) (Score, error) {
	var u *UndefinedError
	switch {
	case err == nil:
		return Score{Name: name, Value: v}, nil
	case errors.As(err, &u):
		return Score{Name: name, Undefined: u.Reason}, nil
	}
	return Score{}, err
}
