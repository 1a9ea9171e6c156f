package datasets

import (
	"github.com/pkg/errors"
)

// LMWindows cuts a token stream into training windows for a language model
// with a context of NCtx tokens: window i covers NCtx+1 tokens starting at
// i×Stride, whose first NCtx are the inputs and last NCtx (shifted by one)
// the targets. With Stride == NCtx every token after the first is a target
// exactly once (except a tail shorter than a window, which is dropped).
type LMWindows struct {
	tokens []int
	NCtx   int
	Stride int
}

// NewLMWindows validates and returns windows over tokens; stride 0 means
// NCtx. The stream must hold at least one window (NCtx+1 tokens).
func NewLMWindows(tokens []int, nCtx, stride int) (*LMWindows, error) {
	if nCtx <= 0 {
		return nil, errors.Errorf("datasets: LM context must be > 0, got %d", nCtx)
	}
	if stride == 0 {
		stride = nCtx
	}
	if stride < 0 {
		return nil, errors.Errorf("datasets: LM stride must be > 0, got %d", stride)
	}
	if len(tokens) < nCtx+1 {
		return nil, errors.Errorf("datasets: %d tokens are fewer than one window of %d+1", len(tokens), nCtx)
	}
	return &LMWindows{tokens: tokens, NCtx: nCtx, Stride: stride}, nil
}

// Len returns the number of windows.
func (w *LMWindows) Len() int { return (len(w.tokens)-w.NCtx-1)/w.Stride + 1 }

// At returns the inputs and targets of window i (views into the stream; do
// not modify them).
func (w *LMWindows) At(i int) (inputs, targets []int) {
	s := i * w.Stride
	return w.tokens[s : s+w.NCtx : s+w.NCtx], w.tokens[s+1 : s+w.NCtx+1 : s+w.NCtx+1]
}

// LMBatch holds B windows: Inputs and Targets are [B,T] row-major with
// T = NCtx.
type LMBatch struct {
	Index           []int
	B, T            int
	Inputs, Targets []int
}

// Make builds the batch of the given windows.
func (w *LMWindows) Make(index []int) LMBatch {
	b := LMBatch{Index: append([]int{}, index...), B: len(index), T: w.NCtx,
		Inputs: make([]int, 0, len(index)*w.NCtx), Targets: make([]int, 0, len(index)*w.NCtx)}
	for _, i := range index {
		in, tg := w.At(i)
		b.Inputs = append(b.Inputs, in...)
		b.Targets = append(b.Targets, tg...)
	}
	return b
}

// Plan returns an epoch's batches of batchSize windows in an order shuffled
// from (seed, epoch); the last batch may be smaller.
func (w *LMWindows) Plan(batchSize int, seed uint64) func(epoch int) [][]int {
	return func(epoch int) [][]int {
		perm := Permutation(w.Len(), seed^uint64(epoch)*0x9e3779b97f4a7c15)
		var plan [][]int
		for s := 0; s < len(perm); s += batchSize {
			plan = append(plan, perm[s:min(s+batchSize, len(perm))])
		}
		return plan
	}
}

// LMIterator yields shuffled batches of windows epoch after epoch, with
// Position and Restore for exact resume.
type LMIterator struct {
	w  *LMWindows
	it *Iterator
}

// Iterator returns an LMIterator over batches of batchSize windows.
func (w *LMWindows) Iterator(batchSize int, seed uint64) (*LMIterator, error) {
	if batchSize <= 0 {
		return nil, errors.Errorf("datasets: LM batch size must be > 0, got %d", batchSize)
	}
	return &LMIterator{w: w, it: NewIterator(w.Plan(batchSize, seed))}, nil
}

// Next returns the next batch.
func (li *LMIterator) Next() LMBatch { return li.w.Make(li.it.Next()) }

// Position reports the iterator's position.
func (li *LMIterator) Position() Position { return li.it.Position() }

// Restore moves the iterator to p.
func (li *LMIterator) Restore(p Position) error { return li.it.Restore(p) }
