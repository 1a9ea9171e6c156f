package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/pkg/errors"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/seq2gpt/seq2gpt/bert"
	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/train"
)

type mlmTrainFlags struct {
	data, valid, tokenizer, preset, config, out string
	validFraction, maskRate                     float64
	merges                                      int
	steps, batch, accum, warmup                 int
	lr, minLR, weightDecay, clip, dropout       float64
	nsp                                         bool
	evalEvery, evalBatches, patience            int
	checkpointEvery, logEvery                   int
	resume, overwrite                           bool
	seed                                        uint64
	fill                                        string
}

// The flags that define a run of mlm train (a resumed run takes their
// saved values and refuses others), and those it remembers but lets change.
var (
	mlmDefining = []string{"data", "valid", "valid-fraction", "tokenizer", "merges", "preset", "config", "nsp", "mask-rate",
		"batch", "accum", "warmup", "lr", "min-lr", "weight-decay", "clip", "dropout", "seed", "eval-batches"}
	mlmRemembered = []string{"steps", "eval-every", "patience", "checkpoint-every", "log-every", "fill"}
)

func newMLMCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "mlm",
		Short: "BERT masked language models: pre-train, evaluate, fill in [MASK]s",
	}
	c.AddCommand(newMLMTrainCmd(), newMLMEvalCmd(), newMLMFillCmd())
	return c
}

func newMLMTrainCmd() *cobra.Command {
	f := &mlmTrainFlags{}
	c := &cobra.Command{
		Use:   "train",
		Short: "Pre-train a BERT masked language model",
		Long: `Pre-train BERT (the Transformer's encoder: bidirectional self-attention,
post-LayerNorm, segment embeddings, a tied MLM head) as a cloze test: in each
example 15% of the tokens are chosen, of those 80% replaced by [MASK], 10% by a
random token and 10% kept, and the model predicts the originals. Each epoch
masks the text afresh. Next-sentence prediction is off unless --nsp. AdamW
(β 0.9, 0.999, ε 1e-6, decoupled weight decay on matrices), linear warm-up
then linear decay, global-norm clipping.

The text is the embedded State of the Union addresses unless --data names a
file; validation text is --valid or a --valid-fraction held out (as lm train
holds it out), masked once. A byte-level BPE is trained on the training text
(unless --tokenizer gives one) and BERT's [PAD], [CLS], [SEP] and [MASK] are
added to it. Examples are windows of max_position_embeddings tokens:
[CLS] text [SEP].

--out is the run directory. Its run.json records what defines the run, so
--resume continues it with no other flags; a flag that contradicts the
saved run is an error naming both values (--steps may change, to extend a
run). A directory that holds a run is not overwritten without --overwrite.
Checkpoints "best" (lowest validation MLM loss) and "last" are HuggingFace
BertForPreTraining directories with the tokenizer beside them, which
"mlm eval", "mlm fill" and "finetune --from" read. Ctrl-C saves "last" and
exits cleanly.`,
		Example: `  # a tiny BERT on the embedded text
  seq2gpt mlm train --preset tiny --merges 1000 --steps 1500 --out runs/bert-tiny

  # continue it to 3000 steps
  seq2gpt mlm train --out runs/bert-tiny --resume --steps 3000

  # what it fills in
  seq2gpt mlm fill --model runs/bert-tiny --text "The [MASK] of the Union is strong."`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runMLMTrain(cmd, f) },
	}
	fl := c.Flags()
	fl.StringVar(&f.data, "data", "", "plain-text training file (default: the embedded State of the Union addresses)")
	fl.StringVar(&f.valid, "valid", "", "plain-text validation file (default: hold out --valid-fraction of --data)")
	fl.Float64Var(&f.validFraction, "valid-fraction", 0.1, "the part of the text held out for validation when there is no --valid")
	fl.StringVar(&f.tokenizer, "tokenizer", "", "directory with vocab.json+merges.txt (or encoder.json+vocab.bpe); default: train one")
	fl.IntVar(&f.merges, "merges", -1, "BPE merges to learn when training a tokenizer (default: the preset's vocab_size − 260)")
	fl.StringVar(&f.preset, "preset", "tiny", "model size: tiny, small, medium, base or large")
	fl.StringVar(&f.config, "config", "", "JSON file of HuggingFace BertConfig keys, applied over the preset")
	fl.BoolVar(&f.nsp, "nsp", false, "add next-sentence prediction (examples become [CLS] A [SEP] B [SEP])")
	fl.Float64Var(&f.maskRate, "mask-rate", 0.15, "the fraction of the tokens chosen as targets")
	fl.StringVar(&f.out, "out", "runs/bert", "run directory: run.json, checkpoints and the loss curve")
	fl.IntVar(&f.steps, "steps", 1500, "optimizer steps in total")
	fl.IntVar(&f.batch, "batch", 16, "examples per micro-batch")
	fl.IntVar(&f.accum, "accum", 1, "micro-batches accumulated per step")
	fl.IntVar(&f.warmup, "warmup", 0, "linear warm-up steps (default: steps/20)")
	fl.Float64Var(&f.lr, "lr", 2e-3, "peak learning rate")
	fl.Float64Var(&f.minLR, "min-lr", -1, "learning rate at the end of the linear decay (default: lr/10)")
	fl.Float64Var(&f.weightDecay, "weight-decay", 0.01, "AdamW decoupled weight decay, on matrices only")
	fl.Float64Var(&f.clip, "clip", 1, "global gradient-norm clipping (0: off)")
	fl.Float64Var(&f.dropout, "dropout", -1, "hidden and attention dropout (default: the preset's)")
	fl.IntVar(&f.evalEvery, "eval-every", 250, "evaluate every N steps")
	fl.IntVar(&f.evalBatches, "eval-batches", 20, "validation batches per evaluation (0: all)")
	fl.IntVar(&f.patience, "patience", 0, "stop after N evaluations without improvement (0: never)")
	fl.IntVar(&f.checkpointEvery, "checkpoint-every", 500, "save the last checkpoint every N steps")
	fl.IntVar(&f.logEvery, "log-every", 100, "when not on a terminal, log a line every N steps")
	fl.BoolVar(&f.resume, "resume", false, "continue the run in --out from its last checkpoint, with its saved settings")
	fl.BoolVar(&f.overwrite, "overwrite", false, "replace the run in --out (its run.json, checkpoints and loss curve)")
	fl.Uint64Var(&f.seed, "seed", 1, "seed for weights, data order, masking and dropout")
	fl.StringVar(&f.fill, "fill", "The [MASK] of the Union is strong.", "text with [MASK]s to fill in after training (empty: none)")
	return c
}

// checkMLMFlags refuses values outside each flag's range before any work.
func checkMLMFlags(fs *pflag.FlagSet) error {
	c := NewFlagChecks(fs)
	for _, name := range []string{"steps", "batch", "accum"} {
		c.Check(name, AtLeast(1))
	}
	for _, name := range []string{"merges", "warmup", "eval-every", "eval-batches", "patience", "checkpoint-every", "log-every"} {
		c.Check(name, AtLeast(0))
	}
	c.Check("lr", Positive)
	for _, name := range []string{"min-lr", "weight-decay", "clip"} {
		c.Check(name, NonNegative)
	}
	c.Check("dropout", Dropout)
	c.Check("valid-fraction", Fraction)
	c.Check("mask-rate", Range{Min: 0, Max: 1, MinOpen: true})
	if p := fs.Lookup("preset").Value.String(); p != "" {
		if _, err := bert.Preset(p); err != nil {
			c.Add("preset", p, "tiny, small, medium, base or large")
		}
	}
	return c.Err()
}

func runMLMTrain(cmd *cobra.Command, f *mlmTrainFlags) error {
	fs := cmd.Flags()
	if err := checkMLMFlags(fs); err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	rd, err := OpenRunDir(fs, RunDirOptions{Command: "mlm train", Dir: f.out, Resume: f.resume, Overwrite: f.overwrite,
		Defining: mlmDefining, Remembered: mlmRemembered})
	if err != nil {
		return err
	}
	rd.PrintNotes(out)
	last := ""
	if f.resume {
		if last, err = train.CheckpointPath(f.out, train.LastCheckpoint); err != nil {
			return errors.Wrap(err, "--resume")
		}
	}
	cfg, err := bertConfig(f, last)
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
	tok, sp, err := bertTokenizer(f, fs, cfg, text, last)
	if err != nil {
		return err
	}
	if err := rd.Fact("tokenizer", tokenizerHash(tok)); err != nil {
		return err
	}
	if !f.resume {
		cfg.VocabSize, cfg.PadTokenID = tok.VocabSize(), sp.PAD
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.VocabSize != tok.VocabSize() || cfg.PadTokenID != sp.PAD {
		return errors.Errorf("%s: the model's vocabulary has %d tokens and [PAD] %d, its tokenizer %d and %d",
			last, cfg.VocabSize, cfg.PadTokenID, tok.VocabSize(), sp.PAD)
	}
	if err := rd.Fact("model", cfg); err != nil {
		return err
	}
	if f.warmup <= 0 {
		_ = fs.Set("warmup", strconv.Itoa(max(1, f.steps/20)))
	}
	if f.minLR < 0 {
		_ = fs.Set("min-lr", strconv.FormatFloat(f.lr/10, 'g', -1, 64))
	}
	if f.dropout < 0 {
		_ = fs.Set("dropout", strconv.FormatFloat(cfg.HiddenDropoutProb, 'g', -1, 64))
	}
	if f.warmup >= f.steps {
		return &FlagError{Flag: "steps", Value: strconv.Itoa(f.steps), Want: fmt.Sprintf("an integer > the run's --warmup %d", f.warmup)}
	}
	trainIDs, validIDs := tok.Encode(text.train), tok.Encode(text.valid)
	fmt.Fprintf(out, "data: %s — %d train and %d validation tokens (%s), vocabulary %d (with [PAD] [CLS] [SEP] [MASK])\n",
		text.name, len(trainIDs), len(validIDs), text.split, tok.VocabSize())
	m, err := bert.New(cfg, f.seed)
	if err != nil {
		return err
	}
	mk, err := bert.NewMasker(bert.Masking{Rate: f.maskRate, Mask: 0.8, Random: 0.1}, sp, tok.VocabSize(), tok.IsSpecial)
	if err != nil {
		return err
	}
	l := bert.MLM{Model: m, Masker: mk}
	nsp := ""
	if cfg.NSP {
		nsp = ", next-sentence prediction"
	}
	// Ctrl-C is caught from here on, before the "model:" line announces the
	// run: a signal while the data and trainer are set up (or a resume is
	// read) still ends the run cleanly, not with a kill.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(out, "model: BERT, %d layers, d %d, %d heads, d_ff %d, %d positions, %s, %.2fM parameters; masking %.0f%% (80/10/10)%s\n",
		cfg.NumHiddenLayers, cfg.HiddenSize, cfg.NumAttentionHeads, cfg.IntermediateSize, cfg.MaxPositionEmbeddings, cfg.HiddenAct,
		float64(m.Store.NumElements())/1e6, 100*f.maskRate, nsp)
	T := cfg.MaxPositionEmbeddings
	tw, err := datasets.NewLMWindows(trainIDs, l.WindowTokens(T), 0)
	if err != nil {
		return errors.Wrapf(err, "training text (%s)", text.name)
	}
	vw, err := datasets.NewLMWindows(validIDs, l.WindowTokens(T), 0)
	if err != nil {
		return errors.Errorf("validation text: %d tokens are fewer than one example of max_position_embeddings %d: "+
			"give more text, a larger --valid-fraction or --valid FILE", len(validIDs), T)
	}
	data, err := l.NewPretrainData(tw, f.batch, f.accum, f.seed)
	if err != nil {
		return err
	}
	valid := l.Examples(vw, 0, f.seed+1)
	tr, err := newMLMTrainer(l, f)
	if err != nil {
		return err
	}
	defer tr.Close()
	done := 0
	hist := &lossHistory{}
	if f.resume {
		if done, err = train.Resume(tr, data, f.out); err != nil {
			return err
		}
		if hist, err = readHistory(last, done); err != nil {
			return err
		}
		fmt.Fprintf(out, "resumed at step %d from %s\n", done, last)
	}
	if err := rd.Save(); err != nil {
		return err
	}
	prog := newProgress(cmd.ErrOrStderr(), f.steps, done, f.logEvery)
	prog.stepTokens = int64(f.batch * f.accum * T)
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
		// The tokenizer (with BERT's specials) and the loss history are
		// part of each checkpoint, written before it is sealed.
		BeforeCheckpoint: func(dir string) error {
			if err := saveTokenizer(tok, dir); err != nil {
				return err
			}
			return hist.save(dir)
		},
	}
	sum, err := train.Run(ctx, tr, data, l.Evaluator(valid, f.batch, f.evalBatches), train.LoopConfig{
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
	// The loop counts a step's weight, BERT's targets; the model reads
	// every token of every example.
	tokens := int64(sum.Steps) * int64(f.batch*f.accum*T)
	fmt.Fprintf(out, "stopped (%s) at step %d: %d input tokens (%d MLM targets) in %s (%.0f tokens/s)\n",
		sum.Stopped, sum.Step, tokens, sum.Tokens, sum.Elapsed.Round(1e9), float64(tokens)/math.Max(sum.Elapsed.Seconds(), 1e-9))
	if sum.Evals > 0 {
		fmt.Fprintf(out, "best validation MLM loss %.4f (ppl %.2f) at step %d: %s\n",
			sum.BestMetric, expSafe(sum.BestMetric), sum.BestStep, filepath.Join(f.out, train.BestCheckpoint))
	}
	fmt.Fprintf(out, "last checkpoint: %s (continue with --resume); loss curve: %s\n", filepath.Join(f.out, train.LastCheckpoint), curve)
	if sum.Stopped == train.StoppedCancelled || sum.Evals == 0 || f.fill == "" {
		return nil
	}
	bestDir, err := train.CheckpointPath(f.out, train.BestCheckpoint)
	if err != nil {
		return err
	}
	best, err := bert.Load(bestDir)
	if err != nil {
		return err
	}
	return printFill(out, best, tok, sp, f.fill, 3)
}

// bertConfig is the model's configuration: the last checkpoint's when
// resuming, else the preset with --config, --dropout and --nsp over it
// (its vocabulary size and [PAD] are the tokenizer's, set later).
func bertConfig(f *mlmTrainFlags, last string) (bert.Config, error) {
	if last != "" {
		cfg, err := bert.ReadConfig(last)
		return cfg, errors.Wrap(err, "--resume")
	}
	cfg, err := bert.Preset(f.preset)
	if err != nil {
		return cfg, err
	}
	if f.config != "" {
		b, err := os.ReadFile(f.config)
		if err != nil {
			return cfg, err
		}
		if cfg, err = bert.ParseConfig(b, cfg); err != nil {
			return cfg, errors.Wrapf(err, "--config %s", f.config)
		}
	}
	if f.dropout >= 0 {
		cfg.HiddenDropoutProb, cfg.AttentionProbsDropoutProb = f.dropout, f.dropout
	}
	cfg.NSP = f.nsp
	return cfg, nil
}

// bertTokenizer is the run's tokenizer with BERT's special tokens: the last
// checkpoint's when resuming, else --tokenizer's, else a BPE trained on the
// training text (--merges, whose default is resolved and recorded).
func bertTokenizer(f *mlmTrainFlags, fs *pflag.FlagSet, cfg bert.Config, text corpus, last string) (*datasets.BPE, bert.Specials, error) {
	var tok *datasets.BPE
	dir, what := last, "--resume"
	if last == "" {
		dir, what = f.tokenizer, "--tokenizer "+f.tokenizer
	}
	if dir != "" {
		var ok bool
		var err error
		if tok, ok, err = loadTokenizer(dir); err == nil && !ok {
			err = errors.Errorf("%s: %s has no vocab.json+merges.txt or encoder.json+vocab.bpe", what, dir)
		}
		if err != nil {
			return nil, bert.Specials{}, err
		}
	} else {
		if f.merges < 0 {
			_ = fs.Set("merges", strconv.Itoa(max(0, cfg.VocabSize-256-4)))
		}
		var err error
		if tok, err = datasets.TrainBPE([]string{text.train}, datasets.BPEConfig{Merges: f.merges}); err != nil {
			return nil, bert.Specials{}, err
		}
	}
	sp, err := bert.AddSpecials(tok)
	return tok, sp, err
}

func newMLMTrainer(l bert.MLM, f *mlmTrainFlags) (*train.Trainer, error) {
	// BERT's optimiser: Adam with β₂ 0.999, ε 1e-6, decoupled weight decay
	// 0.01 (not on biases or LayerNorm), linear warm-up and decay.
	opt, err := train.NewAdamW(train.AdamConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, WeightDecay: f.weightDecay, DecayMatricesOnly: true})
	if err != nil {
		return nil, err
	}
	sched, err := train.NewWarmupDecay(f.lr, f.minLR, f.warmup, f.steps, train.Linear)
	if err != nil {
		return nil, err
	}
	return train.New(l, train.Config{Optimizer: opt, Schedule: sched, ClipNorm: f.clip, DropoutSeed: f.seed})
}

// encodeMasked tokenizes text in which "[MASK]" stands for one masked
// token: the parts between them are encoded, a part's trailing spaces
// dropped (the byte-level BPE puts a word's leading space in the word's
// own token, which is what the [MASK] stands for), and the result is
// [CLS] … [SEP].
func encodeMasked(tok *datasets.BPE, sp bert.Specials, text string) (bert.Sequence, error) {
	parts := strings.Split(text, bert.MASKToken)
	if len(parts) < 2 {
		return bert.Sequence{}, errors.Errorf("%q has no %s", text, bert.MASKToken)
	}
	var ids []int
	for i, p := range parts {
		if i < len(parts)-1 {
			p = strings.TrimRight(p, " ")
		}
		ids = append(ids, tok.Encode(p)...)
		if i < len(parts)-1 {
			ids = append(ids, sp.MASK)
		}
	}
	return sp.Single(ids, 0), nil
}

// printFill prints what the model fills into each [MASK] of text: the text
// with the most likely tokens, then the k best of each with probabilities.
func printFill(w interface{ Write([]byte) (int, error) }, m *bert.Model, tok *datasets.BPE, sp bert.Specials, text string, k int) error {
	seq, err := encodeMasked(tok, sp, text)
	if err != nil {
		return err
	}
	if len(seq.IDs) > m.Config.MaxPositionEmbeddings {
		return errors.Errorf("%q is %d tokens with [CLS] and [SEP], more than max_position_embeddings %d", text, len(seq.IDs), m.Config.MaxPositionEmbeddings)
	}
	cands, err := m.FillMask(seq, sp.MASK, k)
	if err != nil {
		return err
	}
	filled := append([]int(nil), seq.IDs[1:len(seq.IDs)-1]...)
	j := 0
	for i, id := range filled {
		if id == sp.MASK {
			filled[i] = cands[j][0].ID
			j++
		}
	}
	s, err := tok.Decode(filled)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "--- %s\n%s\n", text, s)
	for i, c := range cands {
		var alts []string
		for _, x := range c {
			t, _ := tok.Decode([]int{x.ID})
			alts = append(alts, fmt.Sprintf("%q %.3f", t, x.Prob))
		}
		fmt.Fprintf(w, "[MASK] %d: %s\n", i+1, strings.Join(alts, ", "))
	}
	return nil
}
