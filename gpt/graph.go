package gpt

import (
	"math"
	"strconv"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/ops"
)

// IgnoreIndex marks target positions that do not count in the loss
// (PyTorch's default ignore_index).
const IgnoreIndex = -100

// LMGraph is the model over a window of T tokens for a batch of B rows:
// logits [B, T, V] and, when built with a loss, the next-token
// cross-entropy L₁(U) = −Σ_i log P(u_i | u_{i−k}, …, u_{i−1}), averaged over
// the targets that are not IgnoreIndex.
type LMGraph struct {
	*blocks.Graph
	Batch, Steps int
	IDs, Targets *G.Node
	Logits, Loss *G.Node
	model        *Model
}

// BuildLM adds the model to a new graph of the given mode and shape. The
// causal mask and the position ids are fixed values of the graph; the
// token ids (and targets) are set per run with Feed.
func (m *Model) BuildLM(mode blocks.Mode, batch, steps int, withLoss bool, dropoutSeed uint64) (*LMGraph, error) {
	if batch <= 0 || steps <= 0 {
		return nil, errors.Errorf("gpt: batch %d and steps %d must be positive", batch, steps)
	}
	if steps > m.Config.NPositions {
		return nil, errors.Errorf("gpt: %d steps exceed n_positions %d", steps, m.Config.NPositions)
	}
	return m.addLM(blocks.NewGraph(m.Store, mode, dropoutSeed), batch, steps, withLoss)
}

// addLM adds the language model to g (see BuildLM).
func (m *Model) addLM(g *blocks.Graph, batch, steps int, withLoss bool) (*LMGraph, error) {
	lg := &LMGraph{Graph: g, Batch: batch, Steps: steps, model: m}
	var err error
	if lg.IDs, err = g.Input("ids", tensor.Shape{batch * steps}, tensor.Int); err != nil {
		return nil, err
	}
	pos, err := fixedInput(g, "positions", tensor.New(tensor.WithShape(batch*steps), tensor.WithBacking(blocks.PositionIDs(batch, steps, 0))))
	if err != nil {
		return nil, err
	}
	mv, err := blocks.AttentionMask(m.Store.Dtype(), batch, steps, steps, nil, true)
	if err != nil {
		return nil, err
	}
	mask, err := fixedInput(g, "causal_mask", mv)
	if err != nil {
		return nil, err
	}
	h, _, err := m.Hidden(g, lg.IDs, pos, mask, batch, steps, nil)
	if err != nil {
		return nil, err
	}
	if lg.Logits, err = m.Logits(g, h); err != nil {
		return nil, err
	}
	if withLoss {
		if lg.Targets, err = g.Input("targets", tensor.Shape{batch * steps}); err != nil {
			return nil, err
		}
		err = g.Block("loss", func() error {
			flat, err := G.Reshape(lg.Logits, tensor.Shape{batch * steps, m.Config.VocabSize})
			if err != nil {
				return err
			}
			lg.Loss, err = ops.CrossEntropy(flat, lg.Targets, IgnoreIndex, 0)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return lg, nil
}

// fixedInput is an input node whose value is set once, at build time.
func fixedInput(g *blocks.Graph, name string, v *tensor.Dense) (*G.Node, error) {
	n, err := g.Input(name, v.Shape(), v.Dtype())
	if err != nil {
		return nil, err
	}
	return n, G.Let(n, v)
}

// Feed sets the token ids, B rows of T ids each, and, when the graph has a
// loss, the targets (IgnoreIndex where a position does not count).
func (lg *LMGraph) Feed(ids, targets []int) error {
	v := lg.model.Config.VocabSize
	if len(ids) != lg.Batch*lg.Steps {
		return errors.Errorf("gpt: %d ids for a [%d, %d] batch", len(ids), lg.Batch, lg.Steps)
	}
	t, err := blocks.IDs(ids, v)
	if err != nil {
		return err
	}
	if err := G.Let(lg.IDs, t); err != nil {
		return err
	}
	if lg.Targets == nil {
		if targets != nil {
			return errors.New("gpt: targets given to a graph built without a loss")
		}
		return nil
	}
	if len(targets) != len(ids) {
		return errors.Errorf("gpt: %d targets for %d ids", len(targets), len(ids))
	}
	tt := tensor.New(tensor.Of(lg.Store.Dtype()), tensor.WithShape(len(targets)))
	for i, id := range targets {
		if id != IgnoreIndex && (id < 0 || id >= v) {
			return errors.Errorf("gpt: target %d at position %d is outside the vocabulary [0, %d)", id, i, v)
		}
		switch d := tt.Data().(type) {
		case []float32:
			d[i] = float32(id)
		case []float64:
			d[i] = float64(id)
		}
	}
	return G.Let(lg.Targets, tt)
}

// decodeGraph runs one new token per row against a key/value cache of
// capacity N earlier positions: each token attends to the cached keys and
// values instead of recomputing the prefix. Caches come in capacities that
// double (16, 32, …, n_positions − 1), each with its own compiled graph, so
// token t costs O(t) rather than the O(t²) of recomputing a t-token window.
type decodeGraph struct {
	*blocks.Graph
	batch, capacity, heads, dk int
	ids, pos, mask             *G.Node
	pastK, pastV               []*G.Node
	logits                     G.Value
	newK, newV                 []G.Value
	vm                         G.VM
}

func (m *Model) buildDecode(batch, n int) (*decodeGraph, error) {
	cfg := m.Config
	if n < 1 || n >= cfg.NPositions {
		return nil, errors.Errorf("gpt: cache capacity %d is not in [1, n_positions %d)", n, cfg.NPositions)
	}
	g := blocks.NewGraph(m.Store, blocks.Eval, 0)
	d := &decodeGraph{Graph: g, batch: batch, capacity: n, heads: cfg.NHead, dk: cfg.NEmbd / cfg.NHead}
	var err error
	if d.ids, err = g.Input("ids", tensor.Shape{batch}, tensor.Int); err != nil {
		return nil, err
	}
	if d.pos, err = g.Input("positions", tensor.Shape{batch}, tensor.Int); err != nil {
		return nil, err
	}
	if d.mask, err = g.Input("mask", tensor.Shape{batch, 1, n + 1}); err != nil {
		return nil, err
	}
	cache := make([]KV, cfg.NLayer)
	for l := range cache {
		shape := tensor.Shape{batch, cfg.NHead, n, d.dk}
		k, err := g.Input("past_k."+strconv.Itoa(l), shape)
		if err != nil {
			return nil, err
		}
		v, err := g.Input("past_v."+strconv.Itoa(l), shape)
		if err != nil {
			return nil, err
		}
		d.pastK, d.pastV = append(d.pastK, k), append(d.pastV, v)
		cache[l] = KV{K: k, V: v}
	}
	h, kvs, err := m.Hidden(g, d.ids, d.pos, d.mask, batch, 1, cache)
	if err != nil {
		return nil, err
	}
	logits, err := m.Logits(g, h)
	if err != nil {
		return nil, err
	}
	G.Read(logits, &d.logits)
	d.newK, d.newV = make([]G.Value, len(kvs)), make([]G.Value, len(kvs))
	for l, kv := range kvs {
		G.Read(kv.K, &d.newK[l])
		G.Read(kv.V, &d.newV[l])
	}
	d.vm = G.NewTapeMachine(g.G)
	return d, nil
}

// cacheCapacity is the smallest capacity of the doubling series that holds
// t cached positions and the new one, capped at n_positions − 1.
func cacheCapacity(t, nPositions int) int {
	c := 16
	for c < t+1 {
		c *= 2
	}
	return min(c, nPositions-1)
}

// decodeMask is [B, 1, N+1]: cache slots j < t are visible, slots t…N−1
// are empty, and the last slot (the new token itself) is visible.
func decodeMask(dt tensor.Dtype, batch, capacity, t int) *tensor.Dense {
	v := make([]float32, batch*(capacity+1))
	for b := 0; b < batch; b++ {
		for j := t; j < capacity; j++ {
			v[b*(capacity+1)+j] = float32(math.Inf(-1))
		}
	}
	if dt == tensor.Float64 {
		w := make([]float64, len(v))
		for i, x := range v {
			w[i] = float64(x)
		}
		return tensor.New(tensor.WithShape(batch, 1, capacity+1), tensor.WithBacking(w))
	}
	return tensor.New(tensor.WithShape(batch, 1, capacity+1), tensor.WithBacking(v))
}
