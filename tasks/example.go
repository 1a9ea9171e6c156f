package tasks

import (
	"math"
	"path/filepath"

	"github.com/pkg/errors"

	"github.com/seq2gpt/seq2gpt/datasets"
)

// Example is one labelled (or unlabelled) input of a task.
type Example struct {
	ID string
	// Text is the sentence, the premise, the first sentence of a pair or
	// a multiple-choice context; TextB the hypothesis or second sentence.
	Text, TextB string
	// Choices are a multiple-choice item's candidate answers.
	Choices []string
	// Label indexes the task's Labels (or the Choices); −1 when unknown.
	Label int
	// Score is a regression target; NaN when unknown.
	Score float64
}

// FromGLUE converts the datasets package's labelled sentences and pairs.
func FromGLUE(exs []datasets.Example) []Example {
	out := make([]Example, len(exs))
	for i, e := range exs {
		out[i] = Example{ID: e.ID, Text: e.Text, TextB: e.TextB, Label: e.Label, Score: e.Score}
	}
	return out
}

// FromChoices converts multiple-choice items.
func FromChoices(items []datasets.MultipleChoice) []Example {
	out := make([]Example, len(items))
	for i, it := range items {
		id := it.ID
		if id == "" {
			id = itoa(i + 1)
		}
		out[i] = Example{ID: id, Text: it.Context, Choices: append([]string(nil), it.Choices...), Label: it.Label, Score: math.NaN()}
	}
	return out
}

// SentimentSplits are the fractions of the embedded sentiment sentences
// (one file of 3,000) in its train, valid and test splits, cut by a
// seeded shuffle (SentimentSeed) so the split is the same on every run.
var SentimentSplits = [3]float64{0.8, 0.1, 0.1}

// SentimentSeed seeds the split of the sentiment sentences.
const SentimentSeed = 13

// Load reads a split of the task's data: a GLUE task from dir (the
// task's directory in the GLUE layout, glue_data/SST-2, or its parent,
// glue_data), an embedded set (dir must be empty) from the binary.
func (t Task) Load(dir, split string) ([]Example, error) {
	if t.GLUE != "" {
		if dir == "" {
			return nil, errors.Errorf("tasks: GLUE task %s needs its data directory", t.Name)
		}
		if fileExists(filepath.Join(dir, t.GLUE)) {
			dir = filepath.Join(dir, t.GLUE)
		}
		exs, err := datasets.LoadGLUE(dir, t.GLUE, split)
		return FromGLUE(exs), err
	}
	if dir != "" {
		return nil, errors.Errorf("tasks: %s is an embedded data set and reads no directory (got %q)", t.Name, dir)
	}
	switch t.Name {
	case "sentiment":
		idx := map[string]int{"train": 0, "valid": 1, "test": 2}
		k, ok := idx[split]
		if !ok {
			return nil, errors.Errorf("tasks: sentiment has no split %q (want train, valid or test)", split)
		}
		all, err := datasets.Sentiment()
		if err != nil {
			return nil, err
		}
		parts, err := datasets.Split(len(all), SentimentSeed, SentimentSplits[:]...)
		if err != nil {
			return nil, err
		}
		out := make([]datasets.Example, len(parts[k]))
		for i, j := range parts[k] {
			out[i] = all[j]
		}
		return FromGLUE(out), nil
	case "paraphrase":
		exs, err := datasets.ParaphraseConstructed(split)
		return FromGLUE(exs), err
	case "cloze":
		items, err := datasets.WordNetClozeConstructed(split)
		return FromChoices(items), err
	}
	return nil, errors.Errorf("tasks: task %s has no embedded data", t.Name)
}

// LoadChoices reads a JSON-lines multiple-choice file (see
// datasets.ReadMultipleChoice).
func LoadChoices(path string) ([]Example, error) {
	items, err := datasets.LoadMultipleChoice(path)
	return FromChoices(items), err
}
