package seq2seq

import (
	"strconv"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/ops"
	"github.com/seq2gpt/seq2gpt/train"
)

// The programs a Model builds (train.Key.Kind).
const (
	// KindLoss ("") is teacher forcing with its loss: what the Trainer
	// trains and evaluates. Key: Batch B, Source S, Len T.
	KindLoss = ""
	// KindEncode runs the encoder once per batch of sources and outputs
	// what every decoding step reads. Key: Batch, Source.
	KindEncode = "encode"
	// KindDecode is one decoder step for every row. Key: Batch, Source,
	// Len 1.
	KindDecode = "decode"
)

// IgnoreIndex marks a target position that gets no loss (padding).
const IgnoreIndex = -100

var _ train.Model = (*Model)(nil)

// Build implements train.Model: the one adapter between this package's
// graph functions and the engine.
//
// Inputs of KindLoss: "src" (int [B·S], Source's form, padded), "src_keep"
// (the encoder's step mask [B, S, H]), "src_mask" (attention: additive
// padding mask [B, S]), "tgt_in" (int [B·T]: the start token, then the
// target shifted right) and "targets" ([B·T], IgnoreIndex at padding).
// Batch makes all of them from a datasets.Batch.
func (m *Model) Build(g *blocks.Graph, key train.Key) (train.Built, error) {
	B, S, T := key.Batch, key.Source, key.Len
	if S <= 0 {
		return train.Built{}, errors.Errorf("seq2seq: key %v has no source length", key)
	}
	switch key.Kind {
	case KindLoss:
		if T <= 0 {
			return train.Built{}, errors.Errorf("seq2seq: key %v has no target length", key)
		}
		return m.buildLoss(g, B, S, T)
	case KindEncode:
		return m.buildEncode(g, B, S)
	case KindDecode:
		if T != 1 {
			return train.Built{}, errors.Errorf("seq2seq: decode key %v must have Len 1", key)
		}
		return m.buildDecode(g, B, S)
	}
	return train.Built{}, errors.Errorf("seq2seq: unknown program kind %q (want %q, %q or %q)", key.Kind, KindLoss, KindEncode, KindDecode)
}

// inputs adds named per-run inputs.
type inputs struct {
	g     *blocks.Graph
	nodes map[string]*G.Node
}

func (in *inputs) add(name string, shape tensor.Shape, dt ...tensor.Dtype) *G.Node {
	n := blocks.Must(in.g.Input(name, shape, dt...))
	in.nodes[name] = n
	return n
}

// source adds the encoder's inputs of a [B, S] batch.
func (m *Model) source(in *inputs, B, S int) (src, keep, mask *G.Node) {
	src = in.add("src", tensor.Shape{B * S}, tensor.Int)
	keep = in.add("src_keep", tensor.Shape{B, S, m.Config.Hidden})
	if m.attention != nil {
		mask = in.add("src_mask", tensor.Shape{B, S})
	}
	return src, keep, mask
}

func (m *Model) buildLoss(g *blocks.Graph, B, S, T int) (built train.Built, err error) {
	in := &inputs{g: g, nodes: map[string]*G.Node{}}
	err = blocks.Build(func() error {
		src, keep, mask := m.source(in, B, S)
		tgtIn := in.add("tgt_in", tensor.Shape{B * T}, tensor.Int)
		targets := in.add("targets", tensor.Shape{B * T})
		enc := blocks.Must(m.Encode(g, src, keep, mask, B, S))
		logits, _, err := m.Decode(g, enc, tgtIn, B, T)
		blocks.Must(logits, err)
		eps := m.LabelSmoothing
		if g.Mode == blocks.Eval {
			eps = 0
		}
		flat := blocks.Must(G.Reshape(logits, tensor.Shape{B * T, m.Config.TgtVocab}))
		built.Loss = blocks.Must(ops.CrossEntropy(flat, targets, IgnoreIndex, eps))
		return nil
	})
	built.Inputs = in.nodes
	return built, err
}

func (m *Model) buildEncode(g *blocks.Graph, B, S int) (built train.Built, err error) {
	in := &inputs{g: g, nodes: map[string]*G.Node{}}
	built.Outputs = map[string]*G.Node{}
	err = blocks.Build(func() error {
		src, keep, mask := m.source(in, B, S)
		enc := blocks.Must(m.Encode(g, src, keep, mask, B, S))
		for l := range enc.S0 {
			built.Outputs["h."+strconv.Itoa(l)] = enc.S0[l]
			built.Outputs["c."+strconv.Itoa(l)] = enc.C0[l]
		}
		if m.attention != nil {
			built.Outputs["memory"] = enc.Keys.H
			if !m.keysAreMemory() {
				built.Outputs["keys"] = enc.Keys.UH
			}
		} else if m.Config.FeedContext {
			built.Outputs["context"] = enc.Context
		}
		return nil
	})
	built.Inputs = in.nodes
	return built, err
}

func (m *Model) buildDecode(g *blocks.Graph, B, S int) (built train.Built, err error) {
	in := &inputs{g: g, nodes: map[string]*G.Node{}}
	built.Outputs = map[string]*G.Node{}
	cfg := m.Config
	err = blocks.Build(func() error {
		y := in.add("y", tensor.Shape{B}, tensor.Int)
		var h, c []*G.Node
		for l := range cfg.Layers {
			h = append(h, in.add("h."+strconv.Itoa(l), tensor.Shape{B, cfg.Hidden}))
			c = append(c, in.add("c."+strconv.Itoa(l), tensor.Shape{B, cfg.Hidden}))
		}
		var enc Encoded
		if m.attention != nil {
			mem := in.add("memory", tensor.Shape{B, S, cfg.EncoderDim()})
			keys := mem // the dot score's keys are h_j themselves
			if !m.keysAreMemory() {
				keys = in.add("keys", tensor.Shape{B, S, m.keyDim()})
			}
			enc.H, enc.Keys, enc.Mask = mem, blocks.Keys{H: mem, UH: keys}, in.add("src_mask", tensor.Shape{B, S})
		} else if cfg.FeedContext {
			enc.Context = in.add("context", tensor.Shape{B, cfg.Hidden})
		}
		emb := blocks.Must(m.tgtEmbed.Forward(g, y, B, 1))
		o, hNew, cNew, alpha, err := m.Step(g, blocks.Must(G.Reshape(emb, tensor.Shape{B, cfg.Embed})), h, c, enc)
		blocks.Must(o, err)
		built.Outputs["logits"] = blocks.Must(m.Readout(g, o))
		for l := range hNew {
			built.Outputs["h."+strconv.Itoa(l)] = hNew[l]
			built.Outputs["c."+strconv.Itoa(l)] = cNew[l]
		}
		if alpha != nil {
			built.Outputs["alpha"] = alpha
		}
		return nil
	})
	built.Inputs = in.nodes
	return built, err
}

// keysAreMemory says the attention keys are the encoder states themselves
// (Luong's dot score).
func (m *Model) keysAreMemory() bool { return m.Config.Score == blocks.Dot }

// keyDim is the size of each attention key.
func (m *Model) keyDim() int {
	switch m.Config.Score {
	case blocks.Additive:
		return m.Config.AttentionDim
	case blocks.General:
		return m.Config.Hidden
	}
	return m.Config.EncoderDim()
}

// Batch turns a padded batch of sources made by Source and targets made
// by Target (datasets.Batcher pads them, to bucket lengths when it has
// buckets) into the engine's batch, weighted by its real target tokens.
// Rows of length 0 (a bucket's filler rows) get no loss.
func (m *Model) Batch(b datasets.Batch) (train.Batch, error) {
	cfg := m.Config
	B, S, T := b.Source.B, b.Source.T, b.Target.T
	if b.Target.B != B || T == 0 {
		return train.Batch{}, errors.Errorf("seq2seq: batch of %d sources and %d targets of length %d: want one target per source", B, b.Target.B, T)
	}
	src, err := blocks.IDs(b.Source.IDs, cfg.SrcVocab)
	if err != nil {
		return train.Batch{}, errors.Wrap(err, "seq2seq: source")
	}
	dt := m.store.Dtype()
	tgtIn := make([]int, B*T)
	targets := make([]float64, B*T)
	n := 0
	for r := range B {
		for t := range T {
			targets[r*T+t] = IgnoreIndex
			if t < b.Target.Lengths[r] {
				id := b.Target.IDs[r*T+t]
				if id < 0 || id >= cfg.TgtVocab {
					return train.Batch{}, errors.Errorf("seq2seq: target row %d: token %d at %d is outside the vocabulary [0, %d)", r, id, t, cfg.TgtVocab)
				}
				targets[r*T+t] = float64(id)
				n++
			}
			switch {
			case t == 0:
				tgtIn[r*T] = cfg.BOSID
			case t < b.Target.Lengths[r]:
				tgtIn[r*T+t] = b.Target.IDs[r*T+t-1]
			default:
				tgtIn[r*T+t] = cfg.PadID
			}
		}
	}
	keep, err := blocks.StepMask(dt, b.Source.Lengths, S, cfg.Hidden)
	if err != nil {
		return train.Batch{}, errors.Wrap(err, "seq2seq: source")
	}
	in := map[string]G.Value{
		"src":      src,
		"src_keep": keep,
		"tgt_in":   tensor.New(tensor.WithShape(B*T), tensor.WithBacking(tgtIn)),
		"targets":  dense(dt, targets, B*T),
	}
	if m.attention != nil {
		in["src_mask"] = paddingMask(dt, b.Source.Lengths, S)
	}
	return train.Batch{Key: train.Key{Batch: B, Source: S, Len: T}, Inputs: in, Weight: float64(n)}, nil
}

// paddingMask is blocks.PaddingMask that also takes the filler rows of a
// bucketed batch, of length 0: wholly masked, so ops.SoftMax gives them
// α = 0 (blocks.PaddingMask refuses them: a real row always has a token).
func paddingMask(dt tensor.Dtype, lengths []int, steps int) *tensor.Dense {
	v := make([]float64, len(lengths)*steps)
	for b, n := range lengths {
		for j := n; j < steps; j++ {
			v[b*steps+j] = negInf
		}
	}
	return dense(dt, v, len(lengths), steps)
}

// dense is vals as a tensor of dtype dt.
func dense(dt tensor.Dtype, vals []float64, shape ...int) *tensor.Dense {
	if dt == tensor.Float64 {
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(vals))
	}
	f := make([]float32, len(vals))
	for i, v := range vals {
		f[i] = float32(v)
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(f))
}
