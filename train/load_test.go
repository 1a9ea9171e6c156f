package train

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/safetensors"
)

// TestLoadWeightsReportsAllMismatches: a checkpoint of another
// configuration fails with every problem named at once, and the store is
// unchanged.
func TestLoadWeightsReportsAllMismatches(t *testing.T) {
	dir := t.TempDir()
	src := newTinyLM(t, tensor.Float32, 1, tinyConfig{Vocab: 16, Dim: 8})
	path := filepath.Join(dir, ModelFile)
	ts := map[string]*tensor.Dense{}
	for _, n := range src.store.Names() {
		ts[n], _ = src.store.Get(n)
	}
	delete(ts, "mlp.linear2.bias")
	ts["extra.weight"] = tensor.New(tensor.WithShape(2), tensor.WithBacking([]float32{1, 2}))
	ts["mlp.linear1.bias"] = tensor.New(tensor.WithShape(16), tensor.Of(tensor.Float64))
	require.NoError(t, safetensors.Write(path, ts, nil))

	dst := newTinyLM(t, tensor.Float32, 2, tinyConfig{Vocab: 16, Dim: 12})
	before := snapshot(dst)
	_, err := LoadWeights(path, dst.store, nil)
	require.Error(t, err)
	for _, want := range []string{
		"does not match the model (8 problems)",
		`"mlp.linear1.bias" has shape (16), the model's is (24)`,
		`"mlp.linear2.weight" has shape (8, 16), the model's is (12, 24)`,
		`"wte.weight" has shape (16, 8), the model's is (16, 12)`,
		`"mlp.linear1.weight" has shape`,
		`"mlp.linear1.bias" is float64, the model's is float32`,
		`missing "mlp.linear2.bias" (12)`,
		`"lm_head.weight" has shape (16, 8), the model's is (16, 12)`,
		`unexpected "extra.weight" (2)`,
	} {
		assert.ErrorContains(t, err, want)
	}
	assert.Equal(t, before, snapshot(dst), "nothing loaded on error")

	// With the right dims only the dtype, the missing and the extra tensor
	// are wrong; a partial load with conversion takes what matches.
	same := newTinyLM(t, tensor.Float32, 2, tinyConfig{Vocab: 16, Dim: 8})
	sameBefore := snapshot(same)
	_, err = LoadWeights(path, same.store, nil)
	assert.ErrorContains(t, err, "(3 problems)")
	rep, err := LoadWeights(path, same.store, &LoadOptions{Partial: true, ConvertDtype: true})
	require.NoError(t, err)
	assert.Equal(t, []string{"mlp.linear2.bias"}, rep.Missing)
	assert.Equal(t, []string{"extra.weight"}, rep.Unexpected)
	assert.Len(t, rep.Loaded, len(same.store.Names())-1)
	assert.Contains(t, rep.Loaded, "mlp.linear1.bias")
	w, _ := same.store.Get("wte.weight")
	want, _ := src.store.Get("wte.weight")
	assert.Equal(t, want.Data(), w.Data())
	b, _ := same.store.Get("mlp.linear1.bias")
	assert.Equal(t, make([]float32, 16), b.Data(), "converted from the file's float64 zeros")
	kept, _ := same.store.Get("mlp.linear2.bias")
	assert.Equal(t, sameBefore["mlp.linear2.bias"], kept.Data(), "a missing tensor keeps its value")
	// Partial does not excuse a dtype mismatch without ConvertDtype.
	_, err = LoadWeights(path, same.store, &LoadOptions{Partial: true})
	assert.ErrorContains(t, err, `(1 problems): "mlp.linear1.bias" is float64`)
}

// TestLoadTruncatedOrCorruptCheckpoint: every truncation of a checkpoint's
// files and a corrupted header are errors, not panics, and leave the
// trainer as it was: the manifest catches them (size or hash), and the
// weights' decoder on its own too.
func TestLoadTruncatedOrCorruptCheckpoint(t *testing.T) {
	m, tr := resumeTrainer(t, 1)
	defer tr.Close()
	_, err := tr.Step(lmBatch(tensor.Float32, 16, 2, 6, 0, nil))
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, tr.Save(dir, nil))
	m2, tr2 := resumeTrainer(t, 2)
	defer tr2.Close()
	before := snapshot(m2)
	for _, file := range []string{ModelFile, OptimizerFile} {
		good, err := os.ReadFile(filepath.Join(dir, file))
		require.NoError(t, err)
		hlen := int(binary.LittleEndian.Uint64(good))
		for _, cut := range []int{0, 3, 8, 9, 8 + hlen/2, 8 + hlen, 8 + hlen + 1, len(good) / 2, len(good) - 1} {
			require.NoError(t, os.WriteFile(filepath.Join(dir, file), good[:cut], 0o644))
			_, err := tr2.Load(dir)
			assert.ErrorContains(t, err, fmt.Sprintf("%s has %d bytes, the manifest says %d", file, cut, len(good)))
			assert.Equal(t, before, snapshot(m2), "%s cut at %d", file, cut)
			assert.Zero(t, tr2.StepCount())
			_, err = LoadWeights(filepath.Join(dir, file), m2.store, &LoadOptions{Partial: true})
			assert.Error(t, err, "%s cut at %d of %d", file, cut, len(good))
			assert.Equal(t, before, snapshot(m2), "%s cut at %d", file, cut)
		}
		corrupt := map[string][]byte{
			"header json": bytes.Replace(good, []byte(`"data_offsets"`), []byte(`"data_offsets}"`), 1),
			"header length": func() []byte {
				b := bytes.Clone(good)
				binary.LittleEndian.PutUint64(b, uint64(len(good)))
				return b
			}(),
			"shape": bytes.Replace(good, []byte(`"shape":[16,`), []byte(`"shape":[61,`), 1),
			"dtype": bytes.Replace(good, []byte(`"F32"`), []byte(`"I64"`), 1),
		}
		for what, b := range corrupt {
			require.NotEqual(t, good, b, what)
			require.NoError(t, os.WriteFile(filepath.Join(dir, file), b, 0o644))
			_, err := tr2.Load(dir)
			assert.ErrorContains(t, err, file+" ha", "%s: corrupt %s: size or SHA-256", file, what)
			assert.Equal(t, before, snapshot(m2))
			_, err = LoadWeights(filepath.Join(dir, file), m2.store, &LoadOptions{Partial: true})
			assert.Error(t, err, "%s: corrupt %s", file, what)
			assert.Equal(t, before, snapshot(m2))
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, file), good, 0o644))
	}
	_, err = tr2.Load(dir)
	require.NoError(t, err, "the restored files load")
	assert.Equal(t, snapshot(m), snapshot(m2))
}
