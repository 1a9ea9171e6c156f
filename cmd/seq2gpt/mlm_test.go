package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mlmConfig(t *testing.T, dir string) string {
	cfg := filepath.Join(dir, "bert.json")
	require.NoError(t, os.WriteFile(cfg, []byte(`{"max_position_embeddings": 24, "hidden_size": 32, "num_attention_heads": 2, "num_hidden_layers": 1, "intermediate_size": 64}`), 0o644))
	return cfg
}

// TestMLMTrainResumeEvalFill drives mlm end to end on a small text:
// train, refuse to overwrite, resume (the run's flags from run.json),
// evaluate, fill in a [MASK].
func TestMLMTrainResumeEvalFill(t *testing.T) {
	dir := t.TempDir()
	data := writeText(t, dir)
	out := filepath.Join(dir, "run")
	common := []string{"mlm", "train", "--data", data, "--config", mlmConfig(t, dir), "--merges", "40", "--batch", "4",
		"--eval-every", "10", "--eval-batches", "2", "--checkpoint-every", "10", "--out", out, "--fill", "The [MASK] of the United States"}
	stdout, err := run(t, append(common, "--steps", "20")...)
	require.NoError(t, err, stdout)
	assert.Contains(t, stdout, "vocabulary 300 (with [PAD] [CLS] [SEP] [MASK])")
	assert.Contains(t, stdout, "model: BERT, 1 layers, d 32, 2 heads, d_ff 64, 24 positions, gelu")
	assert.Contains(t, stdout, "stopped (steps) at step 20: 1920 input tokens")
	assert.Contains(t, stdout, "--- The [MASK] of the United States\n")
	assert.Regexp(t, `\[MASK\] 1: ".*" 0\.\d{3}, ".*" 0\.\d{3}, ".*" 0\.\d{3}`, stdout)
	for _, f := range []string{"run.json", "best/model.safetensors", "best/config.json", "best/vocab.json", "best/merges.txt", "last/trainer.json", "loss.png"} {
		assert.FileExists(t, filepath.Join(out, f))
	}
	cfg, err := os.ReadFile(filepath.Join(out, "best", "config.json"))
	require.NoError(t, err)
	assert.Contains(t, string(cfg), `"model_type": "bert"`)

	_, err = run(t, append(common, "--steps", "20")...)
	assert.ErrorContains(t, err, "holds a run (best, last, loss.png, run.json): continue it with --resume, or replace it with --overwrite")
	_, err = run(t, "mlm", "train", "--out", out, "--steps", "30", "--resume", "--lr", "0.1")
	assert.ErrorContains(t, err, "--lr 0.1 contradicts the run in "+out+", which has --lr 0.002")
	stdout, err = run(t, "mlm", "train", "--out", out, "--steps", "30", "--resume", "--batch", "4", "--fill", "")
	require.NoError(t, err, stdout)
	assert.Contains(t, stdout, "resumed at step 20")
	assert.Contains(t, stdout, "stopped (steps) at step 30")

	stdout, err = run(t, "mlm", "eval", "--model", out, "--data", data)
	require.NoError(t, err)
	assert.Regexp(t, `masked targets\nMLM loss \d+\.\d+ nats/target  perplexity \d+\.\d+  accuracy 0\.\d+  \(at \[MASK\]s 0\.\d+\)`, stdout)
	stdout, err = run(t, "mlm", "fill", "--model", filepath.Join(out, "best"), "--text", "We shall [MASK] the challenge.", "--top-k", "2")
	require.NoError(t, err)
	assert.Regexp(t, `^--- We shall \[MASK\] the challenge\.\nWe shall.* the challenge\.\n\[MASK\] 1: ".*" 0\.\d{3}, ".*" 0\.\d{3}\n$`, stdout)

	stdout, err = run(t, append(common, "--steps", "5", "--overwrite", "--fill", "")...)
	require.NoError(t, err, stdout)
	assert.Contains(t, stdout, "stopped (steps) at step 5")
}

func TestMLMCommandErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"mlm", "train", "--lr", "NaN"}, "--lr NaN: want a finite number > 0"},
		{[]string{"mlm", "train", "--mask-rate", "1.5"}, "--mask-rate 1.5: want a number in (0, 1]"},
		{[]string{"mlm", "train", "--dropout", "-0.5"}, "--dropout -0.5: want a number in [0, 1)"},
		{[]string{"mlm", "train", "--batch", "0"}, "--batch 0: want an integer ≥ 1"},
		{[]string{"mlm", "train", "--resume", "--overwrite"}, "--resume and --overwrite: give one"},
		{[]string{"mlm", "train", "--resume", "--out", dir}, "holds no run (no run.json and no checkpoint)"},
		{[]string{"mlm", "train", "--preset", "huge", "--out", filepath.Join(dir, "x")}, "--preset huge: want tiny, small, medium, base or large"},
		{[]string{"mlm", "fill", "--model", filepath.Join("..", "..", "bert", "testdata", "hf-bert"), "--text", "a [MASK]"}, "no tokenizer files"},
		{[]string{"mlm", "fill", "--model", dir, "--text", "a [MASK]"}, "not a model directory"},
		{[]string{"mlm", "eval", "--model", dir, "--batch", "0"}, "--batch 0 is out of range"},
	} {
		_, err := run(t, tc.args...)
		assert.ErrorContains(t, err, tc.want, "%v", tc.args)
	}
}

// TestMLMInterruptSavesCheckpoint: Ctrl-C during mlm train saves the last
// checkpoint with its tokenizer and exits cleanly; --resume continues.
func TestMLMInterruptSavesCheckpoint(t *testing.T) {
	dir := t.TempDir()
	data := writeText(t, dir)
	out := filepath.Join(dir, "run")
	args := []string{"mlm", "train", "--data", data, "--config", mlmConfig(t, dir), "--steps", "100000", "--warmup", "1", "--batch", "2",
		"--eval-every", "100000", "--checkpoint-every", "100000", "--out", out}
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), childArgsEnv+"="+strings.Join(args, "\x1f"))
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	sc := bufio.NewScanner(stdout)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if strings.HasPrefix(sc.Text(), "model:") {
			break
		}
	}
	time.Sleep(1500 * time.Millisecond) // let a few steps run
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	require.NoError(t, cmd.Wait(), strings.Join(lines, "\n"))
	all := strings.Join(lines, "\n")
	require.Contains(t, all, "stopped (cancelled) at step ")
	assert.FileExists(t, filepath.Join(out, "last", "trainer.json"))
	assert.FileExists(t, filepath.Join(out, "last", "vocab.json"))
	var saved int
	_, err = fmt.Sscanf(all[strings.Index(all, "stopped (cancelled) at step "):], "stopped (cancelled) at step %d", &saved)
	require.NoError(t, err)
	require.Greater(t, saved, 0)
	resumed, err := run(t, "mlm", "train", "--out", out, "--resume", "--steps", fmt.Sprint(saved+3), "--fill", "")
	require.NoError(t, err, resumed)
	assert.Contains(t, resumed, fmt.Sprintf("resumed at step %d", saved))
	assert.Contains(t, resumed, fmt.Sprintf("stopped (steps) at step %d", saved+3))
}
