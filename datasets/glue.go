package datasets

import (
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pkg/errors"
)

// Example is one labelled sentence or sentence pair.
type Example struct {
	// ID is the example's id column where the file has one ("index", "id",
	// MRPC's "#1 ID"), else the 1-based line number.
	ID    string
	Text  string
	TextB string // second sentence for pair tasks; empty otherwise
	// Label indexes the task's Labels; -1 for unlabelled (test) examples and
	// for regression tasks.
	Label int
	// Score is the regression target (STS-B: 0–5); NaN when unlabelled.
	Score float64
}

// glueLayout is the column layout of one GLUE file.
type glueLayout struct {
	header []string // nil: the file has no header line
	id     int      // column of the example id, -1 for none
	a, b   int      // sentence columns; b is -1 for single-sentence tasks
	label  int      // label column, -1 for unlabelled (test) files
}

// GLUETask describes one GLUE task: its label set and the layout of each of
// its files, as distributed by the GLUE benchmark (download_glue_data.py).
type GLUETask struct {
	Name string
	// Labels are the label strings as they appear in the files, in the order
	// that gives Example.Label; nil for the regression task STS-B.
	Labels []string
	// Splits maps a split name to its file name in the task directory.
	Splits map[string]string
	layout map[string]glueLayout
}

// Label sets. Functions, not variables, so that a caller who modifies the
// Labels of a task it was given cannot change another's.
func nliLabels3() []string { return []string{"contradiction", "entailment", "neutral"} }
func nliLabels2() []string { return []string{"entailment", "not_entailment"} }
func binary() []string     { return []string{"0", "1"} }

func stdSplits(names ...string) map[string]string {
	m := map[string]string{}
	for _, n := range names {
		m[n] = n + ".tsv"
	}
	return m
}

func cols(s string) []string { return strings.Split(s, "\t") }

// Column layouts of MNLI and STS-B (functions for the same reason).
func mnliTrain() []string {
	return cols("index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label")
}

func mnliDev() []string {
	return cols("index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\tgold_label")
}

func mnliTest() []string {
	return cols("index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\tsentence2_parse\tsentence1\tsentence2")
}

func stsb() []string {
	return cols("index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore")
}

// GLUETasks returns the GLUE tasks keyed by name: CoLA, SST-2, MRPC, QQP,
// STS-B, MNLI, QNLI, RTE and WNLI. MNLI's splits are train, dev_matched,
// dev_mismatched, test_matched and test_mismatched; the others have train,
// dev and test.
func GLUETasks() map[string]GLUETask {
	pair := func(hdr string, idCol, label int) glueLayout {
		return glueLayout{header: cols(hdr), id: idCol, a: 1, b: 2, label: label}
	}
	return map[string]GLUETask{
		"CoLA": {Name: "CoLA", Labels: binary(), Splits: stdSplits("train", "dev", "test"), layout: map[string]glueLayout{
			// source, label, original label ("*" when judged unacceptable), sentence; no header.
			"train": {header: nil, id: -1, a: 3, b: -1, label: 1},
			"dev":   {header: nil, id: -1, a: 3, b: -1, label: 1},
			"test":  {header: cols("index\tsentence"), id: 0, a: 1, b: -1, label: -1},
		}},
		"SST-2": {Name: "SST-2", Labels: binary(), Splits: stdSplits("train", "dev", "test"), layout: map[string]glueLayout{
			"train": {header: cols("sentence\tlabel"), id: -1, a: 0, b: -1, label: 1},
			"dev":   {header: cols("sentence\tlabel"), id: -1, a: 0, b: -1, label: 1},
			"test":  {header: cols("index\tsentence"), id: 0, a: 1, b: -1, label: -1},
		}},
		"MRPC": {Name: "MRPC", Labels: binary(), Splits: stdSplits("train", "dev", "test"), layout: map[string]glueLayout{
			"train": {header: cols("Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"), id: 1, a: 3, b: 4, label: 0},
			"dev":   {header: cols("Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"), id: 1, a: 3, b: 4, label: 0},
			"test":  {header: cols("index\t#1 ID\t#2 ID\t#1 String\t#2 String"), id: 0, a: 3, b: 4, label: -1},
		}},
		"QQP": {Name: "QQP", Labels: binary(), Splits: stdSplits("train", "dev", "test"), layout: map[string]glueLayout{
			"train": {header: cols("id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate"), id: 0, a: 3, b: 4, label: 5},
			"dev":   {header: cols("id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate"), id: 0, a: 3, b: 4, label: 5},
			"test":  {header: cols("id\tquestion1\tquestion2"), id: 0, a: 1, b: 2, label: -1},
		}},
		"STS-B": {Name: "STS-B", Labels: nil, Splits: stdSplits("train", "dev", "test"), layout: map[string]glueLayout{
			"train": {header: stsb(), id: 0, a: 7, b: 8, label: 9},
			"dev":   {header: stsb(), id: 0, a: 7, b: 8, label: 9},
			"test":  {header: stsb()[:9], id: 0, a: 7, b: 8, label: -1},
		}},
		"MNLI": {Name: "MNLI", Labels: nliLabels3(), Splits: map[string]string{
			"train": "train.tsv", "dev_matched": "dev_matched.tsv", "dev_mismatched": "dev_mismatched.tsv",
			"test_matched": "test_matched.tsv", "test_mismatched": "test_mismatched.tsv",
		}, layout: map[string]glueLayout{
			"train":           {header: mnliTrain(), id: 0, a: 8, b: 9, label: 11},
			"dev_matched":     {header: mnliDev(), id: 0, a: 8, b: 9, label: 15},
			"dev_mismatched":  {header: mnliDev(), id: 0, a: 8, b: 9, label: 15},
			"test_matched":    {header: mnliTest(), id: 0, a: 8, b: 9, label: -1},
			"test_mismatched": {header: mnliTest(), id: 0, a: 8, b: 9, label: -1},
		}},
		"QNLI": {Name: "QNLI", Labels: nliLabels2(), Splits: stdSplits("train", "dev", "test"), layout: map[string]glueLayout{
			"train": pair("index\tquestion\tsentence\tlabel", 0, 3),
			"dev":   pair("index\tquestion\tsentence\tlabel", 0, 3),
			"test":  pair("index\tquestion\tsentence", 0, -1),
		}},
		"RTE": {Name: "RTE", Labels: nliLabels2(), Splits: stdSplits("train", "dev", "test"), layout: map[string]glueLayout{
			"train": pair("index\tsentence1\tsentence2\tlabel", 0, 3),
			"dev":   pair("index\tsentence1\tsentence2\tlabel", 0, 3),
			"test":  pair("index\tsentence1\tsentence2", 0, -1),
		}},
		"WNLI": {Name: "WNLI", Labels: binary(), Splits: stdSplits("train", "dev", "test"), layout: map[string]glueLayout{
			"train": pair("index\tsentence1\tsentence2\tlabel", 0, 3),
			"dev":   pair("index\tsentence1\tsentence2\tlabel", 0, 3),
			"test":  pair("index\tsentence1\tsentence2", 0, -1),
		}},
	}
}

// GLUETaskByName returns the named task.
func GLUETaskByName(name string) (GLUETask, error) {
	t, ok := GLUETasks()[name]
	if !ok {
		return GLUETask{}, errors.Errorf("datasets: unknown GLUE task %q (want CoLA, SST-2, MRPC, QQP, STS-B, MNLI, QNLI, RTE or WNLI)", name)
	}
	return t, nil
}

// LoadGLUE reads split of task from dir, the task's directory in the GLUE
// distribution (for example glue_data/MRPC), e.g. LoadGLUE("glue_data/RTE",
// "RTE", "dev").
func LoadGLUE(dir, task, split string) ([]Example, error) {
	t, err := GLUETaskByName(task)
	if err != nil {
		return nil, err
	}
	file, ok := t.Splits[split]
	if !ok {
		return nil, errors.Errorf("datasets: GLUE task %s has no split %q", task, split)
	}
	path := filepath.Join(dir, file)
	f, err := openFile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return t.Read(f, path, split)
}

// Read parses one GLUE file of the given split from r; name is used in
// errors. It checks the header (where the split has one), the column count
// of every line, that sentences are non-empty, and that labels are in the
// task's label set (STS-B: a number from 0 to 5).
func (t GLUETask) Read(r io.Reader, name, split string) ([]Example, error) {
	lay, ok := t.layout[split]
	if !ok {
		return nil, errors.Errorf("datasets: GLUE task %s has no split %q", t.Name, split)
	}
	ncol := len(lay.header)
	if lay.header == nil {
		ncol = 4 // CoLA train/dev
	}
	lr := newLineReader(r, name)
	var out []Example
	for {
		line, ok, err := lr.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			if len(out) == 0 {
				return nil, parseErr(name, 0, "no examples")
			}
			return out, nil
		}
		if lr.line == 1 && lay.header != nil {
			if line != strings.Join(lay.header, "\t") {
				return nil, parseErr(name, 1, "expected %s %s header %q, got %q", t.Name, split, strings.Join(lay.header, "\t"), truncateForError(line))
			}
			continue
		}
		c, err := lr.columns(line, ncol, t.Name+" "+split)
		if err != nil {
			return nil, err
		}
		ex := Example{ID: strconv.Itoa(lr.line), Label: -1, Score: math.NaN()}
		if lay.id >= 0 {
			ex.ID = c[lay.id]
		}
		ex.Text = c[lay.a]
		if err := lr.nonEmpty(ex.Text, "sentence in column "+strconv.Itoa(lay.a+1)); err != nil {
			return nil, err
		}
		if lay.b >= 0 {
			ex.TextB = c[lay.b]
			if err := lr.nonEmpty(ex.TextB, "sentence in column "+strconv.Itoa(lay.b+1)); err != nil {
				return nil, err
			}
		}
		if lay.label >= 0 {
			v := c[lay.label]
			if t.Labels == nil {
				s, err := strconv.ParseFloat(v, 64)
				if err != nil || math.IsNaN(s) || s < 0 || s > 5 {
					return nil, parseErr(name, lr.line, "expected a numeric score from 0 to 5 in column %d, got %q", lay.label+1, truncateForError(v))
				}
				ex.Score = s
			} else {
				ex.Label = indexOf(t.Labels, v)
				if ex.Label < 0 {
					return nil, parseErr(name, lr.line, "unknown %s label %q in column %d; expected one of %s", t.Name, truncateForError(v), lay.label+1, strings.Join(t.Labels, ", "))
				}
			}
		}
		out = append(out, ex)
	}
}

func indexOf(xs []string, s string) int {
	for i, x := range xs {
		if x == s {
			return i
		}
	}
	return -1
}

// truncateForError shortens s for an error message.
func truncateForError(s string) string {
	if len(s) <= 60 {
		return s
	}
	i := 60
	for i > 0 && !isRuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
