package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/pkg/errors"
	"github.com/spf13/cobra"

	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/gpt"
	"github.com/seq2gpt/seq2gpt/train"
)

type trainFlags struct {
	data, tokenizer, preset, config, out string
	merges                               int
	steps, batch, accum, warmup          int
	lr, minLR, weightDecay, clip         float64
	dropout                              float64
	evalEvery, evalBatches, patience     int
	checkpointEvery, logEvery            int
	resume                               bool
	seed                                 uint64
	samples, sampleTokens                int
	prompt                               string
}

func newTrainCmd() *cobra.Command {
	f := &trainFlags{}
	c := &cobra.Command{
		Use:   "train",
		Short: "Pre-train a GPT language model",
		Long: `Pre-train GPT-1 (decoder-only Transformer, post-LayerNorm, tied output
embedding) on next-token prediction with AdamW, linear warm-up then cosine
decay, and global-norm clipping.

The text is the embedded State of the Union addresses unless --data names a
file; a tenth is held out for validation. A byte-level BPE tokenizer is
trained on the training text unless --tokenizer gives one. Checkpoints go to
--out: "best" (lowest validation loss) and "last" (for --resume); both are
HuggingFace openai-gpt directories that "lm generate" reads. Ctrl-C saves
"last" and exits cleanly. A loss curve (loss.png) is written beside them.`,
		Example: `  # a small GPT on the embedded text, a few minutes on 2 cores
  seq2gpt lm train --preset tiny --steps 1500 --out runs/tiny

  # your own text, a bigger model, resumable
  seq2gpt lm train --data corpus.txt --preset small --steps 5000 --out runs/small
  seq2gpt lm train --out runs/small --steps 8000 --resume`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runTrain(cmd, f) },
	}
	fl := c.Flags()
	fl.StringVar(&f.data, "data", "", "plain-text training file (default: the embedded State of the Union addresses)")
	fl.StringVar(&f.tokenizer, "tokenizer", "", "directory with vocab.json+merges.txt (or encoder.json+vocab.bpe); default: train one")
	fl.IntVar(&f.merges, "merges", -1, "BPE merges to learn when training a tokenizer (default: the preset's vocab_size − 256)")
	fl.StringVar(&f.preset, "preset", "tiny", "model size: tiny, small, medium or paper")
	fl.StringVar(&f.config, "config", "", "JSON file of HuggingFace openai-gpt config keys, applied over the preset")
	fl.StringVar(&f.out, "out", "runs/gpt", "directory for checkpoints and the loss curve")
	fl.IntVar(&f.steps, "steps", 1500, "optimizer steps in total")
	fl.IntVar(&f.batch, "batch", 16, "windows per micro-batch")
	fl.IntVar(&f.accum, "accum", 1, "micro-batches accumulated per step")
	fl.IntVar(&f.warmup, "warmup", 0, "linear warm-up steps (default: steps/20)")
	fl.Float64Var(&f.lr, "lr", 2e-3, "peak learning rate")
	fl.Float64Var(&f.minLR, "min-lr", -1, "learning rate at the end of the cosine decay (default: lr/10)")
	fl.Float64Var(&f.weightDecay, "weight-decay", 0.01, "AdamW decoupled weight decay, on matrices only (not biases or gains)")
	fl.Float64Var(&f.clip, "clip", 1, "global gradient-norm clipping (0: off)")
	fl.Float64Var(&f.dropout, "dropout", -1, "embedding, attention and residual dropout (default: the preset's)")
	fl.IntVar(&f.evalEvery, "eval-every", 250, "evaluate every N steps")
	fl.IntVar(&f.evalBatches, "eval-batches", 20, "validation batches per evaluation (0: all)")
	fl.IntVar(&f.patience, "patience", 0, "stop after N evaluations without improvement (0: never)")
	fl.IntVar(&f.checkpointEvery, "checkpoint-every", 500, "save the last checkpoint every N steps")
	fl.IntVar(&f.logEvery, "log-every", 100, "when not on a terminal, log a line every N steps")
	fl.BoolVar(&f.resume, "resume", false, "continue from <out>/last")
	fl.Uint64Var(&f.seed, "seed", 1, "seed for weights, data order and dropout")
	fl.IntVar(&f.samples, "samples", 2, "samples to print after training")
	fl.IntVar(&f.sampleTokens, "sample-tokens", 60, "tokens per sample")
	fl.StringVar(&f.prompt, "prompt", "The", "prompt of the samples")
	return c
}

func runTrain(cmd *cobra.Command, f *trainFlags) error {
	out := cmd.OutOrStdout()
	text, err := loadCorpus(f.data)
	if err != nil {
		return err
	}
	last := filepath.Join(f.out, train.LastCheckpoint)
	if f.resume {
		// The last checkpoint, or the one before it when a crash
		// interrupted its replacement.
		if last, err = train.CheckpointPath(f.out, train.LastCheckpoint); err != nil {
			return errors.Wrap(err, "--resume")
		}
	}
	cfg, tok, err := modelAndTokenizer(f, text, last)
	if err != nil {
		return err
	}
	trainIDs, validIDs := tok.Encode(text.train), tok.Encode(text.valid)
	fmt.Fprintf(out, "data: %s — %d train and %d validation tokens, vocabulary %d\n", text.name, len(trainIDs), len(validIDs), tok.VocabSize())

	m, err := gpt.New(cfg, f.seed)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "model: %d layers, d %d, %d heads, context %d, %s, %.2fM parameters\n",
		cfg.NLayer, cfg.NEmbd, cfg.NHead, cfg.NPositions, cfg.AFN, float64(m.Store.NumElements())/1e6)
	lm := gpt.LM{Model: m}
	tw, err := datasets.NewLMWindows(trainIDs, cfg.NPositions, 0)
	if err != nil {
		return errors.Wrap(err, "training text")
	}
	vw, err := datasets.NewLMWindows(validIDs, cfg.NPositions, 0)
	if err != nil {
		return errors.Wrap(err, "validation text")
	}
	data, err := lm.NewLMData(tw, f.batch, f.accum, f.seed)
	if err != nil {
		return err
	}
	tr, err := newTrainer(lm, f)
	if err != nil {
		return err
	}
	defer tr.Close()
	done := 0
	if f.resume {
		if done, err = train.Resume(tr, data, f.out); err != nil {
			return err
		}
		fmt.Fprintf(out, "resumed at step %d from %s\n", done, last)
	}
	if err := os.MkdirAll(f.out, 0o755); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	prog := newProgress(f.steps, done, f.logEvery)
	var evals []train.EvalInfo
	var losses []float64
	curve := filepath.Join(f.out, "loss.png")
	hooks := train.Hooks{
		OnStep: func(s train.StepInfo) {
			losses = append(losses, s.Loss)
			prog.step(s)
		},
		OnEval: func(e train.EvalInfo) {
			evals = append(evals, e)
			prog.eval(e)
			_ = lossCurve(curve, losses, done, evals)
		},
		// The tokenizer is part of each checkpoint, written before it is
		// sealed and swapped into place.
		BeforeCheckpoint: func(dir string) error { return saveTokenizer(tok, dir) },
	}
	sum, err := train.Run(ctx, tr, data, lm.Evaluator(vw, f.batch, f.evalBatches), train.LoopConfig{
		Steps: f.steps, EvalEvery: f.evalEvery, Metric: "loss", Patience: f.patience,
		CheckpointDir: f.out, CheckpointEvery: f.checkpointEvery, Config: cfg,
	}, hooks)
	prog.finish()
	if err != nil {
		return err
	}
	if err := lossCurve(curve, losses, done, evals); err != nil {
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

// modelAndTokenizer settles the model config and the tokenizer: from the
// last checkpoint when resuming, else from the flags (training a BPE on the
// training text unless one is given).
func modelAndTokenizer(f *trainFlags, text corpus, last string) (gpt.Config, *datasets.BPE, error) {
	if f.resume {
		cfg, err := gpt.ReadConfig(last)
		if err != nil {
			return gpt.Config{}, nil, errors.Wrap(err, "--resume")
		}
		tok, ok, err := loadTokenizer(last)
		if err == nil && !ok {
			err = errors.Errorf("--resume: %s has no tokenizer files", last)
		}
		return cfg, tok, err
	}
	cfg, err := gpt.Preset(f.preset)
	if err != nil {
		return cfg, nil, err
	}
	if f.config != "" {
		b, err := os.ReadFile(f.config)
		if err != nil {
			return cfg, nil, err
		}
		if err := json.Unmarshal(b, &cfg); err != nil {
			return cfg, nil, errors.Wrapf(err, "--config %s", f.config)
		}
	}
	if f.dropout >= 0 {
		cfg.EmbdPdrop, cfg.AttnPdrop, cfg.ResidPdrop = f.dropout, f.dropout, f.dropout
	}
	var tok *datasets.BPE
	if f.tokenizer != "" {
		var ok bool
		if tok, ok, err = loadTokenizer(f.tokenizer); err == nil && !ok {
			err = errors.Errorf("--tokenizer %s: no vocab.json+merges.txt or encoder.json+vocab.bpe", f.tokenizer)
		}
		if err != nil {
			return cfg, nil, err
		}
	} else {
		merges := f.merges
		if merges < 0 {
			merges = max(0, cfg.VocabSize-256)
		}
		if tok, err = datasets.TrainBPE([]string{text.train}, datasets.BPEConfig{Merges: merges}); err != nil {
			return cfg, nil, err
		}
	}
	cfg.VocabSize = tok.VocabSize()
	return cfg, tok, cfg.Validate()
}

func newTrainer(lm gpt.LM, f *trainFlags) (*train.Trainer, error) {
	// GPT-1 decays "all non bias or gain weights": matrices only.
	opt, err := train.NewAdamW(train.AdamConfig{Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: f.weightDecay, DecayMatricesOnly: true})
	if err != nil {
		return nil, err
	}
	warmup := f.warmup
	if warmup <= 0 {
		warmup = max(1, f.steps/20)
	}
	minLR := f.minLR
	if minLR < 0 {
		minLR = f.lr / 10
	}
	sched, err := train.NewWarmupDecay(f.lr, minLR, warmup, f.steps, train.Cosine)
	if err != nil {
		return nil, err
	}
	return train.New(lm, train.Config{Optimizer: opt, Schedule: sched, ClipNorm: f.clip, DropoutSeed: f.seed})
}
