package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"

	"github.com/pkg/errors"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/seq2gpt/seq2gpt/bert"
	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/internal/atomicfile"
	"github.com/seq2gpt/seq2gpt/train"
)

// mlmRun is what a pre-training run is: the flags that decide the model,
// the data and the optimisation. It is saved as <out>/run.json when the run
// starts, and --resume takes it from there, so a resumed run is the run
// that was started, whatever the command line repeats or leaves out.
type mlmRun struct {
	Data        string  `json:"data" flag:"data"`
	Tokenizer   string  `json:"tokenizer" flag:"tokenizer"`
	Merges      int     `json:"merges" flag:"merges"`
	Preset      string  `json:"preset" flag:"preset"`
	Config      string  `json:"config" flag:"config"`
	Batch       int     `json:"batch" flag:"batch"`
	Accum       int     `json:"accum" flag:"accum"`
	Warmup      int     `json:"warmup" flag:"warmup"`
	LR          float64 `json:"lr" flag:"lr"`
	MinLR       float64 `json:"min_lr" flag:"min-lr"`
	WeightDecay float64 `json:"weight_decay" flag:"weight-decay"`
	Clip        float64 `json:"clip" flag:"clip"`
	Dropout     float64 `json:"dropout" flag:"dropout"`
	NSP         bool    `json:"nsp" flag:"nsp"`
	MaskRate    float64 `json:"mask_rate" flag:"mask-rate"`
	Seed        uint64  `json:"seed" flag:"seed"`
}

// mlmRunFile is the file under --out that remembers the run.
const mlmRunFile = "run.json"

type mlmTrainFlags struct {
	run                              mlmRun
	out                              string
	steps                            int
	evalEvery, evalBatches, patience int
	checkpointEvery, logEvery        int
	resume, overwrite                bool
	fill                             string
}

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
file; a tenth is held out for validation, masked once. A byte-level BPE is
trained on the training text (unless --tokenizer gives one) and BERT's
[PAD], [CLS], [SEP] and [MASK] are added to it. Examples are windows of
max_position_embeddings tokens: [CLS] text [SEP].

Checkpoints go to --out: "best" (lowest validation MLM loss) and "last";
both are HuggingFace BertForPreTraining directories with the tokenizer
beside them, which "mlm eval", "mlm fill" and "finetune --from" read.
<out>/run.json remembers the run: --resume continues it exactly (its flags
come from there; only --steps and the evaluation and checkpoint cadence may
change), and a directory that holds a run is not overwritten without
--overwrite. Ctrl-C saves "last" and exits cleanly.`,
		Example: `  # a tiny BERT on the embedded text
  seq2gpt mlm train --preset tiny --steps 1500 --out runs/bert-tiny

  # continue it to 3000 steps
  seq2gpt mlm train --out runs/bert-tiny --steps 3000 --resume

  # what it fills in
  seq2gpt mlm fill --model runs/bert-tiny/best --text "The [MASK] of the Union is strong."`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runMLMTrain(cmd, f) },
	}
	fl := c.Flags()
	r := &f.run
	fl.StringVar(&r.Data, "data", "", "plain-text training file (default: the embedded State of the Union addresses)")
	fl.StringVar(&r.Tokenizer, "tokenizer", "", "directory with vocab.json+merges.txt (or encoder.json+vocab.bpe); default: train one")
	fl.IntVar(&r.Merges, "merges", -1, "BPE merges to learn when training a tokenizer (default: the preset's vocab_size − 260)")
	fl.StringVar(&r.Preset, "preset", "tiny", "model size: tiny, small, medium, base or large")
	fl.StringVar(&r.Config, "config", "", "JSON file of HuggingFace BertConfig keys, applied over the preset")
	fl.IntVar(&r.Batch, "batch", 16, "examples per micro-batch")
	fl.IntVar(&r.Accum, "accum", 1, "micro-batches accumulated per step")
	fl.IntVar(&r.Warmup, "warmup", 0, "linear warm-up steps (default: steps/20)")
	fl.Float64Var(&r.LR, "lr", 2e-3, "peak learning rate")
	fl.Float64Var(&r.MinLR, "min-lr", -1, "learning rate at the end of the linear decay (default: lr/10)")
	fl.Float64Var(&r.WeightDecay, "weight-decay", 0.01, "AdamW decoupled weight decay, on matrices only")
	fl.Float64Var(&r.Clip, "clip", 1, "global gradient-norm clipping (0: off)")
	fl.Float64Var(&r.Dropout, "dropout", -1, "hidden and attention dropout (default: the preset's)")
	fl.BoolVar(&r.NSP, "nsp", false, "add next-sentence prediction (examples become [CLS] A [SEP] B [SEP])")
	fl.Float64Var(&r.MaskRate, "mask-rate", 0.15, "fraction of the tokens chosen as targets")
	fl.Uint64Var(&r.Seed, "seed", 1, "seed for weights, data order, masking and dropout")
	fl.StringVar(&f.out, "out", "runs/bert", "directory for the run: run.json, checkpoints, the loss curve")
	fl.IntVar(&f.steps, "steps", 1500, "optimizer steps in total")
	fl.IntVar(&f.evalEvery, "eval-every", 250, "evaluate every N steps")
	fl.IntVar(&f.evalBatches, "eval-batches", 20, "validation batches per evaluation (0: all)")
	fl.IntVar(&f.patience, "patience", 0, "stop after N evaluations without improvement (0: never)")
	fl.IntVar(&f.checkpointEvery, "checkpoint-every", 500, "save the last checkpoint every N steps")
	fl.IntVar(&f.logEvery, "log-every", 100, "when not on a terminal, log a line every N steps")
	fl.BoolVar(&f.resume, "resume", false, "continue the run in --out from its last checkpoint")
	fl.BoolVar(&f.overwrite, "overwrite", false, "replace the run in --out")
	fl.StringVar(&f.fill, "fill", "The [MASK] of the Union is strong.", "text with [MASK]s to fill in after training (empty: none)")
	return c
}

// checkMLMFlags refuses out-of-range flags, naming the flag, its value and
// the range, before any work.
func checkMLMFlags(f *mlmTrainFlags) error {
	r := f.run
	ints := []struct {
		name     string
		v, least int
	}{{"steps", f.steps, 1}, {"batch", r.Batch, 1}, {"accum", r.Accum, 1}, {"eval-every", f.evalEvery, 0},
		{"eval-batches", f.evalBatches, 0}, {"patience", f.patience, 0}, {"checkpoint-every", f.checkpointEvery, 0},
		{"log-every", f.logEvery, 0}, {"warmup", r.Warmup, 0}, {"merges", r.Merges, -1}}
	for _, c := range ints {
		if c.v < c.least {
			return errors.Errorf("--%s %d is out of range: want an integer ≥ %d", c.name, c.v, c.least)
		}
	}
	floats := []struct {
		name     string
		v, lo    float64
		hi       float64
		loOpen   bool
		describe string
	}{
		{"lr", r.LR, 0, math.Inf(1), true, "(0, ∞)"},
		{"min-lr", r.MinLR, -1, math.Inf(1), false, "[0, ∞), or −1 for lr/10"},
		{"weight-decay", r.WeightDecay, 0, math.Inf(1), false, "[0, ∞)"},
		{"clip", r.Clip, 0, math.Inf(1), false, "[0, ∞)"},
		{"dropout", r.Dropout, -1, 1, false, "[0, 1), or −1 for the preset's"},
		{"mask-rate", r.MaskRate, 0, 1, true, "(0, 1]"},
	}
	for _, c := range floats {
		bad := math.IsNaN(c.v) || math.IsInf(c.v, 0) || c.v < c.lo || (c.loOpen && c.v == c.lo) || c.v > c.hi || (c.name == "dropout" && c.v == 1)
		if c.name == "min-lr" || c.name == "dropout" {
			bad = bad || (c.v < 0 && c.v != -1)
		}
		if bad {
			return errors.Errorf("--%s %v is out of range: want %s", c.name, c.v, c.describe)
		}
	}
	if f.resume && f.overwrite {
		return errors.New("--resume and --overwrite contradict each other: pick one")
	}
	return nil
}

// settleRun is the run to train: from <out>/run.json with --resume (flags
// given on the command line must agree with it), else the flags, after
// checking that --out holds no run unless --overwrite.
func settleRun(fs *pflag.FlagSet, f *mlmTrainFlags) (mlmRun, error) {
	path := filepath.Join(f.out, mlmRunFile)
	b, err := os.ReadFile(path)
	exists := err == nil
	if err != nil && !os.IsNotExist(err) {
		return mlmRun{}, errors.Wrapf(err, "reading %s", path)
	}
	if !f.resume {
		_, lastErr := train.CheckpointPath(f.out, train.LastCheckpoint)
		if (exists || lastErr == nil) && !f.overwrite {
			return mlmRun{}, errors.Errorf("%s already holds a run: continue it with --resume or replace it with --overwrite", f.out)
		}
		return f.run, nil
	}
	if !exists {
		return mlmRun{}, errors.Errorf("--resume: %s has no %s (was it made by mlm train?)", f.out, mlmRunFile)
	}
	var saved mlmRun
	if err := json.Unmarshal(b, &saved); err != nil {
		return mlmRun{}, errors.Wrapf(err, "--resume: %s", path)
	}
	// A flag given again must say what the run says.
	sv, gv := reflect.ValueOf(saved), reflect.ValueOf(f.run)
	for i := range sv.NumField() {
		name := sv.Type().Field(i).Tag.Get("flag")
		if fs.Changed(name) && !sv.Field(i).Equal(gv.Field(i)) {
			return mlmRun{}, errors.Errorf("--resume: --%s %v differs from the run's %v (%s); leave it out, or start a new run with --overwrite",
				name, gv.Field(i).Interface(), sv.Field(i).Interface(), path)
		}
	}
	return saved, nil
}

// clearRun removes what a run wrote under out (for --overwrite), and only that.
func clearRun(out string) error {
	for _, name := range []string{mlmRunFile, "loss.png", train.BestCheckpoint, train.LastCheckpoint} {
		if err := os.RemoveAll(filepath.Join(out, name)); err != nil {
			return err
		}
		for _, aside := range []string{"." + name + ".new", "." + name + ".old"} {
			if err := os.RemoveAll(filepath.Join(out, aside)); err != nil {
				return err
			}
		}
	}
	return nil
}

func runMLMTrain(cmd *cobra.Command, f *mlmTrainFlags) error {
	out := cmd.OutOrStdout()
	if err := checkMLMFlags(f); err != nil {
		return err
	}
	run, err := settleRun(cmd.Flags(), f)
	if err != nil {
		return err
	}
	text, err := loadCorpus(run.Data)
	if err != nil {
		return err
	}
	last := ""
	if f.resume {
		if last, err = train.CheckpointPath(f.out, train.LastCheckpoint); err != nil {
			return errors.Wrap(err, "--resume")
		}
	}
	cfg, tok, sp, err := bertAndTokenizer(run, text, last)
	if err != nil {
		return err
	}
	trainIDs, validIDs := tok.Encode(text.train), tok.Encode(text.valid)
	fmt.Fprintf(out, "data: %s — %d train and %d validation tokens, vocabulary %d (with [PAD] [CLS] [SEP] [MASK])\n",
		text.name, len(trainIDs), len(validIDs), tok.VocabSize())
	m, err := bert.New(cfg, run.Seed)
	if err != nil {
		return err
	}
	mk, err := bert.NewMasker(bert.Masking{Rate: run.MaskRate, Mask: 0.8, Random: 0.1}, sp, tok.VocabSize(), tok.IsSpecial)
	if err != nil {
		return err
	}
	l := bert.MLM{Model: m, Masker: mk}
	nsp := ""
	if cfg.NSP {
		nsp = ", next-sentence prediction"
	}
	fmt.Fprintf(out, "model: BERT, %d layers, d %d, %d heads, d_ff %d, %d positions, %s, %.2fM parameters; masking %.0f%% (80/10/10)%s\n",
		cfg.NumHiddenLayers, cfg.HiddenSize, cfg.NumAttentionHeads, cfg.IntermediateSize, cfg.MaxPositionEmbeddings, cfg.HiddenAct,
		float64(m.Store.NumElements())/1e6, 100*run.MaskRate, nsp)
	T := cfg.MaxPositionEmbeddings
	tw, err := datasets.NewLMWindows(trainIDs, l.WindowTokens(T), 0)
	if err != nil {
		return errors.Wrap(err, "training text")
	}
	vw, err := datasets.NewLMWindows(validIDs, l.WindowTokens(T), 0)
	if err != nil {
		return errors.Wrap(err, "validation text")
	}
	data, err := l.NewPretrainData(tw, run.Batch, run.Accum, run.Seed)
	if err != nil {
		return err
	}
	valid := l.Examples(vw, 0, run.Seed+1)
	tr, err := newMLMTrainer(l, run, f.steps)
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
	} else {
		if f.overwrite {
			if err := clearRun(f.out); err != nil {
				return err
			}
		}
		if err := os.MkdirAll(f.out, 0o755); err != nil {
			return err
		}
		b, err := json.MarshalIndent(run, "", "  ")
		if err != nil {
			return err
		}
		if err := atomicfile.WriteFile(filepath.Join(f.out, mlmRunFile), append(b, '\n')); err != nil {
			return err
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	prog := newProgress(f.steps, done, f.logEvery)
	prog.stepTokens = int64(run.Batch * run.Accum * T)
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
		BeforeCheckpoint: func(dir string) error { return saveTokenizer(tok, dir) },
	}
	sum, err := train.Run(ctx, tr, data, l.Evaluator(valid, run.Batch, f.evalBatches), train.LoopConfig{
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
	// The loop counts a step's weight, BERT's targets; the model reads
	// every token of every example.
	tokens := int64(sum.Steps) * int64(run.Batch*run.Accum*T)
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

// bertAndTokenizer settles the model config and the tokenizer (with BERT's
// specials): from the last checkpoint when resuming, else from the run's
// flags, training a BPE on the training text unless one is given.
func bertAndTokenizer(run mlmRun, text corpus, last string) (bert.Config, *datasets.BPE, bert.Specials, error) {
	if last != "" {
		cfg, err := bert.ReadConfig(last)
		if err != nil {
			return cfg, nil, bert.Specials{}, errors.Wrap(err, "--resume")
		}
		tok, ok, err := loadTokenizer(last)
		if err == nil && !ok {
			err = errors.Errorf("--resume: %s has no tokenizer files", last)
		}
		if err != nil {
			return cfg, nil, bert.Specials{}, err
		}
		sp, err := bert.AddSpecials(tok)
		return cfg, tok, sp, err
	}
	cfg, err := bert.Preset(run.Preset)
	if err != nil {
		return cfg, nil, bert.Specials{}, errors.Wrap(err, "--preset")
	}
	if run.Config != "" {
		b, err := os.ReadFile(run.Config)
		if err != nil {
			return cfg, nil, bert.Specials{}, errors.Wrap(err, "--config")
		}
		if err := json.Unmarshal(b, &cfg); err != nil {
			return cfg, nil, bert.Specials{}, errors.Wrapf(err, "--config %s", run.Config)
		}
	}
	if run.Dropout >= 0 {
		cfg.HiddenDropoutProb, cfg.AttentionProbsDropoutProb = run.Dropout, run.Dropout
	}
	cfg.NSP = run.NSP
	var tok *datasets.BPE
	if run.Tokenizer != "" {
		var ok bool
		if tok, ok, err = loadTokenizer(run.Tokenizer); err == nil && !ok {
			err = errors.Errorf("--tokenizer %s: no vocab.json+merges.txt or encoder.json+vocab.bpe", run.Tokenizer)
		}
		if err != nil {
			return cfg, nil, bert.Specials{}, err
		}
	} else {
		merges := run.Merges
		if merges < 0 {
			merges = max(0, cfg.VocabSize-256-4)
		}
		if tok, err = datasets.TrainBPE([]string{text.train}, datasets.BPEConfig{Merges: merges}); err != nil {
			return cfg, nil, bert.Specials{}, err
		}
	}
	sp, err := bert.AddSpecials(tok)
	if err != nil {
		return cfg, nil, sp, err
	}
	cfg.VocabSize, cfg.PadTokenID = tok.VocabSize(), sp.PAD
	return cfg, tok, sp, cfg.Validate()
}

func newMLMTrainer(l bert.MLM, run mlmRun, steps int) (*train.Trainer, error) {
	// BERT's optimiser: Adam with β₂ 0.999, ε 1e-6, decoupled weight decay
	// 0.01 (not on biases or LayerNorm), linear warm-up and decay.
	opt, err := train.NewAdamW(train.AdamConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, WeightDecay: run.WeightDecay, DecayMatricesOnly: true})
	if err != nil {
		return nil, err
	}
	warmup := run.Warmup
	if warmup <= 0 {
		warmup = max(1, steps/20)
	}
	minLR := run.MinLR
	if minLR < 0 {
		minLR = run.LR / 10
	}
	sched, err := train.NewWarmupDecay(run.LR, minLR, warmup, steps, train.Linear)
	if err != nil {
		return nil, err
	}
	return train.New(l, train.Config{Optimizer: opt, Schedule: sched, ClipNorm: run.Clip, DropoutSeed: run.Seed})
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
