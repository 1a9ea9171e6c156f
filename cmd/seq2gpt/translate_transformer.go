package main

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/pkg/errors"
	"github.com/spf13/pflag"

	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/train"
	"github.com/seq2gpt/seq2gpt/transformer"
)

// transformerArchName is the Transformer's --arch.
const transformerArchName = "transformer"

// transformerPresets are the --preset values, smallest first.
var transformerPresets = []string{"tiny", "small", "base", "big"}

// transformerArch is the Transformer of package transformer (Vaswani et
// al. 2017, as torch's nn.Transformer): a --preset, each size flag given
// overriding it, trained with Adam β₂ 0.98, ε 1e-9 as the paper.
func transformerArch() mtArch {
	return mtArch{
		Names: []string{transformerArchName},
		Help:  "transformer: stacks of self-attention and feed-forward layers, no recurrence (Vaswani et al. 2017), as torch's nn.Transformer",
		Flags: func(fs *pflag.FlagSet, f *modelFlags) {
			fs.StringVar(&f.preset, "preset", "small", "transformer: the size the other flags start from: tiny, small (2+2 layers, d_model 128, 4 heads, d_ff 512), base (the paper's: 6+6, 512, 8, 2048, dropout 0.1, shared embeddings) or big")
			fs.IntVar(&f.encLayers, "encoder-layers", 0, "transformer: encoder layers (default: --layers)")
			fs.IntVar(&f.decLayers, "decoder-layers", 0, "transformer: decoder layers (default: --layers)")
			fs.IntVar(&f.dModel, "d-model", 0, "transformer: d_model, the width of every layer (default: the preset's)")
			fs.IntVar(&f.heads, "heads", 0, "transformer: attention heads h, a divisor of d_model (default: the preset's)")
			fs.IntVar(&f.dFF, "d-ff", 0, "transformer: d_ff, the feed-forward layers' inner width (default: the preset's)")
			fs.IntVar(&f.maxPos, "max-positions", 0, "transformer: the longest source or target it reads (default: the preset's)")
			fs.StringVar(&f.activation, "activation", "", "transformer: the feed-forward nonlinearity, relu (the paper) or gelu (default: the preset's)")
			fs.StringVar(&f.positions, "positions", "", "transformer: sinusoidal (the paper) or learned position encodings (default: the preset's)")
			fs.BoolVar(&f.normFirst, "norm-first", false, "transformer: pre-LN, each LayerNorm before its sub-layer (torch's norm_first), instead of the paper's post-LN (default: the preset's)")
			fs.BoolVar(&f.share, "share-embeddings", true, "transformer: one embedding table for source and target, which needs one tokenizer for both (default: the preset's; off with --bpe separate)")
		},
		Resolve: resolveTransformer,
		Adam:    train.AdamConfig{Beta1: 0.9, Beta2: 0.98, Eps: 1e-9},
		New:     newTransformer,
		Owns:    func(modelType, _ string) bool { return modelType == transformer.ModelType },
		Load: func(dir string) (mtModel, error) {
			m, err := transformer.Load(dir)
			if err != nil {
				return nil, err
			}
			return trModel{transformer.Translator{Model: m}}, nil
		},
	}
}

// resolveTransformer settles the model flags a run did not give from
// --preset (--encoder-layers and --decoder-layers from --layers), and the
// peak rate of --schedule noam from the paper's formula when --lr is not
// given, and refuses sizes that do not fit together.
func resolveTransformer(fs *pflag.FlagSet, f *mtTrainFlags) error {
	p, err := transformer.Preset(f.model.preset)
	if err != nil {
		return err // checkTranslateFlags refused it already
	}
	set := func(name, v string) {
		if !fs.Changed(name) {
			_ = fs.Set(name, v)
		}
	}
	itoa, btoa := strconv.Itoa, strconv.FormatBool
	set("layers", itoa(p.NumEncoderLayers)) // every preset has N layers a side
	set("encoder-layers", itoa(f.model.layers))
	set("decoder-layers", itoa(f.model.layers))
	set("d-model", itoa(p.DModel))
	set("heads", itoa(p.NHead))
	set("d-ff", itoa(p.DimFeedforward))
	set("max-positions", itoa(p.MaxPositions))
	set("activation", p.Activation)
	set("positions", p.Positions)
	set("norm-first", btoa(p.NormFirst))
	set("share-embeddings", btoa(p.ShareEmbeddings && f.bpe == "joint"))
	set("tie-embeddings", btoa(p.TieOutput))
	set("dropout", num(p.Dropout))
	m := f.model
	switch {
	case m.dModel%m.heads != 0:
		return &FlagError{Flag: "heads", Value: itoa(m.heads), Want: fmt.Sprintf("a divisor of --d-model %d", m.dModel)}
	case f.maxLen > m.maxPos:
		return &FlagError{Flag: "max-len", Value: itoa(f.maxLen), Want: fmt.Sprintf("an integer ≤ --max-positions %d, the longest sentence the model reads", m.maxPos)}
	}
	if f.schedule == "noam" && f.warmup > 0 {
		// The paper's rate, d_model^−½ · min(step^−½, step · warmup^−3/2),
		// peaks at (d_model · warmup)^−½.
		set("lr", num(1/math.Sqrt(float64(m.dModel*f.warmup))))
	}
	return nil
}

// newTransformer makes a Transformer of the resolved flags.
func newTransformer(_ string, f *modelFlags, v vocabs, seed uint64) (mtModel, error) {
	if v.SrcEOS != v.EOS {
		return nil, errors.Errorf("the transformer ends every source with the target's end token (id %d), but the source tokenizer's is id %d: give both sides one tokenizer (--bpe joint)", v.EOS, v.SrcEOS)
	}
	if f.share && !v.Joint {
		return nil, errors.New("--share-embeddings: the source and target have a tokenizer each (--bpe separate, or a --tokenizer with src. and tgt. files); give --share-embeddings=false or one tokenizer")
	}
	cfg, err := transformer.Preset(f.preset)
	if err != nil {
		return nil, err
	}
	cfg.SrcVocabSize, cfg.TgtVocabSize = v.Src, v.Tgt
	cfg.NumEncoderLayers, cfg.NumDecoderLayers = f.encLayers, f.decLayers
	cfg.DModel, cfg.NHead, cfg.DimFeedforward, cfg.MaxPositions = f.dModel, f.heads, f.dFF, f.maxPos
	cfg.Activation, cfg.Positions, cfg.NormFirst = f.activation, f.positions, f.normFirst
	cfg.Dropout, cfg.ShareEmbeddings, cfg.TieOutput = f.dropout, f.share, f.tie
	cfg.BOS, cfg.EOS, cfg.Pad = v.BOS, v.EOS, v.Pad
	m, err := transformer.New(cfg, seed)
	if err != nil {
		return nil, err
	}
	return trModel{transformer.Translator{Model: m}}, nil
}

// trModel is a transformer.Model, through its engine adapter, as an
// mtModel.
type trModel struct{ transformer.Translator }

func (m trModel) Arch() string       { return transformerArchName }
func (m trModel) Config() any        { return m.FileConfig() }
func (m trModel) EOS() int           { return m.Model.Config.EOS }
func (m trModel) SrcVocab() int      { return m.Model.Config.SrcVocabSize }
func (m trModel) TgtVocab() int      { return m.Model.Config.TgtVocabSize }
func (m trModel) HasAttention() bool { return true }

func (m trModel) SetLabelSmoothing(eps float64) { m.Model.Config.LabelSmoothing = eps }

func (m trModel) NewData(b *datasets.Batcher, accum int) (train.Data, error) {
	d, err := m.Model.NewData(b, accum)
	if err != nil {
		return nil, err
	}
	return d, nil
}

func (m trModel) NewDecoder() (mtDecoder, error) {
	return m.Model.NewDecoder(transformer.DecoderConfig{})
}

func (m trModel) Describe() string {
	c := m.Model.Config
	norm := "post-LN"
	if c.NormFirst {
		norm = "pre-LN"
	}
	var tables []string
	if c.ShareEmbeddings {
		tables = append(tables, "shared embeddings")
	}
	if c.TieOutput {
		tables = append(tables, "tied output")
	}
	if len(tables) > 0 {
		tables[0] = ", " + tables[0]
	}
	return fmt.Sprintf("transformer: %d+%d layers, d_model %d, %d heads, d_ff %d, %s, %s, %s positions%s, dropout %g, vocabularies %d → %d, %.2fM parameters",
		c.NumEncoderLayers, c.NumDecoderLayers, c.DModel, c.NHead, c.DimFeedforward, c.Activation, norm, c.Positions,
		strings.Join(tables, ", "), c.Dropout, c.SrcVocabSize, c.TgtVocabSize, float64(m.NumParams())/1e6)
}

// The attention maps --attention-map draws.
const (
	crossMap   = "cross"   // encoder–decoder attention: translation × source
	encoderMap = "encoder" // the encoder's self-attention: source × source
	decoderMap = "decoder" // the decoder's masked self-attention: translation × its inputs
)

// attentionMaps are the --attention-map values.
var attentionMaps = []string{crossMap, encoderMap, decoderMap}

// mtAttentionMaps is a model whose attention has layers and heads (the
// Transformer's): translate --attention draws a grid of its maps.
type mtAttentionMaps interface {
	// AttentionHeads are the layers and heads of a map.
	AttentionHeads(kind string) (layers, heads int)
	// AttentionMaps are α[layer][head][query][key] of a map for a source
	// (its tokens) and its translation (with its end token when it has
	// one).
	AttentionMaps(kind string, source, target []int) ([][][][]float32, error)
}

var _ mtAttentionMaps = trModel{}

func (m trModel) AttentionHeads(kind string) (layers, heads int) {
	if kind == encoderMap {
		return m.Model.Config.NumEncoderLayers, m.Model.Config.NHead
	}
	return m.Model.Config.NumDecoderLayers, m.Model.Config.NHead
}

func (m trModel) AttentionMaps(kind string, source, target []int) ([][][][]float32, error) {
	a, err := m.Model.Attention(source, target)
	if err != nil {
		return nil, err
	}
	switch kind {
	case encoderMap:
		return a.EncoderSelf, nil
	case decoderMap:
		return a.DecoderSelf, nil
	}
	return a.Cross, nil
}

// mapPanels lays out the chosen layers (rows) and heads (columns) of a
// map of a translation, each panel labelled with its tokens: the
// alignment a of the translation (source tokens and its end token, the
// translation's tokens and its end token when it has one) gives the
// labels.
func mapPanels(maps [][][][]float32, kind string, a alignment, layers, heads []int) ([][]alignment, [][]string) {
	keys, queries, x, y := a.src, a.tgt, "source", "translation"
	switch kind {
	case encoderMap:
		queries, y = a.src, "source"
	case decoderMap:
		// Row t predicts token t from the tokens before it: BOS, then the
		// translation shifted right.
		keys, x = append([]string{"<s>"}, a.tgt[:len(a.tgt)-1]...), "translation (the decoder's input)"
	}
	panels, titles := make([][]alignment, len(layers)), make([][]string, len(layers))
	for r, l := range layers {
		for _, h := range heads {
			panels[r] = append(panels[r], alignment{src: slices.Clone(keys), tgt: slices.Clone(queries), alpha: maps[l][h], xName: x, yName: y})
			titles[r] = append(titles[r], fmt.Sprintf("layer %d, head %d", l, h))
		}
	}
	return panels, titles
}
