package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCheckpointsAreWholeAndFoundAfterACrash: a checkpoint lm train writes
// holds its tokenizer (listed in its manifest, written before the swap) and
// an HF config; after a crash between the two renames of a save (only
// .last.old and .best.old left), --resume, generate and eval find them.
func TestCheckpointsAreWholeAndFoundAfterACrash(t *testing.T) {
	dir := t.TempDir()
	data := writeText(t, dir)
	out := filepath.Join(dir, "run")
	cfg := filepath.Join(dir, "cfg.json")
	require.NoError(t, os.WriteFile(cfg, []byte(`{"n_positions": 16, "n_embd": 16, "n_head": 2, "n_layer": 1}`), 0o644))
	common := []string{"lm", "train", "--data", data, "--config", cfg, "--merges", "30", "--batch", "2",
		"--eval-every", "2", "--eval-batches", "1", "--checkpoint-every", "2", "--out", out, "--samples", "0"}
	stdout, err := run(t, append(common, "--steps", "4")...)
	require.NoError(t, err, stdout)

	for _, name := range []string{"best", "last"} {
		b, err := os.ReadFile(filepath.Join(out, name, "manifest.json"))
		require.NoError(t, err)
		var m struct {
			Files []struct{ Name string } `json:"files"`
		}
		require.NoError(t, json.Unmarshal(b, &m))
		var files []string
		for _, f := range m.Files {
			files = append(files, f.Name)
		}
		assert.Equal(t, []string{"config.json", "history.json", "merges.txt", "model.safetensors", "optimizer.safetensors", "trainer.json", "vocab.json"}, files, name)
		b, err = os.ReadFile(filepath.Join(out, name, "config.json"))
		require.NoError(t, err)
		assert.Contains(t, string(b), `"model_type": "openai-gpt"`)
		assert.Contains(t, string(b), `"OpenAIGPTLMHeadModel"`)
	}

	// The crash: each checkpoint moved aside, its replacement never renamed.
	for _, name := range []string{"best", "last"} {
		require.NoError(t, os.Rename(filepath.Join(out, name), filepath.Join(out, "."+name+".old")))
	}
	stdout, err = run(t, "lm", "generate", "--model", filepath.Join(out, "last"), "--prompt", "The people", "--max-new-tokens", "3")
	require.NoError(t, err)
	assert.Contains(t, stdout, "The people")
	stdout, err = run(t, "lm", "generate", "--model", out, "--ids", "5,9", "--max-new-tokens", "2", "--print-ids", "--temperature", "0")
	require.NoError(t, err, "a run directory stands for its best checkpoint")
	assert.Regexp(t, `^\d+,\d+\n`, stdout)
	stdout, err = run(t, "lm", "eval", "--model", filepath.Join(out, "best"), "--data", data)
	require.NoError(t, err)
	assert.Contains(t, stdout, "nats/token")

	stdout, err = run(t, append(common, "--steps", "6", "--resume")...)
	require.NoError(t, err, stdout)
	assert.Contains(t, stdout, "resumed at step 4 from "+filepath.Join(out, ".last.old"))
	assert.Contains(t, stdout, "stopped (steps) at step 6")
	entries, err := os.ReadDir(out)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.Equal(t, []string{"best", "last", "loss.png", "run.json"}, names, "put back and replaced, nothing left aside")

	_, err = run(t, "lm", "generate", "--model", filepath.Join(dir, "nothing"), "--ids", "1")
	assert.ErrorContains(t, err, "not a model directory (no config.json) and no complete checkpoint in it")
}
