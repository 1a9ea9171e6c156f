package gpt

import (
	"math"
	"strconv"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/ops"
	"github.com/seq2gpt/seq2gpt/train"
)

// IgnoreIndex marks target positions that do not count in the loss
// (PyTorch's default ignore_index).
const IgnoreIndex = -100

// The graph functions of LM, by train.Key.Kind.
const (
	// KindLM ("") is the language model over B windows of T = Key.Len
	// tokens: inputs "ids" (tensor.Int [B·T]) and "targets" ([B·T],
	// IgnoreIndex where a position does not count); outputs the loss
	// L₁(U) = −Σ_i log P(u_i | u_{i−k}, …, u_{i−1}), averaged over the
	// counted targets, and "logits" [B, T, V].
	KindLM = ""
	// KindLogits is the same window without targets or loss: "ids" →
	// "logits".
	KindLogits = "logits"
	// KindDecode is one new token per row against a key/value cache of
	// N = Key.Cache earlier positions (Key.Len 1): inputs "ids" and
	// "positions" (tensor.Int [B]), "mask" [B, 1, N+1] and each layer's
	// "past_k.l", "past_v.l" [B, h, N, d_k]; outputs "logits" [B, 1, V]
	// and the new token's keys and values "k.l", "v.l" [B, h, 1, d_k].
	// Each token attends to the cached keys and values instead of
	// recomputing its prefix, so token t costs O(t), not O(t²).
	KindDecode = "decode"
	// KindAttention is the window without targets (Key.Mode Eval): "ids"
	// → "logits" and each layer's attention weights "attention.l"
	// [B, h, T, T], α_ij = softmax_j(q_i·k_j/√d_k) with j ≤ i, the
	// weights the model itself computes (for pictures of them).
	KindAttention = "attention"
)

// window adds the language model over batch windows of steps tokens to g
// (KindLM with a loss, KindLogits without, KindAttention with the
// attention weights). The causal mask and the position ids are fixed
// values of the graph.
func (m *Model) window(g *blocks.Graph, batch, steps int, kind string) (train.Built, error) {
	var b train.Built
	ids, err := g.Input("ids", tensor.Shape{batch * steps}, tensor.Int)
	if err != nil {
		return b, err
	}
	pos, err := g.Fixed("positions", tensor.New(tensor.WithShape(batch*steps), tensor.WithBacking(blocks.PositionIDs(batch, steps, 0))))
	if err != nil {
		return b, err
	}
	mv, err := blocks.AttentionMask(m.Store.Dtype(), batch, steps, steps, nil, true)
	if err != nil {
		return b, err
	}
	mask, err := g.Fixed("causal_mask", mv)
	if err != nil {
		return b, err
	}
	h, _, alphas, err := m.hidden(g, ids, pos, mask, batch, steps, nil)
	if err != nil {
		return b, err
	}
	logits, err := m.Logits(g, h)
	if err != nil {
		return b, err
	}
	b.Inputs = map[string]*G.Node{"ids": ids}
	b.Outputs = map[string]*G.Node{"logits": logits}
	switch kind {
	case KindAttention:
		for l, a := range alphas {
			b.Outputs["attention."+strconv.Itoa(l)] = a
		}
		return b, nil
	case KindLogits:
		return b, nil
	}
	targets, err := g.Input("targets", tensor.Shape{batch * steps})
	if err != nil {
		return b, err
	}
	b.Inputs["targets"] = targets
	err = g.Block("loss", func() error {
		flat, err := G.Reshape(logits, tensor.Shape{batch * steps, m.Config.VocabSize})
		if err != nil {
			return err
		}
		b.Loss, err = ops.CrossEntropy(flat, targets, IgnoreIndex, 0)
		return err
	})
	return b, err
}

// decodeStep adds one new token per row against a key/value cache of
// capacity N (KindDecode).
func (m *Model) decodeStep(g *blocks.Graph, batch, n int) (train.Built, error) {
	cfg := m.Config
	dk := cfg.NEmbd / cfg.NHead
	b := train.Built{Inputs: map[string]*G.Node{}, Outputs: map[string]*G.Node{}}
	ids, err := g.Input("ids", tensor.Shape{batch}, tensor.Int)
	if err != nil {
		return b, err
	}
	pos, err := g.Input("positions", tensor.Shape{batch}, tensor.Int)
	if err != nil {
		return b, err
	}
	mask, err := g.Input("mask", tensor.Shape{batch, 1, n + 1})
	if err != nil {
		return b, err
	}
	b.Inputs["ids"], b.Inputs["positions"], b.Inputs["mask"] = ids, pos, mask
	cache := make([]KV, cfg.NLayer)
	for l := range cache {
		shape := tensor.Shape{batch, cfg.NHead, n, dk}
		if cache[l].K, err = g.Input("past_k."+strconv.Itoa(l), shape); err != nil {
			return b, err
		}
		if cache[l].V, err = g.Input("past_v."+strconv.Itoa(l), shape); err != nil {
			return b, err
		}
		b.Inputs["past_k."+strconv.Itoa(l)], b.Inputs["past_v."+strconv.Itoa(l)] = cache[l].K, cache[l].V
	}
	h, kvs, err := m.Hidden(g, ids, pos, mask, batch, 1, cache)
	if err != nil {
		return b, err
	}
	if b.Outputs["logits"], err = m.Logits(g, h); err != nil {
		return b, err
	}
	for l, kv := range kvs {
		b.Outputs["k."+strconv.Itoa(l)], b.Outputs["v."+strconv.Itoa(l)] = kv.K, kv.V
	}
	return b, nil
}

// cacheCapacity is the smallest capacity of the doubling series 16, 32, …
// that holds t cached positions and the new one, capped at n_positions − 1:
// each capacity is a compiled program, so a few serve every length.
func cacheCapacity(t, nPositions int) int {
	c := 16
	for c < t+1 {
		c *= 2
	}
	return min(c, nPositions-1)
}

// decodeMask is [B, 1, N+1]: row b sees cache slots j < pos[b] and its own
// new token (the last slot); slots pos[b]…N−1 are empty.
func decodeMask(dt tensor.Dtype, capacity int, pos []int) *tensor.Dense {
	v := make([]float64, len(pos)*(capacity+1))
	for b, t := range pos {
		for j := t; j < capacity; j++ {
			v[b*(capacity+1)+j] = math.Inf(-1)
		}
	}
	return denseOf(dt, v, len(pos), 1, capacity+1)
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

// checkKey checks that key is one of LM's programs.
func (m *Model) checkKey(key train.Key) error {
	if key.Source != 0 || key.Choices != 0 {
		return errors.Errorf("gpt: key %v: GPT takes no source or choices", key)
	}
	switch key.Kind {
	case KindLM, KindLogits, KindAttention:
		if key.Cache != 0 {
			return errors.Errorf("gpt: key %v: a window program has no cache", key)
		}
		if key.Len > m.Config.NPositions {
			return errors.Errorf("gpt: key %v: %d steps exceed n_positions %d", key, key.Len, m.Config.NPositions)
		}
	case KindDecode:
		if key.Len != 1 || key.Cache < 1 || key.Cache >= m.Config.NPositions {
			return errors.Errorf("gpt: key %v: a decode step takes 1 token and a cache capacity in [1, n_positions %d)", key, m.Config.NPositions)
		}
	default:
		return errors.Errorf("gpt: key %v: unknown kind %q (want %q, %q, %q or %q)", key, key.Kind, KindLM, KindLogits, KindDecode, KindAttention)
	}
	return nil
}
