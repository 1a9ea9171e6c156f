package datasets

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
)

// MultipleChoice is one multiple-choice item: a context, two or more
// candidate continuations, and the index of the right one (-1 if unknown).
type MultipleChoice struct {
	ID      string   `json:"id,omitempty"`
	Context string   `json:"context"`
	Choices []string `json:"choices"`
	Label   int      `json:"label"`
}

// ReadMultipleChoice reads JSON lines, one object per line:
//
//	{"context": "...", "choices": ["...", "..."], "label": 1}
//
// "id" is optional; "label" may be null or absent for unlabelled data
// (Label -1). Blank lines are skipped. An item must have a non-empty
// context, at least two non-empty choices, and a label that indexes them.
func ReadMultipleChoice(r io.Reader, name string) ([]MultipleChoice, error) {
	lr := newLineReader(r, name)
	var out []MultipleChoice
	for {
		line, ok, err := lr.next()
		if err != nil {
			return nil, err
		}
		if !ok {
			if len(out) == 0 {
				return nil, parseErr(name, 0, "no items")
			}
			return out, nil
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		var raw struct {
			ID      *string   `json:"id"`
			Context *string   `json:"context"`
			Choices []*string `json:"choices"`
			Label   *int      `json:"label"`
		}
		dec := json.NewDecoder(bytes.NewReader([]byte(line)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&raw); err != nil {
			return nil, parseErr(name, lr.line, "expected a JSON object with context, choices and label: %v", err)
		}
		if dec.More() {
			return nil, parseErr(name, lr.line, "expected one JSON object per line, found more")
		}
		item := MultipleChoice{Label: -1}
		if raw.ID != nil {
			item.ID = *raw.ID
		}
		if raw.Context == nil || strings.TrimSpace(*raw.Context) == "" {
			return nil, parseErr(name, lr.line, "expected a non-empty \"context\" string")
		}
		item.Context = *raw.Context
		if len(raw.Choices) < 2 {
			return nil, parseErr(name, lr.line, "expected \"choices\" to list at least 2 strings, got %d", len(raw.Choices))
		}
		for i, c := range raw.Choices {
			if c == nil || strings.TrimSpace(*c) == "" {
				return nil, parseErr(name, lr.line, "choice %d is empty", i)
			}
			item.Choices = append(item.Choices, *c)
		}
		if raw.Label != nil {
			if *raw.Label < 0 || *raw.Label >= len(item.Choices) {
				return nil, parseErr(name, lr.line, "expected label from 0 to %d, got %d", len(item.Choices)-1, *raw.Label)
			}
			item.Label = *raw.Label
		}
		out = append(out, item)
	}
}

// LoadMultipleChoice reads a JSON-lines multiple-choice file.
func LoadMultipleChoice(path string) ([]MultipleChoice, error) {
	f, err := openFile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadMultipleChoice(f, path)
}
