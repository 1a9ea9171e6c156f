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
	"strconv"
	"strings"
	"syscall"

	"github.com/pkg/errors"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/train"
	"github.com/seq2gpt/seq2gpt/transformer"
)

type mtTrainFlags struct {
	data                  dataFlags
	model                 modelFlags
	search                searchFlags
	arch, out, tokenizer  string
	bpe                   string
	merges, maxLen        int
	steps, maxTokens      int
	accum, warmup         int
	lr, minLR, clip       float64
	smoothing             float64
	evalEvery, patience   int
	evalSentences         int
	metric, schedule      string
	checkpointEvery       int
	logEvery, maxPrograms int
	resume, overwrite     bool
	seed                  uint64
}

func newTranslateCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "translate",
		Short: "Translation models (LSTM encoder–decoders with and without attention, the Transformer): train, evaluate, translate",
		Long: `Train and run translation models. The architectures (--arch):

  fixed        the LSTM encoder–decoder of Sutskever et al. (2014) and Cho et
               al. (2014): the encoder's last state c = h_m is the whole source
  attention    Bahdanau et al. (2015): a bidirectional encoder, and attention
               over every source word at each step (Luong's dot and general
               scores too)
  transformer  Vaswani et al. (2017): stacks of self-attention and feed-forward
               layers, no recurrence, as torch's nn.Transformer (--preset small,
               or base, the paper's; Adam β₂ 0.98 and --schedule noam as the
               paper trains it)

The data is the embedded English–German LibreOffice help corpus unless
--train/--valid/--test give files. Scores are BLEU and chrF as sacreBLEU
computes them by default, with their signatures.`,
	}
	c.AddCommand(newTranslateTrainCmd(), newTranslateEvalCmd(), newTranslateTranslateCmd())
	return c
}

func newTranslateTrainCmd() *cobra.Command {
	f := &mtTrainFlags{}
	c := &cobra.Command{
		Use:   "train",
		Short: "Train a translation model",
		Long: `Train a translation model with Adam, global-norm clipping and teacher forcing
(cross-entropy with label smoothing; padding gets no loss), on batches of
similar-length pairs padded to a few bucket lengths.

Data: the embedded en–de corpus (17,514 training and 1,051 validation pairs)
by default; --train and --valid name a TSV file of source<TAB>target lines
or, with --src-lang and --tgt-lang, the prefix of two line-aligned files
(--train data/train reads data/train.en and data/train.de). Without --valid
every 20th pair of --train is held out. Pairs with a side over --max-len
tokens are left out and counted; empty lines are skipped and counted
(--empty-lines error stops at the first instead).

Tokenizer: a byte-level BPE of --merges merges trained on the training
pairs, joint for both sides (--bpe joint) or one per side (--bpe separate),
unless --tokenizer names a directory with one.

Every --eval-every steps it measures the validation loss and the BLEU of
greedy translations of the first --eval-sentences validation sentences;
<out>/best is the checkpoint with the best --metric and <out>/last the
latest. Both are model directories (config.json, model.safetensors and the
tokenizer) that "translate eval" and "translate translate" read. <out>
remembers the run: --resume continues it with its own settings (only
--steps, --patience, --eval-every, --checkpoint-every and --log-every may
change, and --max-programs); to start over in it give --overwrite. Ctrl-C saves <out>/last.

The Transformer (--arch transformer) starts from --preset: small (2+2
layers, d_model 128, 4 heads, d_ff 512) or base, the paper's (6+6, 512, 8,
2048, dropout 0.1, one shared source and target embedding that is also the
output projection); each of --layers, --encoder-layers, --decoder-layers,
--d-model, --heads, --d-ff, --max-positions, --activation, --positions,
--norm-first, --share-embeddings, --tie-embeddings and --dropout given
overrides it, and run.json records what they resolved to. It trains with
Adam (β₁ 0.9, β₂ 0.98, ε 1e-9) as the paper does; --schedule noam is the
paper's rate, d_model^−½ · min(step^−½, step · warmup^−3/2) with --warmup
steps, whose peak at step --warmup is --lr when given (fairseq's
inverse_sqrt), (d_model · warmup)^−½ when not.`,
		Example: `  # README's comparison: the two architectures at one size and budget (an hour or more on 2 cores)
  seq2gpt translate train --arch fixed --embed 64 --hidden 128 --merges 2000 --max-len 40 --max-tokens 1600 --lr 2e-3 --dropout 0.1 --steps 2000 --eval-every 500 --eval-sentences 300 --max-programs 10 --out runs/fixed
  seq2gpt translate train --arch attention --embed 64 --hidden 128 --merges 2000 --max-len 40 --max-tokens 1600 --lr 2e-3 --dropout 0.1 --steps 2000 --eval-every 500 --eval-sentences 300 --max-programs 10 --out runs/attention

  # the Transformer: the Small preset at the LSTMs' budget, Adam β₂ 0.98 and the Noam warm-up to a peak of 2.2e-3
  seq2gpt translate train --arch transformer --preset small --merges 2000 --max-len 40 --max-tokens 1600 --schedule noam --warmup 400 --lr 2.2e-3 --steps 2000 --eval-every 500 --eval-sentences 300 --max-programs 10 --out runs/transformer
  # the paper's base model and its learning rate d_model^−½ · min(step^−½, step · 4000^−3/2)
  seq2gpt translate train --arch transformer --preset base --merges 8000 --schedule noam --warmup 4000 --steps 100000 --out runs/base
  # a size between: the preset's other settings, these overridden
  seq2gpt translate train --arch transformer --preset small --layers 3 --d-model 256 --heads 8 --d-ff 1024 --schedule noam --warmup 1000 --out runs/t3

  # your own data: data/train.fr, data/train.en, data/valid.fr, data/valid.en
  seq2gpt translate train --arch attention --train data/train --valid data/valid \
      --src-lang fr --tgt-lang en --bpe separate --merges 8000 --out runs/fr-en
  seq2gpt translate train --out runs/fr-en --resume --steps 20000   # continue, and extend`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runTranslateTrain(cmd, f) },
	}
	fs := c.Flags()
	addDataFlags(fs, &f.data, true)
	fs.StringVar(&f.arch, "arch", "attention", "architecture: "+strings.Join(archNames(), ", "))
	addModelFlags(fs, &f.model)
	fs.StringVar(&f.out, "out", "", "run directory: run.json, checkpoints best and last, the tokenizer, the loss curve (required)")
	fs.StringVar(&f.tokenizer, "tokenizer", "", "directory with a tokenizer (vocab.json + merges.txt, or src./tgt. ones); default: train one")
	fs.StringVar(&f.bpe, "bpe", "joint", "train a joint BPE for both sides, or a separate one per side")
	fs.IntVar(&f.merges, "merges", 4000, "BPE merges to learn (per tokenizer)")
	fs.IntVar(&f.maxLen, "max-len", 64, "leave out pairs with a side of more tokens than this (end token included)")
	fs.IntVar(&f.steps, "steps", 3000, "optimizer steps in total (a resumed run counts its earlier steps)")
	fs.IntVar(&f.maxTokens, "max-tokens", 2000, "tokens per batch: rows × (longest source + longest target), padding included")
	fs.IntVar(&f.accum, "accum", 1, "batches accumulated per step")
	fs.StringVar(&f.schedule, "schedule", "warmup", "learning rate: warmup (a linear warm-up to --lr, then constant, or a cosine decay to --min-lr) or noam (the paper's: a linear warm-up to --lr at step --warmup, then ∝ step^−½, as fairseq's inverse_sqrt)")
	fs.Float64Var(&f.lr, "lr", 1e-3, "Adam's learning rate after the warm-up; with --schedule noam its peak (transformer: default the paper's, (d_model · warmup)^−½)")
	fs.Float64Var(&f.minLR, "min-lr", -1, "cosine decay to this rate at --steps (default: none, the rate stays --lr)")
	fs.IntVar(&f.warmup, "warmup", 0, "linear warm-up steps (at least 1 with --schedule noam)")
	fs.Float64Var(&f.clip, "clip", 1, "global gradient-norm clipping (0: off)")
	fs.Float64Var(&f.smoothing, "label-smoothing", 0.1, "label smoothing ε of the training loss")
	fs.IntVar(&f.evalEvery, "eval-every", 500, "evaluate every N steps")
	fs.IntVar(&f.evalSentences, "eval-sentences", 500, "validation sentences translated (greedily) for BLEU at each evaluation (0: loss only)")
	fs.StringVar(&f.metric, "metric", "bleu", "pick the best checkpoint and stop early by: bleu (higher is better) or loss")
	fs.IntVar(&f.patience, "patience", 0, "stop after N evaluations without improvement (0: never)")
	fs.IntVar(&f.checkpointEvery, "checkpoint-every", 500, "save <out>/last every N steps")
	fs.IntVar(&f.logEvery, "log-every", 100, "when not on a terminal, log a line every N steps")
	fs.IntVar(&f.maxPrograms, "max-programs", 10, "compiled graphs kept (one per batch shape and mode; each holds its activations — about 0.35 GB for an LSTM of 128 at 1,600-token batches, so 64 grew past 11 GB — fewer use less memory and rebuild more)")
	fs.BoolVar(&f.resume, "resume", false, "continue the run in --out from its last checkpoint, with its saved settings")
	fs.BoolVar(&f.overwrite, "overwrite", false, "replace the run in --out (its run.json, checkpoints, tokenizer and loss curve)")
	fs.Uint64Var(&f.seed, "seed", 1, "seed for weights, data order and dropout")
	f.search = searchFlags{beam: 1, nbest: 1, batch: 64, maxLenA: 1.5, maxLenB: 10, lenpen: 1}
	_ = c.MarkFlagRequired("out")
	return c
}

// addDataFlags registers --train/--valid (training) or --test, and the
// language and empty-line flags.
func addDataFlags(fs *pflag.FlagSet, d *dataFlags, training bool) {
	if training {
		fs.StringVar(&d.train, "train", "", "training pairs: a TSV file, or with --src-lang/--tgt-lang a prefix of two aligned files (default: the embedded en–de corpus)")
		fs.StringVar(&d.valid, "valid", "", "validation pairs, as --train (default: every 20th pair of --train, or the embedded corpus's)")
	} else {
		fs.StringVar(&d.test, "test", "", "test pairs: a TSV file, or with --src-lang/--tgt-lang a prefix of two aligned files (default: the embedded en–de test split)")
	}
	fs.StringVar(&d.srcLang, "src-lang", "", "source language suffix of aligned files (PATH.SRC)")
	fs.StringVar(&d.tgtLang, "tgt-lang", "", "target language suffix of aligned files (PATH.TGT)")
	fs.StringVar(&d.emptyLines, "empty-lines", "skip", "pairs with an empty side: skip (and count) or error")
}

// translateRemembered are the flags of translate train that a resumed run
// takes from its run file but lets change; every other flag but --out,
// --resume and --overwrite defines the run (a resumed run keeps it).
var translateRemembered = []string{"steps", "eval-every", "patience", "checkpoint-every", "log-every", "max-programs"}

// translateDefining are the flags that define a run of translate train:
// all of them but the remembered ones and the run directory's own.
func translateDefining(fs *pflag.FlagSet) []string { return definingFlags(fs, translateRemembered) }

// checkTranslateFlags refuses values outside each flag's range before any
// work (only the flags given: defaults are trusted).
func checkTranslateFlags(fs *pflag.FlagSet, f *mtTrainFlags) error {
	c := NewFlagChecks(fs)
	for _, name := range []string{"steps", "max-tokens", "accum", "max-programs", "layers", "embed", "hidden",
		"encoder-layers", "decoder-layers", "d-model", "heads", "d-ff"} {
		c.Check(name, AtLeast(1))
	}
	for _, name := range []string{"merges", "warmup", "eval-every", "eval-sentences", "patience", "checkpoint-every", "log-every", "attention-dim"} {
		c.Check(name, AtLeast(0))
	}
	c.Check("max-len", Range{Min: 2, Max: 1024, Integer: true})
	c.Check("max-positions", AtLeast(2))
	c.Check("lr", Positive)
	c.Check("min-lr", NonNegative)
	c.Check("clip", NonNegative)
	c.Check("label-smoothing", Range{Min: 0, Max: 1, MaxOpen: true})
	c.Check("dropout", Dropout)
	oneOf := func(name, value string, allowed ...string) {
		for _, a := range allowed {
			if value == a {
				return
			}
		}
		want := allowed[len(allowed)-1]
		if len(allowed) > 1 {
			want = strings.Join(allowed[:len(allowed)-1], ", ") + " or " + want
		}
		c.Add(name, fmt.Sprintf("%q", value), want)
	}
	oneOf("arch", f.arch, archNames()...)
	oneOf("bpe", f.bpe, "joint", "separate")
	oneOf("metric", f.metric, "bleu", "loss")
	oneOf("score", f.model.score, "additive", "dot", "general")
	oneOf("schedule", f.schedule, "warmup", "noam")
	oneOf("preset", f.model.preset, transformerPresets...)
	if f.model.activation != "" {
		oneOf("activation", f.model.activation, "relu", "gelu")
	}
	if f.model.positions != "" {
		oneOf("positions", f.model.positions, transformer.Sinusoidal, transformer.Learned)
	}
	oneOf("empty-lines", f.data.emptyLines, "skip", "error")
	return c.Err()
}

// checkTranslateCombination refuses flags that do not fit together (once
// a resumed run's values are in).
func checkTranslateCombination(f *mtTrainFlags) error {
	switch {
	case f.maxTokens < 2*f.maxLen:
		return &FlagError{Flag: "max-tokens", Value: strconv.Itoa(f.maxTokens),
			Want: fmt.Sprintf("an integer ≥ 2 × --max-len (%d), so that the longest pair fits a batch", 2*f.maxLen)}
	case f.warmup >= f.steps:
		return &FlagError{Flag: "warmup", Value: strconv.Itoa(f.warmup), Want: fmt.Sprintf("an integer < --steps %d", f.steps)}
	case f.schedule == "noam" && f.warmup < 1:
		return &FlagError{Flag: "warmup", Value: strconv.Itoa(f.warmup), Want: "an integer ≥ 1 with --schedule noam"}
	case f.schedule == "noam" && f.minLR >= 0:
		return &FlagError{Flag: "min-lr", Value: num(f.minLR), Want: "none with --schedule noam, which decays as step^−½"}
	case f.minLR > f.lr:
		return &FlagError{Flag: "min-lr", Value: num(f.minLR), Want: fmt.Sprintf("at most --lr %s", num(f.lr))}
	case f.metric == "bleu" && f.evalSentences == 0:
		return &FlagError{Flag: "eval-sentences", Value: "0", Want: "an integer ≥ 1 with --metric bleu (or --metric loss)"}
	}
	return f.data.checkLangs()
}

// pairsFact is what a run records about its data, so that a resumed run
// is refused when the data changed.
type pairsFact struct {
	Train, Valid             string
	TrainPairs, ValidPairs   int
	TrainSHA256, ValidSHA256 string
}

func pairsHash(pairs []datasets.Pair) string {
	h := sha256.New()
	for _, p := range pairs {
		fmt.Fprintf(h, "%s\t%s\n", p.Source, p.Target)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func runTranslateTrain(cmd *cobra.Command, f *mtTrainFlags) error {
	fs := cmd.Flags()
	out := cmd.OutOrStdout()
	if err := checkTranslateFlags(fs, f); err != nil {
		return err
	}
	rd, err := OpenRunDir(fs, RunDirOptions{Command: "translate train", Dir: f.out, Resume: f.resume, Overwrite: f.overwrite,
		Defining: translateDefining(fs), Remembered: translateRemembered,
		Files: append(DefaultRunFiles(), tokenizerNamesAll()...)})
	if err != nil {
		return err
	}
	rd.PrintNotes(out)
	a, _ := findArch(f.arch)
	if a.Resolve != nil {
		if err := a.Resolve(fs, f); err != nil {
			return err
		}
	}
	if err := checkTranslateCombination(f); err != nil {
		return err
	}
	trSplit, vaSplit, err := f.data.trainValid()
	if err != nil {
		return err
	}
	if err := rd.Fact("data", pairsFact{Train: trSplit.name, Valid: vaSplit.name, TrainPairs: len(trSplit.pairs), ValidPairs: len(vaSplit.pairs),
		TrainSHA256: pairsHash(trSplit.pairs), ValidSHA256: pairsHash(vaSplit.pairs)}); err != nil {
		return err
	}
	trSplit.report(out, "train")
	vaSplit.report(out, "valid")

	tok, err := f.tokenizers(out, trSplit.pairs)
	if err != nil {
		return err
	}
	if err := rd.Fact("tokenizer", map[string]string{"src": tokenizerHash(tok.src), "tgt": tokenizerHash(tok.tgt)}); err != nil {
		return err
	}
	trainEnc, trRep := tok.encode(trSplit.pairs, f.maxLen, true)
	validEnc, vaRep := tok.encode(vaSplit.pairs, f.maxLen, true)
	fmt.Fprintf(out, "kept %d training and %d validation pairs; left out %d and %d with a side over %d tokens, %d and %d that encode to no tokens\n",
		trRep.Kept, vaRep.Kept, trRep.DroppedLong, vaRep.DroppedLong, f.maxLen, trRep.DroppedShort, vaRep.DroppedShort)
	if trRep.Kept == 0 || vaRep.Kept == 0 {
		return errors.Errorf("no pairs left to train or validate on with --max-len %d", f.maxLen)
	}

	m, err := a.New(f.arch, &f.model, tok.vocabs(), f.seed)
	if err != nil {
		return err
	}
	m.SetLabelSmoothing(f.smoothing)
	if err := rd.Fact("model", m.Config()); err != nil {
		return err
	}
	// Ctrl-C is caught from here on, before the "model:" line announces the
	// run: a signal while the data and trainer are set up (or a resume is
	// read) still ends the run cleanly, not with a kill.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(out, "model: %s\n", m.Describe())

	trainB, err := f.batcher(m, trainEnc, tok, true)
	if err != nil {
		return err
	}
	validB, err := f.batcher(m, validEnc, tok, false)
	if err != nil {
		return err
	}
	data, err := m.NewData(trainB, f.accum)
	if err != nil {
		return err
	}
	tr, err := f.trainer(m, a.Adam, out)
	if err != nil {
		return err
	}
	defer tr.Close()
	done := 0
	hist := &lossHistory{}
	if f.resume {
		last, err := train.CheckpointPath(f.out, train.LastCheckpoint)
		if err != nil {
			return errors.Wrap(err, "--resume")
		}
		if done, hist, err = resumeTraining(out, tr, data, f.out, last); err != nil {
			return err
		}
	}
	hist.Title = "translation: " + f.arch
	if err := rd.Save(); err != nil {
		return err
	}
	if err := tok.save(f.out); err != nil {
		return err
	}

	n := min(f.evalSentences, len(validEnc.src))
	ev := &evaluator{m: m, tok: tok, valid: validB, sources: validEnc.src[:n], refs: validEnc.refs[:n], search: f.search, sentences: n}
	defer ev.close()
	prog := newProgress(cmd.ErrOrStderr(), f.steps, done, f.logEvery)
	curve := filepath.Join(f.out, "loss.png")
	hooks := train.Hooks{
		OnStep: func(s train.StepInfo) { hist.step(s); prog.step(s) },
		OnEval: func(e train.EvalInfo) {
			hist.eval(e)
			prog.line(evalLine(e))
			_ = lossCurve(curve, hist)
		},
		// The tokenizers and the loss history are part of each checkpoint,
		// written before it is sealed and swapped into place.
		BeforeCheckpoint: func(dir string) error {
			if err := tok.save(dir); err != nil {
				return err
			}
			return hist.save(dir)
		},
	}
	sum, err := train.Run(ctx, tr, data, ev.evaluate, train.LoopConfig{
		Steps: f.steps, EvalEvery: f.evalEvery, Metric: f.metric, HigherIsBetter: f.metric == "bleu", Patience: f.patience,
		CheckpointDir: f.out, CheckpointEvery: f.checkpointEvery, Config: m.Config(),
	}, hooks)
	prog.finish()
	if err != nil {
		return err
	}
	if err := lossCurve(curve, hist); err != nil {
		return err
	}
	fmt.Fprintf(out, "stopped (%s) at step %d: %d target tokens in %s (%.0f tokens/s)\n",
		sum.Stopped, sum.Step, sum.Tokens, sum.Elapsed.Round(1e9), sum.TokensPerSec)
	if sum.Evals > 0 {
		fmt.Fprintf(out, "best validation %s %.4g at step %d: %s\n", f.metric, sum.BestMetric, sum.BestStep, filepath.Join(f.out, train.BestCheckpoint))
	}
	fmt.Fprintf(out, "last checkpoint: %s (continue with --resume); loss curve: %s\n", filepath.Join(f.out, train.LastCheckpoint), curve)
	if len(ev.lastHyps) > 0 && sum.Stopped != train.StoppedCancelled {
		fmt.Fprintf(out, "a validation sentence, greedily at step %d:\n  %s\n→ %s\n  (reference: %s)\n", sum.Step, validEnc.sources[0], ev.lastHyps[0], validEnc.refs[0])
	}
	return nil
}

// evalLine is an evaluation's line for the progress output.
func evalLine(e train.EvalInfo) string {
	best := ""
	if e.Best {
		best = "  (best)"
	}
	line := fmt.Sprintf("eval step %d  valid loss %.4f  ppl %.2f", e.Step, e.Metrics["loss"], e.Metrics["ppl"])
	if b, ok := e.Metrics["bleu"]; ok {
		line += fmt.Sprintf("  BLEU %.2f  chrF %.2f", b, e.Metrics["chrf"])
	}
	return line + best
}

// tokenizers settles the run's tokenizers: the run's own when resuming,
// --tokenizer's, or trained on the training pairs.
func (f *mtTrainFlags) tokenizers(out io.Writer, pairs []datasets.Pair) (mtTokenizers, error) {
	if f.resume {
		return loadTokenizers(f.out)
	}
	if f.tokenizer != "" {
		tok, err := loadTokenizers(f.tokenizer)
		return tok, errors.Wrap(err, "--tokenizer")
	}
	tok, err := trainTokenizers(pairs, f.merges, f.bpe == "joint")
	if err != nil {
		return tok, err
	}
	if tok.joint() {
		fmt.Fprintf(out, "tokenizer: joint byte-level BPE, %d merges, vocabulary %d\n", tok.src.NumMerges(), tok.src.VocabSize())
	} else {
		fmt.Fprintf(out, "tokenizers: byte-level BPE per side, %d and %d merges, vocabularies %d and %d\n",
			tok.src.NumMerges(), tok.tgt.NumMerges(), tok.src.VocabSize(), tok.tgt.VocabSize())
	}
	return tok, nil
}

// batcher groups encoded pairs into length-bucketed batches of
// --max-tokens.
func (f *mtTrainFlags) batcher(m mtModel, e encoded, tok mtTokenizers, shuffle bool) (*datasets.Batcher, error) {
	src, tgt := make([][]int, len(e.src)), make([][]int, len(e.src))
	for i := range e.src {
		src[i], tgt[i] = m.Source(e.src[i]), m.Target(e.tgt[i])
	}
	buckets, err := mtBuckets(f.maxLen)
	if err != nil {
		return nil, err
	}
	return datasets.NewBatcher(src, tgt, datasets.BatchConfig{MaxTokens: f.maxTokens, Buckets: buckets,
		Pad: tok.vocabs().Pad, Seed: f.seed, Shuffle: shuffle})
}

// mtBuckets are the batch lengths: coarse, since source and target buckets
// multiply into programs (8, 16, 24, 32, then steps of 16 up to maxLen).
func mtBuckets(maxLen int) (datasets.Buckets, error) {
	var edges []int
	for e := 8; e < maxLen; {
		edges = append(edges, e)
		if e < 32 {
			e += 8
		} else {
			e += 16
		}
	}
	return datasets.NewBuckets(append(edges, maxLen)...)
}

// trainer is Adam of the architecture's configuration on the schedule of
// the flags; it prints both.
func (f *mtTrainFlags) trainer(m mtModel, adam train.AdamConfig, out io.Writer) (*train.Trainer, error) {
	opt, err := train.NewAdam(adam)
	if err != nil {
		return nil, err
	}
	sched, line, err := f.lrSchedule()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "training: Adam (β₁ %s, β₂ %s, ε %s), %s\n", num(adam.Beta1), num(adam.Beta2), num(adam.Eps), line)
	return train.New(m, train.Config{Optimizer: opt, Schedule: sched, ClipNorm: f.clip, DropoutSeed: f.seed, MaxPrograms: f.maxPrograms})
}

// lrSchedule is the learning rate of --schedule, and a line that says it.
func (f *mtTrainFlags) lrSchedule() (train.Schedule, string, error) {
	if f.schedule == "noam" {
		// Noam of d_model 1 and factor lr·√warmup is the paper's shape
		// with its peak, at step warmup, at lr.
		s, err := train.NewNoam(1, f.warmup, f.lr*math.Sqrt(float64(f.warmup)))
		return s, fmt.Sprintf("Noam schedule: linear warm-up over %d steps to %s, then ∝ step^−½", f.warmup, num(f.lr)), err
	}
	minLR := f.minLR
	if minLR < 0 {
		minLR = f.lr
	}
	s, err := train.NewWarmupDecay(f.lr, minLR, f.warmup, f.steps, train.Cosine)
	line := fmt.Sprintf("learning rate %s", num(f.lr))
	if f.warmup > 0 {
		line = fmt.Sprintf("linear warm-up over %d steps to %s", f.warmup, num(f.lr))
	}
	if minLR < f.lr {
		line += fmt.Sprintf(", then a cosine decay to %s at step %d", num(minLR), f.steps)
	}
	return s, line, err
}
