package metrics

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pkg/errors"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sklearnFixture is testdata/sklearn.json, written by
// testdata/gen_sklearn.py with scikit-learn and scipy.
type sklearnFixture struct {
	Sklearn        string `json:"sklearn"`
	Scipy          string `json:"scipy"`
	Classification []struct {
		Name      string             `json:"name"`
		Gold      []int              `json:"gold"`
		Pred      []int              `json:"pred"`
		Values    map[string]float64 `json:"values"`
		Undefined map[string]string  `json:"undefined"`
	} `json:"classification"`
	Regression []struct {
		Name      string             `json:"name"`
		Gold      []float64          `json:"gold"`
		Pred      []float64          `json:"pred"`
		Values    map[string]float64 `json:"values"`
		Undefined map[string]string  `json:"undefined"`
	} `json:"regression"`
}

func loadSklearn(t *testing.T) sklearnFixture {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "sklearn.json"))
	require.NoError(t, err)
	var f sklearnFixture
	require.NoError(t, json.Unmarshal(b, &f))
	require.NotEmpty(t, f.Classification)
	require.NotEmpty(t, f.Regression)
	return f
}

// checkMetric asserts that a metric gives the library's value where the
// fixture has one and an *UndefinedError where it says the value is
// undefined.
func checkMetric(t *testing.T, where, name string, values map[string]float64, undef map[string]string, got float64, err error) {
	t.Helper()
	if why, ok := undef[name]; ok {
		var u *UndefinedError
		require.True(t, errors.As(err, &u), "%s %s: want undefined (%s), got %v, %v", where, name, why, got, err)
		assert.True(t, strings.HasPrefix(name, u.Metric), "%s: error for %s", name, u.Metric)
		assert.NotEmpty(t, u.Reason)
		return
	}
	want, ok := values[name]
	require.True(t, ok, "%s: fixture has no %s", where, name)
	require.NoError(t, err, "%s %s", where, name)
	assert.InDelta(t, want, got, 1e-12, "%s %s", where, name)
	assert.False(t, math.IsNaN(got))
}

func TestSklearnClassification(t *testing.T) {
	f := loadSklearn(t)
	nUndef := 0
	for _, tc := range f.Classification {
		acc, err := Accuracy(tc.Gold, tc.Pred)
		checkMetric(t, tc.Name, "accuracy", tc.Values, tc.Undefined, acc, err)
		mf, err := MacroF1(tc.Gold, tc.Pred)
		checkMetric(t, tc.Name, "macro_f1", tc.Values, tc.Undefined, mf, err)
		mcc, err := MCC(tc.Gold, tc.Pred)
		checkMetric(t, tc.Name, "mcc", tc.Values, tc.Undefined, mcc, err)
		for key := range merge(tc.Values, tc.Undefined) {
			pos, ok := strings.CutPrefix(key, "f1_pos")
			if !ok {
				continue
			}
			p, err := strconv.Atoi(pos)
			require.NoError(t, err)
			v, err := F1(tc.Gold, tc.Pred, p)
			checkMetric(t, tc.Name, key, tc.Values, tc.Undefined, v, err)
		}
		nUndef += len(tc.Undefined)
	}
	assert.Greater(t, nUndef, 10, "the fixture covers undefined cases")
}

func merge(a map[string]float64, b map[string]string) map[string]bool {
	m := map[string]bool{}
	for k := range a {
		m[k] = true
	}
	for k := range b {
		m[k] = true
	}
	return m
}

func TestSklearnRegression(t *testing.T) {
	f := loadSklearn(t)
	for _, tc := range f.Regression {
		p, err := Pearson(tc.Gold, tc.Pred)
		checkMetric(t, tc.Name, "pearson", tc.Values, tc.Undefined, p, err)
		s, err := Spearman(tc.Gold, tc.Pred)
		checkMetric(t, tc.Name, "spearman", tc.Values, tc.Undefined, s, err)
	}
}

func TestMetricErrors(t *testing.T) {
	for name, err := range map[string]error{
		"accuracy": second(Accuracy(nil, nil)),
		"f1":       second(F1(nil, nil, 1)),
		"macro f1": second(MacroF1([]int{}, []int{})),
		"mcc":      second(MCC(nil, nil)),
		"pearson":  second(Pearson(nil, nil)),
		"spearman": second(Spearman([]float64{}, nil)),
	} {
		assert.ErrorIs(t, err, ErrEmpty, name)
		assert.ErrorContains(t, err, name+": no examples")
	}
	_, err := Accuracy([]int{1, 0}, []int{1})
	assert.EqualError(t, err, "accuracy: 2 gold labels but 1 predictions")
	_, err = Pearson([]float64{1, math.NaN(), 3}, []float64{1, 2, 3})
	assert.EqualError(t, err, "pearson: gold value 1 is NaN, not a finite number")
	_, err = Spearman([]float64{1, 2, 3}, []float64{1, math.Inf(1), 3})
	assert.EqualError(t, err, "spearman: prediction 1 is +Inf, not a finite number")

	_, err = MCC([]int{0, 1, 1}, []int{1, 1, 1})
	assert.EqualError(t, err, "mcc is undefined: every prediction is 1")
	_, err = MCC([]int{0, 0}, []int{1, 0})
	assert.EqualError(t, err, "mcc is undefined: every gold label is 0")
	_, err = Pearson([]float64{1, 2, 3}, []float64{2, 2, 2})
	assert.EqualError(t, err, "pearson is undefined: every prediction is 2")
	_, err = F1([]int{0, 0}, []int{0, 0}, 1)
	assert.EqualError(t, err, "f1 is undefined: the positive label 1 occurs in neither the gold labels nor the predictions")
}

func second[T any](_ T, err error) error { return err }

func TestRanks(t *testing.T) {
	assert.Equal(t, []float64{1.5, 3, 1.5, 4}, Ranks([]float64{10, 20, 10, 30}))
	assert.Equal(t, []float64{2, 2, 2}, Ranks([]float64{5, 5, 5}))
	assert.Equal(t, []float64{3, 1, 2}, Ranks([]float64{0.3, -1, 0}))
	assert.Empty(t, Ranks(nil))
}

func TestGLUE(t *testing.T) {
	gold := []int{1, 0, 1, 1, 0, 1, 0, 0}
	pred := []int{1, 0, 0, 1, 1, 1, 0, 0}
	acc, _ := Accuracy(gold, pred)
	f1v, _ := F1(gold, pred, 1)
	mcc, _ := MCC(gold, pred)
	for _, tc := range []struct {
		task string
		want Scores
	}{
		{"cola", Scores{{Name: "mcc", Value: mcc}}},
		{"CoLA", Scores{{Name: "mcc", Value: mcc}}},
		{"sst2", Scores{{Name: "accuracy", Value: acc}}},
		{"SST-2", Scores{{Name: "accuracy", Value: acc}}},
		{"mrpc", Scores{{Name: "f1", Value: f1v}, {Name: "accuracy", Value: acc}}},
		{"qqp", Scores{{Name: "f1", Value: f1v}, {Name: "accuracy", Value: acc}}},
		{"mnli", Scores{{Name: "accuracy", Value: acc}}},
		{"mnli_matched", Scores{{Name: "accuracy", Value: acc}}},
		{"mnli-mm", Scores{{Name: "accuracy", Value: acc}}},
		{"mnli_mismatched", Scores{{Name: "accuracy", Value: acc}}},
		{"qnli", Scores{{Name: "accuracy", Value: acc}}},
		{"rte", Scores{{Name: "accuracy", Value: acc}}},
		{"wnli", Scores{{Name: "accuracy", Value: acc}}},
		{"ax", Scores{{Name: "mcc", Value: mcc}}},
	} {
		got, err := GLUE(tc.task, gold, pred)
		require.NoError(t, err, tc.task)
		assert.Equal(t, tc.want, got, tc.task)
		names, err := GLUEMetrics(tc.task)
		require.NoError(t, err)
		require.Len(t, names, len(tc.want))
		for i := range names {
			assert.Equal(t, tc.want[i].Name, names[i])
		}
	}
	s, err := GLUE("mrpc", gold, pred)
	require.NoError(t, err)
	assert.Equal(t, "f1 0.7500, accuracy 0.7500", s.String()) // TP 3, FP 1, FN 1
	main, ok := s.Get("accuracy")
	assert.True(t, ok)
	assert.Equal(t, 0.75, main.Value)

	// A constant model: CoLA's MCC is undefined and says so, the accuracy is a number.
	s, err = GLUE("cola", gold, []int{1, 1, 1, 1, 1, 1, 1, 1})
	require.NoError(t, err)
	assert.False(t, s[0].Defined())
	assert.Equal(t, "mcc undefined (every prediction is 1)", s.String())

	_, err = GLUE("mnli", []int{0, 1, 3}, []int{0, 1, 2})
	assert.EqualError(t, err, "GLUE mnli: gold label 2 is 3, outside the task's labels 0–2")
	_, err = GLUE("rte", []int{0, 1}, []int{0, -1})
	assert.EqualError(t, err, "GLUE rte: prediction 1 is -1, outside the task's labels 0–1")
	_, err = GLUE("stsb", gold, pred)
	assert.EqualError(t, err, "GLUE stsb is a regression task: score it with STSB")
	_, err = GLUE("squad", gold, pred)
	assert.EqualError(t, err, `unknown GLUE task "squad"; known: cola, sst2, mrpc, qqp, stsb, mnli, mnli-mm, qnli, rte, wnli, ax`)
	_, err = GLUE("sst2", nil, nil)
	assert.ErrorIs(t, err, ErrEmpty)
	_, err = GLUE("sst2", []int{1}, nil)
	assert.EqualError(t, err, "GLUE sst2: 1 gold labels but 0 predictions")
}

func TestSTSB(t *testing.T) {
	gold := []float64{0.2, 1.4, 3.8, 5, 2.6, 2.6}
	pred := []float64{0.5, 2, 3, 4.5, 2, 3.5}
	p, _ := Pearson(gold, pred)
	sp, _ := Spearman(gold, pred)
	s, err := STSB(gold, pred)
	require.NoError(t, err)
	assert.Equal(t, Scores{{Name: "pearson", Value: p}, {Name: "spearman", Value: sp}}, s)
	names, err := GLUEMetrics("STS-B")
	require.NoError(t, err)
	assert.Equal(t, []string{"pearson", "spearman"}, names)

	s, err = STSB(gold, []float64{3, 3, 3, 3, 3, 3})
	require.NoError(t, err)
	assert.Equal(t, "pearson undefined (every prediction is 3), spearman undefined (every prediction is 3)", s.String())
	_, err = STSB(gold, []float64{1, 2, 3, 4, 5, math.NaN()})
	assert.EqualError(t, err, "GLUE stsb: prediction 5 is NaN, not a finite number")
	_, err = STSB(nil, nil)
	assert.ErrorIs(t, err, ErrEmpty)
}
