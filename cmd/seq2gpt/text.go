package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/pkg/errors"

	"github.com/seq2gpt/seq2gpt/datasets"
)

// corpus is text split for language modelling.
type corpus struct {
	name         string
	train, valid string
	// split says how the validation text was chosen.
	split string
}

// corpusFact is what a run records of its text: where it came from, how it
// was split, and the hashes of both parts (so a resumed run that would read
// other text is refused).
type corpusFact struct {
	Data        string `json:"data"`
	Split       string `json:"split"`
	TrainSHA256 string `json:"train_sha256"`
	ValidSHA256 string `json:"valid_sha256"`
}

func (c corpus) fact() corpusFact {
	h := func(s string) string { b := sha256.Sum256([]byte(s)); return hex.EncodeToString(b[:]) }
	return corpusFact{Data: c.name, Split: c.split, TrainSHA256: h(c.train), ValidSHA256: h(c.valid)}
}

// minDocuments is the number of documents from which a file is split by
// documents rather than by size: each held-out part then has several.
const minDocuments = 20

// loadCorpus reads the training text and holds out validation text:
//
//   - validPath given: all of path trains, validPath validates;
//   - no path: the embedded State of the Union addresses, every address
//     whose share of the fraction comes due held out (every tenth for 0.1),
//     so the validation text spans the centuries;
//   - a file of at least minDocuments documents (blocks between blank
//     lines): documents held out the same way;
//   - otherwise (one long line, a few paragraphs): the last fraction of the
//     text by size, cut between words, as nanoGPT cuts its text.
//
// The split is fixed by the text and the fraction; it needs no seed.
func loadCorpus(path, validPath string, fraction float64) (corpus, error) {
	if path == "" && validPath != "" {
		return corpus{}, errors.New("--valid needs --data (the embedded text has its own validation part)")
	}
	if path == "" {
		docs, err := datasets.SOTU()
		if err != nil {
			return corpus{}, err
		}
		texts := make([]string, len(docs))
		for i, d := range docs {
			texts[i] = d.Text + "\n"
		}
		c := splitDocuments(texts, fraction)
		c.name = "State of the Union addresses 1790–2021 (embedded)"
		return c, nil
	}
	text, err := datasets.LoadText(path)
	if err != nil {
		return corpus{}, err
	}
	if validPath != "" {
		valid, err := datasets.LoadText(validPath)
		if err != nil {
			return corpus{}, err
		}
		return corpus{name: path, train: text, valid: valid, split: "validation: " + validPath}, nil
	}
	if docs := documents(text); len(docs) >= minDocuments {
		c := splitDocuments(docs, fraction)
		c.name = path
		return c, nil
	}
	cut := wordCut(text, int(math.Round(float64(len(text))*(1-fraction))))
	if strings.TrimSpace(text[:cut]) == "" || strings.TrimSpace(text[cut:]) == "" {
		return corpus{}, errors.Errorf("%s: no break between words in its %d bytes to hold out %g of them for validation: give --valid FILE",
			path, len(text), fraction)
	}
	return corpus{name: path, train: text[:cut], valid: text[cut:],
		split: fmt.Sprintf("validation: the last %.3g%% of the text (%d of %d bytes)", 100*fraction, len(text)-cut, len(text))}, nil
}

// splitDocuments holds out document i when ⌊(i+1)·f⌋ > ⌊i·f⌋: a fraction f
// of the documents, evenly spread (for f = 0.1, every tenth).
func splitDocuments(docs []string, f float64) corpus {
	var tr, va strings.Builder
	n := 0
	for i, d := range docs {
		if math.Floor(float64(i+1)*f) > math.Floor(float64(i)*f) {
			va.WriteString(d)
			n++
		} else {
			tr.WriteString(d)
		}
	}
	return corpus{train: tr.String(), valid: va.String(),
		split: fmt.Sprintf("validation: %d of %d documents, evenly spread", n, len(docs))}
}

// documents cuts text into its blocks between blank lines, each with the
// blank lines that follow it, so that they join back into text exactly.
func documents(text string) []string {
	var docs []string
	start, inBlank, seenText := 0, false, false
	for i := 0; i < len(text); {
		end := strings.IndexByte(text[i:], '\n')
		if end < 0 {
			end = len(text)
		} else {
			end += i + 1
		}
		blank := strings.TrimSpace(text[i:end]) == ""
		if !blank && inBlank && seenText {
			docs = append(docs, text[start:i])
			start = i
		}
		inBlank = blank
		seenText = seenText || !blank
		i = end
	}
	if start < len(text) {
		docs = append(docs, text[start:])
	}
	return docs
}

// wordCut moves byte offset i to the nearest break between words: the
// start of a whitespace run with a word after it, searching both ways (0 or
// len(text) when there is none).
func wordCut(text string, i int) int {
	i = max(0, min(i, len(text)))
	isBreak := func(j int) bool {
		if j <= 0 || j >= len(text) {
			return false
		}
		r, _ := utf8.DecodeRuneInString(text[j:])
		p, _ := utf8.DecodeLastRuneInString(text[:j])
		return unicode.IsSpace(r) && !unicode.IsSpace(p) && strings.TrimSpace(text[j:]) != ""
	}
	for d := 0; i-d > 0 || i+d < len(text); d++ {
		if isBreak(i + d) {
			return i + d
		}
		if isBreak(i - d) {
			return i - d
		}
	}
	if i*2 < len(text) {
		return 0
	}
	return len(text)
}
