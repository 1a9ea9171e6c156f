package blocks

import (
	"math"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// KVCache is the key/value cache of incremental decoding, held outside any
// graph: for each layer l, K[l] and V[l] [B, h, N, d_k], whose slot t of
// row b holds the keys and values of row b's position t. A decode step's
// program takes them as inputs — with CacheMask over the slots each row
// has filled — and returns its new token's keys and values [B, h, 1, d_k],
// which Put writes into the row's next slot. So token t attends to t cached
// positions instead of recomputing them: O(t) work, not O(t²).
//
// Every capacity N is a compiled program, so capacities follow the
// doubling series of CacheCapacity and Grow moves the cache up it.
type KVCache struct {
	K, V []*tensor.Dense
}

// NewKVCache returns an empty cache of layers layers, rows rows and
// capacity slots, for heads heads of d_k features.
func NewKVCache(dt tensor.Dtype, layers, rows, heads, dk, capacity int) (*KVCache, error) {
	if err := positive("KVCache sizes", layers, rows, heads, dk, capacity); err != nil {
		return nil, errors.Wrap(err, "blocks: KVCache")
	}
	if dt != tensor.Float32 && dt != tensor.Float64 {
		return nil, errors.Errorf("blocks: KVCache: unsupported dtype %v", dt)
	}
	c := &KVCache{K: make([]*tensor.Dense, layers), V: make([]*tensor.Dense, layers)}
	for l := range c.K {
		c.K[l] = tensor.New(tensor.Of(dt), tensor.WithShape(rows, heads, capacity, dk))
		c.V[l] = tensor.New(tensor.Of(dt), tensor.WithShape(rows, heads, capacity, dk))
	}
	return c, nil
}

// Rows is B.
func (c *KVCache) Rows() int { return c.K[0].Shape()[0] }

// Capacity is N, the slots of each row.
func (c *KVCache) Capacity() int { return c.K[0].Shape()[2] }

// Grow moves the cache to capacity slots (no fewer than it has), keeping
// every slot filled so far.
func (c *KVCache) Grow(capacity int) {
	if capacity <= c.Capacity() {
		return
	}
	for l := range c.K {
		c.K[l], c.V[l] = widenSlots(c.K[l], capacity), widenSlots(c.V[l], capacity)
	}
}

// widenSlots copies src [B, h, N₁, d_k] into the first N₁ slots of a new
// [B, h, n, d_k].
func widenSlots(src *tensor.Dense, n int) *tensor.Dense {
	s := src.Shape()
	dst := tensor.New(tensor.Of(src.Dtype()), tensor.WithShape(s[0], s[1], n, s[3]))
	switch d := dst.Data().(type) {
	case []float32:
		widenSlotsOf(d, src.Data().([]float32), s, n)
	case []float64:
		widenSlotsOf(d, src.Data().([]float64), s, n)
	}
	return dst
}

func widenSlotsOf[T float32 | float64](dst, src []T, s tensor.Shape, n int) {
	old, dk := s[2], s[3]
	for bh := 0; bh < s[0]*s[1]; bh++ {
		copy(dst[bh*n*dk:bh*n*dk+old*dk], src[bh*old*dk:(bh+1)*old*dk])
	}
}

// Put writes row b of a step's new keys k and values v of layer l
// ([B, h, 1, d_k], B the cache's rows) into slot t.
func (c *KVCache) Put(l int, k, v G.Value, b, t int) error {
	if l < 0 || l >= len(c.K) || b < 0 || b >= c.Rows() || t < 0 || t >= c.Capacity() {
		return errors.Errorf("blocks: KVCache: layer %d, row %d, slot %d outside %d layers × %d rows × %d slots", l, b, t, len(c.K), c.Rows(), c.Capacity())
	}
	s := c.K[l].Shape()
	want := tensor.Shape{s[0], s[1], 1, s[3]}
	for _, x := range []struct {
		dst *tensor.Dense
		src G.Value
	}{{c.K[l], k}, {c.V[l], v}} {
		if !x.src.Shape().Eq(want) || x.src.Dtype() != x.dst.Dtype() {
			return errors.Errorf("blocks: KVCache: new keys or values are %v %v, want %v %v", x.src.Shape(), x.src.Dtype(), want, x.dst.Dtype())
		}
		switch d := x.dst.Data().(type) {
		case []float32:
			putSlot(d, x.src.Data().([]float32), s, b, t)
		case []float64:
			putSlot(d, x.src.Data().([]float64), s, b, t)
		}
	}
	return nil
}

func putSlot[T float32 | float64](dst, src []T, s tensor.Shape, b, t int) {
	h, n, dk := s[1], s[2], s[3]
	for i := b * h; i < (b+1)*h; i++ {
		copy(dst[(i*n+t)*dk:(i*n+t+1)*dk], src[i*dk:(i+1)*dk])
	}
}

// Reorder makes row i of the cache what row rows[i] was (beam search's
// reordering), with total ≥ len(rows) rows, those past len(rows) empty.
func (c *KVCache) Reorder(rows []int, total int) error {
	for l := range c.K {
		k, err := GatherRows(c.K[l], rows, total)
		if err != nil {
			return err
		}
		v, err := GatherRows(c.V[l], rows, total)
		if err != nil {
			return err
		}
		c.K[l], c.V[l] = k, v
	}
	return nil
}

// GatherRows returns a tensor of total rows along the first axis whose
// row i is row rows[i] of src (rows past len(rows) are zeros): the rows of
// a cache or of an encoder's memory, reordered for beam search.
func GatherRows(src *tensor.Dense, rows []int, total int) (*tensor.Dense, error) {
	s := src.Shape()
	if len(rows) > total {
		return nil, errors.Errorf("blocks: GatherRows: %d rows for a total of %d", len(rows), total)
	}
	for _, r := range rows {
		if r < 0 || r >= s[0] {
			return nil, errors.Errorf("blocks: GatherRows: row %d of %d", r, s[0])
		}
	}
	shape := append(tensor.Shape{total}, s[1:]...)
	dst := tensor.New(tensor.Of(src.Dtype()), tensor.WithShape(shape...))
	row := s.TotalSize() / s[0]
	switch d := dst.Data().(type) {
	case []float32:
		gather(d, src.Data().([]float32), rows, row)
	case []float64:
		gather(d, src.Data().([]float64), rows, row)
	default:
		return nil, errors.Errorf("blocks: GatherRows: unsupported dtype %v", src.Dtype())
	}
	return dst, nil
}

func gather[T float32 | float64](dst, src []T, rows []int, n int) {
	for i, r := range rows {
		copy(dst[i*n:(i+1)*n], src[r*n:(r+1)*n])
	}
}

// CacheCapacity is the smallest capacity of the doubling series 16, 32, …
// that holds t cached positions and slot t for the new one, capped at
// limit (a model's longest position less one: the last position's own
// keys are never needed).
func CacheCapacity(t, limit int) int {
	c := 16
	for c < t+1 {
		c *= 2
	}
	return max(1, min(c, limit))
}

// CacheMask is the additive mask [B, 1, N+1] of a decode step against a
// cache of capacity N plus the new token (the last key): row b sees slots
// j < pos[b], which hold its earlier positions, and its new token; slots
// pos[b] … N−1 are empty.
func CacheMask(dt tensor.Dtype, capacity int, pos []int) (*tensor.Dense, error) {
	vals := make([]float64, len(pos)*(capacity+1))
	for b, t := range pos {
		if t < 0 || t > capacity {
			return nil, errors.Errorf("blocks: CacheMask: position %d of row %d is not in [0, %d]", t, b, capacity)
		}
		for j := t; j < capacity; j++ {
			vals[b*(capacity+1)+j] = math.Inf(-1)
		}
	}
	return denseOf(dt, tensor.Shape{len(pos), 1, capacity + 1}, vals)
}
