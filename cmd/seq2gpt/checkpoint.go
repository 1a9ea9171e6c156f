package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/pkg/errors"

	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/gpt"
	"github.com/seq2gpt/seq2gpt/train"
)

// modelDir is the model directory that --model names. A directory with a
// config.json is one (a checkpoint, or any HuggingFace openai-gpt
// directory). Otherwise it is found as train.CheckpointPath finds a
// checkpoint: "runs/x/last" whose replacement a crash interrupted is
// runs/x/.last.old, and a run directory "runs/x" stands for its best
// checkpoint, else its last. A fallback is noted on warn.
func modelDir(path string, warn io.Writer) (string, error) {
	if _, err := os.Stat(filepath.Join(path, gpt.ConfigFile)); err == nil {
		return path, nil
	}
	if dir, err := train.CheckpointPath(filepath.Dir(path), filepath.Base(path)); err == nil {
		fmt.Fprintf(warn, "note: %s is missing or incomplete (a save was interrupted): using %s\n", path, dir)
		return dir, nil
	}
	for _, name := range []string{train.BestCheckpoint, train.LastCheckpoint} {
		if dir, err := train.CheckpointPath(path, name); err == nil {
			return dir, nil
		}
	}
	return "", errors.Errorf("--model %s: not a model directory (no %s) and no complete checkpoint in it", path, gpt.ConfigFile)
}

// loadModelAndTokenizer loads the model directory --model names (found as
// modelDir finds it) with its tokenizer, which it must have.
func loadModelAndTokenizer(path string, warn io.Writer) (*gpt.Model, *datasets.BPE, error) {
	dir, err := modelDir(path, warn)
	if err != nil {
		return nil, nil, err
	}
	if err := requireKind(dir, false); err != nil {
		return nil, nil, err
	}
	m, err := gpt.Load(dir)
	if err != nil {
		return nil, nil, err
	}
	tok, ok, err := loadTokenizer(dir)
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		return nil, nil, errors.Errorf("%s has no tokenizer files", dir)
	}
	return m, tok, nil
}
