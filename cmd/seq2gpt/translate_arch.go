package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pkg/errors"
	"github.com/spf13/pflag"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/decode"
	"github.com/seq2gpt/seq2gpt/seq2seq"
	"github.com/seq2gpt/seq2gpt/train"
)

// The architectures of `seq2gpt translate`. Everything else in the
// translate commands — data, tokenizers, training loop, checkpoints,
// BLEU, search, attention pictures — is written against mtModel, so an
// architecture joins by adding one mtArch to mtArchs: its --arch names, its
// flags (and how the ones a user did not give are settled), its optimizer,
// how it makes a fresh model and how it recognises and loads a model
// directory of its own.

// mtArch is one architecture of `seq2gpt translate`.
type mtArch struct {
	// Names are the --arch values it answers to.
	Names []string
	// Help is a line for --help.
	Help string
	// Flags adds the architecture's model flags (shared names such as
	// --layers and --dropout are added once, by modelFlags).
	Flags func(fs *pflag.FlagSet, f *modelFlags)
	// Resolve, when not nil, settles the flags a new run did not give
	// from the architecture's defaults (the Transformer's preset), setting
	// them in fs so that the run file records them, and refuses values that
	// do not fit together. A resumed run has every flag set already.
	Resolve func(fs *pflag.FlagSet, f *mtTrainFlags) error
	// Adam is the optimizer's configuration (β₂ 0.98, ε 1e-9 for the
	// Transformer, as the paper).
	Adam train.AdamConfig
	// New makes a fresh model of arch name from the flags, for the given
	// vocabularies, with weights drawn from seed.
	New func(name string, f *modelFlags, v vocabs, seed uint64) (mtModel, error)
	// Owns says whether config.json's model_type and arch are this
	// architecture's; Load then reads the directory.
	Owns func(modelType, arch string) bool
	Load func(dir string) (mtModel, error)
}

// mtModel is a translation model of any architecture.
type mtModel interface {
	// Store and Build: the Trainer trains it (KindLoss programs, one per
	// batch shape, from the batches Batch makes).
	train.Model
	// Arch is its --arch name; Describe a line about its size.
	Arch() string
	Describe() string
	// Config is saved as config.json in every checkpoint (with model_type
	// and arch fields, so that Owns recognises it).
	Config() any
	// Source and Target are a sentence's tokens as the model reads and
	// writes them (end tokens and the like), for the Batcher.
	Source(tokens []int) []int
	Target(tokens []int) []int
	// Batch turns a padded batch of Source/Target rows into the engine's,
	// and NewData feeds the training loop accum such batches a step.
	Batch(b datasets.Batch) (train.Batch, error)
	NewData(b *datasets.Batcher, accum int) (train.Data, error)
	// SetLabelSmoothing sets the training loss's ε (before training).
	SetLabelSmoothing(eps float64)
	// EvalLoss is the teacher-forced loss over valid, nats per token.
	EvalLoss(t *train.Trainer, valid *datasets.Batcher) (float64, error)
	// NewDecoder decodes raw source tokens (Start applies Source); its
	// states are decode.Attenders when HasAttention.
	NewDecoder() (mtDecoder, error)
	HasAttention() bool
	// EOS ends a target sentence; SrcVocab and TgtVocab are the
	// vocabulary sizes (checked against the tokenizers').
	EOS() int
	SrcVocab() int
	TgtVocab() int
	// Save writes config.json and the weights into dir (Load reads them).
	Save(dir string) error
}

// mtDecoder is a decode.Model that holds compiled programs.
type mtDecoder interface {
	decode.Model
	Close() error
}

// vocabs are the sizes and special tokens of a model's vocabularies.
type vocabs struct {
	Src, Tgt      int
	Pad, BOS, EOS int
	SrcEOS        int  // the source vocabulary's end token
	Joint         bool // one tokenizer for both sides
}

// modelFlags are the model flags of every architecture.
type modelFlags struct {
	// shared
	layers  int
	dropout float64
	tie     bool
	// seq2seq
	embed, hidden, attnDim int
	reverse, feed, uni     bool
	score                  string
	// transformer
	preset                     string
	encLayers, decLayers       int
	dModel, heads, dFF, maxPos int
	activation, positions      string
	normFirst, share           bool
}

// addModelFlags registers the shared model flags, then each architecture's.
func addModelFlags(fs *pflag.FlagSet, f *modelFlags) {
	fs.IntVar(&f.layers, "layers", 1, "encoder and decoder layers (transformer: default the preset's)")
	fs.Float64Var(&f.dropout, "dropout", 0.2, "dropout on embeddings, between layers and before the output projection (transformer: default the preset's, where the paper puts it)")
	fs.BoolVar(&f.tie, "tie-embeddings", false, "use the target embedding as the output projection (transformer: default the preset's)")
	for _, a := range mtArchs {
		a.Flags(fs, f)
	}
}

// mtArchs are the architectures, in --help order.
var mtArchs = []mtArch{seq2seqArch(), transformerArch()}

// archNames lists every --arch value.
func archNames() []string {
	var names []string
	for _, a := range mtArchs {
		names = append(names, a.Names...)
	}
	return names
}

// findArch returns the architecture of --arch name.
func findArch(name string) (mtArch, error) {
	for _, a := range mtArchs {
		for _, n := range a.Names {
			if n == name {
				return a, nil
			}
		}
	}
	return mtArch{}, errors.Errorf("--arch %q: want one of %s", name, strings.Join(archNames(), ", "))
}

// loadMTModel reads a model directory of any architecture, by the
// model_type and arch of its config.json.
func loadMTModel(dir string) (mtModel, error) {
	path := filepath.Join(dir, train.ConfigFile)
	b, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, errors.Errorf("%s is not a model directory: it has no %s", dir, train.ConfigFile)
		}
		return nil, err
	}
	var head struct {
		ModelType string `json:"model_type"`
		Arch      string `json:"arch"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, errors.Wrapf(err, "%s", path)
	}
	for _, a := range mtArchs {
		if a.Owns(head.ModelType, head.Arch) {
			return a.Load(dir)
		}
	}
	what := fmt.Sprintf("model_type %q", head.ModelType)
	if head.Arch != "" {
		what += fmt.Sprintf(", arch %q", head.Arch)
	}
	return nil, errors.Errorf("%s holds a %s model, which seq2gpt translate does not run (architectures: %s)", dir, what, strings.Join(archNames(), ", "))
}

// seq2seqArch is the LSTM encoder–decoders of package seq2seq.
func seq2seqArch() mtArch {
	return mtArch{
		Names: []string{seq2seq.Fixed, seq2seq.Attention},
		Help:  "fixed: LSTM encoder–decoder, c = h_m (Sutskever 2014); attention: bidirectional encoder, Bahdanau attention (2015)",
		Adam:  train.AdamConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8},
		Flags: func(fs *pflag.FlagSet, f *modelFlags) {
			fs.IntVar(&f.embed, "embed", 256, "fixed, attention: embedding size")
			fs.IntVar(&f.hidden, "hidden", 256, "fixed, attention: LSTM size (each direction)")
			fs.BoolVar(&f.reverse, "reverse-source", true, "fixed: read the source backwards (Sutskever et al.)")
			fs.BoolVar(&f.feed, "feed-context", false, "fixed: feed c to every decoder step and the output (Cho et al.)")
			fs.StringVar(&f.score, "score", "additive", "attention: score additive (Bahdanau), dot or general (Luong)")
			fs.BoolVar(&f.uni, "unidirectional", false, "attention: a left-to-right encoder instead of a bidirectional one")
			fs.IntVar(&f.attnDim, "attention-dim", 0, "attention: the additive score's inner size (0: --hidden)")
		},
		New: func(name string, f *modelFlags, v vocabs, seed uint64) (mtModel, error) {
			cfg := seq2seq.Config{Arch: name, SrcVocab: v.Src, TgtVocab: v.Tgt, Embed: f.embed, Hidden: f.hidden,
				Layers: f.layers, Dropout: f.dropout, TieEmbeddings: f.tie,
				PadID: v.Pad, BOSID: v.BOS, EOSID: v.EOS, SrcEOSID: v.SrcEOS}
			if name == seq2seq.Fixed {
				cfg.ReverseSource, cfg.FeedContext = f.reverse, f.feed
			} else {
				cfg.Score, cfg.Unidirectional, cfg.AttentionDim = blocks.Score(f.score), f.uni, f.attnDim
			}
			m, err := seq2seq.New(cfg, seed)
			if err != nil {
				return nil, err
			}
			return s2sModel{m}, nil
		},
		Owns: func(modelType, arch string) bool {
			return modelType == seq2seq.ModelType && (arch == seq2seq.Fixed || arch == seq2seq.Attention)
		},
		Load: func(dir string) (mtModel, error) {
			m, err := seq2seq.Load(dir)
			if err != nil {
				return nil, err
			}
			return s2sModel{m}, nil
		},
	}
}

// s2sModel is a seq2seq.Model as an mtModel.
type s2sModel struct{ *seq2seq.Model }

func (m s2sModel) Arch() string       { return m.Model.Config.Arch }
func (m s2sModel) Config() any        { return m.Model.Config }
func (m s2sModel) EOS() int           { return m.Model.Config.EOSID }
func (m s2sModel) SrcVocab() int      { return m.Model.Config.SrcVocab }
func (m s2sModel) TgtVocab() int      { return m.Model.Config.TgtVocab }
func (m s2sModel) HasAttention() bool { return m.Model.Config.Arch == seq2seq.Attention }

func (m s2sModel) SetLabelSmoothing(eps float64) { m.Model.LabelSmoothing = eps }

func (m s2sModel) NewData(b *datasets.Batcher, accum int) (train.Data, error) {
	return m.Model.NewData(b, accum)
}

func (m s2sModel) NewDecoder() (mtDecoder, error) {
	return m.Model.NewDecoder(seq2seq.DecoderConfig{})
}

func (m s2sModel) Describe() string {
	c := m.Model.Config
	var enc string
	switch {
	case c.Arch == seq2seq.Fixed && c.ReverseSource:
		enc = "reversed-source LSTM encoder, c = h_m"
	case c.Arch == seq2seq.Fixed:
		enc = "LSTM encoder, c = h_m"
	case c.Unidirectional:
		enc = fmt.Sprintf("LSTM encoder, %s attention", c.Score)
	default:
		enc = fmt.Sprintf("bidirectional LSTM encoder, %s attention", c.Score)
	}
	if c.FeedContext {
		enc += " fed at every step"
	}
	tie := ""
	if c.TieEmbeddings {
		tie = ", tied output embedding"
	}
	return fmt.Sprintf("%s: %s, %d layer(s) of %d, embedding %d, dropout %g%s, vocabularies %d → %d, %.2fM parameters",
		c.Arch, enc, c.Layers, c.Hidden, c.Embed, c.Dropout, tie, c.SrcVocab, c.TgtVocab, float64(m.NumParams())/1e6)
}
