package datasets

import (
	"sort"

	"github.com/pkg/errors"
)

// Padded is a batch of sequences padded to a common length: IDs holds B rows
// of T ids, row-major ([B,T] flattened), with Pad after each row's Lengths[b]
// real tokens. Mask is 1 at real tokens and 0 at padding, in the same
// layout, as float32 so that it can multiply scores directly.
type Padded struct {
	B, T    int
	IDs     []int
	Lengths []int
	Mask    []float32
}

// KeyPaddingMask returns a [B,T] mask that is true at padding, the form
// attention layers use to exclude padded keys.
func (p Padded) KeyPaddingMask() []bool {
	m := make([]bool, len(p.Mask))
	for i, v := range p.Mask {
		m[i] = v == 0
	}
	return m
}

func pad(seqs [][]int, padID int) Padded {
	t := 0
	for _, s := range seqs {
		t = max(t, len(s))
	}
	p := Padded{B: len(seqs), T: t, IDs: make([]int, len(seqs)*t), Lengths: make([]int, len(seqs)), Mask: make([]float32, len(seqs)*t)}
	for b, s := range seqs {
		row := p.IDs[b*t : (b+1)*t]
		copy(row, s)
		for i := len(s); i < t; i++ {
			row[i] = padID
		}
		for i := range s {
			p.Mask[b*t+i] = 1
		}
		p.Lengths[b] = len(s)
	}
	return p
}

// Batch is one batch of examples: Index gives each row's position in the
// data the Batcher was built from; Target is empty (B 0) for single-sequence
// data.
type Batch struct {
	Index  []int
	Source Padded
	Target Padded
}

// BatchConfig configures a Batcher.
type BatchConfig struct {
	// MaxTokens is the token budget of a batch: rows × (longest source +
	// longest target), padding included. Required.
	MaxTokens int
	// MaxRows caps the rows of a batch; 0 means no cap.
	MaxRows int
	// Pad is the id used for padding.
	Pad int
	// Seed drives the shuffles; Shuffle false keeps a fixed order (sorted by
	// length, for evaluation).
	Seed    uint64
	Shuffle bool
}

// Batcher groups examples of similar length into batches under a token
// budget, so little compute is spent on padding.
//
// For each epoch it shuffles the examples with a seed derived from
// (Seed, epoch), sorts them stably by length (so equal lengths stay in
// shuffled order), cuts the sorted list greedily into batches that fit the
// budget, and shuffles the order of the batches. The plan of an epoch is a
// pure function of the configuration and the epoch number, which is what
// makes Iterator.Restore exact.
type Batcher struct {
	src, tgt [][]int
	cfg      BatchConfig
}

// NewBatcher validates the data and configuration. tgt may be nil for
// single-sequence data; otherwise it must align with src. Every example must
// fit the budget on its own.
func NewBatcher(src, tgt [][]int, cfg BatchConfig) (*Batcher, error) {
	if cfg.MaxTokens <= 0 {
		return nil, errors.Errorf("datasets: batch MaxTokens must be > 0, got %d", cfg.MaxTokens)
	}
	if cfg.MaxRows < 0 {
		return nil, errors.Errorf("datasets: batch MaxRows must be >= 0, got %d", cfg.MaxRows)
	}
	if len(src) == 0 {
		return nil, errors.New("datasets: batcher needs at least one example")
	}
	if tgt != nil && len(tgt) != len(src) {
		return nil, errors.Errorf("datasets: %d sources but %d targets", len(src), len(tgt))
	}
	b := &Batcher{src: src, tgt: tgt, cfg: cfg}
	for i := range src {
		if n := b.cost(i); n > cfg.MaxTokens {
			return nil, errors.Errorf("datasets: example %d has %d tokens, over the batch budget of %d; filter or truncate it first", i, n, cfg.MaxTokens)
		}
		if n := b.cost(i); n == 0 {
			return nil, errors.Errorf("datasets: example %d is empty", i)
		}
	}
	return b, nil
}

func (b *Batcher) lens(i int) (int, int) {
	if b.tgt == nil {
		return len(b.src[i]), 0
	}
	return len(b.src[i]), len(b.tgt[i])
}

func (b *Batcher) cost(i int) int { s, t := b.lens(i); return s + t }

// Plan returns the batches of an epoch as lists of example indices.
func (b *Batcher) Plan(epoch int) [][]int {
	n := len(b.src)
	var order []int
	if b.cfg.Shuffle {
		order = Permutation(n, b.cfg.Seed^uint64(epoch)*0x9e3779b97f4a7c15)
	} else {
		order = make([]int, n)
		for i := range order {
			order[i] = i
		}
	}
	sort.SliceStable(order, func(x, y int) bool {
		sx, tx := b.lens(order[x])
		sy, ty := b.lens(order[y])
		if sx != sy {
			return sx < sy
		}
		return tx < ty
	})
	var plan [][]int
	var cur []int
	maxS, maxT := 0, 0
	for _, i := range order {
		s, t := b.lens(i)
		ms, mt := max(maxS, s), max(maxT, t)
		if len(cur) > 0 && ((len(cur)+1)*(ms+mt) > b.cfg.MaxTokens || (b.cfg.MaxRows > 0 && len(cur) == b.cfg.MaxRows)) {
			plan = append(plan, cur)
			cur, ms, mt = nil, s, t
		}
		cur = append(cur, i)
		maxS, maxT = ms, mt
	}
	if len(cur) > 0 {
		plan = append(plan, cur)
	}
	if b.cfg.Shuffle {
		perm := Permutation(len(plan), b.cfg.Seed^uint64(epoch)*0x9e3779b97f4a7c15^0x5bd1e995)
		shuffled := make([][]int, len(plan))
		for i, p := range perm {
			shuffled[i] = plan[p]
		}
		plan = shuffled
	}
	return plan
}

// Make pads the examples with the given indices into a Batch.
func (b *Batcher) Make(index []int) Batch {
	src := make([][]int, len(index))
	for k, i := range index {
		src[k] = b.src[i]
	}
	out := Batch{Index: append([]int{}, index...), Source: pad(src, b.cfg.Pad)}
	if b.tgt != nil {
		tgt := make([][]int, len(index))
		for k, i := range index {
			tgt[k] = b.tgt[i]
		}
		out.Target = pad(tgt, b.cfg.Pad)
	}
	return out
}

// Iterator returns an iterator over the batches of successive epochs,
// starting at epoch 0.
func (b *Batcher) Iterator() *BatchIterator {
	return &BatchIterator{b: b, it: Iterator{plan: b.Plan}}
}

// Position is where an iterator stands: the epoch, and the number of batches
// of that epoch already returned.
type Position struct {
	Epoch, Step int
}

// Iterator walks the plans of successive epochs. It holds no randomness of
// its own: an epoch's plan is recomputed from the epoch number, so a
// Position fully describes the state.
type Iterator struct {
	plan  func(epoch int) [][]int
	pos   Position
	cur   [][]int
	valid bool
}

// NewIterator returns an iterator over plan(0), plan(1), …; plan must be
// deterministic and return at least one batch per epoch.
func NewIterator(plan func(epoch int) [][]int) *Iterator { return &Iterator{plan: plan} }

// Next returns the indices of the next batch, moving to the next epoch when
// the current one is exhausted.
func (it *Iterator) Next() []int {
	if !it.valid {
		it.cur, it.valid = it.plan(it.pos.Epoch), true
	}
	if it.pos.Step >= len(it.cur) {
		it.pos = Position{Epoch: it.pos.Epoch + 1}
		it.cur = it.plan(it.pos.Epoch)
		if len(it.cur) == 0 {
			// A plan with no batches would make Next loop forever; the plans
			// of Batcher and LMWindows are never empty.
			panic("datasets: iterator plan returned no batches")
		}
	}
	b := it.cur[it.pos.Step]
	it.pos.Step++
	return b
}

// Position reports the iterator's position: restoring it later makes Next
// return the same batches as continuing from here.
func (it *Iterator) Position() Position { return it.pos }

// Restore moves the iterator to p.
func (it *Iterator) Restore(p Position) error {
	if p.Epoch < 0 || p.Step < 0 {
		return errors.Errorf("datasets: invalid iterator position %+v", p)
	}
	cur := it.plan(p.Epoch)
	if p.Step > len(cur) {
		return errors.Errorf("datasets: position %+v is past the %d batches of epoch %d", p, len(cur), p.Epoch)
	}
	it.pos, it.cur, it.valid = p, cur, true
	return nil
}

// BatchIterator yields padded batches; see Iterator.
type BatchIterator struct {
	b  *Batcher
	it Iterator
}

// Next returns the next batch.
func (bi *BatchIterator) Next() Batch { return bi.b.Make(bi.it.Next()) }

// Position reports the iterator's position.
func (bi *BatchIterator) Position() Position { return bi.it.Position() }

// Restore moves the iterator to p, as reported by Position.
func (bi *BatchIterator) Restore(p Position) error { return bi.it.Restore(p) }
