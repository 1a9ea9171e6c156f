package main

import (
	"bufio"
	"bytes"
	"encoding/json"
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

// run executes the command line in-process and returns its standard output.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func writeText(t *testing.T, dir string) string {
	var b strings.Builder
	for i := 0; i < 300; i++ {
		b.WriteString("The people of the United States ask the Congress for a budget. ")
		if i%3 == 0 {
			b.WriteString("We shall meet the challenge.\n")
		}
	}
	path := filepath.Join(dir, "text.txt")
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
	return path
}

// TestTrainGenerateEvalResume drives the command line end to end on a small
// text: train, resume, generate from text and from ids, evaluate.
func TestTrainGenerateEvalResume(t *testing.T) {
	dir := t.TempDir()
	data := writeText(t, dir)
	out := filepath.Join(dir, "run")
	cfg := filepath.Join(dir, "cfg.json")
	require.NoError(t, os.WriteFile(cfg, []byte(`{"n_positions": 16, "n_embd": 32, "n_head": 2, "n_layer": 1}`), 0o644))
	common := []string{"lm", "train", "--data", data, "--config", cfg, "--merges", "40", "--batch", "4",
		"--eval-every", "10", "--eval-batches", "2", "--checkpoint-every", "10", "--out", out, "--sample-tokens", "5", "--samples", "1"}
	stdout, err := run(t, append(common, "--steps", "20")...)
	require.NoError(t, err, stdout)
	assert.Contains(t, stdout, "stopped (steps) at step 20")
	assert.Contains(t, stdout, "--- sample 1")
	for _, f := range []string{"best/model.safetensors", "best/config.json", "best/vocab.json", "best/merges.txt", "last/trainer.json", "loss.png"} {
		assert.FileExists(t, filepath.Join(out, f))
	}
	stdout, err = run(t, append(common, "--steps", "30", "--resume")...)
	require.NoError(t, err, stdout)
	assert.Contains(t, stdout, "resumed at step 20")
	assert.Contains(t, stdout, "at step 30")

	best := filepath.Join(out, "best")
	stdout, err = run(t, "lm", "generate", "--model", best, "--prompt", "The people", "--max-new-tokens", "8", "--seed", "3")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(stdout, "The people"), stdout)
	again, err := run(t, "lm", "generate", "--model", best, "--prompt", "The people", "--max-new-tokens", "8", "--seed", "3")
	require.NoError(t, err)
	assert.Equal(t, stdout, again, "same seed, same sample")

	stdout, err = run(t, "lm", "generate", "--model", best, "--ids", "5,9,2", "--max-new-tokens", "4", "--temperature", "0", "--print-ids")
	require.NoError(t, err)
	assert.Regexp(t, `^\d+,\d+,\d+,\d+\n`, stdout)

	stdout, err = run(t, "lm", "eval", "--model", best, "--data", data)
	require.NoError(t, err)
	assert.Regexp(t, `loss \d+\.\d+ nats/token  perplexity \d+\.\d+`, stdout)
}

// TestGenerateMatchesTorchGreedy: on a torch-written HuggingFace openai-gpt
// directory (no tokenizer files), greedy ids equal torch's.
func TestGenerateMatchesTorchGreedy(t *testing.T) {
	dir := filepath.Join("..", "..", "gpt", "testdata", "hf-gelu")
	b, err := os.ReadFile(filepath.Join(dir, "reference.json"))
	require.NoError(t, err)
	var ref struct {
		Prompts [][]int `json:"prompts"`
		Greedy  [][]int `json:"greedy"`
	}
	require.NoError(t, json.Unmarshal(b, &ref))
	for i, p := range ref.Prompts {
		// A temperature too small to divide by is greedy too (1e-320 once
		// overflowed the logits to ±Inf and sampled garbage).
		for _, temp := range []string{"0", "1e-320"} {
			stdout, err := run(t, "lm", "generate", "--model", dir, "--ids", joinIDs(p), "--temperature", temp,
				"--max-new-tokens", "12", "--print-ids")
			require.NoError(t, err)
			assert.Equal(t, joinIDs(ref.Greedy[i])+"\n", stdout, "temperature %s", temp)
		}
	}
}

func TestCommandErrors(t *testing.T) {
	dir := filepath.Join("..", "..", "gpt", "testdata", "hf-gelu")
	_, err := run(t, "lm", "generate", "--model", dir, "--prompt", "hi")
	assert.ErrorContains(t, err, "no tokenizer files: give the prompt as --ids")
	_, err = run(t, "lm", "generate", "--model", dir, "--ids", "1,x")
	assert.ErrorContains(t, err, `item 2 ("x") is not an integer`)
	_, err = run(t, "lm", "generate", "--model", dir, "--ids", "1,99")
	assert.ErrorContains(t, err, "token 99 at position 1 is outside the vocabulary [0, 50)")
	_, err = run(t, "lm", "generate", "--model", dir, "--ids", "1", "--max-new-tokens", "60", "--overflow", "error")
	assert.ErrorContains(t, err, "exceeds n_positions 40")
	_, err = run(t, "lm", "generate", "--model", dir, "--ids", "1", "--max-new-tokens", "0")
	assert.ErrorContains(t, err, "--max-new-tokens 0: want an integer ≥ 1")
	_, err = run(t, "lm", "generate", "--model", dir, "--ids", "1", "--temperature", "-1")
	assert.ErrorContains(t, err, "temperature -1")
	_, err = run(t, "lm", "generate", "--model", t.TempDir(), "--ids", "1")
	assert.Error(t, err)
	_, err = run(t, "lm", "train", "--preset", "huge")
	assert.EqualError(t, err, "--preset huge: want tiny, small, medium or paper")
}

const childArgsEnv = "SEQ2GPT_TEST_CHILD_ARGS"

// TestChildProcess runs the command line given in its environment; it is
// the child of TestInterruptSavesCheckpoint (the os/exec helper-process
// idiom) and returns at once in a normal run.
func TestChildProcess(t *testing.T) {
	args := os.Getenv(childArgsEnv)
	if args == "" {
		return
	}
	root := newRoot()
	root.SetArgs(strings.Split(args, "\x1f"))
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// interruptChild runs the command line args in a child process, sends it
// SIGINT (Ctrl-C) 1.5 s after it prints a line starting with ready, and
// returns the step the cancelled run says it saved.
func interruptChild(t *testing.T, args []string, ready string) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), childArgsEnv+"="+strings.Join(args, "\x1f"))
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	sc := bufio.NewScanner(stdout)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if strings.HasPrefix(sc.Text(), ready) {
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
	var saved int
	_, err = fmt.Sscanf(all[strings.Index(all, "stopped (cancelled) at step "):], "stopped (cancelled) at step %d", &saved)
	require.NoError(t, err)
	return saved
}

// TestInterruptSavesCheckpoint: Ctrl-C (SIGINT) during lm train saves the
// last checkpoint, exits cleanly, and --resume continues from it.
func TestInterruptSavesCheckpoint(t *testing.T) {
	dir := t.TempDir()
	data := writeText(t, dir)
	out := filepath.Join(dir, "run")
	args := []string{"lm", "train", "--data", data, "--preset", "tiny", "--steps", "100000", "--warmup", "1", "--batch", "2",
		"--eval-every", "100000", "--checkpoint-every", "100000", "--out", out}
	saved := interruptChild(t, args, "model:")
	assert.FileExists(t, filepath.Join(out, "last", "trainer.json"))
	assert.FileExists(t, filepath.Join(out, "last", "vocab.json"))
	require.Greater(t, saved, 0)
	resumed, err := run(t, append(args[:len(args)-4:len(args)-4], "--out", out, "--resume", "--steps", fmt.Sprint(saved+3), "--samples", "0")...)
	require.NoError(t, err, resumed)
	assert.Contains(t, resumed, fmt.Sprintf("resumed at step %d", saved))
	assert.Contains(t, resumed, fmt.Sprintf("stopped (steps) at step %d", saved+3))
}

// TestPresetLearningRates: without --lr a run takes its preset's peak rate
// and records it (the small preset did not learn at tiny's 2e-3); --lr
// given wins.
func TestPresetLearningRates(t *testing.T) {
	dir := t.TempDir()
	data := writeText(t, dir)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"tiny", []string{"--preset", "tiny"}, "0.002"},
		{"small", []string{"--preset", "small"}, "0.0006"},
		{"small, --lr given", []string{"--preset", "small", "--lr", "1e-3"}, "0.001"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, strings.NewReplacer(" ", "", ",", "").Replace(tc.name))
			args := append([]string{"lm", "train", "--data", data, "--merges", "20", "--steps", "2", "--warmup", "1",
				"--eval-every", "0", "--samples", "0", "--out", out}, tc.args...)
			_, err := run(t, args...)
			require.NoError(t, err)
			b, err := os.ReadFile(filepath.Join(out, "run.json"))
			require.NoError(t, err)
			var rf struct{ Flags map[string]string }
			require.NoError(t, json.Unmarshal(b, &rf))
			assert.Equal(t, tc.want, rf.Flags["lr"])
		})
	}
}
