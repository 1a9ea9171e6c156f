package datasets

import (
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func seqs(lengths ...int) [][]int {
	out := make([][]int, len(lengths))
	for i, n := range lengths {
		out[i] = make([]int, n)
		for j := range out[i] {
			out[i][j] = 100*i + j + 1 // never the pad id 0
		}
	}
	return out
}

func randomLengths(n int, seed uint64) []int {
	r := newRNG(seed, 7)
	out := make([]int, n)
	for i := range out {
		out[i] = 1 + r.intn(40)
	}
	return out
}

func TestPermutationAndSplit(t *testing.T) {
	p := Permutation(100, 42)
	assert.Equal(t, p, Permutation(100, 42))
	assert.NotEqual(t, p, Permutation(100, 43))
	sorted := append([]int{}, p...)
	sort.Ints(sorted)
	for i, v := range sorted {
		require.Equal(t, i, v)
	}
	// Pinned: the same seed must give the same order on every platform and
	// Go version, or resumed runs and published splits would change.
	assert.Equal(t, []int{4, 3, 6, 2, 8, 7, 1, 9, 0, 5}, Permutation(10, 1))

	parts, err := Split(103, 7, 0.8, 0.1, 0.1)
	require.NoError(t, err)
	require.Len(t, parts, 3)
	assert.Equal(t, []int{83, 10, 10}, []int{len(parts[0]), len(parts[1]), len(parts[2])})
	seen := map[int]bool{}
	for _, part := range parts {
		assert.True(t, sort.IntsAreSorted(part))
		for _, i := range part {
			require.False(t, seen[i])
			seen[i] = true
		}
	}
	assert.Len(t, seen, 103)
	again, err := Split(103, 7, 0.8, 0.1, 0.1)
	require.NoError(t, err)
	assert.Equal(t, parts, again)

	for _, bad := range [][]float64{{}, {0.5, 0.6}, {-0.1, 1.1}} {
		_, err := Split(10, 1, bad...)
		assert.Error(t, err, "%v", bad)
	}
	_, err = Split(-1, 1, 1)
	assert.Error(t, err)
}

func TestBatcherBudgetAndCoverage(t *testing.T) {
	src := seqs(randomLengths(500, 1)...)
	tgt := seqs(randomLengths(500, 2)...)
	b, err := NewBatcher(src, tgt, BatchConfig{MaxTokens: 400, Pad: 0, Seed: 9, Shuffle: true})
	require.NoError(t, err)
	padded, real := 0, 0
	for epoch := 0; epoch < 3; epoch++ {
		seen := make([]int, len(src))
		for _, idx := range b.Plan(epoch) {
			bt := b.Make(idx)
			require.LessOrEqual(t, bt.Source.B*(bt.Source.T+bt.Target.T), 400)
			require.Equal(t, len(idx), bt.Source.B)
			require.Equal(t, len(idx), bt.Target.B)
			for _, i := range idx {
				seen[i]++
			}
			for _, p := range []Padded{bt.Source, bt.Target} {
				padded += p.B * p.T
				for row := 0; row < p.B; row++ {
					real += p.Lengths[row]
				}
			}
		}
		for i, n := range seen {
			require.Equal(t, 1, n, "example %d in epoch %d", i, epoch)
		}
	}
	// Bucketing keeps padding low: random lengths 1..40 batched unsorted
	// would waste about half the tokens.
	assert.Greater(t, float64(real)/float64(padded), 0.75)
	assert.NotEqual(t, b.Plan(0), b.Plan(1), "epochs are shuffled differently")
	assert.Equal(t, b.Plan(1), b.Plan(1), "plans are deterministic")
}

func TestBatchPaddingAndMasks(t *testing.T) {
	src := [][]int{{5, 6, 7}, {8}}
	tgt := [][]int{{1, 2}, {3, 4, 5, 6}}
	b, err := NewBatcher(src, tgt, BatchConfig{MaxTokens: 100, Pad: -1})
	require.NoError(t, err)
	bt := b.Make([]int{0, 1})
	assert.Equal(t, []int{0, 1}, bt.Index)
	assert.Equal(t, Padded{B: 2, T: 3, IDs: []int{5, 6, 7, 8, -1, -1}, Lengths: []int{3, 1},
		Mask: []float32{1, 1, 1, 1, 0, 0}}, bt.Source)
	assert.Equal(t, []int{1, 2, -1, -1, 3, 4, 5, 6}, bt.Target.IDs)
	assert.Equal(t, []bool{false, false, true, true, false, false, false, false}, bt.Target.KeyPaddingMask())
	// Unshuffled plans are sorted by length.
	assert.Equal(t, [][]int{{1, 0}}, b.Plan(0))
}

func TestBatcherMaxRowsAndErrors(t *testing.T) {
	b, err := NewBatcher(seqs(2, 2, 2, 2, 2), nil, BatchConfig{MaxTokens: 100, MaxRows: 2})
	require.NoError(t, err)
	plan := b.Plan(0)
	assert.Equal(t, [][]int{{0, 1}, {2, 3}, {4}}, plan)
	assert.Zero(t, b.Make(plan[0]).Target.B)

	_, err = NewBatcher(seqs(5), nil, BatchConfig{MaxTokens: 4})
	assert.ErrorContains(t, err, "example 0 has 5 tokens, over the batch budget of 4")
	_, err = NewBatcher(seqs(0), nil, BatchConfig{MaxTokens: 4})
	assert.ErrorContains(t, err, "empty")
	_, err = NewBatcher(nil, nil, BatchConfig{MaxTokens: 4})
	assert.Error(t, err)
	_, err = NewBatcher(seqs(1), seqs(1, 1), BatchConfig{MaxTokens: 4})
	assert.Error(t, err)
	_, err = NewBatcher(seqs(1), nil, BatchConfig{})
	assert.Error(t, err)
	_, err = NewBatcher(seqs(1), nil, BatchConfig{MaxTokens: 4, MaxRows: -1})
	assert.Error(t, err)
}

func TestIteratorResumeIsExact(t *testing.T) {
	src := seqs(randomLengths(200, 3)...)
	b, err := NewBatcher(src, nil, BatchConfig{MaxTokens: 120, Seed: 5, Shuffle: true})
	require.NoError(t, err)
	it := b.Iterator()
	per := len(b.Plan(0))
	// Run past an epoch boundary, checkpoint, then continue.
	for i := 0; i < per+3; i++ {
		it.Next()
	}
	pos := it.Position()
	assert.Equal(t, Position{Epoch: 1, Step: 3}, pos)
	var want [][]int
	for i := 0; i < per; i++ {
		want = append(want, it.Next().Index)
	}
	// A fresh iterator (as after a restart) restored to the checkpoint.
	fresh := b.Iterator()
	require.NoError(t, fresh.Restore(pos))
	for i := 0; i < per; i++ {
		require.Equal(t, want[i], fresh.Next().Index, "batch %d after resume", i)
	}
	require.Error(t, fresh.Restore(Position{Epoch: 0, Step: per + 1}))
	require.Error(t, fresh.Restore(Position{Epoch: -1}))
	// Restoring to the end of an epoch continues with the next epoch.
	require.NoError(t, fresh.Restore(Position{Epoch: 0, Step: per}))
	assert.Equal(t, b.Plan(1)[0], fresh.Next().Index)
}

func TestLengthFilter(t *testing.T) {
	f, err := NewLengthFilter(2, 4, Drop)
	require.NoError(t, err)
	kept, idx, rep := f.Filter(seqs(1, 2, 5, 4))
	assert.Equal(t, []int{1, 3}, idx)
	assert.Len(t, kept, 2)
	assert.Equal(t, FilterReport{Kept: 2, DroppedShort: 1, DroppedLong: 1}, rep)

	f, err = NewLengthFilter(1, 3, TruncateEnd)
	require.NoError(t, err)
	kept, _, rep = f.Filter([][]int{{1, 2, 3, 4, 5}, {}})
	assert.Equal(t, [][]int{{1, 2, 3}}, kept)
	assert.Equal(t, FilterReport{Kept: 1, DroppedShort: 1, Truncated: 1}, rep)

	f, err = NewLengthFilter(0, 2, TruncateStart)
	require.NoError(t, err)
	s, tg, idx, rep, err := f.FilterPairs([][]int{{1, 2, 3}, {4}}, [][]int{{5}, {6, 7}})
	require.NoError(t, err)
	assert.Equal(t, [][]int{{2, 3}, {4}}, s)
	assert.Equal(t, [][]int{{5}, {6, 7}}, tg)
	assert.Equal(t, []int{0, 1}, idx)
	assert.Equal(t, FilterReport{Kept: 2, Truncated: 1}, rep)

	f, err = NewLengthFilter(1, 2, Drop)
	require.NoError(t, err)
	_, _, _, rep, err = f.FilterPairs([][]int{{1}, {1, 2, 3}, {}}, [][]int{{1}, {1}, {1}})
	require.NoError(t, err)
	assert.Equal(t, FilterReport{Kept: 1, DroppedLong: 1, DroppedShort: 1}, rep)
	_, _, _, _, err = f.FilterPairs([][]int{{1}}, nil)
	assert.Error(t, err)

	for _, bad := range [][3]int{{-1, 2, 0}, {3, 2, 0}, {0, 2, 7}} {
		_, err := NewLengthFilter(bad[0], bad[1], Overflow(bad[2]))
		assert.Error(t, err, "%v", bad)
	}
}

func TestLMWindows(t *testing.T) {
	tokens := make([]int, 11)
	for i := range tokens {
		tokens[i] = i
	}
	w, err := NewLMWindows(tokens, 4, 0)
	require.NoError(t, err)
	assert.Equal(t, 2, w.Len()) // windows of 5 at 0 and 4; tail 8..10 too short
	in, tg := w.At(1)
	assert.Equal(t, []int{4, 5, 6, 7}, in)
	assert.Equal(t, []int{5, 6, 7, 8}, tg)
	b := w.Make([]int{1, 0})
	assert.Equal(t, LMBatch{Index: []int{1, 0}, B: 2, T: 4, Inputs: []int{4, 5, 6, 7, 0, 1, 2, 3},
		Targets: []int{5, 6, 7, 8, 1, 2, 3, 4}}, b)

	w, err = NewLMWindows(tokens, 4, 1)
	require.NoError(t, err)
	assert.Equal(t, 7, w.Len())
	it, err := w.Iterator(3, 11)
	require.NoError(t, err)
	seen := map[int]int{}
	for i := 0; i < 3; i++ { // 7 windows in batches of 3: 3 batches an epoch
		for _, k := range it.Next().Index {
			seen[k]++
		}
	}
	assert.Len(t, seen, 7)
	pos := it.Position()
	next := it.Next()
	it2, err := w.Iterator(3, 11)
	require.NoError(t, err)
	require.NoError(t, it2.Restore(pos))
	assert.Equal(t, next, it2.Next())

	_, err = NewLMWindows(tokens, 11, 0)
	assert.Error(t, err)
	_, err = NewLMWindows(tokens, 0, 0)
	assert.Error(t, err)
	_, err = NewLMWindows(tokens, 2, -1)
	assert.Error(t, err)
	_, err = w.Iterator(0, 1)
	assert.Error(t, err)
}

func FuzzBatcher(f *testing.F) {
	f.Add([]byte{3, 1, 4, 1, 5, 9, 2, 6}, uint16(12), uint8(0), uint64(1))
	f.Add([]byte{1}, uint16(1), uint8(1), uint64(0))
	f.Fuzz(func(t *testing.T, lens []byte, budget uint16, rows uint8, seed uint64) {
		if len(lens) == 0 || len(lens) > 300 {
			return
		}
		ls := make([]int, len(lens))
		for i, l := range lens {
			ls[i] = int(l)
		}
		b, err := NewBatcher(seqs(ls...), nil, BatchConfig{MaxTokens: int(budget), MaxRows: int(rows), Seed: seed, Shuffle: true})
		if err != nil {
			return
		}
		seen := make([]bool, len(lens))
		for _, idx := range b.Plan(int(seed % 5)) {
			bt := b.Make(idx)
			require.LessOrEqual(t, bt.Source.B*bt.Source.T, int(budget))
			if rows > 0 {
				require.LessOrEqual(t, bt.Source.B, int(rows))
			}
			for _, i := range idx {
				require.False(t, seen[i])
				seen[i] = true
			}
		}
		for _, s := range seen {
			require.True(t, s)
		}
		// The same data in buckets of a step from the seed: every batch is
		// padded to its buckets and rows and still fits the budget.
		step := 1 + int(seed%16)
		buckets, err := BucketsOf(step, 255)
		require.NoError(t, err)
		b, err = NewBatcher(seqs(ls...), nil, BatchConfig{MaxTokens: int(budget), MaxRows: int(rows), Seed: seed, Shuffle: true, Buckets: buckets})
		if err != nil {
			return
		}
		clear(seen)
		for _, idx := range b.Plan(int(seed % 5)) {
			bt := b.Make(idx)
			require.LessOrEqual(t, bt.Source.B*bt.Source.T, int(budget))
			require.Contains(t, buckets.Edges(), bt.Source.T)
			if rows > 0 {
				require.LessOrEqual(t, bt.Source.B, int(rows))
			}
			for _, i := range idx {
				require.False(t, seen[i])
				seen[i] = true
			}
		}
		for _, s := range seen {
			require.True(t, s)
		}
	})
}

func TestBuckets(t *testing.T) {
	b, err := BucketsOf(8, 20)
	require.NoError(t, err)
	assert.Equal(t, []int{8, 16, 20}, b.Edges())
	assert.Equal(t, 20, b.Max())
	for _, c := range []struct{ n, want int }{{1, 8}, {8, 8}, {9, 16}, {17, 20}, {20, 20}} {
		got, ok := b.Fit(c.n)
		assert.True(t, ok)
		assert.Equal(t, c.want, got, "fit %d", c.n)
	}
	_, ok := b.Fit(21)
	assert.False(t, ok, "longer than every bucket")
	var none Buckets
	got, ok := none.Fit(13)
	assert.True(t, none.IsZero())
	assert.Equal(t, 13, got, "no buckets: the length itself")
	assert.True(t, ok)
	b, err = BucketsOf(16, 16)
	require.NoError(t, err)
	assert.Equal(t, []int{16}, b.Edges())

	for _, bad := range [][]int{{}, {0, 4}, {4, 4}, {8, 3}} {
		_, err := NewBuckets(bad...)
		assert.Error(t, err, "%v", bad)
	}
	_, err = NewBuckets(8, 3)
	assert.ErrorContains(t, err, "must increase: 3 after 8")
	_, err = BucketsOf(0, 8)
	assert.Error(t, err)
}

// TestBatcherBucketsFewShapes: random source and target lengths 1–40 give
// batches of a few shapes only, one (rows, S, T) per bucket pair; short
// batches are filled with empty rows; every example is in one batch an
// epoch and no batch passes the budget.
func TestBatcherBucketsFewShapes(t *testing.T) {
	src := seqs(randomLengths(600, 1)...)
	tgt := seqs(randomLengths(600, 2)...)
	buckets, err := BucketsOf(8, 40)
	require.NoError(t, err)
	b, err := NewBatcher(src, tgt, BatchConfig{MaxTokens: 400, MaxRows: 16, Pad: -1, Seed: 9, Shuffle: true, Buckets: buckets})
	require.NoError(t, err)
	plain, err := NewBatcher(src, tgt, BatchConfig{MaxTokens: 400, MaxRows: 16, Pad: -1, Seed: 9, Shuffle: true})
	require.NoError(t, err)
	shapes := map[[3]int]bool{}
	padRows := 0
	for epoch := 0; epoch < 2; epoch++ {
		seen := make([]int, len(src))
		for _, idx := range b.Plan(epoch) {
			bt := b.Make(idx)
			S, T, B := bt.Source.T, bt.Target.T, bt.Source.B
			require.Contains(t, buckets.Edges(), S)
			require.Contains(t, buckets.Edges(), T)
			require.Equal(t, min(16, 400/(S+T)), B, "rows of bucket pair (%d, %d)", S, T)
			require.Equal(t, B, bt.Target.B)
			require.LessOrEqual(t, B*(S+T), 400)
			shapes[[3]int{B, S, T}] = true
			for k, i := range idx {
				seen[i]++
				require.Equal(t, len(src[i]), bt.Source.Lengths[k])
				require.Equal(t, len(tgt[i]), bt.Target.Lengths[k])
				sb, _ := buckets.Fit(len(src[i]))
				tb, _ := buckets.Fit(len(tgt[i]))
				require.Equal(t, [2]int{sb, tb}, [2]int{S, T}, "example %d is in its own bucket pair", i)
			}
			for r := len(idx); r < B; r++ {
				padRows++
				for _, p := range []Padded{bt.Source, bt.Target} {
					require.Zero(t, p.Lengths[r])
					for j := 0; j < p.T; j++ {
						require.Equal(t, -1, p.IDs[r*p.T+j])
						require.Zero(t, p.Mask[r*p.T+j])
					}
				}
			}
		}
		for i, n := range seen {
			require.Equal(t, 1, n, "example %d in epoch %d", i, epoch)
		}
	}
	plainShapes := map[[3]int]bool{}
	for _, idx := range plain.Plan(0) {
		bt := plain.Make(idx)
		plainShapes[[3]int{bt.Source.B, bt.Source.T, bt.Target.T}] = true
	}
	t.Logf("%d batch shapes with buckets of 8 (%d empty rows added over 2 epochs), %d without", len(shapes), padRows, len(plainShapes))
	assert.LessOrEqual(t, len(shapes), 25, "at most one shape per bucket pair")
	assert.Greater(t, len(plainShapes), 3*len(shapes), "without buckets the shapes are many more")
	assert.Positive(t, padRows, "short batches are filled with empty rows")

	// Single-sequence data: targets are empty, sources bucketed.
	mono, err := NewBatcher(src, nil, BatchConfig{MaxTokens: 100, Buckets: buckets})
	require.NoError(t, err)
	for _, idx := range mono.Plan(0) {
		bt := mono.Make(idx)
		require.Contains(t, buckets.Edges(), bt.Source.T)
		require.Equal(t, 100/bt.Source.T, bt.Source.B)
		require.Zero(t, bt.Target.B)
	}
}

func TestBatcherBucketErrors(t *testing.T) {
	small, err := NewBuckets(4, 8)
	require.NoError(t, err)
	_, err = NewBatcher(seqs(3, 9), nil, BatchConfig{MaxTokens: 100, Buckets: small})
	assert.ErrorContains(t, err, "example 1 (source 9, target 0 tokens) is longer than the largest bucket (source 8, target 8)")
	tgtB, err := NewBuckets(2)
	require.NoError(t, err)
	_, err = NewBatcher(seqs(3), seqs(3), BatchConfig{MaxTokens: 100, Buckets: small, TargetBuckets: tgtB})
	assert.ErrorContains(t, err, "longer than the largest bucket (source 8, target 2)")
	// 3 + 3 tokens fit a budget of 7, but padded to (4, 4) they do not.
	_, err = NewBatcher(seqs(3), seqs(3), BatchConfig{MaxTokens: 7, Buckets: small})
	assert.ErrorContains(t, err, "padded to its buckets (source 4, target 4) has 8 tokens, over the batch budget of 7")
}
