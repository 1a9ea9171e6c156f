package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/ops"
)

// toySeq2Seq is an encoder–decoder-shaped test model whose graph depends
// on both the source length S and the target length T:
//
//	c   = Σ_s w_s·E[x_s]                  (mean of the source embeddings)
//	h_t = tanh(E[y_{t−1}] + W_c·c)
//	P(y_t | y_<t, x) = softmax(W_o·h_t + b_o)
//
// Inputs: "src" (int [B·S]), "src_weights" [B, S, 1] (1/|x| at real tokens,
// 0 at padding and in empty rows), "tgt_in" (int [B·T], the targets shifted
// right after a start token) and "targets" ([B·T], −100 at padding).
type toySeq2Seq struct {
	store      *blocks.Store
	emb        *blocks.Embedding
	ctx, out   *blocks.Linear
	vocab, dim int
}

func newToySeq2Seq(t testing.TB, vocab, dim int) *toySeq2Seq {
	s, err := blocks.NewStore(tensor.Float32, 3)
	require.NoError(t, err)
	m := &toySeq2Seq{store: s, vocab: vocab, dim: dim}
	m.emb, err = blocks.NewEmbedding(s, "embed", vocab, dim, blocks.Normal(0, 0.5))
	require.NoError(t, err)
	m.ctx, err = blocks.NewLinear(s, "ctx", blocks.LinearConfig{In: dim, Out: dim})
	require.NoError(t, err)
	m.out, err = blocks.NewLinear(s, "out", blocks.LinearConfig{In: dim, Out: vocab})
	require.NoError(t, err)
	return m
}

func (m *toySeq2Seq) Store() *blocks.Store { return m.store }

func (m *toySeq2Seq) Build(g *blocks.Graph, k Key) (Built, error) {
	B, S, T := k.Batch, k.Source, k.Len
	if S == 0 || T == 0 {
		return Built{}, fmt.Errorf("toy: key %v needs a source and a target length", k)
	}
	src, err := g.Input("src", tensor.Shape{B * S}, tensor.Int)
	if err != nil {
		return Built{}, err
	}
	w, err := g.Input("src_weights", tensor.Shape{B, S, 1})
	if err != nil {
		return Built{}, err
	}
	tgtIn, err := g.Input("tgt_in", tensor.Shape{B * T}, tensor.Int)
	if err != nil {
		return Built{}, err
	}
	targets, err := g.Input("targets", tensor.Shape{B * T})
	if err != nil {
		return Built{}, err
	}
	x, err := m.emb.Forward(g, src, B, S) // [B, S, d]
	if err != nil {
		return Built{}, err
	}
	c := G.Must(G.Sum(G.Must(G.BroadcastHadamardProd(x, w, nil, []byte{2})), 1)) // [B, d]
	c, err = m.ctx.Forward(g, c)
	if err != nil {
		return Built{}, err
	}
	y, err := m.emb.Forward(g, tgtIn, B, T) // [B, T, d]
	if err != nil {
		return Built{}, err
	}
	h := G.Must(G.Tanh(G.Must(G.BroadcastAdd(y, G.Must(G.Reshape(c, tensor.Shape{B, 1, m.dim})), nil, []byte{1}))))
	logits, err := m.out.Forward(g, h)
	if err != nil {
		return Built{}, err
	}
	loss, err := ops.CrossEntropy(G.Must(G.Reshape(logits, tensor.Shape{B * T, m.vocab})), targets, -100, 0)
	if err != nil {
		return Built{}, err
	}
	return Built{Loss: loss, Inputs: map[string]*G.Node{"src": src, "src_weights": w, "tgt_in": tgtIn, "targets": targets}}, nil
}

// toyBatch turns a padded batch into the model's inputs: key (B, S, T),
// weighted by its real target tokens (empty rows count nothing).
func toyBatch(b datasets.Batch, bos int) Batch {
	B, S, T := b.Source.B, b.Source.T, b.Target.T
	w := make([]float32, B*S)
	for r := 0; r < B; r++ {
		for s := 0; s < b.Source.Lengths[r]; s++ {
			w[r*S+s] = 1 / float32(b.Source.Lengths[r])
		}
	}
	tgtIn := make([]int, B*T)
	targets := make([]float32, B*T)
	n := 0
	for r := 0; r < B; r++ {
		for t := 0; t < T; t++ {
			targets[r*T+t] = -100
			if t < b.Target.Lengths[r] {
				targets[r*T+t] = float32(b.Target.IDs[r*T+t])
				n++
			}
			if t == 0 {
				tgtIn[r*T] = bos
			} else {
				tgtIn[r*T+t] = b.Target.IDs[r*T+t-1]
			}
		}
	}
	return Batch{
		Key: Key{Batch: B, Source: S, Len: T},
		Inputs: map[string]G.Value{
			"src":         tensor.New(tensor.WithShape(B*S), tensor.WithBacking(append([]int(nil), b.Source.IDs...))),
			"src_weights": tensor.New(tensor.WithShape(B, S, 1), tensor.WithBacking(w)),
			"tgt_in":      tensor.New(tensor.WithShape(B*T), tensor.WithBacking(tgtIn)),
			"targets":     tensor.New(tensor.WithShape(B*T), tensor.WithBacking(targets)),
		},
		Weight: float64(n),
	}
}

// toyData is a constructed task of many lengths: a source of 1–40 tokens
// drawn from one of four topics' token sets; its target, 1–40 tokens long
// (independently), starts with the topic's marker and counts up from it.
// The first target token needs the encoder, the rest the decoder.
func toyData(n int, seed uint64) (src, tgt [][]int) {
	const vocab = 24
	rng := rand.New(rand.NewPCG(seed, 1))
	for range n {
		topic := rng.IntN(4)
		s := make([]int, 1+rng.IntN(40))
		for i := range s {
			s[i] = 8 + 4*topic + rng.IntN(4) // topic k: tokens 8+4k … 11+4k
		}
		t := make([]int, 1+rng.IntN(40))
		for i := range t {
			t[i] = (2 + topic + i) % vocab
		}
		src, tgt = append(src, s), append(tgt, t)
	}
	return src, tgt
}

// TestEncoderDecoderBucketsBoundPrograms trains the encoder–decoder toy
// through the Trainer on batches of many different source and target
// lengths. With buckets, the programs compiled are exactly the (mode, B,
// S, T) keys of the bucket pairs used, a handful against the dozens of
// shapes unbucketed batches would compile; with a cache smaller than
// that, programs are evicted (counted) and rebuilt, and training is
// bit-identical.
func TestEncoderDecoderBucketsBoundPrograms(t *testing.T) {
	const bos = 1
	src, tgt := toyData(400, 7)
	buckets, err := datasets.BucketsOf(10, 40)
	require.NoError(t, err)
	bcfg := datasets.BatchConfig{MaxTokens: 640, MaxRows: 16, Pad: 0, Seed: 3, Shuffle: true, Buckets: buckets}
	batcher, err := datasets.NewBatcher(src[:360], tgt[:360], bcfg)
	require.NoError(t, err)
	bcfg.Shuffle = false
	valid, err := datasets.NewBatcher(src[360:], tgt[360:], bcfg)
	require.NoError(t, err)

	// What the plans ask for: bucketed keys, and the shapes without buckets.
	plan := append(batcher.Plan(0), batcher.Plan(1)...)
	keys := map[Key]bool{}
	for _, idx := range plan {
		b := toyBatch(batcher.Make(idx), bos)
		keys[b.Key] = true
	}
	evalKeys := map[Key]bool{}
	for _, idx := range valid.Plan(0) {
		k := toyBatch(valid.Make(idx), bos).Key
		k.Mode = blocks.Eval
		evalKeys[k] = true
	}
	bcfg.Buckets, bcfg.Shuffle = datasets.Buckets{}, true
	plain, err := datasets.NewBatcher(src[:360], tgt[:360], bcfg)
	require.NoError(t, err)
	raw := map[[3]int]bool{}
	for _, idx := range append(plain.Plan(0), plain.Plan(1)...) {
		b := plain.Make(idx)
		raw[[3]int{b.Source.B, b.Source.T, b.Target.T}] = true
	}
	t.Logf("%d batches over 2 epochs: %d training keys, %d evaluation keys with buckets; %d shapes without", len(plan), len(keys), len(evalKeys), len(raw))
	require.LessOrEqual(t, len(keys), 16, "at most one key per bucket pair (4 × 4)")
	require.Greater(t, len(raw), 2*len(keys), "buckets cut the shapes")

	run := func(maxPrograms int) (*Trainer, []float64, float64) {
		m := newToySeq2Seq(t, 24, 16)
		tr, err := New(m, Config{Optimizer: newAdamW(t), Schedule: Constant(0.03), ClipNorm: 1, MaxPrograms: maxPrograms})
		require.NoError(t, err)
		var losses []float64
		for _, idx := range plan {
			r, err := tr.Step(toyBatch(batcher.Make(idx), bos))
			require.NoError(t, err)
			losses = append(losses, r.Loss)
		}
		var sum, n float64
		for _, idx := range valid.Plan(0) {
			b := toyBatch(valid.Make(idx), bos)
			r, err := tr.Evaluate(b)
			require.NoError(t, err)
			sum, n = sum+r.Loss*b.Weight, n+b.Weight
		}
		return tr, losses, sum / n
	}

	tr, losses, validLoss := run(64)
	defer tr.Close()
	st := tr.Stats()
	assert.Equal(t, len(keys)+len(evalKeys), st.Builds, "one program per bucketed key")
	assert.Zero(t, st.Evictions)
	assert.Len(t, tr.Programs(), st.Builds)
	for _, k := range tr.Programs() {
		assert.True(t, keys[k] || evalKeys[k], "program %v is a bucket pair's", k)
		assert.Contains(t, buckets.Edges(), k.Source)
		assert.Contains(t, buckets.Edges(), k.Len)
	}
	first, last := mean(losses[:10]), mean(losses[len(losses)-10:])
	t.Logf("training loss %.3f → %.3f over %d steps, validation %.3f (log V = %.3f)", first, last, len(losses), validLoss, math.Log(24))
	assert.Less(t, last, 0.5*first, "the toy learns")
	assert.Less(t, validLoss, 0.5*first)

	// A cache of 4 programs, fewer than the keys used: evictions are
	// counted, each one a rebuild, and nothing else changes.
	small, smallLosses, smallValid := run(4)
	defer small.Close()
	ss := small.Stats()
	t.Logf("cache of 4: %d builds, %d evictions", ss.Builds, ss.Evictions)
	assert.Greater(t, ss.Builds, st.Builds)
	assert.Equal(t, ss.Builds-4, ss.Evictions, "once full, every build evicts one")
	assert.Len(t, small.Programs(), 4)
	assert.Equal(t, losses, smallLosses, "evicting programs changes no update")
	assert.Equal(t, validLoss, smallValid)
}

func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}
