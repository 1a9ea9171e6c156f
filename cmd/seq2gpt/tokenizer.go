package main

import (
	"bytes"
	"os"
	"path/filepath"

	"github.com/pkg/errors"

	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/internal/atomicfile"
)

// Tokenizer files in a model directory, named as HuggingFace's GPT-2
// tokenizer names them (the same formats as GPT-2's encoder.json and
// vocab.bpe, which are accepted too).
var tokenizerFiles = [][2]string{{"vocab.json", "merges.txt"}, {"encoder.json", "vocab.bpe"}}

// saveTokenizer writes tok into dir as vocab.json and merges.txt.
func saveTokenizer(tok *datasets.BPE, dir string) error {
	var enc, merges bytes.Buffer
	if err := tok.SaveGPT2(&enc, &merges); err != nil {
		return errors.Wrap(err, "saving tokenizer")
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, tokenizerFiles[0][0]), enc.Bytes()); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, tokenizerFiles[0][1]), merges.Bytes())
}

// loadTokenizer reads the tokenizer of a model directory; found is false
// when the directory has none.
func loadTokenizer(dir string) (tok *datasets.BPE, found bool, err error) {
	for _, names := range tokenizerFiles {
		enc, merges := filepath.Join(dir, names[0]), filepath.Join(dir, names[1])
		if _, err := os.Stat(enc); err != nil {
			continue
		}
		tok, err := datasets.LoadGPT2Files(enc, merges)
		return tok, true, errors.Wrapf(err, "tokenizer in %s", dir)
	}
	return nil, false, nil
}
