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
	"github.com/seq2gpt/seq2gpt/internal/atomicfile"
	"github.com/seq2gpt/seq2gpt/train"
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
	metric                string
	checkpointEvery       int
	logEvery, maxPrograms int
	resume, overwrite     bool
	seed                  uint64
}

func newTranslateCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "translate",
		Short: "Translation models (LSTM encoder–decoders, with and without attention): train, evaluate, translate",
		Long: `Train and run translation models. The architectures (--arch):

  fixed      the LSTM encoder–decoder of Sutskever et al. (2014) and Cho et al.
             (2014): the encoder's last state c = h_m is the whole source
  attention  Bahdanau et al. (2015): a bidirectional encoder, and attention over
             every source word at each step (Luong's dot and general scores too)

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
change); to start over in it give --overwrite. Ctrl-C saves <out>/last.`,
		Example: `  # attention on the embedded en–de corpus (tens of minutes on 2 cores)
  seq2gpt translate train --arch attention --out runs/att --steps 3000

  # the fixed-context model at the same size, for comparison
  seq2gpt translate train --arch fixed --out runs/fixed --steps 3000

  # your own data: data/train.fr, data/train.en, data/valid.fr, data/valid.en
  seq2gpt translate train --arch attention --train data/train --valid data/valid \
      --src-lang fr --tgt-lang en --bpe separate --merges 8000 --out runs/fr-en
  seq2gpt translate train --out runs/fr-en --steps 20000 --resume`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runTranslateTrain(cmd, f) },
	}
	fs := c.Flags()
	addDataFlags(fs, &f.data, true)
	fs.StringVar(&f.arch, "arch", "attention", "architecture: "+strings.Join(archNames(), ", "))
	addModelFlags(fs, &f.model)
	fs.StringVar(&f.out, "out", "", "run directory: checkpoints best and last, the tokenizer, run.json (required)")
	fs.StringVar(&f.tokenizer, "tokenizer", "", "directory with a tokenizer (vocab.json + merges.txt, or src./tgt. ones); default: train one")
	fs.StringVar(&f.bpe, "bpe", "joint", "train a joint BPE for both sides, or a separate one per side")
	fs.IntVar(&f.merges, "merges", 4000, "BPE merges to learn (per tokenizer)")
	fs.IntVar(&f.maxLen, "max-len", 64, "leave out pairs with a side of more tokens than this (end token included)")
	fs.IntVar(&f.steps, "steps", 3000, "optimizer steps in total (a resumed run counts its earlier steps)")
	fs.IntVar(&f.maxTokens, "max-tokens", 2000, "tokens per batch: rows × (longest source + longest target), padding included")
	fs.IntVar(&f.accum, "accum", 1, "batches accumulated per step")
	fs.Float64Var(&f.lr, "lr", 1e-3, "Adam's learning rate (after the warm-up)")
	fs.Float64Var(&f.minLR, "min-lr", -1, "cosine decay to this rate at --steps (default: none, the rate stays --lr)")
	fs.IntVar(&f.warmup, "warmup", 0, "linear warm-up steps")
	fs.Float64Var(&f.clip, "clip", 1, "global gradient-norm clipping (0: off)")
	fs.Float64Var(&f.smoothing, "label-smoothing", 0.1, "label smoothing ε of the training loss")
	fs.IntVar(&f.evalEvery, "eval-every", 500, "evaluate every N steps")
	fs.IntVar(&f.evalSentences, "eval-sentences", 500, "validation sentences translated (greedily) for BLEU at each evaluation (0: loss only)")
	fs.StringVar(&f.metric, "metric", "bleu", "pick the best checkpoint and stop early by: bleu (higher is better) or loss")
	fs.IntVar(&f.patience, "patience", 0, "stop after N evaluations without improvement (0: never)")
	fs.IntVar(&f.checkpointEvery, "checkpoint-every", 500, "save <out>/last every N steps")
	fs.IntVar(&f.logEvery, "log-every", 100, "when not on a terminal, log a line every N steps")
	fs.IntVar(&f.maxPrograms, "max-programs", 64, "compiled graphs kept (one per batch shape and mode; each holds its activations, so fewer use less memory and rebuild more)")
	fs.BoolVar(&f.resume, "resume", false, "continue the run in --out from <out>/last, with its settings")
	fs.BoolVar(&f.overwrite, "overwrite", false, "start a new run in --out, deleting the run there")
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

// runFile is the run's memory in its directory.
const runFile = "run.json"

// runRecord is run.json: the command's settings, and what the data was,
// so that --resume continues with exactly them.
type runRecord struct {
	Command    string            `json:"command"`
	Flags      map[string]string `json:"flags"`
	Train      string            `json:"train"`
	TrainPairs int               `json:"train_pairs"`
	Valid      string            `json:"valid"`
	ValidPairs int               `json:"valid_pairs"`
}

// resumable are the flags a resumed run may change.
var resumable = map[string]bool{"steps": true, "patience": true, "eval-every": true, "checkpoint-every": true, "log-every": true, "max-programs": true}

// notRecorded are the flags run.json leaves out.
var notRecorded = map[string]bool{"resume": true, "overwrite": true, "out": true}

func (f *mtTrainFlags) check() error {
	checks := []struct {
		bad  bool
		msg  string
		args []any
	}{
		{f.steps < 1, "--steps %d: want at least 1", []any{f.steps}},
		{f.maxLen < 2 || f.maxLen > 1024, "--max-len %d: want 2 to 1024", []any{f.maxLen}},
		{f.maxTokens < 2*f.maxLen, "--max-tokens %d: want at least 2 × --max-len (%d), so that the longest pair fits a batch", []any{f.maxTokens, 2 * f.maxLen}},
		{f.accum < 1, "--accum %d: want at least 1", []any{f.accum}},
		{!(f.lr > 0) || math.IsInf(f.lr, 0), "--lr %v: want a positive rate", []any{f.lr}},
		{f.minLR > f.lr, "--min-lr %v: want at most --lr %v", []any{f.minLR, f.lr}},
		{f.warmup < 0 || f.warmup >= f.steps, "--warmup %d: want 0 to --steps − 1 (%d)", []any{f.warmup, f.steps - 1}},
		{!(f.clip >= 0), "--clip %v: want ≥ 0 (0: off)", []any{f.clip}},
		{!(f.smoothing >= 0 && f.smoothing < 1), "--label-smoothing %v: want 0 ≤ ε < 1", []any{f.smoothing}},
		{f.evalEvery < 0, "--eval-every %d: want ≥ 0 (0: only at the end)", []any{f.evalEvery}},
		{f.evalSentences < 0, "--eval-sentences %d: want ≥ 0", []any{f.evalSentences}},
		{f.patience < 0, "--patience %d: want ≥ 0 (0: never stop early)", []any{f.patience}},
		{f.checkpointEvery < 0, "--checkpoint-every %d: want ≥ 0", []any{f.checkpointEvery}},
		{f.merges < 0, "--merges %d: want ≥ 0", []any{f.merges}},
		{f.maxPrograms < 1, "--max-programs %d: want at least 1", []any{f.maxPrograms}},
		{f.bpe != "joint" && f.bpe != "separate", "--bpe %q: want joint or separate", []any{f.bpe}},
		{f.metric != "bleu" && f.metric != "loss", "--metric %q: want bleu or loss", []any{f.metric}},
		{f.metric == "bleu" && f.evalSentences == 0, "--metric bleu needs --eval-sentences > 0", nil},
		{f.model.layers < 1, "--layers %d: want at least 1", []any{f.model.layers}},
		{f.model.embed < 1, "--embed %d: want at least 1", []any{f.model.embed}},
		{f.model.hidden < 1, "--hidden %d: want at least 1", []any{f.model.hidden}},
		{f.model.attnDim < 0, "--attention-dim %d: want ≥ 0 (0: --hidden)", []any{f.model.attnDim}},
		{!(f.model.dropout >= 0 && f.model.dropout < 1), "--dropout %v: want 0 ≤ p < 1", []any{f.model.dropout}},
		{f.overwrite && f.resume, "--resume continues the run in --out and --overwrite deletes it: give one", nil},
	}
	for _, c := range checks {
		if c.bad {
			return errors.Errorf(c.msg, c.args...)
		}
	}
	if _, err := findArch(f.arch); err != nil {
		return err
	}
	if f.model.score != "additive" && f.model.score != "dot" && f.model.score != "general" {
		return errors.Errorf("--score %q: want additive, dot or general", f.model.score)
	}
	return nil
}

// settle reads, checks or writes the run's memory: a new run refuses a
// directory that holds one (unless --overwrite, which deletes it); a
// resumed one takes its settings from run.json, refusing changed flags
// other than the resumable ones.
func (f *mtTrainFlags) settle(fs *pflag.FlagSet) error {
	path := filepath.Join(f.out, runFile)
	b, err := os.ReadFile(path)
	exists := err == nil
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	if !f.resume {
		if exists && !f.overwrite {
			return errors.Errorf("--out %s holds a run (%s): continue it with --resume, or start over with --overwrite", f.out, path)
		}
		if !exists {
			if _, err := os.Stat(filepath.Join(f.out, train.LastCheckpoint)); err == nil && !f.overwrite {
				return errors.Errorf("--out %s holds checkpoints but no %s: give another --out, or --overwrite", f.out, runFile)
			}
		}
		if f.overwrite {
			for _, name := range []string{runFile, train.BestCheckpoint, train.LastCheckpoint, "." + train.BestCheckpoint + ".old", "." + train.LastCheckpoint + ".old",
				"." + train.BestCheckpoint + ".new", "." + train.LastCheckpoint + ".new", "loss.png"} {
				if err := os.RemoveAll(filepath.Join(f.out, name)); err != nil {
					return err
				}
			}
		}
		return f.check()
	}
	if !exists {
		return errors.Errorf("--resume: %s has no %s (no run to continue; start one without --resume)", f.out, runFile)
	}
	var rec runRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return errors.Wrapf(err, "--resume: %s", path)
	}
	var problems []string
	fs.VisitAll(func(fl *pflag.Flag) {
		if notRecorded[fl.Name] {
			return
		}
		old, ok := rec.Flags[fl.Name]
		switch {
		case !ok:
		case fl.Changed && resumable[fl.Name]:
		case fl.Changed && fl.Value.String() != old:
			problems = append(problems, fmt.Sprintf("--%s %s (the run has %s)", fl.Name, fl.Value.String(), old))
		default:
			if err := fl.Value.Set(old); err != nil {
				problems = append(problems, fmt.Sprintf("--%s: %s's value %q: %v", fl.Name, path, old, err))
			}
		}
	})
	if len(problems) > 0 {
		sort.Strings(problems)
		return errors.Errorf("--resume: a resumed run keeps its settings; only --%s may change, but got %s",
			strings.Join(sortedKeys(resumable), ", --"), strings.Join(problems, ", "))
	}
	return f.check()
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (f *mtTrainFlags) record(fs *pflag.FlagSet, tr, va split) error {
	rec := runRecord{Command: "translate train", Flags: map[string]string{}, Train: tr.name, TrainPairs: len(tr.pairs), Valid: va.name, ValidPairs: len(va.pairs)}
	fs.VisitAll(func(fl *pflag.Flag) {
		if !notRecorded[fl.Name] {
			rec.Flags[fl.Name] = fl.Value.String()
		}
	})
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(f.out, runFile), append(b, '\n'))
}

func runTranslateTrain(cmd *cobra.Command, f *mtTrainFlags) error {
	out := cmd.OutOrStdout()
	if err := f.settle(cmd.Flags()); err != nil {
		return err
	}
	trSplit, vaSplit, err := f.data.trainValid()
	if err != nil {
		return err
	}
	if f.resume {
		var rec runRecord
		b, _ := os.ReadFile(filepath.Join(f.out, runFile))
		_ = json.Unmarshal(b, &rec)
		if rec.TrainPairs != len(trSplit.pairs) || rec.ValidPairs != len(vaSplit.pairs) {
			return errors.Errorf("--resume: the data changed since the run started: %d training and %d validation pairs then, %d and %d now",
				rec.TrainPairs, rec.ValidPairs, len(trSplit.pairs), len(vaSplit.pairs))
		}
	}
	trSplit.report(out, "train")
	vaSplit.report(out, "valid")

	tok, err := f.tokenizers(out, trSplit.pairs)
	if err != nil {
		return err
	}
	trainEnc, trRep := tok.encode(trSplit.pairs, f.maxLen, true)
	validEnc, vaRep := tok.encode(vaSplit.pairs, f.maxLen, true)
	fmt.Fprintf(out, "kept %d training and %d validation pairs; left out %d and %d with a side over %d tokens, %d and %d that encode to no tokens\n",
		trRep.Kept, vaRep.Kept, trRep.DroppedLong, vaRep.DroppedLong, f.maxLen, trRep.DroppedShort, vaRep.DroppedShort)
	if trRep.Kept == 0 || vaRep.Kept == 0 {
		return errors.Errorf("no pairs left to train or validate on with --max-len %d", f.maxLen)
	}

	a, _ := findArch(f.arch)
	m, err := a.New(f.arch, &f.model, tok.vocabs(), f.seed)
	if err != nil {
		return err
	}
	m.SetLabelSmoothing(f.smoothing)
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
	tr, err := f.trainer(m)
	if err != nil {
		return err
	}
	defer tr.Close()
	if err := os.MkdirAll(f.out, 0o755); err != nil {
		return err
	}
	done := 0
	if f.resume {
		if done, err = train.Resume(tr, data, f.out); err != nil {
			return err
		}
		fmt.Fprintf(out, "resumed at step %d from %s\n", done, filepath.Join(f.out, train.LastCheckpoint))
	} else {
		if err := f.record(cmd.Flags(), trSplit, vaSplit); err != nil {
			return err
		}
	}
	if err := tok.save(f.out); err != nil {
		return err
	}

	n := min(f.evalSentences, len(validEnc.src))
	ev := &evaluator{m: m, tok: tok, valid: validB, sources: validEnc.src[:n], refs: validEnc.refs[:n], search: f.search, sentences: n}
	defer ev.close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	prog := newProgress(f.steps, done, f.logEvery)
	var losses []float64
	var evals []train.EvalInfo
	curve := filepath.Join(f.out, "loss.png")
	hooks := train.Hooks{
		OnStep: func(s train.StepInfo) { losses = append(losses, s.Loss); prog.step(s) },
		OnEval: func(e train.EvalInfo) {
			evals = append(evals, e)
			prog.line(evalLine(e))
			_ = lossCurve(curve, "translation: "+f.arch, losses, done, evals)
		},
		// The tokenizers are part of each checkpoint, written before it is
		// sealed and swapped into place.
		BeforeCheckpoint: tok.save,
	}
	sum, err := train.Run(ctx, tr, data, ev.evaluate, train.LoopConfig{
		Steps: f.steps, EvalEvery: f.evalEvery, Metric: f.metric, HigherIsBetter: f.metric == "bleu", Patience: f.patience,
		CheckpointDir: f.out, CheckpointEvery: f.checkpointEvery, Config: m.Config(),
	}, hooks)
	prog.finish()
	if err != nil {
		return err
	}
	if err := lossCurve(curve, "translation: "+f.arch, losses, done, evals); err != nil {
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

func (f *mtTrainFlags) trainer(m mtModel) (*train.Trainer, error) {
	opt, err := train.NewAdam(train.AdamConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8})
	if err != nil {
		return nil, err
	}
	minLR := f.minLR
	if minLR < 0 {
		minLR = f.lr
	}
	sched, err := train.NewWarmupDecay(f.lr, minLR, f.warmup, f.steps, train.Cosine)
	if err != nil {
		return nil, err
	}
	return train.New(m, train.Config{Optimizer: opt, Schedule: sched, ClipNorm: f.clip, DropoutSeed: f.seed, MaxPrograms: f.maxPrograms})
}
