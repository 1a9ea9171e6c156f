package train

import (
	"testing"

	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

// BenchmarkStep is one training step (forward, backward, AdamW) of the test
// model at vocab 256, d 64, batch 16 × 32 tokens, float32, on a compiled
// program; tokens/s is the figure to compare.
func BenchmarkStep(b *testing.B) {
	m := newTinyLM(b, tensor.Float32, 1, tinyConfig{Vocab: 256, Dim: 64, Dropout: 0.1})
	tr, err := New(m, Config{Optimizer: newAdamW(b), Schedule: Constant(1e-3), ClipNorm: 1})
	require.NoError(b, err)
	defer tr.Close()
	batch := lmBatch(tensor.Float32, 256, 16, 32, 0, nil)
	_, err = tr.Step(batch) // compile outside the timing
	require.NoError(b, err)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := tr.Step(batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(16*32*b.N)/b.Elapsed().Seconds(), "tok/s")
}

// BenchmarkBuildCompile is what the program cache saves on every step after
// the first: Model.Build, G.Grad and compiling the tape machine.
func BenchmarkBuildCompile(b *testing.B) {
	m := newTinyLM(b, tensor.Float32, 1, tinyConfig{Vocab: 256, Dim: 64, Dropout: 0.1})
	for i := 0; i < b.N; i++ {
		tr, err := New(m, Config{Optimizer: newAdamW(b), Schedule: Constant(1e-3)})
		require.NoError(b, err)
		if _, err := tr.program(Key{Batch: 16, Len: 32}); err != nil {
			b.Fatal(err)
		}
		require.NoError(b, tr.Close())
	}
}

// BenchmarkAdamW is the optimizer alone on 1M float32 weights.
func BenchmarkAdamW(b *testing.B) {
	w := tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(1024, 1024))
	g := tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(1024, 1024))
	for i, d := 0, g.Data().([]float32); i < len(d); i++ {
		d[i] = float32(i%7) - 3
	}
	opt := newAdamW(b)
	ps := []Param{{Name: "w", Value: w, Grad: g}}
	b.SetBytes(4 * 4 * 1024 * 1024) // w, g, m, v
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := opt.Step(1e-3, ps); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSave writes a checkpoint of 1M float32 weights with AdamW state.
func BenchmarkSave(b *testing.B) {
	m := newTinyLM(b, tensor.Float32, 1, tinyConfig{Vocab: 4096, Dim: 128})
	tr, err := New(m, Config{Optimizer: newAdamW(b), Schedule: Constant(1e-3)})
	require.NoError(b, err)
	defer tr.Close()
	_, err = tr.Step(lmBatch(tensor.Float32, 4096, 2, 4, 0, nil))
	require.NoError(b, err)
	dir := b.TempDir()
	b.SetBytes(int64(3 * 4 * m.store.NumElements()))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := tr.Save(dir, nil); err != nil {
			b.Fatal(err)
		}
	}
}
