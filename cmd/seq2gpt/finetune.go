package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/pkg/errors"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/gpt"
	"github.com/seq2gpt/seq2gpt/internal/atomicfile"
	"github.com/seq2gpt/seq2gpt/tasks"
	"github.com/seq2gpt/seq2gpt/train"
)

func newFinetuneCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "finetune",
		Short: "GPT-1's supervised fine-tuning: train, evaluate, predict",
		Long: `Fine-tune a pre-trained GPT on a labelled task as GPT-1 did (Radford et al.
2018, §3.2–3.3): inputs become one token sequence with start, delimiter and
extract tokens appended to the vocabulary, a linear head reads the last
block's state at the extract token, and the objective is the task's loss
plus λ times the language-model loss on the same sequences.

Tasks: the GLUE tasks (--task cola, sst2, mrpc, qqp, stsb, mnli, qnli, rte,
wnli with --data in the GLUE layout), the embedded sets (--task sentiment,
paraphrase, cloze) and any multiple-choice set (--jsonl FILE).`,
	}
	c.AddCommand(newFinetuneTrainCmd(), newFinetuneEvalCmd(), newFinetunePredictCmd())
	return c
}

// dataFlags choose a task and its data.
type dataFlags struct {
	task, data, jsonl string
}

func (d *dataFlags) add(fl *pflag.FlagSet) {
	fl.StringVar(&d.task, "task", "", "task: "+strings.Join(tasks.Names(), ", "))
	fl.StringVar(&d.data, "data", "", "a GLUE task's directory (glue_data/SST-2) or the GLUE root (glue_data)")
	fl.StringVar(&d.jsonl, "jsonl", "", "a multiple-choice set, JSON lines {\"context\", \"choices\", \"label\"} (instead of --task)")
}

// resolve is the task the flags name.
func (d dataFlags) resolve() (tasks.Task, error) {
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
func (d dataFlags) load(t tasks.Task, split string) ([]tasks.Example, error) {
	if d.jsonl != "" {
		return tasks.LoadChoices(d.jsonl)
	}
	return t.Load(d.data, split)
}

// runSpec is run.json: what a fine-tuning run was started with, so that
// --resume continues exactly that run.
type runSpec struct {
	Task        string       `json:"task,omitempty"`
	Data        string       `json:"data,omitempty"`
	JSONL       string       `json:"jsonl,omitempty"`
	ValidJSONL  string       `json:"valid_jsonl,omitempty"`
	From        string       `json:"from,omitempty"`
	Scratch     bool         `json:"scratch,omitempty"`
	Preset      string       `json:"preset,omitempty"`
	Merges      int          `json:"merges,omitempty"`
	LMCoef      float64      `json:"lm_coef"`
	HeadDropout float64      `json:"head_dropout"`
	Recipe      tasks.Recipe `json:"recipe"`
	EvalEvery   int          `json:"eval_every"`
	Seed        uint64       `json:"seed"`
}

const runFile = "run.json"

type finetuneFlags struct {
	dataFlags
	validJSONL, from, preset, out string
	scratch, resume, overwrite    bool
	merges, evalEvery, logEvery   int
	checkpointEvery, evalBatch    int
	lmCoef, headDropout           float64
	recipe                        tasks.Recipe
	seed                          uint64
}

func newFinetuneTrainCmd() *cobra.Command {
	f := &finetuneFlags{}
	c := &cobra.Command{
		Use:   "train",
		Short: "Fine-tune a pre-trained GPT on a task",
		Long: `Fine-tune a pre-trained GPT language model (--from: a directory "lm train"
wrote, or a HuggingFace openai-gpt directory with a byte-level BPE
tokenizer) on a task, with the paper's recipe by default: Adam at 6.25e-5,
linear warm-up over 0.2% of the steps then linear decay, batches of 32,
3 epochs, dropout 0.1 on the head, λ = 0.5 for the auxiliary
language-model loss (--lm-coef 0 turns it off). --scratch trains the same
model from fresh weights (the baseline pre-training is measured against).

The validation split (GLUE dev, the embedded sets' valid, or --valid-jsonl)
is scored with the task's metrics after every epoch (--eval-every N: every
N steps); "best" is the checkpoint with the best main metric (CoLA MCC,
MRPC/QQP F1, STS-B Pearson, the others accuracy), "last" the latest, and
"model" the best as a HuggingFace directory (OpenAIGPTForSequenceClassification,
or OpenAIGPTDoubleHeadsModel for multiple choice) with its tokenizer.
--out remembers the run (run.json): --resume continues it exactly, Ctrl-C
saves "last" first. An input longer than n_positions is truncated, the
special tokens kept and the longer segment cut first; the counts are
printed.`,
		Example: `  seq2gpt lm train --preset tiny --config ctx64.json --steps 3000 --out runs/lm
  seq2gpt finetune train --task sentiment --from runs/lm --out runs/sentiment
  seq2gpt finetune train --task sentiment --from runs/lm --scratch --out runs/sentiment-scratch
  seq2gpt finetune train --task rte --data glue_data --from runs/lm --lm-coef 0 --out runs/rte
  seq2gpt finetune train --jsonl swag-train.jsonl --valid-jsonl swag-val.jsonl --from runs/lm --out runs/swag
  seq2gpt finetune train --out runs/rte --resume`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runFinetuneTrain(cmd, f) },
	}
	fl := c.Flags()
	f.dataFlags.add(fl)
	p := tasks.PaperRecipe()
	def := tasks.DefaultConfig()
	fl.StringVar(&f.validJSONL, "valid-jsonl", "", "the validation items of a --jsonl set (default: a seeded tenth of --jsonl held out)")
	fl.StringVar(&f.from, "from", "", "the pre-trained language model: a model or run directory")
	fl.BoolVar(&f.scratch, "scratch", false, "fresh weights: --from's configuration and tokenizer, or --preset and a BPE trained on the task's text")
	fl.StringVar(&f.preset, "preset", "tiny", "with --scratch and no --from: the model size (tiny, small, medium, paper)")
	fl.IntVar(&f.merges, "merges", -1, "with --scratch and no --from: BPE merges (default: the preset's vocab_size − 256)")
	fl.StringVar(&f.out, "out", "", "the run directory (required)")
	fl.Float64Var(&f.lmCoef, "lm-coef", def.LMCoef, "λ, the weight of the auxiliary language-model loss (0: off)")
	fl.Float64Var(&f.headDropout, "head-dropout", def.HeadDropout, "dropout on the head's input")
	fl.Float64Var(&f.recipe.LR, "lr", p.LR, "peak learning rate")
	fl.IntVar(&f.recipe.Batch, "batch", p.Batch, "examples per step")
	fl.IntVar(&f.recipe.Epochs, "epochs", p.Epochs, "passes over the training data")
	fl.Float64Var(&f.recipe.WarmupFrac, "warmup", p.WarmupFrac, "the fraction of the steps the learning rate warms up over")
	fl.Float64Var(&f.recipe.WeightDecay, "weight-decay", p.WeightDecay, "decoupled weight decay on matrices")
	fl.Float64Var(&f.recipe.ClipNorm, "clip", p.ClipNorm, "global gradient-norm clipping (0: off)")
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

// spec is the run the flags describe.
func (f *finetuneFlags) spec() (runSpec, error) {
	abs := func(p string) (string, error) {
		if p == "" {
			return "", nil
		}
		return filepath.Abs(p)
	}
	s := runSpec{Task: f.task, JSONL: f.jsonl, ValidJSONL: f.validJSONL, Scratch: f.scratch,
		LMCoef: f.lmCoef, HeadDropout: f.headDropout, Recipe: f.recipe, EvalEvery: f.evalEvery, Seed: f.seed}
	var err error
	for _, p := range []struct {
		dst *string
		src string
	}{{&s.Data, f.data}, {&s.JSONL, f.jsonl}, {&s.ValidJSONL, f.validJSONL}, {&s.From, f.from}} {
		if *p.dst, err = abs(p.src); err != nil {
			return s, err
		}
	}
	if f.from == "" {
		s.Preset, s.Merges = f.preset, f.merges
	}
	return s, nil
}

// checkFlags checks every flag's range, naming the flag, its value and what
// it may be.
func checkFlags(s runSpec, f *finetuneFlags, fl *pflag.FlagSet) error {
	r := s.Recipe
	switch {
	case !(s.LMCoef >= 0) || math.IsInf(s.LMCoef, 0):
		return errors.Errorf("--lm-coef %v: want a finite number ≥ 0 (0 turns the auxiliary loss off)", s.LMCoef)
	case !(s.HeadDropout >= 0 && s.HeadDropout < 1):
		return errors.Errorf("--head-dropout %v: want a probability in [0, 1)", s.HeadDropout)
	case !(r.LR > 0) || math.IsInf(r.LR, 0):
		return errors.Errorf("--lr %v: want a positive finite rate", r.LR)
	case r.Batch < 1:
		return errors.Errorf("--batch %d: want at least 1", r.Batch)
	case r.Epochs < 1:
		return errors.Errorf("--epochs %d: want at least 1", r.Epochs)
	case !(r.WarmupFrac >= 0 && r.WarmupFrac < 1):
		return errors.Errorf("--warmup %v: want a fraction in [0, 1)", r.WarmupFrac)
	case !(r.WeightDecay >= 0) || math.IsInf(r.WeightDecay, 0):
		return errors.Errorf("--weight-decay %v: want a finite number ≥ 0", r.WeightDecay)
	case !(r.ClipNorm >= 0) || math.IsInf(r.ClipNorm, 0):
		return errors.Errorf("--clip %v: want a finite number ≥ 0 (0: off)", r.ClipNorm)
	case s.EvalEvery < 0:
		return errors.Errorf("--eval-every %d: want 0 (every epoch) or more", s.EvalEvery)
	case f.evalBatch < 1:
		return errors.Errorf("--eval-batch %d: want at least 1", f.evalBatch)
	case f.checkpointEvery < 0:
		return errors.Errorf("--checkpoint-every %d: want 0 (at evaluations) or more", f.checkpointEvery)
	case s.From == "" && !s.Scratch:
		return errors.New("give --from DIR, a pre-trained language model (or --scratch to train from fresh weights)")
	case s.From != "" && (fl.Changed("preset") || fl.Changed("merges")):
		return errors.New("--preset and --merges apply only to --scratch without --from: the model comes from --from")
	case s.ValidJSONL != "" && s.JSONL == "":
		return errors.Errorf("--valid-jsonl %q goes with --jsonl", s.ValidJSONL)
	case f.resume && f.overwrite:
		return errors.New("give --resume or --overwrite, not both")
	}
	return nil
}

// resumeSpec reads the run in out and checks that no flag given now
// contradicts it.
func resumeSpec(out string, now runSpec, fl *pflag.FlagSet) (runSpec, error) {
	var s runSpec
	b, err := os.ReadFile(filepath.Join(out, runFile))
	if err != nil {
		return s, errors.Wrapf(err, "--resume: %s holds no run", out)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, errors.Wrapf(err, "--resume: %s", filepath.Join(out, runFile))
	}
	was, is := map[string]any{}, map[string]any{}
	for _, x := range []struct {
		m *map[string]any
		s runSpec
	}{{&was, s}, {&is, now}} {
		v := x.s
		*x.m = map[string]any{"task": v.Task, "data": v.Data, "jsonl": v.JSONL, "valid-jsonl": v.ValidJSONL,
			"from": v.From, "scratch": v.Scratch, "preset": v.Preset, "merges": v.Merges, "lm-coef": v.LMCoef,
			"head-dropout": v.HeadDropout, "lr": v.Recipe.LR, "batch": v.Recipe.Batch, "epochs": v.Recipe.Epochs,
			"warmup": v.Recipe.WarmupFrac, "weight-decay": v.Recipe.WeightDecay, "clip": v.Recipe.ClipNorm,
			"eval-every": v.EvalEvery, "seed": v.Seed}
	}
	for _, name := range sortedKeys(was) {
		if fl.Changed(name) && fmt.Sprint(was[name]) != fmt.Sprint(is[name]) {
			return s, errors.Errorf("--%s %v: the run in %s was started with %v; --resume continues a run as it began (start another with a new --out, or --overwrite)",
				name, is[name], out, was[name])
		}
	}
	return s, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// startRun settles --out: a new run directory, or an old one replaced
// with --overwrite; a directory that holds a run needs one of --resume or
// --overwrite.
func startRun(out string, s runSpec, overwrite bool) error {
	if _, err := os.Stat(filepath.Join(out, runFile)); err == nil {
		if !overwrite {
			return errors.Errorf("--out %s holds a run: --resume continues it, --overwrite starts it again", out)
		}
		for _, name := range []string{train.BestCheckpoint, train.LastCheckpoint, "." + train.BestCheckpoint + ".old",
			"." + train.LastCheckpoint + ".old", "model", runFile} {
			if err := os.RemoveAll(filepath.Join(out, name)); err != nil {
				return err
			}
		}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(out, runFile), append(b, '\n'))
}

// trainingData reads the task's training and validation examples.
func trainingData(s runSpec, task tasks.Task) (trainEx, validEx []tasks.Example, err error) {
	d := dataFlags{task: s.Task, data: s.Data, jsonl: s.JSONL}
	if trainEx, err = d.load(task, "train"); err != nil {
		return nil, nil, err
	}
	switch {
	case s.ValidJSONL != "":
		validEx, err = tasks.LoadChoices(s.ValidJSONL)
	case s.JSONL != "":
		// A seeded tenth of the file is held out.
		parts, serr := datasets.Split(len(trainEx), s.Seed, 0.9, 0.1)
		if serr != nil {
			return nil, nil, serr
		}
		if len(parts[1]) == 0 {
			return nil, nil, errors.Errorf("--jsonl %s: %d items are too few to hold a tenth out: give --valid-jsonl", s.JSONL, len(trainEx))
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
	return trainEx, validEx, err
}

// pretrained is the model and tokenizer the run starts from.
func pretrained(s runSpec, trainEx []tasks.Example, warn io.Writer) (*gpt.Model, *datasets.BPE, error) {
	if s.From == "" { // --scratch, a preset and a BPE of the training text
		cfg, err := gpt.Preset(s.Preset)
		if err != nil {
			return nil, nil, errors.Wrapf(err, "--preset %q", s.Preset)
		}
		merges := s.Merges
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
		m, err := gpt.New(cfg, s.Seed)
		return m, tok, err
	}
	dir, err := modelDir(s.From, warn)
	if err != nil {
		return nil, nil, errors.Wrap(err, "--from")
	}
	var head struct {
		Architectures []string `json:"architectures"`
	}
	if err := train.LoadConfig(dir, &head); err == nil && len(head.Architectures) > 0 && head.Architectures[0] != gpt.Architecture {
		return nil, nil, errors.Errorf("--from %s holds a %s: fine-tune from a pre-trained language model (%s)", dir, head.Architectures[0], gpt.Architecture)
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
	if s.Scratch {
		m, err = gpt.New(m.Config, s.Seed)
	}
	return m, tok, err
}

func runFinetuneTrain(cmd *cobra.Command, f *finetuneFlags) error {
	out, fl := cmd.OutOrStdout(), cmd.Flags()
	s, err := f.spec()
	if err != nil {
		return err
	}
	if f.resume {
		if s, err = resumeSpec(f.out, s, fl); err != nil {
			return err
		}
	}
	if err := checkFlags(s, f, fl); err != nil {
		return err
	}
	task, err := dataFlags{task: s.Task, data: s.Data, jsonl: s.JSONL}.resolve()
	if err != nil {
		return err
	}
	trainEx, validEx, err := trainingData(s, task)
	if err != nil {
		return err
	}
	constructed := ""
	if task.Constructed {
		constructed = " (a CONSTRUCTED data set)"
	}
	fmt.Fprintf(out, "task: %s, %s%s — %d training and %d validation examples\n", task.Name, task.Kind, constructed, len(trainEx), len(validEx))

	var model *tasks.Model
	var tok *datasets.BPE
	last := ""
	if f.resume {
		if last, err = train.CheckpointPath(f.out, train.LastCheckpoint); err != nil {
			return errors.Wrap(err, "--resume")
		}
		if model, err = tasks.LoadGPT(last, nil, nil); err != nil {
			return errors.Wrap(err, "--resume")
		}
		var ok bool
		if tok, ok, err = loadTokenizer(last); err == nil && !ok {
			err = errors.Errorf("--resume: %s has no tokenizer files", last)
		}
		if err != nil {
			return err
		}
	} else {
		if err := startRun(f.out, s, f.overwrite); err != nil {
			return err
		}
		m, t, err := pretrained(s, trainEx, cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		tok = t
		body, err := tasks.NewGPT(m, tok, s.Seed)
		if err != nil {
			return err
		}
		if model, err = tasks.New(body, task, tasks.Config{LMCoef: s.LMCoef, HeadDropout: s.HeadDropout}); err != nil {
			return err
		}
	}
	body := model.Body.(*tasks.GPT)
	how := "pre-trained: " + s.From
	if s.Scratch {
		how = "fresh weights (--scratch)"
	}
	c := body.Model.Config
	fmt.Fprintf(out, "model: %d layers, d %d, %d heads, context %d, vocabulary %d (with [s] $ [e] and pad), %.2fM parameters, %s\n",
		c.NLayer, c.NEmbd, c.NHead, c.NPositions, c.VocabSize, float64(model.Store().NumElements())/1e6, how)
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
	data, err := model.NewData(trainIn, tasks.DataConfig{Batch: s.Recipe.Batch, Epochs: s.Recipe.Epochs, Seed: s.Seed})
	if err != nil {
		return err
	}
	steps := data.Steps()
	evalEvery := s.EvalEvery
	if evalEvery == 0 {
		evalEvery = data.StepsPerEpoch()
	}
	fmt.Fprintf(out, "training: %d epochs of %d steps, batch %d, lr %.3g (warm-up %d steps, linear decay), λ %g, head dropout %g\n",
		s.Recipe.Epochs, data.StepsPerEpoch(), s.Recipe.Batch, s.Recipe.LR, s.Recipe.Warmup(steps), s.LMCoef, s.HeadDropout)
	trainer, err := s.Recipe.NewTrainer(model, steps, s.Seed)
	if err != nil {
		return err
	}
	defer trainer.Close()
	done := 0
	if f.resume {
		if done, err = train.Resume(trainer, data, f.out); err != nil {
			return err
		}
		fmt.Fprintf(out, "resumed at step %d from %s\n", done, last)
	}
	cfg, err := model.CheckpointConfig()
	if err != nil {
		return err
	}
	metric := task.Metrics()[0]
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	prog := newProgress(steps, done, f.logEvery)
	prog.metrics = func(m map[string]float64) string { return formatMetrics(task, m) }
	hooks := train.Hooks{
		OnStep: prog.step,
		OnEval: prog.eval,
		// The task file and the tokenizer (with the special tokens) are
		// part of each checkpoint, written before it is sealed.
		BeforeCheckpoint: func(dir string) error {
			if err := model.WriteTaskFile(dir); err != nil {
				return err
			}
			return saveTokenizer(tok, dir)
		},
	}
	sum, err := train.Run(ctx, trainer, data, model.Evaluator(validEx, validIn, f.evalBatch), train.LoopConfig{
		Steps: steps, EvalEvery: evalEvery, Metric: metric, HigherIsBetter: true,
		CheckpointDir: f.out, CheckpointEvery: f.checkpointEvery, Config: cfg,
	}, hooks)
	prog.finish()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "stopped (%s) at step %d: %d examples in %s\n", sum.Stopped, sum.Step, sum.Tokens, sum.Elapsed.Round(1e9))
	fmt.Fprintf(out, "last checkpoint: %s (continue with --resume)\n", filepath.Join(f.out, train.LastCheckpoint))
	if sum.Stopped == train.StoppedCancelled || math.IsNaN(sum.BestMetric) {
		return nil
	}
	bestDir, err := train.CheckpointPath(f.out, train.BestCheckpoint)
	if err != nil {
		return err
	}
	best, err := tasks.LoadGPT(bestDir, nil, nil)
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
	class := tasks.SequenceClassification
	if task.Kind == tasks.MultipleChoice {
		class = tasks.DoubleHeads
	}
	fmt.Fprintf(out, "best validation %s %.4f at step %d: %s; as a HuggingFace %s: %s\n", metric, sum.BestMetric, sum.BestStep, bestDir, class, hf)
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
	dataFlags
	model, split, out string
	batch             int
}

func (e *evalFlags) add(fl *pflag.FlagSet, split, what string) {
	e.dataFlags.add(fl)
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
func (e *evalFlags) prepare(warn io.Writer, which string) (*prepared, error) {
	m, tok, exs, split, err := e.loadFineTuned(warn, which)
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
	if e.batch < 1 {
		return nil, nil, nil, "", errors.Errorf("--batch %d: want at least 1", e.batch)
	}
	dir, err := modelDir(e.model, warn)
	if err != nil {
		return nil, nil, nil, "", err
	}
	m, err := tasks.LoadGPT(dir, nil, nil)
	if err != nil {
		return nil, nil, nil, "", err
	}
	tok, ok, err := loadTokenizer(dir)
	if err == nil && !ok {
		err = errors.Errorf("--model %s has no tokenizer files (vocab.json and merges.txt)", dir)
	}
	if err != nil {
		return nil, nil, nil, "", err
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
	d := e.dataFlags
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
  seq2gpt finetune eval --model runs/rte --data glue_data
  seq2gpt finetune eval --model runs/mnli --data glue_data --split dev_mismatched
  seq2gpt finetune eval --model runs/swag --jsonl swag-val.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pr, err := e.prepare(cmd.ErrOrStderr(), "dev")
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
			pr, err := e.prepare(cmd.ErrOrStderr(), "test")
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
