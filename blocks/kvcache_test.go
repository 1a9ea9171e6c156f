package blocks

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/internal/gradcheck"
)

// run runs g once and returns the values of nodes.
func run(t *testing.T, g *Graph, nodes ...*G.Node) []*tensor.Dense {
	t.Helper()
	vals := make([]G.Value, len(nodes))
	for i, n := range nodes {
		G.Read(n, &vals[i])
	}
	m := G.NewTapeMachine(g.G)
	defer m.Close()
	require.NoError(t, m.RunAll())
	out := make([]*tensor.Dense, len(nodes))
	for i, v := range vals {
		out[i] = v.(*tensor.Dense).Clone().(*tensor.Dense)
	}
	return out
}

// TestSelfAttendWithCacheEqualsForward: self-attention of positions 3…4
// against the cached keys and values of positions 0…2 gives Forward's
// causal output at those positions, and KeysValues + Attend give Forward's
// encoder–decoder attention.
func TestSelfAttendWithCacheEqualsForward(t *testing.T) {
	s := newStore64(t)
	m := Must(NewMultiHeadAttention(s, "m", MultiHeadConfig{DModel: 8, Heads: 2}))
	require.NoError(t, s.Set("m.in_proj_bias", gradcheck.Tensor(3, 0.5, 24).Data().([]float64)))
	xt := gradcheck.Tensor(1, 1, 2, 5, 8)
	full := NewGraph(s, Eval, 0)
	x := valued(t, full, "x", xt)
	causal := valued(t, full, "mask", Must(AttentionMask(tensor.Float64, 2, 5, 5, nil, true)))
	want, _, err := m.Forward(full, x, x, causal)
	require.NoError(t, err)
	wantV := run(t, full, want)[0]

	// Positions 0…2, their keys and values, then 3…4 against them.
	g := NewGraph(s, Eval, 0)
	x1 := valued(t, g, "x1", Must(xt.Slice(nil, G.S(0, 3))).(*tensor.Dense).Materialize().(*tensor.Dense))
	x2 := valued(t, g, "x2", Must(xt.Slice(nil, G.S(3, 5))).(*tensor.Dense).Materialize().(*tensor.Dense))
	m1 := valued(t, g, "m1", Must(AttentionMask(tensor.Float64, 2, 3, 3, nil, true)))
	m2 := valued(t, g, "m2", Must(AttentionMask(tensor.Float64, 2, 2, 5, nil, true)))
	_, _, kv, err := m.SelfAttend(g, x1, nil, m1)
	require.NoError(t, err)
	out, w, _, err := m.SelfAttend(g, x2, &kv, m2)
	require.NoError(t, err)
	assert.Equal(t, tensor.Shape{2, 2, 2, 5}, w.Shape())
	got := run(t, g, out)[0]
	wd, gd := wantV.Data().([]float64), got.Data().([]float64)
	for b := 0; b < 2; b++ {
		assert.InDeltaSlice(t, wd[(b*5+3)*8:(b*5+5)*8], gd[b*2*8:(b+1)*2*8], 1e-12, "row %d", b)
	}

	cross := NewGraph(s, Eval, 0)
	q := valued(t, cross, "q", gradcheck.Tensor(4, 1, 2, 3, 8))
	mem := valued(t, cross, "mem", xt)
	pad := valued(t, cross, "pad", Must(AttentionMask(tensor.Float64, 2, 3, 5, []int{5, 2}, false)))
	a, wa, err := m.Forward(cross, q, mem, pad)
	require.NoError(t, err)
	kvm, err := m.KeysValues(cross, mem)
	require.NoError(t, err)
	b, wb, err := m.Attend(cross, q, kvm, pad)
	require.NoError(t, err)
	vals := run(t, cross, a, b, wa, wb)
	assert.InDeltaSlice(t, vals[0].Data(), vals[1].Data(), 1e-12)
	assert.InDeltaSlice(t, vals[2].Data(), vals[3].Data(), 1e-12)

	// Shapes that do not fit are errors naming both shapes.
	bad := NewGraph(s, Eval, 0)
	q3 := valued(t, bad, "q", gradcheck.Tensor(4, 1, 3, 3, 8))
	_, _, err = m.Attend(bad, q3, kvm, nil)
	var se *ShapeError
	require.ErrorAs(t, err, &se)
	assert.Contains(t, err.Error(), "MultiHeadAttention memory keys has shape (2, 2, 5, 4), want (3, 2, T_k, 4)")
	_, _, _, err = m.SelfAttend(bad, q3, nil, pad)
	assert.ErrorContains(t, err, "MultiHeadAttention mask has shape (2, 3, 5), want (3, 3, 3)")
}

func TestSinusoidalPositionsLookUpTheTable(t *testing.T) {
	s := newStore64(t)
	p, err := NewSinusoidalPositions(10, 6)
	require.NoError(t, err)
	g := NewGraph(s, Eval, 0)
	ids, err := g.Input("pos", tensor.Shape{4}, tensor.Int)
	require.NoError(t, err)
	require.NoError(t, G.Let(ids, tensor.New(tensor.WithShape(4), tensor.WithBacking([]int{0, 7, 3, 9}))))
	y, err := p.Forward(g, ids, 2, 2)
	require.NoError(t, err)
	again, err := p.Forward(g, ids, 4, 1) // a second lookup shares the table
	require.NoError(t, err)
	assert.Equal(t, tensor.Shape{4, 1, 6}, again.Shape())
	got := run(t, g, y)[0].Data().([]float64)
	table := SinusoidalTable(10, 6)
	for i, pos := range []int{0, 7, 3, 9} {
		assert.InDeltaSlice(t, table[pos*6:(pos+1)*6], got[i*6:(i+1)*6], 0, "id %d", pos)
	}
	_, err = p.Forward(g, ids, 3, 2)
	assert.ErrorContains(t, err, "position id vector has shape (4), want (6) Int")
	_, err = NewSinusoidalPositions(0, 6)
	assert.Error(t, err)
}

func TestKVCacheGrowPutReorder(t *testing.T) {
	c, err := NewKVCache(tensor.Float32, 2, 3, 2, 2, 2)
	require.NoError(t, err)
	step := func(base float32) *tensor.Dense { // [3, 2, 1, 2]: row r head h = base + 10r + h
		v := make([]float32, 12)
		for r := 0; r < 3; r++ {
			for h := 0; h < 2; h++ {
				v[(r*2+h)*2], v[(r*2+h)*2+1] = base+float32(10*r+h), -(base + float32(10*r+h))
			}
		}
		return tensor.New(tensor.WithShape(3, 2, 1, 2), tensor.WithBacking(v))
	}
	for slot := 0; slot < 2; slot++ {
		for r := 0; r < 3; r++ {
			require.NoError(t, c.Put(1, step(float32(100*slot)), step(float32(100*slot+1)), r, slot))
		}
	}
	assert.ErrorContains(t, c.Put(1, step(0), step(0), 0, 2), "slot 2 outside 2 layers × 3 rows × 2 slots")
	assert.ErrorContains(t, c.Put(0, tensor.New(tensor.WithShape(3, 2, 2, 2), tensor.Of(tensor.Float32)), step(0), 0, 0), "new keys or values are (3, 2, 2, 2)")
	c.Grow(16)
	assert.Equal(t, 16, c.Capacity())
	k := c.K[1].Data().([]float32)
	at := func(r, h, slot int) float32 { return k[((r*2+h)*16+slot)*2] }
	assert.Equal(t, float32(0+21), at(2, 1, 0))
	assert.Equal(t, float32(100+10), at(1, 0, 1))
	assert.Equal(t, float32(0), at(1, 0, 2), "slots past those filled stay empty")
	require.NoError(t, c.Reorder([]int{2, 2}, 3))
	k = c.K[1].Data().([]float32)
	assert.Equal(t, float32(100+21), at(0, 1, 1))
	assert.Equal(t, float32(100+21), at(1, 1, 1))
	assert.Equal(t, float32(0), at(2, 1, 1), "a row past the reordered ones is empty")
	assert.Error(t, c.Reorder([]int{3}, 3))

	assert.Equal(t, 16, CacheCapacity(0, 100))
	assert.Equal(t, 32, CacheCapacity(16, 100))
	assert.Equal(t, 39, CacheCapacity(33, 39))
	m, err := CacheMask(tensor.Float64, 3, []int{0, 2})
	require.NoError(t, err)
	md := m.Data().([]float64)
	assert.Equal(t, []float64{-1, -1, -1, 0}, signs(md[:4]))
	assert.Equal(t, []float64{0, 0, -1, 0}, signs(md[4:]))
	_, err = CacheMask(tensor.Float64, 3, []int{4})
	assert.Error(t, err)
}

func signs(v []float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		if x < 0 {
			out[i] = -1
		}
	}
	return out
}
