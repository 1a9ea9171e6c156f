package main

import (
	"strings"

	"github.com/pkg/errors"

	"github.com/seq2gpt/seq2gpt/datasets"
)

// corpus is text split for language modelling.
type corpus struct {
	name         string
	train, valid string
}

// loadCorpus reads --data, or the embedded State of the Union addresses:
// every tenth document (SOTU) or the last tenth of the lines (a file) is
// held out for validation, so the split is fixed and needs no seed.
func loadCorpus(path string) (corpus, error) {
	if path == "" {
		docs, err := datasets.SOTU()
		if err != nil {
			return corpus{}, err
		}
		var tr, va strings.Builder
		for i, d := range docs {
			if i%10 == 9 {
				va.WriteString(d.Text + "\n")
			} else {
				tr.WriteString(d.Text + "\n")
			}
		}
		return corpus{name: "State of the Union addresses 1790–2021 (embedded)", train: tr.String(), valid: va.String()}, nil
	}
	text, err := datasets.LoadText(path)
	if err != nil {
		return corpus{}, err
	}
	lines := strings.SplitAfter(text, "\n")
	if len(lines) < 10 {
		return corpus{}, errors.Errorf("%s: %d lines are too few to hold out a tenth for validation", path, len(lines))
	}
	cut := len(lines) - len(lines)/10
	return corpus{name: path, train: strings.Join(lines[:cut], ""), valid: strings.Join(lines[cut:], "")}, nil
}
