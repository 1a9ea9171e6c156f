package train

import (
	"testing"

	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/ops"
)

// tinyLM is the test model: a next-token language model
//
//	logits = W_out · (x + FFN(x)) + b,  x = Embedding(ids)
//
// trained with cross-entropy (ignore index −100).
type tinyLM struct {
	store *blocks.Store
	emb   *blocks.Embedding
	ffn   *blocks.FeedForward
	out   *blocks.Linear
	vocab int
}

type tinyConfig struct {
	Vocab, Dim int
	Dropout    float64
}

func newTinyLM(t testing.TB, dt tensor.Dtype, seed uint64, cfg tinyConfig) *tinyLM {
	t.Helper()
	s, err := blocks.NewStore(dt, seed)
	require.NoError(t, err)
	emb, err := blocks.NewEmbedding(s, "wte", cfg.Vocab, cfg.Dim, blocks.Normal(0, 0.5))
	require.NoError(t, err)
	ffn, err := blocks.NewFeedForward(s, "mlp", blocks.FeedForwardConfig{
		DModel: cfg.Dim, DFF: 2 * cfg.Dim, Activation: blocks.GELU, Dropout: cfg.Dropout})
	require.NoError(t, err)
	out, err := blocks.NewLinear(s, "lm_head", blocks.LinearConfig{In: cfg.Dim, Out: cfg.Vocab})
	require.NoError(t, err)
	return &tinyLM{store: s, emb: emb, ffn: ffn, out: out, vocab: cfg.Vocab}
}

func (m *tinyLM) Store() *blocks.Store { return m.store }

func (m *tinyLM) Build(g *blocks.Graph, k Key) (Built, error) {
	n := k.Batch * k.Len
	ids, err := g.Input("ids", tensor.Shape{n}, tensor.Int)
	if err != nil {
		return Built{}, err
	}
	targets, err := g.Input("targets", tensor.Shape{n})
	if err != nil {
		return Built{}, err
	}
	x, err := m.emb.Forward(g, ids, k.Batch, k.Len)
	if err != nil {
		return Built{}, err
	}
	h, err := m.ffn.Forward(g, x)
	if err != nil {
		return Built{}, err
	}
	if h, err = G.Add(x, h); err != nil {
		return Built{}, err
	}
	logits, err := m.out.Forward(g, h)
	if err != nil {
		return Built{}, err
	}
	flat, err := G.Reshape(logits, tensor.Shape{n, m.vocab})
	if err != nil {
		return Built{}, err
	}
	loss, err := ops.CrossEntropy(flat, targets, -100, 0)
	if err != nil {
		return Built{}, err
	}
	return Built{
		Loss:    loss,
		Inputs:  map[string]*G.Node{"ids": ids, "targets": targets},
		Outputs: map[string]*G.Node{"logits": logits},
	}, nil
}

// lmBatch is batch rows of a deterministic sequence whose next token is
// (3·id + 1) mod vocab, starting at different tokens; the last ignored
// positions of each row (ignore[b] of them) have target −100.
func lmBatch(dt tensor.Dtype, vocab, batch, steps, start int, ignore []int) Batch {
	ids := make([]int, 0, batch*steps)
	tg := make([]float64, 0, batch*steps)
	for b := 0; b < batch; b++ {
		id := (start + 5*b) % vocab
		for s := 0; s < steps; s++ {
			next := (3*id + 1) % vocab
			ids = append(ids, id)
			if ignore != nil && s >= steps-ignore[b] {
				tg = append(tg, -100)
			} else {
				tg = append(tg, float64(next))
			}
			id = next
		}
	}
	counted := 0
	for _, x := range tg {
		if x != -100 {
			counted++
		}
	}
	return Batch{
		Key: Key{Batch: batch, Len: steps},
		Inputs: map[string]G.Value{
			"ids":     tensor.New(tensor.WithShape(len(ids)), tensor.WithBacking(ids)),
			"targets": fixTensor{Shape: []int{len(tg)}, Data: tg}.dense(dt),
		},
		Weight: float64(counted),
	}
}
