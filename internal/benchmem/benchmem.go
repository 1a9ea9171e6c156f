// Package benchmem measures what a training step allocates against the
// bytes its graph computes, for the benchmarks of every model: issue 14's
// yardstick, bytes allocated per steady-state step at most 1% of the
// activations'.
package benchmem

import (
	"runtime"
	"testing"

	G "gorgonia.org/gorgonia"

	"github.com/seq2gpt/seq2gpt/train"
)

// ActivationBytes is the size of every value g's ops compute: the outputs of
// all nodes that are not inputs, parameters or constants, forward and
// backward — what one run would allocate if no op kept its tensors.
func ActivationBytes(g *G.ExprGraph) int {
	total := 0
	for _, n := range g.AllNodes() {
		if n.Op() == nil || n.Shape() == nil || n.Type() == nil {
			continue
		}
		total += n.Shape().TotalSize() * int(n.Dtype().Size())
	}
	return total
}

// TrainingActivations compiles m's training program for key (the graph a
// Trainer runs for it, gradients included) and returns its ActivationBytes.
func TrainingActivations(m train.Model, key train.Key) (int, error) {
	p, err := train.Compile(m, key, 0)
	if err != nil {
		return 0, err
	}
	defer p.Close()
	return ActivationBytes(p.Graph().G), nil
}

// Track starts counting the timed loop's allocations (call it just before
// b.ResetTimer); the function it returns, called after the loop, reports
// act-B (the step's activation bytes, act) and alloc-% (bytes allocated per
// iteration as a percentage of act) beside b.ReportAllocs' B/op.
func Track(b *testing.B, act int) (done func()) {
	b.ReportAllocs()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	return func() {
		b.StopTimer()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(act), "act-B")
		b.ReportMetric(100*float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/float64(act), "alloc-%")
		b.StartTimer()
	}
}
