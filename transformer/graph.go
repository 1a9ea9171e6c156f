package transformer

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

// IgnoreIndex marks target positions that do not count in the loss
// (PyTorch's default ignore_index).
const IgnoreIndex = -100

// The graph functions of Translator, by train.Key.Kind. Sizes: B =
// Key.Batch, S = Key.Source (the padded source length), T = Key.Len (the
// padded target length), N = Key.Cache.
const (
	// KindTrain ("") is the teacher-forced model with its loss. Inputs:
	// "src" (tensor.Int [B·S]), "src_mask" [B, S, S] (the source's key
	// padding, see SourceMasks), "tgt_in" (tensor.Int [B·T], BOS then the
	// target shifted right), "memory_mask" [B, T, S] and "targets" ([B·T],
	// IgnoreIndex at padding). Outputs: the loss — cross-entropy with
	// label smoothing ε_ls in training programs, the plain negative
	// log-likelihood in evaluation ones, averaged over the counted
	// targets — and "logits" [B, T, V_tgt].
	KindTrain = ""
	// KindLogits is the same without targets or loss; besides "logits" it
	// outputs every attention's weights, per layer l: "enc_self.l"
	// [B, h, S, S], "dec_self.l" [B, h, T, T] and "cross.l" [B, h, T, S].
	KindLogits = "logits"
	// KindEncode runs the encoder once per source: inputs "src",
	// "src_mask"; outputs each decoder layer's cross-attention keys and
	// values of the memory, "mem_k.l", "mem_v.l" [B, h, S, d_k].
	KindEncode = "encode"
	// KindDecode is one new target token per row against the encoder's
	// keys and values and a cache of N earlier positions (Key.Len 1).
	// Inputs: "ids", "positions" (tensor.Int [B]), "self_mask" [B, 1, N+1]
	// (blocks.CacheMask), "memory_mask" [B, 1, S], per layer "past_k.l",
	// "past_v.l" [B, h, N, d_k] and "mem_k.l", "mem_v.l" [B, h, S, d_k].
	// Outputs: "logits" [B, 1, V_tgt], the new token's keys and values
	// "k.l", "v.l" [B, h, 1, d_k] and the cross-attention weights "cross.l"
	// [B, h, 1, S]. A token costs O(t) in the target length, not O(t²),
	// and nothing in the source is recomputed.
	KindDecode = "decode"
)

// Translator is the model as the engine sees it: the one adapter from the
// Transformer to train.Model. Its programs (train.Key.Kind) are the
// teacher-forced model with its loss (KindTrain: what the Trainer trains
// and evaluates), the same without targets (KindLogits), the encoder
// (KindEncode) and a decoding step (KindDecode); Decoder runs the last
// three for decode/.
type Translator struct{ *Model }

var _ train.Model = Translator{}

// Store implements train.Model.
func (t Translator) Store() *blocks.Store { return t.Model.Store }

// Build implements train.Model.
func (t Translator) Build(g *blocks.Graph, key train.Key) (train.Built, error) {
	if err := t.checkKey(key); err != nil {
		return train.Built{}, err
	}
	switch key.Kind {
	case KindLogits:
		return t.teacherForced(g, key.Batch, key.Source, key.Len, false)
	case KindEncode:
		return t.encode(g, key.Batch, key.Source)
	case KindDecode:
		return t.decodeStep(g, key.Batch, key.Source, key.Cache)
	}
	return t.teacherForced(g, key.Batch, key.Source, key.Len, true)
}

// checkKey checks that key is one of Translator's programs.
func (t Translator) checkKey(key train.Key) error {
	maxPos := t.Config.MaxPositions
	if key.Choices != 0 {
		return errors.Errorf("transformer: key %v: a translator takes no choices", key)
	}
	if key.Source < 1 || key.Source > maxPos {
		return errors.Errorf("transformer: key %v: source length %d is not in [1, max_position_embeddings %d]", key, key.Source, maxPos)
	}
	switch key.Kind {
	case KindTrain, KindLogits:
		if key.Cache != 0 {
			return errors.Errorf("transformer: key %v: a teacher-forced program has no cache", key)
		}
		if key.Len < 1 || key.Len > maxPos {
			return errors.Errorf("transformer: key %v: target length %d is not in [1, max_position_embeddings %d]", key, key.Len, maxPos)
		}
	case KindEncode:
		if key.Cache != 0 || key.Len != 0 {
			return errors.Errorf("transformer: key %v: the encoder takes a source only", key)
		}
	case KindDecode:
		if key.Len != 1 || key.Cache < 1 || key.Cache >= maxPos {
			return errors.Errorf("transformer: key %v: a decode step takes 1 token and a cache capacity in [1, max_position_embeddings %d)", key, maxPos)
		}
	default:
		return errors.Errorf("transformer: key %v: unknown kind %q (want %q, %q, %q or %q)", key, key.Kind, KindTrain, KindLogits, KindEncode, KindDecode)
	}
	return nil
}

// graphInputs adds named per-run inputs to g and to b.Inputs.
type graphInputs struct {
	g *blocks.Graph
	b *train.Built
}

func (in graphInputs) add(name string, shape tensor.Shape, dt ...tensor.Dtype) *G.Node {
	n := blocks.Must(in.g.Input(name, shape, dt...))
	in.b.Inputs[name] = n
	return n
}

// fixedPositions is the fixed value [0 … steps−1] for each of batch rows.
func fixedPositions(g *blocks.Graph, name string, batch, steps int) *G.Node {
	return blocks.Must(g.Fixed(name, tensor.New(tensor.WithShape(batch*steps), tensor.WithBacking(blocks.PositionIDs(batch, steps, 0)))))
}

// encoder adds the source inputs and the encoder: its memory and each
// layer's self-attention weights. Call under Must.
func (t Translator) encoder(g *blocks.Graph, in graphInputs, B, S int) (memory *G.Node, weights []*G.Node) {
	src := in.add("src", tensor.Shape{B * S}, tensor.Int)
	mask := in.add("src_mask", tensor.Shape{B, S, S})
	x := blocks.Must(t.Embed(g, t.SrcEmbed, t.SrcPositions, src, fixedPositions(g, "src_positions", B, S), B, S))
	return blocks.Must2(t.Encode(g, x, mask))
}

// teacherForced adds KindTrain (withLoss) or KindLogits.
func (t Translator) teacherForced(g *blocks.Graph, B, S, T int, withLoss bool) (b train.Built, err error) {
	b = train.Built{Inputs: map[string]*G.Node{}, Outputs: map[string]*G.Node{}}
	in := graphInputs{g, &b}
	err = blocks.Build(func() error {
		memory, encW := t.encoder(g, in, B, S)
		tgtIn := in.add("tgt_in", tensor.Shape{B * T}, tensor.Int)
		memMask := in.add("memory_mask", tensor.Shape{B, T, S})
		causal := blocks.Must(g.Fixed("causal_mask", blocks.Must(blocks.AttentionMask(g.Store.Dtype(), B, T, T, nil, true))))
		y := blocks.Must(t.Embed(g, t.TgtEmbed, t.TgtPositions, tgtIn, fixedPositions(g, "tgt_positions", B, T), B, T))
		h, att := blocks.Must2(t.Decode(g, y, blocks.Must(t.MemoryKV(g, memory)), nil, causal, memMask))
		logits := blocks.Must(t.Logits(g, h))
		b.Outputs["logits"] = logits
		if !withLoss {
			for l, w := range encW {
				b.Outputs["enc_self."+strconv.Itoa(l)] = w
			}
			for l, a := range att {
				b.Outputs["dec_self."+strconv.Itoa(l)], b.Outputs["cross."+strconv.Itoa(l)] = a.Self, a.Cross
			}
			return nil
		}
		targets := in.add("targets", tensor.Shape{B * T})
		eps := t.Config.LabelSmoothing
		if g.Mode == blocks.Eval {
			eps = 0
		}
		return g.Block("loss", func() error {
			flat := blocks.Must(G.Reshape(logits, tensor.Shape{B * T, t.Config.TgtVocabSize}))
			b.Loss = blocks.Must(ops.CrossEntropy(flat, targets, IgnoreIndex, eps))
			return nil
		})
	})
	return b, err
}

// encode adds KindEncode.
func (t Translator) encode(g *blocks.Graph, B, S int) (b train.Built, err error) {
	b = train.Built{Inputs: map[string]*G.Node{}, Outputs: map[string]*G.Node{}}
	err = blocks.Build(func() error {
		memory, _ := t.encoder(g, graphInputs{g, &b}, B, S)
		for l, kv := range blocks.Must(t.MemoryKV(g, memory)) {
			b.Outputs["mem_k."+strconv.Itoa(l)], b.Outputs["mem_v."+strconv.Itoa(l)] = kv.K, kv.V
		}
		return nil
	})
	return b, err
}

// decodeStep adds KindDecode.
func (t Translator) decodeStep(g *blocks.Graph, B, S, N int) (b train.Built, err error) {
	b = train.Built{Inputs: map[string]*G.Node{}, Outputs: map[string]*G.Node{}}
	in := graphInputs{g, &b}
	cfg := t.Config
	err = blocks.Build(func() error {
		ids := in.add("ids", tensor.Shape{B}, tensor.Int)
		pos := in.add("positions", tensor.Shape{B}, tensor.Int)
		selfMask := in.add("self_mask", tensor.Shape{B, 1, N + 1})
		memMask := in.add("memory_mask", tensor.Shape{B, 1, S})
		past := make([]blocks.KV, cfg.NumDecoderLayers)
		memory := make([]blocks.KV, cfg.NumDecoderLayers)
		for l := range past {
			ls := strconv.Itoa(l)
			past[l] = blocks.KV{K: in.add("past_k."+ls, tensor.Shape{B, cfg.NHead, N, cfg.DK()}), V: in.add("past_v."+ls, tensor.Shape{B, cfg.NHead, N, cfg.DK()})}
			memory[l] = blocks.KV{K: in.add("mem_k."+ls, tensor.Shape{B, cfg.NHead, S, cfg.DK()}), V: in.add("mem_v."+ls, tensor.Shape{B, cfg.NHead, S, cfg.DK()})}
		}
		y := blocks.Must(t.Embed(g, t.TgtEmbed, t.TgtPositions, ids, pos, B, 1))
		h, att := blocks.Must2(t.Decode(g, y, memory, past, selfMask, memMask))
		b.Outputs["logits"] = blocks.Must(t.Logits(g, h))
		for l, a := range att {
			ls := strconv.Itoa(l)
			b.Outputs["k."+ls], b.Outputs["v."+ls], b.Outputs["cross."+ls] = a.KV.K, a.KV.V, a.Cross
		}
		return nil
	})
	return b, err
}

// SourceMasks are the additive key-padding masks of a batch of sources
// padded to S: the encoder's [B, S, S] and the cross-attention's [B, T, S]
// for T target positions (0 at a row's lengths[b] real tokens, −∞ after).
// An empty row (length 0, the Batcher's filler) attends to its first,
// padding, position, so that nothing is undefined; it carries no weight.
func SourceMasks(dt tensor.Dtype, lengths []int, S, T int) (src, memory *tensor.Dense, err error) {
	n := make([]int, len(lengths))
	for b, l := range lengths {
		if l < 0 || l > S {
			return nil, nil, errors.Errorf("transformer: source length %d of row %d is not in [0, %d]", l, b, S)
		}
		n[b] = max(l, 1)
	}
	if src, err = blocks.AttentionMask(dt, len(n), S, S, n, false); err != nil {
		return nil, nil, err
	}
	memory, err = blocks.AttentionMask(dt, len(n), T, S, n, false)
	return src, memory, err
}

// Batch turns a padded batch of sources and targets (from a
// datasets.Batcher; targets end with EOS if the model is to learn to stop)
// into the engine's batch: the decoder reads BOS then the target shifted
// right (teacher forcing) and predicts each target token; padding counts
// in no loss, and the batch is weighted by its counted targets.
func (t Translator) Batch(b datasets.Batch) (train.Batch, error) {
	src, tgt := b.Source, b.Target
	B, S, T := src.B, src.T, tgt.T
	if tgt.B != B || len(src.IDs) != B*S || len(tgt.IDs) != B*T || len(src.Lengths) != B || len(tgt.Lengths) != B {
		return train.Batch{}, errors.Errorf("transformer: batch of %d×%d sources (%d ids, %d lengths) and %d×%d targets (%d ids, %d lengths) does not fit together",
			B, S, len(src.IDs), len(src.Lengths), tgt.B, T, len(tgt.IDs), len(tgt.Lengths))
	}
	if B == 0 || S == 0 || T == 0 {
		return train.Batch{}, errors.Errorf("transformer: empty batch (%d rows, source length %d, target length %d)", B, S, T)
	}
	cfg := t.Config
	srcIDs, err := blocks.IDs(src.IDs, cfg.SrcVocabSize)
	if err != nil {
		return train.Batch{}, errors.Wrap(err, "transformer: source")
	}
	dt := t.Model.Store.Dtype()
	srcMask, memMask, err := SourceMasks(dt, src.Lengths, S, T)
	if err != nil {
		return train.Batch{}, err
	}
	tgtIn := make([]int, B*T)
	targets := make([]float64, B*T)
	n := 0
	for r := 0; r < B; r++ {
		if l := tgt.Lengths[r]; l < 0 || l > T {
			return train.Batch{}, errors.Errorf("transformer: target length %d of row %d is not in [0, %d]", l, r, T)
		}
		for i := 0; i < T; i++ {
			targets[r*T+i] = IgnoreIndex
			tgtIn[r*T+i] = cfg.Pad
			if i < tgt.Lengths[r] {
				id := tgt.IDs[r*T+i]
				if id < 0 || id >= cfg.TgtVocabSize {
					return train.Batch{}, errors.Errorf("transformer: target token %d at row %d, position %d is outside the vocabulary [0, %d)", id, r, i, cfg.TgtVocabSize)
				}
				targets[r*T+i] = float64(id)
				n++
			}
			switch {
			case i == 0:
				tgtIn[r*T] = cfg.BOS
			case i <= tgt.Lengths[r]:
				tgtIn[r*T+i] = tgt.IDs[r*T+i-1]
			}
		}
	}
	return train.Batch{
		Key: train.Key{Batch: B, Source: S, Len: T},
		Inputs: map[string]G.Value{
			"src": srcIDs, "src_mask": srcMask, "memory_mask": memMask,
			"tgt_in":  tensor.New(tensor.WithShape(B*T), tensor.WithBacking(tgtIn)),
			"targets": denseOf(dt, targets, B*T),
		},
		Weight: float64(n),
	}, nil
}

// denseOf is v as a tensor of dtype dt (float32 or float64).
func denseOf(dt tensor.Dtype, v []float64, shape ...int) *tensor.Dense {
	if dt == tensor.Float64 {
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(v))
	}
	w := make([]float32, len(v))
	for i, x := range v {
		w[i] = float32(x)
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(w))
}
