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
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/safetensors"
)

// pretrainMLM pre-trains a small BERT for a few steps with mlm train and
// returns its run directory.
func pretrainMLM(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, "bert")
	stdout, err := run(t, "mlm", "train", "--data", writeText(t, dir), "--config", mlmConfig(t, dir), "--merges", "40", "--batch", "4",
		"--steps", "4", "--eval-every", "4", "--eval-batches", "1", "--out", out)
	require.NoError(t, err, stdout)
	return out
}

// TestFinetuneBERT drives finetune train, eval and predict from a BERT
// that mlm train wrote, on a one-text task (SST-2), a pair task (RTE) and
// a multiple-choice set: the body is BERT's (no auxiliary loss, λ
// refused), the best is saved as BertForSequenceClassification or
// BertForMultipleChoice, and the run resumes from its run file.
func TestFinetuneBERT(t *testing.T) {
	bertDir := pretrainMLM(t)
	dir := t.TempDir()
	var items []string
	for i := range 8 {
		items = append(items, fmt.Sprintf(`{"id": "q%d", "context": "The people of the United States ask the", "choices": ["Congress", "budget %d", "challenge"], "label": %d}`, i, i, i%3))
	}
	trainFile, validFile := filepath.Join(dir, "train.jsonl"), filepath.Join(dir, "valid.jsonl")
	require.NoError(t, os.WriteFile(trainFile, []byte(strings.Join(items[:6], "\n")+"\n"), 0o644))
	require.NoError(t, os.WriteFile(validFile, []byte(strings.Join(items[6:], "\n")+"\n"), 0o644))
	for _, c := range []struct {
		name      string
		task      []string // the task's flags for train, eval and predict
		train     []string // train's only
		class     string
		predicted string // the predictions' pattern
	}{
		{"sst2", []string{"--data", glueFixtures}, []string{"--task", "sst2"}, "BertForSequenceClassification", `^index\tprediction\n0\t[01]\n1\t[01]\n$`},
		{"rte", []string{"--data", glueFixtures}, []string{"--task", "rte"}, "BertForSequenceClassification", `^index\tprediction\n0\t(entailment|not_entailment)\n1\t(entailment|not_entailment)\n$`},
		{"choice", []string{"--jsonl", validFile}, []string{"--valid-jsonl", validFile}, "BertForMultipleChoice", `^index\tprediction\nq6\t[012]\nq7\t[012]\n$`},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "run")
			trainTask := append(append([]string(nil), c.task...), c.train...)
			if c.name == "choice" {
				trainTask = []string{"--jsonl", trainFile, "--valid-jsonl", validFile}
			}
			args := append([]string{"finetune", "train", "--from", bertDir, "--epochs", "2", "--batch", "2", "--lr", "1e-3", "--out", out}, trainTask...)
			stdout, err := run(t, args...)
			require.NoError(t, err, stdout)
			assert.Contains(t, stdout, "model: BERT, 1 layers, d 32, 2 heads, d_ff 64, 24 positions, vocabulary 300 (with [PAD] [CLS] [SEP] [MASK])")
			assert.Contains(t, stdout, "no auxiliary loss (BERT: the task's loss alone), head dropout 0.1")
			assert.Contains(t, stdout, "as a HuggingFace "+c.class)
			var cfg struct {
				ModelType     string   `json:"model_type"`
				Architectures []string `json:"architectures"`
			}
			readJSONFile(t, filepath.Join(out, "model", "config.json"), &cfg)
			assert.Equal(t, "bert", cfg.ModelType)
			assert.Equal(t, []string{c.class}, cfg.Architectures)
			h, err := safetensors.ReadHeader(filepath.Join(out, "model", "model.safetensors"))
			require.NoError(t, err)
			names := h.Names()
			for _, n := range []string{"classifier.weight", "classifier.bias", "bert.embeddings.token_type_embeddings.weight", "bert.pooler.dense.weight"} {
				assert.Contains(t, names, n)
			}
			for _, n := range names {
				assert.Regexp(t, `^(bert|classifier)\.`, n, "the pre-training heads are left behind")
			}
			var task struct {
				Config struct {
					LMCoef float64 `json:"lm_coef"`
				} `json:"config"`
			}
			readJSONFile(t, filepath.Join(out, "model", "task.json"), &task)
			assert.Zero(t, task.Config.LMCoef)

			stdout, err = run(t, append([]string{"finetune", "eval", "--model", out}, c.task...)...)
			require.NoError(t, err, stdout)
			assert.Regexp(t, `accuracy \d\.\d{4}  loss \d`, stdout)
			tsv := filepath.Join(t.TempDir(), "p.tsv")
			_, err = run(t, append([]string{"finetune", "predict", "--model", filepath.Join(out, "model"), "--out", tsv}, c.task...)...)
			require.NoError(t, err)
			b, err := os.ReadFile(tsv)
			require.NoError(t, err)
			assert.Regexp(t, c.predicted, string(b))
			if c.name != "rte" {
				return
			}
			// The run remembers itself, λ 0 included.
			stdout, err = run(t, "finetune", "train", "--out", out, "--resume")
			require.NoError(t, err, stdout)
			assert.Contains(t, stdout, "resumed at step 4")
			assert.Contains(t, stdout, "model: BERT")
			_, err = run(t, "finetune", "train", "--out", out, "--resume", "--lm-coef", "0.5")
			assert.ErrorContains(t, err, "--lm-coef 0.5 contradicts the run in "+out+", which has --lm-coef 0")
			stdout, err = run(t, append(args, "--overwrite", "--scratch", "--max-steps", "1")...)
			require.NoError(t, err, stdout)
			assert.Contains(t, stdout, "fresh weights (--scratch)")
			assert.Contains(t, stdout, "model: BERT")
		})
	}
}

// TestFinetuneBERTSources: a HuggingFace BertModel directory (no "bert."
// prefix, no pre-training heads) with a byte-level BPE fine-tunes as mlm
// train's directory does (here on a seeded sample, --train-examples);
// λ is refused for BERT; and a directory of the wrong kind names what it
// holds.
func TestFinetuneBERTSources(t *testing.T) {
	bertDir := pretrainMLM(t)
	hf := t.TempDir()
	best := filepath.Join(bertDir, "best")
	ts, _, err := safetensors.Read(filepath.Join(best, "model.safetensors"))
	require.NoError(t, err)
	encoder := map[string]*tensor.Dense{}
	for n, v := range ts {
		if e, ok := strings.CutPrefix(n, "bert."); ok {
			encoder[e] = v
		}
	}
	require.NoError(t, safetensors.Write(filepath.Join(hf, "model.safetensors"), encoder, map[string]string{"format": "pt"}))
	var cfg map[string]any
	readJSONFile(t, filepath.Join(best, "config.json"), &cfg)
	cfg["architectures"] = []string{"BertModel"}
	b, err := json.Marshal(cfg)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(hf, "config.json"), b, 0o644))
	for _, f := range []string{"vocab.json", "merges.txt"} {
		b, err := os.ReadFile(filepath.Join(best, f))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(hf, f), b, 0o644))
	}
	out := filepath.Join(t.TempDir(), "run")
	stdout, err := run(t, "finetune", "train", "--task", "rte", "--data", glueFixtures, "--from", hf, "--epochs", "1", "--batch", "4",
		"--train-examples", "2", "--valid-examples", "5", "--out", out)
	require.NoError(t, err, stdout)
	assert.Contains(t, stdout, "task: rte, entailment — 2 training and 2 validation examples", "a seeded sample of 2 of 3; all 2 of 2")
	assert.Contains(t, stdout, "model: BERT, 1 layers")
	hfGPT := filepath.Join("..", "..", "gpt", "testdata", "hf-gelu")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"finetune", "train", "--task", "rte", "--data", glueFixtures, "--from", bertDir, "--lm-coef", "0.5", "--out", filepath.Join(t.TempDir(), "x")},
			"--lm-coef 0.5: BERT has no auxiliary language-model loss (it is fine-tuned on the task's loss alone), so λ has no effect: leave --lm-coef out or give 0"},
		{[]string{"finetune", "train", "--task", "rte", "--data", glueFixtures, "--from", filepath.Join(out, "model"), "--out", filepath.Join(t.TempDir(), "x")},
			"holds a fine-tuned BertForSequenceClassification: fine-tune from a pre-trained BERT (BertForPreTraining or BertModel)"},
		{[]string{"finetune", "train", "--task", "rte", "--data", glueFixtures, "--from", filepath.Join("..", "..", "bert", "testdata", "hf-bert"), "--out", filepath.Join(t.TempDir(), "x")},
			"has no tokenizer files (vocab.json and merges.txt): seq2gpt's BERT reads the byte-level BPE mlm train writes, not WordPiece's vocab.txt"},
		{[]string{"finetune", "eval", "--model", bertDir, "--task", "rte", "--data", glueFixtures}, "holds a BertForPreTraining, a pre-trained BERT with no task head: fine-tune it first"},
		{[]string{"lm", "generate", "--model", bertDir, "--prompt", "The"}, `holds a BERT (model_type "bert", BertForPreTraining): this command reads a GPT`},
		{[]string{"lm", "eval", "--model", filepath.Join(out, "model"), "--data", writeText(t, t.TempDir())}, `holds a BERT (model_type "bert", BertForSequenceClassification): this command reads a GPT`},
		{[]string{"mlm", "fill", "--model", hfGPT, "--text", "a [MASK]"}, `holds a GPT (model_type "openai-gpt", OpenAIGPTLMHeadModel): this command reads a BERT`},
	} {
		_, err := run(t, c.args...)
		assert.ErrorContains(t, err, c.want, "%v", c.args)
	}
}
