package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/pkg/errors"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/gpt"
	"github.com/seq2gpt/seq2gpt/train"
)

type trainFlags struct {
	data, valid, tokenizer, preset, config, out string
	validFraction                               float64
	merges                                      int
	steps, batch, accum, warmup                 int
	lr, minLR, weightDecay, clip                float64
	dropout                                     float64
	evalEvery, evalBatches, patience            int
	checkpointEvery, logEvery                   int
	resume, overwrite                           bool
	seed                                        uint64
	samples, sampleTokens                       int
	prompt                                      string
}

// The flags that define a run of lm train (a resumed run takes their saved
// values and refuses others), and those it remembers but lets change.
var (
	trainDefining = []string{"data", "valid", "valid-fraction", "tokenizer", "merges", "preset", "config",
		"batch", "accum", "warmup", "lr", "min-lr", "weight-decay", "clip", "dropout", "seed", "eval-batches"}
	trainRemembered = []string{"steps", "eval-every", "patience", "checkpoint-every", "log-every",
		"samples", "sample-tokens", "prompt"}
)

func newTrainCmd() *cobra.Command {
	f := &trainFlags{}
	c := &cobra.Command{
		Use:   "train",
		Short: "Pre-train a GPT language model",
		Long: `Pre-train GPT-1 (decoder-only Transformer, post-LayerNorm, tied output
embedding) on next-token prediction with AdamW, linear warm-up then cosine
decay, and global-norm clipping.

The text is the embedded State of the Union addresses unless --data names a
file. Validation text is --valid, or a --valid-fraction held out: whole
documents (blocks between blank lines) when the text has many, else its
last part, cut between words. A byte-level BPE tokenizer is trained on the
training text unless --tokenizer gives one.

--out is the run directory. Its run.json records what defines the run (the
data and its hash, tokenizer, model, schedule, batch, seed), so --resume
continues it with no other flags; a flag that contradicts the saved run is
an error naming both values (--steps may change, to extend a run). A
directory that holds a run is not overwritten without --overwrite.
Checkpoints: "best" (lowest validation loss) and "last" (for --resume), both
HuggingFace openai-gpt directories with their tokenizer that "lm generate"
reads. Ctrl-C saves "last" and exits cleanly. The loss curve of the whole
run is loss.png. A model and batch that would not fit in memory are refused
before anything is allocated.`,
		Example: `  # the README's quick start: a small GPT and a 1,000-merge BPE on the embedded text
  seq2gpt lm train --preset tiny --merges 1000 --steps 1500 --out runs/tiny

  # your own text, a bigger model; Ctrl-C, then continue it
  seq2gpt lm train --data corpus.txt --preset small --steps 5000 --out runs/small
  seq2gpt lm train --out runs/small --resume
  seq2gpt lm train --out runs/small --resume --steps 8000   # extend it`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runTrain(cmd, f) },
	}
	fl := c.Flags()
	fl.StringVar(&f.data, "data", "", "plain-text training file (default: the embedded State of the Union addresses)")
	fl.StringVar(&f.valid, "valid", "", "plain-text validation file (default: hold out --valid-fraction of --data)")
	fl.Float64Var(&f.validFraction, "valid-fraction", 0.1, "the part of the text held out for validation when there is no --valid")
	fl.StringVar(&f.tokenizer, "tokenizer", "", "directory with vocab.json+merges.txt (or encoder.json+vocab.bpe); default: train one")
	fl.IntVar(&f.merges, "merges", -1, "BPE merges to learn when training a tokenizer (default: the preset's vocab_size − 256)")
	fl.StringVar(&f.preset, "preset", "tiny", "model size: tiny, small, medium or paper")
	fl.StringVar(&f.config, "config", "", "JSON file of HuggingFace openai-gpt config keys, applied over the preset")
	fl.StringVar(&f.out, "out", "runs/gpt", "run directory: run.json, checkpoints and the loss curve")
	fl.IntVar(&f.steps, "steps", 1500, "optimizer steps in total")
	fl.IntVar(&f.batch, "batch", 16, "windows per micro-batch")
	fl.IntVar(&f.accum, "accum", 1, "micro-batches accumulated per step")
	fl.IntVar(&f.warmup, "warmup", 0, "linear warm-up steps (default: steps/20)")
	fl.Float64Var(&f.lr, "lr", -1, "peak learning rate (default: the preset's: tiny 2e-3; small and medium 6e-4; paper 2.5e-4, GPT-1's)")
	fl.Float64Var(&f.minLR, "min-lr", -1, "learning rate at the end of the cosine decay (default: lr/10)")
	fl.Float64Var(&f.weightDecay, "weight-decay", 0.01, "AdamW decoupled weight decay, on matrices only (not biases or gains)")
	fl.Float64Var(&f.clip, "clip", 1, "global gradient-norm clipping (0: off)")
	fl.Float64Var(&f.dropout, "dropout", -1, "embedding, attention and residual dropout (default: the preset's)")
	fl.IntVar(&f.evalEvery, "eval-every", 250, "evaluate every N steps")
	fl.IntVar(&f.evalBatches, "eval-batches", 20, "validation batches per evaluation (0: all)")
	fl.IntVar(&f.patience, "patience", 0, "stop after N evaluations without improvement (0: never)")
	fl.IntVar(&f.checkpointEvery, "checkpoint-every", 500, "save the last checkpoint every N steps")
	fl.IntVar(&f.logEvery, "log-every", 100, "when not on a terminal, log a line every N steps")
	fl.BoolVar(&f.resume, "resume", false, "continue the run in --out from its last checkpoint, with its saved settings")
	fl.BoolVar(&f.overwrite, "overwrite", false, "replace the run in --out (its run.json, checkpoints and loss curve)")
	fl.Uint64Var(&f.seed, "seed", 1, "seed for weights, data order and dropout")
	fl.IntVar(&f.samples, "samples", 2, "samples to print after training")
	fl.IntVar(&f.sampleTokens, "sample-tokens", 60, "tokens per sample")
	fl.StringVar(&f.prompt, "prompt", "The", "prompt of the samples")
	return c
}

// checkTrainFlags refuses values outside each flag's range before any work.
func checkTrainFlags(fs *pflag.FlagSet) error {
	c := NewFlagChecks(fs)
	for _, name := range []string{"steps", "batch", "accum"} {
		c.Check(name, AtLeast(1))
	}
	for _, name := range []string{"merges", "warmup", "eval-every", "eval-batches", "patience", "checkpoint-every", "log-every", "samples", "sample-tokens"} {
		c.Check(name, AtLeast(0))
	}
	c.Check("lr", Positive)
	for _, name := range []string{"min-lr", "weight-decay", "clip"} {
		c.Check(name, NonNegative)
	}
	c.Check("dropout", Dropout)
	c.Check("valid-fraction", Fraction)
	checkPreset(c, fs)
	return c.Err()
}

// checkPreset refuses a --preset gpt does not have.
func checkPreset(c *FlagChecks, fs *pflag.FlagSet) {
	if p := fs.Lookup("preset").Value.String(); p != "" {
		if _, err := gpt.Preset(p); err != nil {
			c.Add("preset", p, "tiny, small, medium or paper")
		}
	}
}

func runTrain(cmd *cobra.Command, f *trainFlags) error {
	fs := cmd.Flags()
	if err := checkTrainFlags(fs); err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	rd, err := OpenRunDir(fs, RunDirOptions{Command: "lm train", Dir: f.out, Resume: f.resume, Overwrite: f.overwrite,
		Defining: trainDefining, Remembered: trainRemembered})
	if err != nil {
		return err
	}
	rd.PrintNotes(out)
	last := ""
	if f.resume {
		// The last checkpoint, or the one before it when a crash
		// interrupted its replacement.
		if last, err = train.CheckpointPath(f.out, train.LastCheckpoint); err != nil {
			return errors.Wrap(err, "--resume")
		}
	}
	// The model first: a bad --config fails before the text is read.
	cfg, err := modelConfig(f, last)
	if err != nil {
		return err
	}
	text, err := loadCorpus(f.data, f.valid, f.validFraction)
	if err != nil {
		return err
	}
	if err := rd.Fact("data", text.fact()); err != nil {
		return err
	}
	tok, err := runTokenizer(f, fs, cfg, text, last)
	if err != nil {
		return err
	}
	if err := rd.Fact("tokenizer", tokenizerHash(tok)); err != nil {
		return err
	}
	if !f.resume {
		cfg.VocabSize = tok.VocabSize()
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.VocabSize != tok.VocabSize() {
		return errors.Errorf("%s: the model's vocabulary has %d tokens, its tokenizer %d", last, cfg.VocabSize, tok.VocabSize())
	}
	if err := rd.Fact("model", cfg); err != nil {
		return err
	}
	resolveTrainDefaults(fs, f, cfg)
	if f.warmup >= f.steps {
		return &FlagError{Flag: "steps", Value: strconv.Itoa(f.steps), Want: fmt.Sprintf("an integer > the run's --warmup %d", f.warmup)}
	}
	if err := checkTrainMemory(cfg, f.batch); err != nil {
		return err
	}
	trainIDs, validIDs := tok.Encode(text.train), tok.Encode(text.valid)
	fmt.Fprintf(out, "data: %s — %d train and %d validation tokens (%s), vocabulary %d\n",
		text.name, len(trainIDs), len(validIDs), text.split, tok.VocabSize())
	tw, err := datasets.NewLMWindows(trainIDs, cfg.NPositions, 0)
	if err != nil {
		return errors.Wrapf(err, "training text (%s)", text.name)
	}
	vw, err := datasets.NewLMWindows(validIDs, cfg.NPositions, 0)
	if err != nil {
		return errors.Errorf("validation text: %d tokens are fewer than one window of n_positions %d + 1: "+
			"give more text, a larger --valid-fraction or --valid FILE", len(validIDs), cfg.NPositions)
	}

	m, err := gpt.New(cfg, f.seed)
	if err != nil {
		return err
	}
	// Ctrl-C is caught from here on, before the "model:" line announces the
	// run: a signal while the data and trainer are set up (or a resume is
	// read) still ends the run cleanly, not with a kill.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(out, "model: %d layers, d %d, %d heads, context %d, %s, %.2fM parameters\n",
		cfg.NLayer, cfg.NEmbd, cfg.NHead, cfg.NPositions, cfg.AFN, float64(m.Store.NumElements())/1e6)
	lm := gpt.LM{Model: m}
	data, err := lm.NewLMData(tw, f.batch, f.accum, f.seed)
	if err != nil {
		return err
	}
	tr, err := newTrainer(lm, f)
	if err != nil {
		return err
	}
	defer tr.Close()
	done, hist := 0, &lossHistory{}
	if f.resume {
		if done, hist, err = resumeTraining(out, tr, data, f.out, last); err != nil {
			return err
		}
	}
	if err := rd.Save(); err != nil {
		return err
	}
	prog := newProgress(cmd.ErrOrStderr(), f.steps, done, f.logEvery)
	curve := filepath.Join(f.out, "loss.png")
	hooks := train.Hooks{
		OnStep: func(s train.StepInfo) {
			hist.step(s)
			prog.step(s)
		},
		OnEval: func(e train.EvalInfo) {
			hist.eval(e)
			prog.eval(e)
			_ = lossCurve(curve, hist)
		},
		// The tokenizer and the loss history are part of each checkpoint,
		// written before it is sealed and swapped into place.
		BeforeCheckpoint: func(dir string) error {
			if err := saveTokenizer(tok, dir); err != nil {
				return err
			}
			return hist.save(dir)
		},
	}
	sum, err := train.Run(ctx, tr, data, lm.Evaluator(vw, f.batch, f.evalBatches), train.LoopConfig{
		Steps: f.steps, EvalEvery: f.evalEvery, Metric: "loss", Patience: f.patience,
		CheckpointDir: f.out, CheckpointEvery: f.checkpointEvery, Config: cfg,
	}, hooks)
	prog.finish()
	if err != nil {
		return err
	}
	if err := lossCurve(curve, hist); err != nil {
		return err
	}
	fmt.Fprintf(out, "stopped (%s) at step %d: %d tokens in %s (%.0f tokens/s)\n",
		sum.Stopped, sum.Step, sum.Tokens, sum.Elapsed.Round(1e9), sum.TokensPerSec)
	if sum.Evals > 0 {
		fmt.Fprintf(out, "best validation loss %.4f (ppl %.2f) at step %d: %s\n",
			sum.BestMetric, expSafe(sum.BestMetric), sum.BestStep, filepath.Join(f.out, "best"))
	}
	fmt.Fprintf(out, "last checkpoint: %s (continue with --resume); loss curve: %s\n", filepath.Join(f.out, train.LastCheckpoint), curve)
	if sum.Stopped == "cancelled" || sum.Evals == 0 || f.samples <= 0 {
		return nil
	}
	bestDir, err := train.CheckpointPath(f.out, train.BestCheckpoint)
	if err != nil {
		return err
	}
	best, err := gpt.Load(bestDir)
	if err != nil {
		return err
	}
	return printSamples(out, best, tok, f.prompt, f.samples, f.sampleTokens, f.seed)
}

// presetLR is each preset's peak learning rate when --lr is not given. The
// post-LN stacks of four and more layers do not learn at tiny's 2e-3: the
// small preset stayed at the unigram loss (6.06 nats after 2,000 steps) and
// learned at 6e-4 (4.37 after 1,000); paper is GPT-1's 2.5e-4.
var presetLR = map[string]float64{"tiny": 2e-3, "small": 6e-4, "medium": 6e-4, "paper": 2.5e-4}

// modelConfig is the model's configuration: the last checkpoint's when
// resuming, else the preset with --config and --dropout over it (its
// vocabulary size is the tokenizer's, set later).
func modelConfig(f *trainFlags, last string) (gpt.Config, error) {
	if last != "" {
		cfg, err := gpt.ReadConfig(last)
		return cfg, errors.Wrap(err, "--resume")
	}
	cfg, err := gpt.Preset(f.preset)
	if err != nil {
		return cfg, err
	}
	if f.config != "" {
		b, err := os.ReadFile(f.config)
		if err != nil {
			return cfg, err
		}
		if cfg, err = gpt.ParseConfig(b, cfg); err != nil {
			return cfg, errors.Wrapf(err, "--config %s", f.config)
		}
	}
	if f.dropout >= 0 {
		cfg.EmbdPdrop, cfg.AttnPdrop, cfg.ResidPdrop = f.dropout, f.dropout, f.dropout
	}
	return cfg, nil
}

// runTokenizer is the run's tokenizer: the last checkpoint's when resuming,
// else --tokenizer's, else a BPE trained on the training text (--merges,
// whose default is resolved and recorded).
func runTokenizer(f *trainFlags, fs *pflag.FlagSet, cfg gpt.Config, text corpus, last string) (*datasets.BPE, error) {
	dir, what := last, "--resume"
	if last == "" {
		dir, what = f.tokenizer, "--tokenizer "+f.tokenizer
	}
	if dir != "" {
		tok, ok, err := loadTokenizer(dir)
		if err == nil && !ok {
			err = errors.Errorf("%s: %s has no vocab.json+merges.txt or encoder.json+vocab.bpe", what, dir)
		}
		return tok, err
	}
	if f.merges < 0 {
		_ = fs.Set("merges", strconv.Itoa(max(0, cfg.VocabSize-256)))
	}
	return datasets.TrainBPE([]string{text.train}, datasets.BPEConfig{Merges: f.merges})
}

// tokenizerHash identifies a tokenizer by the files it saves as.
func tokenizerHash(tok *datasets.BPE) string {
	h := sha256.New()
	_ = tok.SaveGPT2(h, h)
	return hex.EncodeToString(h.Sum(nil))
}

// resolveTrainDefaults sets the flags whose default depends on others
// (warm-up, final learning rate, dropout), so that the run file records
// the values the run uses and a resumed run keeps them even if --steps
// changes.
func resolveTrainDefaults(fs *pflag.FlagSet, f *trainFlags, cfg gpt.Config) {
	if f.lr < 0 {
		_ = fs.Set("lr", strconv.FormatFloat(presetLR[f.preset], 'g', -1, 64))
	}
	if f.warmup <= 0 {
		_ = fs.Set("warmup", strconv.Itoa(max(1, f.steps/20)))
	}
	if f.minLR < 0 {
		_ = fs.Set("min-lr", strconv.FormatFloat(f.lr/10, 'g', -1, 64))
	}
	if f.dropout < 0 {
		_ = fs.Set("dropout", strconv.FormatFloat(cfg.ResidPdrop, 'g', -1, 64))
	}
}

func newTrainer(lm gpt.LM, f *trainFlags) (*train.Trainer, error) {
	// GPT-1 decays "all non bias or gain weights": matrices only.
	opt, err := train.NewAdamW(train.AdamConfig{Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: f.weightDecay, DecayMatricesOnly: true})
	if err != nil {
		return nil, err
	}
	sched, err := train.NewWarmupDecay(f.lr, f.minLR, f.warmup, f.steps, train.Cosine)
	if err != nil {
		return nil, err
	}
	return train.New(lm, train.Config{Optimizer: opt, Schedule: sched, ClipNorm: f.clip, DropoutSeed: f.seed})
}
