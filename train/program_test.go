package train

import (
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/ops"
)

func TestKeyString(t *testing.T) {
	for _, c := range []struct {
		key  Key
		want string
	}{
		{Key{Batch: 4, Len: 8}, "train/B4/T8"},
		{Key{Mode: blocks.Eval, Batch: 8, Source: 24, Len: 16}, "eval/B8/S24/T16"},
		{Key{Mode: blocks.Eval, Kind: "decode", Batch: 1, Len: 1, Cache: 32}, "eval/decode/B1/T1/N32"},
		{Key{Batch: 2, Choices: 4, Len: 32}, "train/B2/C4/T32"},
	} {
		assert.Equal(t, c.want, c.key.String())
	}
}

// TestProgramChecksAndReads runs a compiled evaluation program directly:
// Let checks names, shapes and dtypes; Run needs every input; outputs are
// read after a run and are the program's own values until the next.
func TestProgramChecksAndReads(t *testing.T) {
	m := newTinyLM(t, tensor.Float32, 1, tinyConfig{Vocab: 8, Dim: 4})
	_, err := Compile(m, Key{Batch: 0, Len: 3}, 0)
	assert.ErrorContains(t, err, "positive batch size")
	_, err = Compile(m, Key{Batch: 2, Len: 3, Source: -1}, 0)
	assert.ErrorContains(t, err, "no negative size")
	p, err := Compile(m, Key{Mode: blocks.Eval, Batch: 2, Len: 3}, 0)
	require.NoError(t, err)
	defer p.Close()
	assert.Equal(t, []string{"ids", "targets"}, p.Inputs())
	assert.Equal(t, []string{"logits"}, p.Outputs())
	assert.True(t, p.HasLoss())

	b := lmBatch(tensor.Float32, 8, 2, 3, 0, nil)
	assert.ErrorContains(t, p.Let("mask", b.Inputs["ids"]), `no input "mask" (the graph takes [ids targets])`)
	assert.ErrorContains(t, p.Let("ids", b.Inputs["targets"]), `input "ids" is (6) float32, the graph wants (6) int`)
	short := lmBatch(tensor.Float32, 8, 2, 2, 0, nil)
	assert.ErrorContains(t, p.Let("ids", short.Inputs["ids"]), `input "ids" is (4) int, the graph wants (6) int`)
	_, err = p.Output("logits")
	assert.ErrorContains(t, err, "before any run")
	require.NoError(t, p.Let("ids", b.Inputs["ids"]))
	assert.ErrorContains(t, p.Run(), `input "targets" was never set`)
	require.NoError(t, p.Let("targets", b.Inputs["targets"]))
	require.NoError(t, p.Run())
	loss, err := p.Loss()
	require.NoError(t, err)
	assert.InDelta(t, math.Log(8), loss, 1)
	logits, err := p.Output("logits")
	require.NoError(t, err)
	assert.Equal(t, tensor.Shape{2, 3, 8}, logits.Shape())
	_, err = p.Output("attention")
	assert.ErrorContains(t, err, `no output "attention"`)

	// The same program through the Trainer's Evaluate gives the same loss.
	tr, err := New(m, Config{Optimizer: newAdamW(t), Schedule: Constant(1)})
	require.NoError(t, err)
	defer tr.Close()
	ev, err := tr.Evaluate(b)
	require.NoError(t, err)
	assert.Equal(t, loss, ev.Loss)

	require.NoError(t, p.Close())
	assert.ErrorContains(t, p.Run(), "closed")
}

func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	m := newTinyLM(t, tensor.Float32, 1, tinyConfig{Vocab: 8, Dim: 4})
	var built []Key
	c, err := NewCache(2, func(k Key) (*Program, error) {
		built = append(built, k)
		return Compile(m, k, 0)
	})
	require.NoError(t, err)
	defer c.Close()
	k := func(T int) Key { return Key{Mode: blocks.Eval, Batch: 1, Len: T} }
	get := func(T int) *Program {
		p, err := c.Get(k(T))
		require.NoError(t, err)
		return p
	}
	p1 := get(1)
	get(2)
	assert.Same(t, p1, get(1), "a hit")
	get(3) // evicts T2, the least recently used
	assert.Equal(t, []Key{k(3), k(1)}, c.Keys())
	assert.Equal(t, CacheStats{Builds: 3, Hits: 1, Evictions: 1}, c.Stats())
	get(2) // built again, evicts T1
	assert.Equal(t, []Key{k(1), k(2), k(3), k(2)}, built)
	assert.Equal(t, 2, c.Len())
	assert.ErrorContains(t, p1.Run(), "closed", "an evicted program is closed")

	_, err = NewCache(-1, func(Key) (*Program, error) { return nil, nil })
	assert.ErrorContains(t, err, "capacity -1 is negative")
	d, err := NewCache(0, func(Key) (*Program, error) { return nil, nil })
	require.NoError(t, err)
	assert.Equal(t, DefaultMaxPrograms, d.Cap())
	_, err = d.Get(k(1))
	assert.ErrorContains(t, err, "returned no program")
	require.NoError(t, c.Close())
	assert.Zero(t, c.Len())
}

// TestNonFiniteErrorIsTyped: a refused step is a *NonFiniteError a caller
// can inspect with errors.As, through the wrapping.
func TestNonFiniteErrorIsTyped(t *testing.T) {
	m := newTinyLM(t, tensor.Float32, 1, tinyConfig{Vocab: 8, Dim: 4})
	tr, err := New(m, Config{Optimizer: newAdamW(t), Schedule: Constant(1)})
	require.NoError(t, err)
	defer tr.Close()
	w, _ := m.store.Get("lm_head.bias")
	w.Data().([]float32)[3] = float32(math.Inf(1))
	_, err = tr.Step(lmBatch(tensor.Float32, 8, 2, 3, 0, nil))
	var nf *NonFiniteError
	require.True(t, errors.As(err, &nf), "%v", err)
	assert.Equal(t, 1, nf.Step)
	assert.True(t, math.IsNaN(nf.Loss) || math.IsInf(nf.Loss, 0))
	assert.Equal(t, "wte.weight", nf.Param, "the first gradient in store order")
	assert.False(t, nf.InValue)
	assert.Equal(t, "lm_head.bias", nf.Weight)
	assert.Equal(t, 3, nf.WeightIndex)
	assert.True(t, math.IsInf(nf.WeightValue, 1))
	assert.Equal(t, err.Error(), nf.Error())
}

// Only the program a Cache returned last keeps its ops' tensors: running
// another releases it, running it again reallocates them, and running one
// key after another reuses them (the same bytes kept, nothing released).
func TestCacheReleasesIdlePrograms(t *testing.T) {
	m := newTinyLM(t, tensor.Float32, 1, tinyConfig{Vocab: 8, Dim: 4})
	c, err := NewCache(4, func(k Key) (*Program, error) { return Compile(m, k, 0) })
	require.NoError(t, err)
	defer c.Close()
	run := func(T int) *Program {
		p, err := c.Get(Key{Mode: blocks.Train, Batch: 2, Len: T})
		require.NoError(t, err)
		b := lmBatch(tensor.Float32, 8, 2, T, 0, nil)
		for name, v := range b.Inputs {
			require.NoError(t, p.Let(name, v))
		}
		require.NoError(t, p.Run())
		return p
	}
	kept := func(p *Program) int { return ops.KeptBytes(p.Graph().G) }
	a := run(3)
	ka := kept(a)
	assert.Positive(t, ka, "a run keeps its tensors")
	assert.Equal(t, ka, kept(run(3)), "the same key again: the same tensors")
	b := run(5)
	assert.Zero(t, kept(a), "another program ran: the idle one let go")
	assert.Positive(t, kept(b))
	loss, err := b.Loss()
	require.NoError(t, err)
	run(3)
	assert.Zero(t, kept(b))
	assert.Equal(t, ka, kept(a), "reallocated by its next run")
	again, err := run(5).Loss()
	require.NoError(t, err)
	assert.Equal(t, loss, again, "released and reallocated, the same result")
}
