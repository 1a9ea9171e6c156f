package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/pkg/errors"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/seq2gpt/seq2gpt/bert"
	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/gpt"
	"github.com/seq2gpt/seq2gpt/internal/atomicfile"
	"github.com/seq2gpt/seq2gpt/tasks"
	"github.com/seq2gpt/seq2gpt/train"
)

func newFinetuneCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "finetune",
		Short: "Supervised fine-tuning of a GPT or a BERT: train, evaluate, predict",
		Long: `Fine-tune a pre-trained GPT on a labelled task as GPT-1 did (Radford et al.
2018, §3.2–3.3): inputs become one token sequence with start, delimiter and
extract tokens appended to the vocabulary, a linear head reads the last
block's state at the extract token, and the objective is the task's loss
plus λ times the language-model loss on the same sequences.

Or fine-tune a pre-trained BERT as BERT did (Devlin et al. 2018, §4): inputs
are [CLS] a [SEP] (b [SEP]) with segment ids 0 and 1, a linear head reads the
pooled [CLS] state, multiple choice scores each [CLS] context [SEP] answer
[SEP] and takes the softmax over the choices (HF's BertForMultipleChoice),
and the objective is the task's loss alone: BERT has no auxiliary loss, so
λ does not apply.

Tasks: the GLUE tasks (--task cola, sst2, mrpc, qqp, stsb, mnli, qnli, rte,
wnli with --data in the GLUE layout), the embedded sets (--task sentiment,
paraphrase, cloze) and any multiple-choice set (--jsonl FILE).`,
	}
	c.AddCommand(newFinetuneTrainCmd(), newFinetuneEvalCmd(), newFinetunePredictCmd())
	return c
}

// taskFlags choose a fine-tuning task and its data.
type taskFlags struct {
	task, data, jsonl string
}

func (d *taskFlags) add(fl *pflag.FlagSet) {
	fl.StringVar(&d.task, "task", "", "task: "+strings.Join(tasks.Names(), ", "))
	fl.StringVar(&d.data, "data", "", "a GLUE task's directory (glue_data/SST-2) or the GLUE root (glue_data)")
	fl.StringVar(&d.jsonl, "jsonl", "", "a multiple-choice set, JSON lines {\"context\", \"choices\", \"label\"} (instead of --task)")
}

// resolve is the task the flags name.
func (d taskFlags) resolve() (tasks.Task, error) {
	switch {
	case d.task != "" && d.jsonl != "":
		return tasks.Task{}, errors.Errorf("give --task or --jsonl, not both (--task %q, --jsonl %q)", d.task, d.jsonl)
	case d.jsonl != "":
		if d.data != "" {
			return tasks.Task{}, errors.Errorf("--data %q: a --jsonl set reads no data directory", d.data)
		}
		return tasks.Choice(strings.TrimSuffix(filepath.Base(d.jsonl), filepath.Ext(d.jsonl))), nil
	case d.task == "":
		return tasks.Task{}, errors.Errorf("give --task (one of %s) or --jsonl FILE", strings.Join(tasks.Names(), ", "))
	}
	t, err := tasks.Lookup(d.task)
	if err != nil {
		return t, errors.Errorf("--task %q: want one of %s", d.task, strings.Join(tasks.Names(), ", "))
	}
	if t.GLUE != "" && d.data == "" {
		return t, errors.Errorf("--task %s is a GLUE task: give --data, its directory in the GLUE layout (glue_data/%s)", d.task, t.GLUE)
	}
	if t.GLUE == "" && d.data != "" {
		return t, errors.Errorf("--data %q: --task %s is embedded in seq2gpt and reads no directory", d.data, d.task)
	}
	return t, nil
}

// Split names: a GLUE task's (MNLI's matched sets by default) or an
// embedded set's.
func splitFor(t tasks.Task, which string) string {
	names := map[string][2]string{"dev": {"dev", "valid"}, "test": {"test", "test"}}[which]
	if t.GLUE == "" {
		return names[1]
	}
	if t.GLUE == "MNLI" {
		return names[0] + "_matched"
	}
	return names[0]
}

// load reads split of the task's data; for --jsonl the file itself.
func (d taskFlags) load(t tasks.Task, split string) ([]tasks.Example, error) {
	if d.jsonl != "" {
		return tasks.LoadChoices(d.jsonl)
	}
	return t.Load(d.data, split)
}

type finetuneFlags struct {
	taskFlags
	validJSONL, from, preset, out string
	scratch, resume, overwrite    bool
	merges, evalEvery, logEvery   int
	checkpointEvery, evalBatch    int
	maxSteps                      int
	trainExamples, validExamples  int
	lmCoef, headDropout           float64
	recipe                        tasks.Recipe
	seed                          uint64
}

// finetuneRemembered are the flags of finetune train that a resumed run
// takes from its run file but lets change; every other flag but --out,
// --resume and --overwrite defines the run (a resumed run keeps it).
var finetuneRemembered = []string{"max-steps", "eval-every", "eval-batch", "checkpoint-every", "log-every"}

// finetuneFiles are a fine-tuning run's entries in its directory, which
// --overwrite replaces: the training loop's and "model", the best as a
// HuggingFace directory.
func finetuneFiles() []string { return append(DefaultRunFiles(), "model") }

func newFinetuneTrainCmd() *cobra.Command {
	f := &finetuneFlags{}
	c := &cobra.Command{
		Use:   "train",
		Short: "Fine-tune a pre-trained GPT or BERT on a task",
		Long: `Fine-tune a pre-trained GPT language model (--from: a directory "lm train"
wrote, or a HuggingFace openai-gpt directory with a byte-level BPE
tokenizer) or a pre-trained BERT (--from: a directory "mlm train" wrote, or a
HuggingFace BERT directory, BertForPreTraining or BertModel, with a
byte-level BPE tokenizer; config.json's model_type says which) on a task,
with GPT-1's recipe by default: Adam at 6.25e-5, linear warm-up over 0.2% of
the steps then linear decay, batches of 32, 3 epochs, dropout 0.1 on the
head, and for a GPT λ = 0.5 for the auxiliary language-model loss
(--lm-coef 0 turns it off; a BERT has none, and a non-zero --lm-coef with it
is refused). --scratch trains the same model from fresh weights (the
baseline pre-training is measured against).

The validation split (GLUE dev, the embedded sets' valid, or --valid-jsonl)
is scored with the task's metrics after every epoch (--eval-every N: every
N steps); "best" is the checkpoint with the best main metric (CoLA MCC,
MRPC/QQP F1, STS-B Pearson, the others accuracy), "last" the latest, and
"model" the best as a HuggingFace directory (OpenAIGPTForSequenceClassification,
or OpenAIGPTDoubleHeadsModel for multiple choice; for a BERT,
BertForSequenceClassification or BertForMultipleChoice) with its tokenizer.
--out is the run directory: its run.json records what defines the run (the
task, the data's hash, the model, the tokenizer, the recipe, λ, the seed),
so --resume continues it with no other flags, and a flag that contradicts
it is an error naming both values; a directory that holds a run is not
replaced without --overwrite. Ctrl-C saves "last" first. The loss curve of
the whole run is loss.png. An input longer than n_positions (a BERT's
max_position_embeddings) is truncated, the special tokens kept and the longer
segment cut first; the counts are printed.`,
		Example: `  # the README's quick start pre-trains runs/tiny; then
  seq2gpt finetune train --task sentiment --from runs/tiny --lr 6.25e-4 --out runs/sentiment
  seq2gpt finetune train --task sentiment --from runs/tiny --lr 6.25e-4 --scratch --out runs/sentiment-scratch
  seq2gpt finetune train --task cloze --from runs/tiny --lr 6.25e-4 --lm-coef 0 --out runs/cloze
  seq2gpt finetune train --task rte --data glue_data --from runs/tiny --out runs/rte
  seq2gpt finetune train --jsonl swag-train.jsonl --valid-jsonl swag-val.jsonl --from runs/tiny --out runs/swag
  seq2gpt finetune train --out runs/rte --resume
  # a BERT that "mlm train" wrote to runs/bert-tiny
  seq2gpt finetune train --task sentiment --from runs/bert-tiny --lr 1e-3 --out runs/bert-sentiment`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runFinetuneTrain(cmd, f) },
	}
	fl := c.Flags()
	f.taskFlags.add(fl)
	p := tasks.PaperRecipe()
	def := tasks.DefaultConfig()
	fl.StringVar(&f.validJSONL, "valid-jsonl", "", "the validation items of a --jsonl set (default: a seeded tenth of --jsonl held out)")
	fl.StringVar(&f.from, "from", "", "the pre-trained GPT or BERT: a model or run directory")
	fl.BoolVar(&f.scratch, "scratch", false, "fresh weights: --from's configuration and tokenizer, or (a GPT) --preset and a BPE trained on the task's text")
	fl.StringVar(&f.preset, "preset", "tiny", "with --scratch and no --from: the model size (tiny, small, medium, paper)")
	fl.IntVar(&f.merges, "merges", -1, "with --scratch and no --from: BPE merges (default: the preset's vocab_size − 256)")
	fl.StringVar(&f.out, "out", "", "the run directory (required)")
	fl.Float64Var(&f.lmCoef, "lm-coef", def.LMCoef, "λ, the weight of a GPT's auxiliary language-model loss (0: off; a BERT has none: 0)")
	fl.Float64Var(&f.headDropout, "head-dropout", def.HeadDropout, "dropout on the head's input")
	fl.Float64Var(&f.recipe.LR, "lr", p.LR, "peak learning rate")
	fl.IntVar(&f.recipe.Batch, "batch", p.Batch, "examples per step")
	fl.IntVar(&f.recipe.Epochs, "epochs", p.Epochs, "passes over the training data")
	fl.Float64Var(&f.recipe.WarmupFrac, "warmup", p.WarmupFrac, "the fraction of the steps the learning rate warms up over")
	fl.Float64Var(&f.recipe.WeightDecay, "weight-decay", p.WeightDecay, "decoupled weight decay on matrices")
	fl.Float64Var(&f.recipe.ClipNorm, "clip", p.ClipNorm, "global gradient-norm clipping (0: off)")
	fl.IntVar(&f.trainExamples, "train-examples", 0, "train on a sample of N training examples, seeded by --seed (0: all; HF run_glue's --max_train_samples)")
	fl.IntVar(&f.validExamples, "valid-examples", 0, "score a sample of N validation examples, seeded by --seed (0: all)")
	fl.IntVar(&f.maxSteps, "max-steps", 0, "stop after N steps (0: the epochs' steps); the schedule stays the epochs', so --resume --max-steps M continues the run")
	fl.IntVar(&f.evalEvery, "eval-every", 0, "evaluate every N steps (0: after every epoch)")
	fl.IntVar(&f.evalBatch, "eval-batch", 64, "examples per evaluation batch")
	fl.IntVar(&f.checkpointEvery, "checkpoint-every", 0, "save the last checkpoint every N steps (0: at evaluations)")
	fl.IntVar(&f.logEvery, "log-every", 50, "when not on a terminal, log a line every N steps")
	fl.Uint64Var(&f.seed, "seed", 1, "seed for the new weights, the data order and dropout")
	fl.BoolVar(&f.resume, "resume", false, "continue the run in --out")
	fl.BoolVar(&f.overwrite, "overwrite", false, "replace the run in --out")
	_ = c.MarkFlagRequired("out")
	return c
}

// checkFinetuneFlags refuses values outside each flag's range, and flags
// that do not go together, before any work (only the flags given:
// defaults are trusted).
func checkFinetuneFlags(fs *pflag.FlagSet) error {
	c := NewFlagChecks(fs)
	for _, name := range []string{"batch", "epochs", "eval-batch"} {
		c.Check(name, AtLeast(1))
	}
	for _, name := range []string{"max-steps", "eval-every", "checkpoint-every", "log-every", "merges", "train-examples", "valid-examples"} {
		c.Check(name, AtLeast(0))
	}
	c.Check("lr", Positive)
	for _, name := range []string{"lm-coef", "weight-decay", "clip"} {
		c.Check(name, NonNegative)
	}
	c.Check("head-dropout", Dropout)
	c.Check("warmup", Range{Min: 0, Max: 1, MaxOpen: true})
	checkPreset(c, fs)
	if err := c.Err(); err != nil {
		return err
	}
	if fs.Changed("from") && (fs.Changed("preset") || fs.Changed("merges")) {
		return errors.New("--preset and --merges apply only to --scratch without --from: the model comes from --from")
	}
	return nil
}

// checkFinetuneCombination refuses flags that do not fit together once a
// resumed run's values are in.
func checkFinetuneCombination(f *finetuneFlags) error {
	switch {
	case f.from == "" && !f.scratch:
		return errors.New("give --from DIR, a pre-trained language model or BERT (or --scratch to train from fresh weights)")
	case f.validJSONL != "" && f.jsonl == "":
		return errors.Errorf("--valid-jsonl %q goes with --jsonl", f.validJSONL)
	}
	return nil
}

// trainingData reads the task's training and validation examples.
func trainingData(f *finetuneFlags, task tasks.Task) (trainEx, validEx []tasks.Example, err error) {
	d := f.taskFlags
	if trainEx, err = d.load(task, "train"); err != nil {
		return nil, nil, err
	}
	switch {
	case f.validJSONL != "":
		validEx, err = tasks.LoadChoices(f.validJSONL)
	case f.jsonl != "":
		// A seeded tenth of the file is held out.
		parts, serr := datasets.Split(len(trainEx), f.seed, 0.9, 0.1)
		if serr != nil {
			return nil, nil, serr
		}
		if len(parts[1]) == 0 {
			return nil, nil, errors.Errorf("--jsonl %s: %d items are too few to hold a tenth out: give --valid-jsonl", f.jsonl, len(trainEx))
		}
		pick := func(idx []int) []tasks.Example {
			out := make([]tasks.Example, len(idx))
			for i, j := range idx {
				out[i] = trainEx[j]
			}
			return out
		}
		trainEx, validEx = pick(parts[0]), pick(parts[1])
	default:
		validEx, err = d.load(task, splitFor(task, "dev"))
	}
	if err != nil {
		return nil, nil, err
	}
	return sample(trainEx, f.trainExamples, f.seed), sample(validEx, f.validExamples, f.seed+1), nil
}

// sample is n of the examples, drawn without replacement from a
// permutation seeded by seed and kept in their order; all of them when n
// is 0 or at least their number.
func sample(exs []tasks.Example, n int, seed uint64) []tasks.Example {
	if n <= 0 || n >= len(exs) {
		return exs
	}
	pick := datasets.Permutation(len(exs), seed)[:n]
	slices.Sort(pick)
	out := make([]tasks.Example, n)
	for i, j := range pick {
		out[i] = exs[j]
	}
	return out
}

// examplesFact is what a run records about its data, so that a resumed
// run is refused when the data changed.
type examplesFact struct {
	Task                     string
	Train, Valid             int
	TrainSHA256, ValidSHA256 string
}

func examplesHash(exs []tasks.Example) string {
	h := sha256.New()
	for _, e := range exs {
		fmt.Fprintf(h, "%s\t%s\t%s\t%q\t%d\t%v\n", e.ID, e.Text, e.TextB, e.Choices, e.Label, e.Score)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// pretrained is the GPT and tokenizer a new run starts from: dir (--from
// resolved) or, when it is "", a preset and a BPE of the training text.
func pretrained(f *finetuneFlags, dir string, trainEx []tasks.Example) (*gpt.Model, *datasets.BPE, error) {
	if dir == "" { // --scratch, a preset and a BPE of the training text
		cfg, err := gpt.Preset(f.preset)
		if err != nil {
			return nil, nil, errors.Wrapf(err, "--preset %q", f.preset)
		}
		merges := f.merges
		if merges < 0 {
			merges = max(0, cfg.VocabSize-256)
		}
		var texts []string
		for _, e := range trainEx {
			texts = append(append(texts, e.Text, e.TextB), e.Choices...)
		}
		tok, err := datasets.TrainBPE([]string{strings.Join(texts, "\n")}, datasets.BPEConfig{Merges: merges})
		if err != nil {
			return nil, nil, err
		}
		cfg.VocabSize = tok.VocabSize()
		m, err := gpt.New(cfg, f.seed)
		return m, tok, err
	}
	if k, err := readModelKind(dir); err == nil && k.Arch != "" && k.Arch != gpt.Architecture {
		return nil, nil, errors.Errorf("--from %s holds a %s: fine-tune from a pre-trained language model (%s) or BERT (%s)", dir, k.Arch, gpt.Architecture, bert.Architecture)
	}
	m, err := gpt.Load(dir)
	if err != nil {
		return nil, nil, errors.Wrap(err, "--from")
	}
	tok, ok, err := loadTokenizer(dir)
	if err != nil {
		return nil, nil, errors.Wrapf(err, "--from %s (seq2gpt reads byte-level BPE tokenizers, GPT-2's format; not the original openai-gpt tokenizer)", dir)
	}
	if !ok {
		return nil, nil, errors.Errorf("--from %s has no tokenizer files (vocab.json and merges.txt): fine-tuning on text needs them", dir)
	}
	if f.scratch {
		m, err = gpt.New(m.Config, f.seed)
	}
	return m, tok, err
}

// finetuneModel is the run's model and tokenizer (with the special
// tokens): the last checkpoint's when resuming, else the pre-trained
// model's in from (--from resolved; "" for a GPT preset) with a new head:
// a GPT's or a BERT's, as from's config.json says.
func finetuneModel(f *finetuneFlags, task tasks.Task, trainEx []tasks.Example, last, from string, kind modelKind) (*tasks.Model, *datasets.BPE, error) {
	if last != "" {
		model, tok, err := loadTaskModel(last)
		return model, tok, errors.Wrap(err, "--resume")
	}
	var body tasks.Body
	var tok *datasets.BPE
	if kind.BERT() {
		b, t, err := pretrainedBERT(from, kind, f.scratch, f.seed)
		if err != nil {
			return nil, nil, err
		}
		body, tok = b, t
	} else {
		m, t, err := pretrained(f, from, trainEx)
		if err != nil {
			return nil, nil, err
		}
		b, err := tasks.NewGPT(m, t, f.seed)
		if err != nil {
			return nil, nil, err
		}
		body, tok = b, t
	}
	model, err := tasks.New(body, task, tasks.Config{LMCoef: f.lmCoef, HeadDropout: f.headDropout})
	return model, tok, err
}

// finetuneSource is the directory a run's model comes from — the last
// checkpoint when resuming, else --from resolved ("" for --scratch
// without --from) — and what it holds.
func finetuneSource(f *finetuneFlags, last string, warn io.Writer) (string, modelKind, error) {
	dir := last
	if dir == "" && f.from != "" {
		var err error
		if dir, err = modelDir(f.from, warn); err != nil {
			return "", modelKind{}, errors.Wrap(err, "--from")
		}
	}
	if dir == "" {
		return "", modelKind{Type: gpt.ModelType}, nil
	}
	k, err := readModelKind(dir)
	if err != nil {
		return "", k, errors.Wrap(err, map[bool]string{true: "--resume", false: "--from"}[last != ""])
	}
	return dir, k, nil
}

func runFinetuneTrain(cmd *cobra.Command, f *finetuneFlags) error {
	out, fs := cmd.OutOrStdout(), cmd.Flags()
	if err := checkFinetuneFlags(fs); err != nil {
		return err
	}
	rd, err := OpenRunDir(fs, RunDirOptions{Command: "finetune train", Dir: f.out, Resume: f.resume, Overwrite: f.overwrite,
		Defining: definingFlags(fs, finetuneRemembered), Remembered: finetuneRemembered, Files: finetuneFiles()})
	if err != nil {
		return err
	}
	rd.PrintNotes(out)
	if err := checkFinetuneCombination(f); err != nil {
		return err
	}
	task, err := f.taskFlags.resolve()
	if err != nil {
		return err
	}
	trainEx, validEx, err := trainingData(f, task)
	if err != nil {
		return err
	}
	if err := rd.Fact("data", examplesFact{Task: task.Name, Train: len(trainEx), Valid: len(validEx),
		TrainSHA256: examplesHash(trainEx), ValidSHA256: examplesHash(validEx)}); err != nil {
		return err
	}
	constructed := ""
	if task.Constructed {
		constructed = " (a CONSTRUCTED data set)"
	}
	fmt.Fprintf(out, "task: %s, %s%s — %d training and %d validation examples\n", task.Name, task.Kind, constructed, len(trainEx), len(validEx))

	last := ""
	if f.resume {
		if last, err = train.CheckpointPath(f.out, train.LastCheckpoint); err != nil {
			return errors.Wrap(err, "--resume")
		}
	}
	src, kind, err := finetuneSource(f, last, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	if kind.BERT() {
		if err := bertLMCoef(fs, f); err != nil {
			return err
		}
	}
	model, tok, err := finetuneModel(f, task, trainEx, last, src, kind)
	if err != nil {
		return err
	}
	body := model.Body
	if err := rd.Fact("tokenizer", tokenizerHash(tok)); err != nil {
		return err
	}
	how := "pre-trained: " + f.from
	if f.scratch {
		how = "fresh weights (--scratch)"
	}
	fact, line := describeModel(model, how)
	if err := rd.Fact("model", fact); err != nil {
		return err
	}
	fmt.Fprintln(out, line)
	trainIn, tr, err := tasks.Encode(task, body.Template(), tok, trainEx)
	if err != nil {
		return errors.Wrap(err, "training data")
	}
	fmt.Fprintf(out, "training data: %v\n", tr)
	validIn, vr, err := tasks.Encode(task, body.Template(), tok, validEx)
	if err != nil {
		return errors.Wrap(err, "validation data")
	}
	fmt.Fprintf(out, "validation data: %v\n", vr)
	data, err := model.NewData(trainIn, tasks.DataConfig{Batch: f.recipe.Batch, Epochs: f.recipe.Epochs, Seed: f.seed})
	if err != nil {
		return err
	}
	steps, stopAt := data.Steps(), data.Steps()
	if f.maxSteps > 0 && f.maxSteps < steps {
		stopAt = f.maxSteps
	}
	evalEvery := f.evalEvery
	if evalEvery == 0 {
		evalEvery = data.StepsPerEpoch()
	}
	// Ctrl-C is caught from here on, before the "training:" line announces
	// the run: a signal between that line and the first step (building the
	// trainer, resuming) still ends the run with a checkpoint, not a kill.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(out, "training: %d epochs of %d steps, batch %d, lr %.3g (warm-up %d steps, linear decay), %s, head dropout %g\n",
		f.recipe.Epochs, data.StepsPerEpoch(), f.recipe.Batch, f.recipe.LR, f.recipe.Warmup(steps), lambdaNote(model), f.headDropout)
	if stopAt < steps {
		fmt.Fprintf(out, "stopping at step %d of %d (--max-steps)\n", stopAt, steps)
	}
	trainer, err := f.recipe.NewTrainer(model, steps, f.seed)
	if err != nil {
		return err
	}
	defer trainer.Close()
	done, hist := 0, &lossHistory{}
	if f.resume {
		if done, hist, err = resumeTraining(out, trainer, data, f.out, last); err != nil {
			return err
		}
	}
	hist.Title = "fine-tuning: " + task.Name
	if err := rd.Save(); err != nil {
		return err
	}
	cfg, err := model.CheckpointConfig()
	if err != nil {
		return err
	}
	metric := task.Metrics()[0]
	prog := newProgress(cmd.ErrOrStderr(), stopAt, done, f.logEvery)
	prog.metrics = func(m map[string]float64) string { return formatMetrics(task, m) }
	curve := filepath.Join(f.out, "loss.png")
	hooks := train.Hooks{
		OnStep: func(s train.StepInfo) { hist.step(s); prog.step(s) },
		OnEval: func(e train.EvalInfo) {
			hist.eval(e)
			prog.eval(e)
			_ = lossCurve(curve, hist)
		},
		// The task file, the tokenizer (with the special tokens) and the
		// loss history are part of each checkpoint, written before it is
		// sealed.
		BeforeCheckpoint: func(dir string) error {
			if err := model.WriteTaskFile(dir); err != nil {
				return err
			}
			if err := saveTokenizer(tok, dir); err != nil {
				return err
			}
			return hist.save(dir)
		},
	}
	sum, err := train.Run(ctx, trainer, data, model.Evaluator(validEx, validIn, f.evalBatch), train.LoopConfig{
		Steps: stopAt, EvalEvery: evalEvery, Metric: metric, HigherIsBetter: true,
		CheckpointDir: f.out, CheckpointEvery: f.checkpointEvery, Config: cfg,
	}, hooks)
	prog.finish()
	if err != nil {
		return err
	}
	if err := lossCurve(curve, hist); err != nil {
		return err
	}
	fmt.Fprintf(out, "stopped (%s) at step %d: %d examples in %s\n", sum.Stopped, sum.Step, sum.Tokens, sum.Elapsed.Round(1e9))
	fmt.Fprintf(out, "last checkpoint: %s (continue with --resume); loss curve: %s\n", filepath.Join(f.out, train.LastCheckpoint), curve)
	if sum.Stopped == train.StoppedCancelled || math.IsNaN(sum.BestMetric) {
		return nil
	}
	bestDir, err := train.CheckpointPath(f.out, train.BestCheckpoint)
	if err != nil {
		return err
	}
	best, _, err := loadTaskModel(bestDir)
	if err != nil {
		return err
	}
	hf := filepath.Join(f.out, "model")
	if err := best.Save(hf); err != nil {
		return err
	}
	if err := saveTokenizer(tok, hf); err != nil {
		return err
	}
	fmt.Fprintf(out, "best validation %s %.4f at step %d: %s; as a HuggingFace %s: %s\n", metric, sum.BestMetric, sum.BestStep, bestDir, hfClass(best), hf)
	return nil
}

// formatMetrics writes the task's metrics in order, then the loss.
func formatMetrics(t tasks.Task, m map[string]float64) string {
	var parts []string
	for _, name := range t.Metrics() {
		parts = append(parts, fmt.Sprintf("%s %.4f", name, m[name]))
	}
	return strings.Join(append(parts, fmt.Sprintf("loss %.4f", m["loss"])), "  ")
}

// evalFlags are eval's and predict's.
type evalFlags struct {
	taskFlags
	model, split, out string
	batch             int
}

func (e *evalFlags) add(fl *pflag.FlagSet, split, what string) {
	e.taskFlags.add(fl)
	fl.StringVar(&e.model, "model", "", "a fine-tuned model: a run directory (its best), a checkpoint or a model directory (required)")
	fl.StringVar(&e.split, "split", "", what+" (default: "+split+")")
	fl.IntVar(&e.batch, "batch", 64, "examples per batch")
}

// prepared is a fine-tuned model and the encoded examples of a split,
// ready to predict.
type prepared struct {
	m     *tasks.Model
	exs   []tasks.Example
	in    []tasks.Input
	trunc tasks.Truncation
	split string
	p     *tasks.Predictor
}

// prepare loads the model --model names and encodes the split to score
// (which: "dev" or "test" unless --split says); Close its predictor.
func (e *evalFlags) prepare(cmd *cobra.Command, which string) (*prepared, error) {
	c := NewFlagChecks(cmd.Flags())
	c.Check("batch", AtLeast(1))
	if err := c.Err(); err != nil {
		return nil, err
	}
	m, tok, exs, split, err := e.loadFineTuned(cmd.ErrOrStderr(), which)
	if err != nil {
		return nil, err
	}
	in, tr, err := tasks.Encode(m.Task, m.Body.Template(), tok, exs)
	if err != nil {
		return nil, err
	}
	p, err := m.NewPredictor()
	if err != nil {
		return nil, err
	}
	return &prepared{m: m, exs: exs, in: in, trunc: tr, split: split, p: p}, nil
}

// loadFineTuned reads the model --model names and the examples to score.
func (e *evalFlags) loadFineTuned(warn io.Writer, which string) (*tasks.Model, *datasets.BPE, []tasks.Example, string, error) {
	dir, err := modelDir(e.model, warn)
	if err != nil {
		return nil, nil, nil, "", err
	}
	m, tok, err := loadTaskModel(dir)
	if err != nil {
		return nil, nil, nil, "", errors.Wrap(err, "--model")
	}
	task := m.Task
	switch {
	case e.jsonl != "":
		if task.Kind != tasks.MultipleChoice {
			return nil, nil, nil, "", errors.Errorf("--jsonl %s: the model in %s is a %s model for %s, not multiple choice", e.jsonl, dir, task.Kind, task.Name)
		}
	case e.task == "" && task.GLUE == "" && task.Kind == tasks.MultipleChoice && task.Name != "cloze":
		return nil, nil, nil, "", errors.Errorf("the model in %s was fine-tuned on a --jsonl set (%s): give --jsonl FILE", dir, task.Name)
	case e.task != "" && e.task != task.Name:
		return nil, nil, nil, "", errors.Errorf("--task %s: the model in %s was fine-tuned for %s", e.task, dir, task.Name)
	}
	d := e.taskFlags
	if d.jsonl == "" {
		d.task = task.Name
		if _, err := d.resolve(); err != nil {
			return nil, nil, nil, "", err
		}
	}
	split := e.split
	if split == "" {
		split = splitFor(task, which)
	}
	exs, err := d.load(task, split)
	if err != nil {
		return nil, nil, nil, "", err
	}
	return m, tok, exs, split, nil
}

func newFinetuneEvalCmd() *cobra.Command {
	e := &evalFlags{}
	c := &cobra.Command{
		Use:   "eval",
		Short: "Score a fine-tuned model with its task's metrics",
		Long: `Score a fine-tuned model on a labelled split with its task's official
metrics (CoLA: Matthews correlation; MRPC, QQP: F1 and accuracy; STS-B:
Pearson and Spearman correlation; the others: accuracy) and its loss. The
task comes from the model; GLUE tasks need --data.`,
		Example: `  seq2gpt finetune eval --model runs/sentiment
  seq2gpt finetune eval --model runs/bert-sentiment --split test
  seq2gpt finetune eval --model runs/rte --data glue_data
  seq2gpt finetune eval --model runs/mnli --data glue_data --split dev_mismatched
  seq2gpt finetune eval --model runs/swag --jsonl swag-val.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pr, err := e.prepare(cmd, "dev")
			if err != nil {
				return err
			}
			defer pr.p.Close()
			scores, loss, err := pr.p.Score(pr.exs, pr.in, e.batch)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "%s %s: %d examples; %v\n", pr.m.Task.Name, pr.split, len(pr.exs), pr.trunc)
			fmt.Fprintf(out, "%s  loss %.4f\n", strings.ReplaceAll(scores.String(), ", ", "  "), loss)
			return nil
		},
	}
	e.add(c.Flags(), "dev, or valid for the embedded sets", "the split to score")
	_ = c.MarkFlagRequired("model")
	return c
}

// submissionName is the file GLUE's server wants a task's predictions in.
func submissionName(t tasks.Task, split string) string {
	if t.GLUE == "" {
		return t.Name + ".tsv"
	}
	switch split {
	case "test_matched":
		return "MNLI-m.tsv"
	case "test_mismatched":
		return "MNLI-mm.tsv"
	}
	return t.GLUE + ".tsv"
}

func newFinetunePredictCmd() *cobra.Command {
	e := &evalFlags{}
	c := &cobra.Command{
		Use:   "predict",
		Short: "Write a fine-tuned model's predictions as a GLUE submission TSV",
		Long: `Predict every example of a split (by default the unlabelled test split) and
write "index<TAB>prediction" lines under a header, as the GLUE benchmark's
server takes them: the label as the task writes it (entailment, 0/1, …),
STS-B's score with three decimals, or the chosen choice's index. The file
is named as GLUE wants it (SST-2.tsv, MNLI-m.tsv, …) unless --out says.`,
		Example: `  seq2gpt finetune predict --model runs/rte --data glue_data
  seq2gpt finetune predict --model runs/mnli --data glue_data --split test_mismatched --out submission/MNLI-mm.tsv
  seq2gpt finetune predict --model runs/sentiment --split test`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pr, err := e.prepare(cmd, "test")
			if err != nil {
				return err
			}
			defer pr.p.Close()
			m, exs, split := pr.m, pr.exs, pr.split
			preds, _, err := pr.p.Predict(pr.in, e.batch)
			if err != nil {
				return err
			}
			var b strings.Builder
			b.WriteString("index\tprediction\n")
			for i, ex := range exs {
				pr := preds[i]
				var v string
				switch {
				case m.Task.Kind == tasks.Regression:
					v = fmt.Sprintf("%.3f", pr.Score)
				case m.Task.Kind == tasks.MultipleChoice:
					v = fmt.Sprint(pr.Label)
				default:
					v = m.Task.Labels[pr.Label]
				}
				fmt.Fprintf(&b, "%s\t%s\n", ex.ID, v)
			}
			path := e.out
			if path == "" {
				path = submissionName(m.Task, split)
			}
			if dir := filepath.Dir(path); dir != "." {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return err
				}
			}
			if err := atomicfile.WriteFile(path, []byte(b.String())); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s: %d examples; %v\nwrote %d predictions to %s\n", m.Task.Name, split, len(exs), pr.trunc, len(preds), path)
			return nil
		},
	}
	e.add(c.Flags(), "test, or test_matched for MNLI", "the split to predict")
	c.Flags().StringVar(&e.out, "out", "", "the TSV file (default: GLUE's name for the task, in the current directory)")
	_ = c.MarkFlagRequired("model")
	return c
}
