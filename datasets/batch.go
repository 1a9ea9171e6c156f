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

// pad pads seqs to t ids each (0: the longest) and adds empty rows (length
// 0, all padding) up to rows.
func pad(seqs [][]int, padID, t, rows int) Padded {
	for _, s := range seqs {
		t = max(t, len(s))
	}
	rows = max(rows, len(seqs))
	p := Padded{B: rows, T: t, IDs: make([]int, rows*t), Lengths: make([]int, rows), Mask: make([]float32, rows*t)}
	for b := range rows {
		var s []int
		if b < len(seqs) {
			s = seqs[b]
		}
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
// data. With buckets, Source and Target may have more rows than Index: the
// rows past len(Index) are empty (length 0, mask 0, all Pad), there only to
// give the batch its bucket's row count; a model gives them no weight (all
// their targets are padding).
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
	// Buckets, when set, pads every batch's sources up to the smallest
	// bucket length that holds its longest source, and its targets up to
	// the smallest of TargetBuckets (Buckets when TargetBuckets is zero)
	// that holds its longest target. Batches then come in a few shapes:
	// examples are grouped by their (source, target) bucket pair, and every
	// batch of a pair (S_b, T_b) has the same rows,
	// min(MaxRows, ⌊MaxTokens / (S_b + T_b)⌋), a short one padded with empty
	// rows. Every example must fit the largest bucket and, padded to its
	// buckets, the budget.
	Buckets, TargetBuckets Buckets
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
// budget (with buckets: that share a bucket pair and fill its rows), and
// shuffles the order of the batches. The plan of an epoch is a
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
	if cfg.TargetBuckets.IsZero() {
		cfg.TargetBuckets = cfg.Buckets
	}
	b := &Batcher{src: src, tgt: tgt, cfg: cfg}
	for i := range src {
		if n := b.cost(i); n > cfg.MaxTokens {
			return nil, errors.Errorf("datasets: example %d has %d tokens, over the batch budget of %d; filter or truncate it first", i, n, cfg.MaxTokens)
		}
		if n := b.cost(i); n == 0 {
			return nil, errors.Errorf("datasets: example %d is empty", i)
		}
		if cfg.Buckets.IsZero() {
			continue
		}
		s, t := b.lens(i)
		sb, tb, ok := b.bucket(i)
		if !ok {
			return nil, errors.Errorf("datasets: example %d (source %d, target %d tokens) is longer than the largest bucket (source %d, target %d); filter or truncate it first",
				i, s, t, cfg.Buckets.Max(), cfg.TargetBuckets.Max())
		}
		if sb+tb > cfg.MaxTokens {
			return nil, errors.Errorf("datasets: example %d padded to its buckets (source %d, target %d) has %d tokens, over the batch budget of %d",
				i, sb, tb, sb+tb, cfg.MaxTokens)
		}
	}
	return b, nil
}

// bucket returns the bucket lengths of example i (a target bucket of 0 for
// single-sequence data).
func (b *Batcher) bucket(i int) (sb, tb int, ok bool) {
	s, t := b.lens(i)
	sb, ok = b.cfg.Buckets.Fit(s)
	if !ok || b.tgt == nil {
		return sb, 0, ok
	}
	tb, ok = b.cfg.TargetBuckets.Fit(t)
	return sb, tb, ok
}

// rows is the row count of every batch of bucket pair (sb, tb).
func (b *Batcher) rows(sb, tb int) int {
	n := max(1, b.cfg.MaxTokens/(sb+tb))
	if b.cfg.MaxRows > 0 {
		n = min(n, b.cfg.MaxRows)
	}
	return n
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
	var plan [][]int
	if b.cfg.Buckets.IsZero() {
		plan = b.cut(order)
	} else {
		plan = b.cutBuckets(order)
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

// cut sorts the examples by length and cuts them greedily into batches
// under the budget, each padded to its own longest row.
func (b *Batcher) cut(order []int) [][]int {
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
	return plan
}

// cutBuckets sorts the examples by bucket pair, then length, and cuts each
// pair's run into batches of its row count.
func (b *Batcher) cutBuckets(order []int) [][]int {
	type lens struct{ sb, tb, s, t int }
	at := make([]lens, len(b.src))
	for _, i := range order {
		sb, tb, _ := b.bucket(i) // checked in NewBatcher
		s, t := b.lens(i)
		at[i] = lens{sb, tb, s, t}
	}
	sort.SliceStable(order, func(x, y int) bool {
		a, c := at[order[x]], at[order[y]]
		switch {
		case a.sb != c.sb:
			return a.sb < c.sb
		case a.tb != c.tb:
			return a.tb < c.tb
		case a.s != c.s:
			return a.s < c.s
		}
		return a.t < c.t
	})
	var plan [][]int
	var cur []int
	for _, i := range order {
		if len(cur) > 0 {
			first, l := at[cur[0]], at[i]
			if first.sb != l.sb || first.tb != l.tb || len(cur) == b.rows(first.sb, first.tb) {
				plan = append(plan, cur)
				cur = nil
			}
		}
		cur = append(cur, i)
	}
	if len(cur) > 0 {
		plan = append(plan, cur)
	}
	return plan
}

// Make pads the examples with the given indices into a Batch: to their
// longest source and target or, with buckets, to their bucket lengths and
// the bucket pair's row count.
func (b *Batcher) Make(index []int) Batch {
	src := make([][]int, len(index))
	sb, tb, rows := 0, 0, 0
	for k, i := range index {
		src[k] = b.src[i]
		if !b.cfg.Buckets.IsZero() {
			s, t, _ := b.bucket(i)
			sb, tb = max(sb, s), max(tb, t)
		}
	}
	if !b.cfg.Buckets.IsZero() && len(index) > 0 {
		rows = b.rows(sb, tb)
	}
	out := Batch{Index: append([]int{}, index...), Source: pad(src, b.cfg.Pad, sb, rows)}
	if b.tgt != nil {
		tgt := make([][]int, len(index))
		for k, i := range index {
			tgt[k] = b.tgt[i]
		}
		out.Target = pad(tgt, b.cfg.Pad, tb, rows)
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
