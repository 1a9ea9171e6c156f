package datasets

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/pkg/errors"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// glueExpect is what each fixture in testdata/glue must load as.
var glueExpect = map[string]map[string]struct {
	n     int
	first Example
}{
	"CoLA": {
		"train": {4, Example{ID: "1", Text: "The cat sat on the mat.", Label: 1}},
		"dev":   {2, Example{ID: "1", Text: "Prices rose in May.", Label: 1}},
		"test":  {2, Example{ID: "0", Text: "The report was written by Ann.", Label: -1}},
	},
	"SST-2": {
		"train": {3, Example{ID: "2", Text: "a gorgeous , witty , seductive movie . ", Label: 1}},
		"dev":   {2, Example{ID: "2", Text: "it 's a charming and often affecting journey . ", Label: 1}},
		"test":  {2, Example{ID: "0", Text: "uneasy mishmash of styles and genres .", Label: -1}},
	},
	"MRPC": {
		"train": {3, Example{ID: "702876", Text: "The cat sat on the mat.", TextB: "A cat was sitting on a mat.", Label: 1}},
		"dev":   {2, Example{ID: "1355540", Text: "She didn't think it would rain.", TextB: "Rain was not expected by her.", Label: 1}},
		"test":  {2, Example{ID: "0", Text: "The cat sat on the mat.", TextB: "A cat was sitting on a mat.", Label: -1}},
	},
	"QQP": {
		"train": {2, Example{ID: "133273", Text: "How is the life of a math student?", TextB: "What is life like as a math student?", Label: 1}},
		"dev":   {2, Example{ID: "201359", Text: "Why are African-Americans so beautiful?", TextB: "Why are hispanics so beautiful?", Label: 0}},
		"test":  {2, Example{ID: "0", Text: "Why do rockets look white?", TextB: "Why are rockets white?", Label: -1}},
	},
	"STS-B": {
		"train": {3, Example{ID: "0", Text: "A plane is taking off.", TextB: "An air plane is taking off.", Label: -1, Score: 5}},
		"dev":   {2, Example{ID: "0", Text: "A man with a hard hat is dancing.", TextB: "A man wearing a hard hat is dancing.", Label: -1, Score: 5}},
		"test":  {2, Example{ID: "0", Text: "A girl is styling her hair.", TextB: "A girl is brushing her hair.", Label: -1, Score: math.NaN()}},
	},
	"MNLI": {
		"train":           {3, Example{ID: "0", Text: "The cat sat on the mat.", TextB: "A cat was sitting on a mat.", Label: 1}},
		"dev_matched":     {2, Example{ID: "0", Text: "She didn't think it would rain.", TextB: "Rain was not expected by her.", Label: 1}},
		"dev_mismatched":  {2, Example{ID: "0", Text: "Über alles: café naïve résumé.", TextB: "Analysts said prices went up in May.", Label: 0}},
		"test_matched":    {2, Example{ID: "0", Text: "The cat sat on the mat.", TextB: "Analysts said prices went up in May.", Label: -1}},
		"test_mismatched": {2, Example{ID: "0", Text: "She didn't think it would rain.", TextB: "The report was written by Ann.", Label: -1}},
	},
	"QNLI": {
		"train": {3, Example{ID: "0", Text: "What did the committee approve?", TextB: "The committee approved the budget on Tuesday.", Label: 0}},
		"dev":   {2, Example{ID: "0", Text: "Who wrote the report?", TextB: "The committee approved the budget on Tuesday.", Label: 1}},
		"test":  {2, Example{ID: "0", Text: "What did the committee approve?", TextB: "The budget passed the committee.", Label: -1}},
	},
	"RTE": {
		"train": {3, Example{ID: "0", Text: "The cat sat on the mat.", TextB: "A cat was sitting on a mat.", Label: 0}},
		"dev":   {2, Example{ID: "0", Text: "Prices rose 3% in May, analysts said.", TextB: "A cat was sitting on a mat.", Label: 1}},
		"test":  {2, Example{ID: "0", Text: "The cat sat on the mat.", TextB: "Analysts said prices went up in May.", Label: -1}},
	},
	"WNLI": {
		"train": {3, Example{ID: "0", Text: "The cat sat on the mat.", TextB: "A cat was sitting on a mat.", Label: 1}},
		"dev":   {2, Example{ID: "0", Text: "Prices rose 3% in May, analysts said.", TextB: "A cat was sitting on a mat.", Label: 0}},
		"test":  {2, Example{ID: "0", Text: "The cat sat on the mat.", TextB: "Analysts said prices went up in May.", Label: -1}},
	},
}

func assertExample(t *testing.T, want, got Example, msg string) {
	t.Helper()
	if math.IsNaN(want.Score) {
		assert.True(t, math.IsNaN(got.Score), msg)
		want.Score, got.Score = 0, 0
	}
	assert.Equal(t, want, got, msg)
}

func TestGLUEFixtures(t *testing.T) {
	tasks := GLUETasks()
	require.Len(t, tasks, 9)
	for name, task := range tasks {
		require.Len(t, glueExpect[name], len(task.Splits), name)
		for split := range task.Splits {
			exs, err := LoadGLUE(filepath.Join("testdata", "glue", name), name, split)
			require.NoError(t, err, "%s %s", name, split)
			want := glueExpect[name][split]
			require.Len(t, exs, want.n, "%s %s", name, split)
			first := exs[0]
			if want.first.Score == 0 && !math.IsNaN(first.Score) && task.Labels != nil {
				t.Fatalf("%s %s: classification example has score %v", name, split, first.Score)
			}
			if task.Labels != nil {
				want.first.Score = math.NaN()
			}
			assertExample(t, want.first, first, name+" "+split)
		}
	}
}

// corrupt rewrites the fixture of task/split into a temporary directory with
// line `line` (1-based) changed by edit, and returns the load error.
func corrupt(t *testing.T, task, split string, line int, edit func(cols []string) []string) (string, error) {
	t.Helper()
	tk := GLUETasks()[task]
	src := filepath.Join("testdata", "glue", task, tk.Splits[split])
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	require.Greater(t, len(lines), line-1)
	lines[line-1] = strings.Join(edit(strings.Split(lines[line-1], "\t")), "\t")
	dir := t.TempDir()
	path := filepath.Join(dir, tk.Splits[split])
	require.NoError(t, os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644))
	_, err = LoadGLUE(dir, task, split)
	return path, err
}

func TestGLUEMalformed(t *testing.T) {
	for name, task := range GLUETasks() {
		for split := range task.Splits {
			lay := task.layout[split]
			ctx := name + " " + split
			// A data line with a column missing.
			path, err := corrupt(t, name, split, 2, func(c []string) []string { return c[:len(c)-1] })
			require.Error(t, err, ctx)
			assert.Contains(t, err.Error(), path+":2: expected", ctx)
			assert.Contains(t, err.Error(), "tab-separated columns", ctx)
			var pe *ParseError
			require.True(t, errors.As(err, &pe), ctx)
			assert.Equal(t, 2, pe.Line)

			// Invalid UTF-8.
			path, err = corrupt(t, name, split, 2, func(c []string) []string { c[lay.a] += "\xff"; return c })
			require.Error(t, err, ctx)
			assert.Contains(t, err.Error(), path+":2: invalid UTF-8", ctx)

			// An empty sentence.
			path, err = corrupt(t, name, split, 2, func(c []string) []string { c[lay.a] = " "; return c })
			require.Error(t, err, ctx)
			assert.Contains(t, err.Error(), path+":2: empty sentence", ctx)

			if lay.label >= 0 {
				path, err = corrupt(t, name, split, 2, func(c []string) []string { c[lay.label] = "maybe"; return c })
				require.Error(t, err, ctx)
				if task.Labels == nil {
					assert.Contains(t, err.Error(), path+":2: expected a numeric score", ctx)
				} else {
					assert.Contains(t, err.Error(), path+":2: unknown "+name+" label \"maybe\"", ctx)
				}
			}
			if lay.header != nil {
				path, err = corrupt(t, name, split, 1, func(c []string) []string { c[0] = "wrong"; return c })
				require.Error(t, err, ctx)
				assert.Contains(t, err.Error(), path+":1: expected "+name+" "+split+" header", ctx)
			}
			// An empty file.
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, task.Splits[split]), nil, 0o644))
			_, err = LoadGLUE(dir, name, split)
			require.Error(t, err, ctx)
			assert.Contains(t, err.Error(), "empty file", ctx)
		}
	}
	_, err := LoadGLUE("testdata/glue/CoLA", "CoLa", "train")
	assert.ErrorContains(t, err, "unknown GLUE task")
	_, err = LoadGLUE("testdata/glue/MNLI", "MNLI", "dev")
	assert.ErrorContains(t, err, "no split")
	_, err = LoadGLUE(t.TempDir(), "RTE", "dev")
	assert.Error(t, err)
}

func TestSTSBScoreRange(t *testing.T) {
	for _, bad := range []string{"5.5", "-1", "NaN", "abc", ""} {
		_, err := corrupt(t, "STS-B", "train", 3, func(c []string) []string { c[9] = bad; return c })
		assert.ErrorContains(t, err, ":3: expected a numeric score", bad)
	}
}

func allGLUEFixtures(f *testing.F) {
	for name, task := range GLUETasks() {
		for split, file := range task.Splits {
			b, err := os.ReadFile(filepath.Join("testdata", "glue", name, file))
			require.NoError(f, err)
			f.Add(name, split, string(b))
		}
	}
}

func FuzzGLUE(f *testing.F) {
	allGLUEFixtures(f)
	tasks := GLUETasks()
	names := make([]string, 0, len(tasks))
	for n := range tasks {
		names = append(names, n)
	}
	sort.Strings(names)
	f.Fuzz(func(t *testing.T, name, split, content string) {
		task, ok := tasks[name]
		if !ok {
			task = tasks[names[len(name)%len(names)]]
		}
		if _, ok := task.Splits[split]; !ok {
			split = "train"
		}
		exs, err := task.Read(strings.NewReader(content), "fuzz.tsv", split)
		if err != nil {
			var pe *ParseError
			require.True(t, errors.As(err, &pe), "%v", err)
			require.Equal(t, "fuzz.tsv", pe.File)
			return
		}
		require.NotEmpty(t, exs)
		for _, ex := range exs {
			require.NotEmpty(t, strings.TrimSpace(ex.Text))
			require.True(t, ex.Label >= -1 && ex.Label < max(len(task.Labels), 1))
		}
	})
}

func TestParallelTSV(t *testing.T) {
	pairs, err := ReadParallelTSV(strings.NewReader("Hello.\tHallo.\r\nTwo words\tZwei Wörter\n"), "p.tsv")
	require.NoError(t, err)
	assert.Equal(t, []Pair{{"Hello.", "Hallo."}, {"Two words", "Zwei Wörter"}}, pairs)
	assert.Equal(t, []Pair{{"Hallo.", "Hello."}, {"Zwei Wörter", "Two words"}}, Swap(pairs))

	for in, want := range map[string]string{
		"a\tb\nc\n":       "p.tsv:2: expected 2 tab-separated columns (source, target), got 1",
		"a\tb\tc\n":       "p.tsv:1: expected 2 tab-separated columns",
		"a\t\n":           "p.tsv:1: empty target",
		"a\tb\n\xff\tc\n": "p.tsv:2: invalid UTF-8 at byte 0",
		"":                "p.tsv: empty file",
		"a\tb\n\nc\td\n":  "p.tsv:2: expected 2",
		"\t b\n":          "p.tsv:1: empty source",
	} {
		_, err := ReadParallelTSV(strings.NewReader(in), "p.tsv")
		require.Error(t, err, "%q", in)
		assert.True(t, strings.HasPrefix(err.Error(), "datasets: "+want), "%q: got %v", in, err)
	}
}

func TestAligned(t *testing.T) {
	dir := t.TempDir()
	src, tgt := filepath.Join(dir, "train.en"), filepath.Join(dir, "train.de")
	require.NoError(t, os.WriteFile(src, []byte("Good morning.\nThank you.\n"), 0o644))
	require.NoError(t, os.WriteFile(tgt, []byte("Guten Morgen.\nDanke.\n"), 0o644))
	pairs, err := LoadAligned(src, tgt)
	require.NoError(t, err)
	assert.Equal(t, []Pair{{"Good morning.", "Guten Morgen."}, {"Thank you.", "Danke."}}, pairs)

	require.NoError(t, os.WriteFile(tgt, []byte("Guten Morgen.\n"), 0o644))
	_, err = LoadAligned(src, tgt)
	assert.EqualError(t, err, fmt.Sprintf("datasets: %s: has 2 lines but %s has 1; expected line-aligned files", src, tgt))
	require.NoError(t, os.WriteFile(tgt, []byte("Guten Morgen.\n \n"), 0o644))
	_, err = LoadAligned(src, tgt)
	assert.EqualError(t, err, fmt.Sprintf("datasets: %s:2: empty sentence", tgt))
	_, err = LoadAligned(filepath.Join(dir, "missing"), tgt)
	assert.Error(t, err)

	// Skipping empty lines instead, counted; both counts when they differ.
	require.NoError(t, os.WriteFile(src, []byte("Good morning.\n\nThank you.\nSee you.\n"), 0o644))
	require.NoError(t, os.WriteFile(tgt, []byte("Guten Morgen.\nLeer.\nDanke.\n \n"), 0o644))
	pairs, rep, err := LoadAlignedWith(src, tgt, EmptySkip)
	require.NoError(t, err)
	assert.Equal(t, []Pair{{"Good morning.", "Guten Morgen."}, {"Thank you.", "Danke."}}, pairs)
	assert.Equal(t, ParallelReport{Pairs: 2, SkippedEmpty: 2}, rep)
	require.NoError(t, os.WriteFile(tgt, []byte("a\nb\nc\nd\ne\nf\n"), 0o644))
	_, _, err = LoadAlignedWith(src, tgt, EmptySkip)
	assert.EqualError(t, err, fmt.Sprintf("datasets: %s: has 4 lines but %s has 6; expected line-aligned files", src, tgt))
}

func TestParallelTSVSkipsEmpty(t *testing.T) {
	pairs, rep, err := ReadParallelTSVWith(strings.NewReader("a\tb\n\t\nc\t \n\n \td\ne\tf\n"), "p.tsv", EmptySkip)
	require.NoError(t, err)
	assert.Equal(t, []Pair{{"a", "b"}, {"e", "f"}}, pairs)
	assert.Equal(t, ParallelReport{Pairs: 2, SkippedEmpty: 4}, rep)
	_, _, err = ReadParallelTSVWith(strings.NewReader("a\tb\nc\td\te\n"), "p.tsv", EmptySkip)
	assert.ErrorContains(t, err, "p.tsv:2: expected 2 tab-separated columns (source, target), got 3")
}

func FuzzReadParallel(f *testing.F) {
	f.Add("Hello.\tHallo.\nTwo\tZwei\n", "a\nb\n", "c\nd\n")
	f.Add("a\tb\r\n", "x", "")
	f.Fuzz(func(t *testing.T, tsv, src, tgt string) {
		if pairs, err := ReadParallelTSV(strings.NewReader(tsv), "f.tsv"); err == nil {
			for _, p := range pairs {
				require.NotContains(t, p.Source+p.Target, "\t")
				require.NotEmpty(t, strings.TrimSpace(p.Source))
			}
		} else {
			var pe *ParseError
			require.True(t, errors.As(err, &pe))
		}
		if pairs, err := ReadAligned(strings.NewReader(src), "s", strings.NewReader(tgt), "t"); err == nil {
			require.Equal(t, strings.Count(strings.TrimSuffix(src, "\n"), "\n")+1, len(pairs))
		}
	})
}

// dingSample follows the layout of Debian trans-de-en's /usr/share/trans/de-en
// (the lines here are written for this test).
const dingSample = `# Version :: test
# License :: written for the datasets tests
Haus {n} [arch.] | Häuser {pl} | Das Haus ist alt. :: house | houses | The house is old.
Tür {f}; Pforte {f} | Bitte die Tür schließen! | Ist die Tür offen? :: door; gate | Please close the door! [Br.] | Is the door open?
schnell {adj} | Er läuft schnell. :: fast; quick | He runs fast.; He is running fast.
Achtung! :: Attention!
Wegen Umbau geschlossen. :: Closed for renovation. [Am.]
`

func TestDing(t *testing.T) {
	pairs, err := ReadDing(strings.NewReader(dingSample), "de-en")
	require.NoError(t, err)
	assert.Equal(t, []Pair{
		{"Das Haus ist alt.", "The house is old."},
		{"Bitte die Tür schließen!", "Please close the door!"},
		{"Ist die Tür offen?", "Is the door open?"},
		{"Er läuft schnell.", "He runs fast."},
		{"Wegen Umbau geschlossen.", "Closed for renovation."},
	}, pairs)

	_, err = ReadDing(strings.NewReader(dingSample+"a | b :: c\n"), "de-en")
	assert.EqualError(t, err, "datasets: de-en:8: expected the same number of \" | \" parts on both sides, got 2 German and 1 English")
	_, err = ReadDing(strings.NewReader("# c\nkein Trenner\n"), "de-en")
	assert.EqualError(t, err, "datasets: de-en:2: expected \"german :: english\" with one \" :: \", found 0")
	_, err = ReadDing(strings.NewReader(""), "de-en")
	assert.EqualError(t, err, "datasets: de-en: empty file")
	_, err = LoadDing(filepath.Join(t.TempDir(), "none"))
	assert.Error(t, err)
}

func FuzzReadDing(f *testing.F) {
	f.Add(dingSample)
	f.Add("a :: b :: c\n")
	f.Fuzz(func(t *testing.T, s string) {
		pairs, err := ReadDing(strings.NewReader(s), "de-en")
		if err != nil {
			var pe *ParseError
			require.True(t, errors.As(err, &pe))
			return
		}
		for _, p := range pairs {
			require.True(t, dingSentence(p.Source) && dingSentence(p.Target))
		}
	})
}

const choiceSample = `{"context": "The sky is", "choices": ["blue", "loud"], "label": 0}

{"id": "q2", "context": "Two plus two is", "choices": ["four", "five", "six"], "label": 2}
{"context": "Unlabelled", "choices": ["a", "b"]}
`

func TestMultipleChoice(t *testing.T) {
	items, err := ReadMultipleChoice(strings.NewReader(choiceSample), "mc.jsonl")
	require.NoError(t, err)
	assert.Equal(t, []MultipleChoice{
		{Context: "The sky is", Choices: []string{"blue", "loud"}, Label: 0},
		{ID: "q2", Context: "Two plus two is", Choices: []string{"four", "five", "six"}, Label: 2},
		{Context: "Unlabelled", Choices: []string{"a", "b"}, Label: -1},
	}, items)
	for in, want := range map[string]string{
		`{"context": "c", "choices": ["a"], "label": 0}`:           "mc.jsonl:1: expected \"choices\" to list at least 2 strings, got 1",
		`{"context": "c", "choices": ["a", "b"], "label": 2}`:      "mc.jsonl:1: expected label from 0 to 1, got 2",
		`{"context": "", "choices": ["a", "b"], "label": 0}`:       "mc.jsonl:1: expected a non-empty \"context\" string",
		`{"context": "c", "choices": ["a", ""], "label": 0}`:       "mc.jsonl:1: choice 1 is empty",
		`{"context": "c", "choices": ["a", "b"], "answer": 0}`:     "mc.jsonl:1: expected a JSON object",
		`{"context": "c", "choices": ["a", "b"], "label": "zero"}`: "mc.jsonl:1: expected a JSON object",
		`{"context": "c", "choices": ["a", "b"]} {}`:               "mc.jsonl:1: expected one JSON object per line",
		"\n\n": "mc.jsonl: no items",
	} {
		_, err := ReadMultipleChoice(strings.NewReader(in), "mc.jsonl")
		require.Error(t, err, in)
		assert.Contains(t, err.Error(), want, in)
	}
}

func FuzzReadMultipleChoice(f *testing.F) {
	f.Add(choiceSample)
	f.Add(`{"context": "c", "choices": [null, "b"], "label": -1}`)
	f.Fuzz(func(t *testing.T, s string) {
		items, err := ReadMultipleChoice(strings.NewReader(s), "mc")
		if err != nil {
			var pe *ParseError
			require.True(t, errors.As(err, &pe), "%v", err)
			return
		}
		for _, it := range items {
			require.GreaterOrEqual(t, len(it.Choices), 2)
			require.True(t, it.Label >= -1 && it.Label < len(it.Choices))
		}
	})
}

func TestText(t *testing.T) {
	s, err := ReadText(strings.NewReader("\uFEFFline one\r\nline two"), "t.txt")
	require.NoError(t, err)
	assert.Equal(t, "line one\nline two\n", s)
	_, err = ReadText(strings.NewReader(" \n\n"), "t.txt")
	assert.EqualError(t, err, "datasets: t.txt: no text, only whitespace")
	_, err = ReadText(strings.NewReader("ok\nbad \xc3\x28\n"), "t.txt")
	assert.EqualError(t, err, "datasets: t.txt:2: invalid UTF-8 at byte 4")
	path := filepath.Join(t.TempDir(), "x.txt")
	require.NoError(t, os.WriteFile(path, []byte("hello"), 0o644))
	s, err = LoadText(path)
	require.NoError(t, err)
	assert.Equal(t, "hello\n", s)
}

func FuzzReadText(f *testing.F) {
	f.Add("hello\nworld\n")
	f.Add("\xef\xbb\xbfa\r\n")
	f.Fuzz(func(t *testing.T, s string) {
		out, err := ReadText(strings.NewReader(s), "t")
		if err != nil {
			return
		}
		require.NotEmpty(t, strings.TrimSpace(out))
	})
}

func TestGLUETasksAreCopies(t *testing.T) {
	a := GLUETasks()["RTE"]
	a.Labels[0] = "changed"
	a.layout["train"].header[0] = "changed"
	b := GLUETasks()["RTE"]
	assert.Equal(t, []string{"entailment", "not_entailment"}, b.Labels)
	assert.Equal(t, "index", b.layout["train"].header[0])
	s := SentimentLabels()
	s[0] = "changed"
	assert.Equal(t, "negative", SentimentLabels()[0])
	g := GPT1Specials()
	g[0] = "changed"
	assert.Equal(t, PadToken, GPT1Specials()[0])
}
