package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seq2gpt/seq2gpt/safetensors"
)

var glueFixtures = filepath.Join("..", "..", "datasets", "testdata", "glue")

// pretrainLM trains a small language model for a few steps with lm train
// and returns its run directory.
func pretrainLM(t *testing.T, positions int) string {
	t.Helper()
	dir := t.TempDir()
	data := writeText(t, dir)
	cfg := filepath.Join(dir, "cfg.json")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`{"n_positions": %d, "n_embd": 16, "n_head": 2, "n_layer": 1}`, positions)), 0o644))
	out := filepath.Join(dir, "lm")
	stdout, err := run(t, "lm", "train", "--data", data, "--config", cfg, "--merges", "60", "--batch", "2", "--steps", "4",
		"--eval-every", "4", "--eval-batches", "1", "--out", out, "--samples", "0")
	require.NoError(t, err, stdout)
	return out
}

// TestFinetuneGLUE drives finetune train, eval, predict and resume on the
// GLUE fixtures: RTE (entailment) and STS-B (regression).
func TestFinetuneGLUE(t *testing.T) {
	lm := pretrainLM(t, 32)
	for _, c := range []struct {
		task, file, metric string
		values             []string
	}{
		{"rte", "RTE.tsv", "accuracy", []string{"entailment", "not_entailment"}},
		{"stsb", "STS-B.tsv", "pearson", nil},
	} {
		t.Run(c.task, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "run")
			args := []string{"finetune", "train", "--task", c.task, "--data", glueFixtures, "--from", lm, "--epochs", "2",
				"--batch", "2", "--lr", "1e-3", "--out", out}
			stdout, err := run(t, args...)
			require.NoError(t, err, stdout)
			assert.Contains(t, stdout, "3 training and 2 validation examples")
			assert.Contains(t, stdout, "training: 2 epochs of 2 steps, batch 2, lr 0.001 (warm-up 1 steps, linear decay), λ 0.5, head dropout 0.1")
			assert.Contains(t, stdout, "stopped (steps) at step 4")
			assert.Contains(t, stdout, "best validation "+c.metric)
			for _, f := range []string{"run.json", "best/task.json", "best/vocab.json", "best/merges.txt", "best/manifest.json",
				"last/trainer.json", "model/config.json", "model/model.safetensors", "model/task.json", "model/vocab.json"} {
				assert.FileExists(t, filepath.Join(out, f))
			}
			var cfg struct {
				Architectures []string `json:"architectures"`
			}
			readJSONFile(t, filepath.Join(out, "model", "config.json"), &cfg)
			assert.Equal(t, []string{"OpenAIGPTForSequenceClassification"}, cfg.Architectures)
			h, err := safetensors.ReadHeader(filepath.Join(out, "model", "model.safetensors"))
			require.NoError(t, err)
			assert.Contains(t, h.Names(), "score.weight")
			assert.Contains(t, h.Names(), "transformer.tokens_embed.weight")

			stdout, err = run(t, "finetune", "eval", "--model", out, "--data", glueFixtures)
			require.NoError(t, err, stdout)
			assert.Contains(t, stdout, c.task+" dev: 2 examples; ")
			assert.Regexp(t, c.metric+` (-?\d\.\d{4}|undefined)`, stdout)

			tsv := filepath.Join(t.TempDir(), c.file)
			stdout, err = run(t, "finetune", "predict", "--model", filepath.Join(out, "model"), "--data", glueFixtures, "--out", tsv)
			require.NoError(t, err, stdout)
			assert.Contains(t, stdout, "wrote 2 predictions to "+tsv)
			b, err := os.ReadFile(tsv)
			require.NoError(t, err)
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			require.Len(t, lines, 3)
			assert.Equal(t, "index\tprediction", lines[0])
			for i, l := range lines[1:] {
				f := strings.Split(l, "\t")
				require.Len(t, f, 2)
				assert.Equal(t, fmt.Sprint(i), f[0])
				if c.values != nil {
					assert.Contains(t, c.values, f[1])
				} else {
					assert.Regexp(t, `^-?\d+\.\d{3}$`, f[1])
				}
			}

			stdout, err = run(t, "finetune", "train", "--out", out, "--resume")
			require.NoError(t, err, stdout)
			assert.Contains(t, stdout, "resumed at step 4")
			_, err = run(t, args...)
			assert.ErrorContains(t, err, "holds a run (best, last, loss.png, model, run.json): continue it with --resume, or replace it with --overwrite")
			_, err = run(t, "finetune", "train", "--out", out, "--resume", "--lr", "0.01")
			assert.ErrorContains(t, err, "--lr 0.01 contradicts the run in "+out+", which has --lr 0.001")
			stdout, err = run(t, append(args, "--overwrite", "--lm-coef", "0")...)
			require.NoError(t, err, stdout)
			assert.Contains(t, stdout, "λ 0,")
		})
	}
}

// TestFinetuneMultipleChoice trains on a JSON-lines multiple-choice set,
// saved as OpenAIGPTDoubleHeadsModel, and predicts choice indices.
func TestFinetuneMultipleChoice(t *testing.T) {
	lm := pretrainLM(t, 32)
	dir := t.TempDir()
	var items []string
	for i := range 12 {
		items = append(items, fmt.Sprintf(`{"id": "q%d", "context": "The people of the United States ask the", "choices": ["Congress", "budget %d", "challenge"], "label": %d}`, i, i, i%3))
	}
	trainFile, validFile := filepath.Join(dir, "train.jsonl"), filepath.Join(dir, "valid.jsonl")
	require.NoError(t, os.WriteFile(trainFile, []byte(strings.Join(items[:9], "\n")+"\n"), 0o644))
	require.NoError(t, os.WriteFile(validFile, []byte(strings.Join(items[9:], "\n")+"\n"), 0o644))
	out := filepath.Join(dir, "run")
	stdout, err := run(t, "finetune", "train", "--jsonl", trainFile, "--valid-jsonl", validFile, "--from", lm,
		"--epochs", "1", "--batch", "4", "--out", out)
	require.NoError(t, err, stdout)
	assert.Contains(t, stdout, "task: train, multiple-choice — 9 training and 3 validation examples")
	assert.Contains(t, stdout, "OpenAIGPTDoubleHeadsModel")
	h, err := safetensors.ReadHeader(filepath.Join(out, "model", "model.safetensors"))
	require.NoError(t, err)
	for _, n := range []string{"multiple_choice_head.summary.weight", "multiple_choice_head.summary.bias", "lm_head.weight"} {
		assert.Contains(t, h.Names(), n)
	}
	stdout, err = run(t, "finetune", "eval", "--model", out, "--jsonl", validFile)
	require.NoError(t, err, stdout)
	assert.Regexp(t, `accuracy \d\.\d{4}  loss \d`, stdout)
	tsv := filepath.Join(dir, "p.tsv")
	_, err = run(t, "finetune", "predict", "--model", out, "--jsonl", validFile, "--out", tsv)
	require.NoError(t, err)
	b, err := os.ReadFile(tsv)
	require.NoError(t, err)
	assert.Regexp(t, `^index\tprediction\nq9\t[012]\nq10\t[012]\nq11\t[012]\n$`, string(b))
	_, err = run(t, "finetune", "eval", "--model", out)
	assert.ErrorContains(t, err, "fine-tuned on a --jsonl set (train): give --jsonl FILE")
}

// TestFinetuneTruncates: inputs past n_positions are cut, and the counts
// say so.
func TestFinetuneTruncates(t *testing.T) {
	lm := pretrainLM(t, 12)
	stdout, err := run(t, "finetune", "train", "--task", "mrpc", "--data", glueFixtures, "--from", lm, "--epochs", "1",
		"--out", filepath.Join(t.TempDir(), "run"))
	require.NoError(t, err, stdout)
	assert.Regexp(t, `training data: [1-3] examples truncated to 12 tokens \(\d+ tokens cut; the longest had \d+\)`, stdout)
}

// TestFinetuneBadInput: each mistake names the flag or the file and line.
func TestFinetuneBadInput(t *testing.T) {
	lm := pretrainLM(t, 32)
	dir := t.TempDir()
	bad := filepath.Join(dir, "RTE")
	require.NoError(t, os.MkdirAll(bad, 0o755))
	for _, f := range []string{"dev.tsv", "test.tsv"} {
		b, err := os.ReadFile(filepath.Join(glueFixtures, "RTE", f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(bad, f), b, 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(bad, "train.tsv"),
		[]byte("index\tsentence1\tsentence2\tlabel\n0\tA cat.\tA dog.\tentailment\n1\tA cat.\tA dog.\tmaybe\n"), 0o644))
	emptyChoice := filepath.Join(dir, "mc.jsonl")
	require.NoError(t, os.WriteFile(emptyChoice, []byte(`{"context": "The", "choices": ["people", " "], "label": 0}`+"\n"), 0o644))
	out := filepath.Join(dir, "run")
	ft := func(args ...string) error {
		_, err := run(t, append([]string{"finetune", "train", "--out", out}, args...)...)
		return err
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--task", "rte", "--data", dir, "--from", lm}, `RTE/train.tsv:3: unknown RTE label "maybe" in column 4; expected one of entailment, not_entailment`},
		{[]string{"--jsonl", emptyChoice, "--from", lm}, "mc.jsonl:1: choice 1 is empty"},
		{[]string{"--task", "sst3", "--from", lm}, `--task "sst3": want one of cola, sst2`},
		{[]string{"--task", "rte", "--from", lm}, "--task rte is a GLUE task: give --data"},
		{[]string{"--task", "sentiment", "--data", dir, "--from", lm}, "--task sentiment is embedded in seq2gpt and reads no directory"},
		{[]string{"--task", "rte", "--jsonl", emptyChoice, "--from", lm}, "give --task or --jsonl, not both"},
		{[]string{"--task", "sentiment"}, "give --from DIR, a pre-trained language model or BERT (or --scratch"},
		{[]string{"--task", "sentiment", "--from", lm, "--lm-coef", "-1"}, "--lm-coef -1: want a finite number ≥ 0"},
		{[]string{"--task", "sentiment", "--from", lm, "--head-dropout", "1"}, "--head-dropout 1: want a number in [0, 1)"},
		{[]string{"--task", "sentiment", "--from", lm, "--lr", "0"}, "--lr 0: want a finite number > 0"},
		{[]string{"--task", "sentiment", "--from", lm, "--epochs", "0"}, "--epochs 0: want an integer ≥ 1"},
		{[]string{"--task", "sentiment", "--from", lm, "--batch", "0"}, "--batch 0: want an integer ≥ 1"},
		{[]string{"--task", "sentiment", "--from", lm, "--warmup", "1.5"}, "--warmup 1.5: want a number in [0, 1)"},
		{[]string{"--task", "sentiment", "--from", lm, "--preset", "small"}, "--preset and --merges apply only to --scratch without --from"},
		{[]string{"--task", "sentiment", "--from", dir}, "--from: --model " + dir + ": not a model directory"},
		{[]string{"--task", "sentiment", "--resume"}, "--resume: " + out + " holds no run (no run.json and no checkpoint)"},
		{[]string{"--task", "sentiment", "--from", filepath.Join("..", "..", "tasks", "testdata", "hf-mnli")},
			"holds a OpenAIGPTForSequenceClassification: fine-tune from a pre-trained language model"},
		{[]string{"--task", "sentiment", "--from", filepath.Join("..", "..", "gpt", "testdata", "hf-gelu")}, "has no tokenizer files"},
	}
	for _, c := range cases {
		err := ft(c.args...)
		if assert.Error(t, err, "%v", c.args) {
			assert.Contains(t, err.Error(), c.want, "%v", c.args)
		}
		require.NoError(t, os.RemoveAll(out))
	}
	_, err := run(t, "finetune", "eval", "--model", lm, "--task", "sentiment")
	assert.ErrorContains(t, err, "holds a OpenAIGPTLMHeadModel, a pre-trained language model with no task head")
}

// TestFinetuneInterrupt: Ctrl-C saves the last checkpoint, and --resume
// (which remembers the run) continues it, here to --max-steps, which a
// resumed run may change. (A run of 100 epochs does not end before the
// signal comes, however fast the machine.)
func TestFinetuneInterrupt(t *testing.T) {
	lm := pretrainLM(t, 32)
	out := filepath.Join(t.TempDir(), "run")
	args := []string{"finetune", "train", "--task", "sentiment", "--from", lm, "--batch", "8", "--epochs", "100", "--out", out}
	saved := interruptChild(t, args, "training:")
	assert.FileExists(t, filepath.Join(out, "last", "task.json"))
	assert.NoDirExists(t, filepath.Join(out, "model"), "no evaluation yet: no best model")

	resumed, err := run(t, "finetune", "train", "--out", out, "--resume", "--max-steps", fmt.Sprint(saved+3))
	require.NoError(t, err, resumed)
	assert.Contains(t, resumed, fmt.Sprintf("resumed at step %d", saved))
	assert.Contains(t, resumed, fmt.Sprintf("stopping at step %d of 30100 (--max-steps)", saved+3))
	assert.Contains(t, resumed, fmt.Sprintf("stopped (steps) at step %d: ", saved+3))
	assert.DirExists(t, filepath.Join(out, "model"), "the run ends with an evaluation: the best is exported")
}

func readJSONFile(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, v))
}
