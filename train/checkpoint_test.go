package train

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/safetensors"
)

func resumeTrainer(t *testing.T, seed uint64) (*tinyLM, *Trainer) {
	m := newTinyLM(t, tensor.Float32, seed, tinyConfig{Vocab: 16, Dim: 8, Dropout: 0.2})
	noam, err := NewNoam(8, 3, 1)
	require.NoError(t, err)
	tr, err := New(m, Config{Optimizer: newAdamW(t), Schedule: noam, ClipNorm: 0.5, DropoutSeed: 42})
	require.NoError(t, err)
	return m, tr
}

// TestResumeIsBitIdentical trains 8 steps straight through, and 4 steps,
// a checkpoint, a fresh trainer over differently initialised weights, Load
// and 4 more: every weight must be equal bit for bit (dropout on, AdamW,
// Noam, clipping, micro-batches of two length buckets).
func TestResumeIsBitIdentical(t *testing.T) {
	batches := func(i int) []Batch {
		return []Batch{lmBatch(tensor.Float32, 16, 2, 6, i, nil), lmBatch(tensor.Float32, 16, 3, 4, 7*i, nil)}
	}
	mA, trA := resumeTrainer(t, 1)
	defer trA.Close()
	for i := 0; i < 8; i++ {
		_, err := trA.Step(batches(i)...)
		require.NoError(t, err)
	}

	mB, trB := resumeTrainer(t, 1)
	for i := 0; i < 4; i++ {
		_, err := trB.Step(batches(i)...)
		require.NoError(t, err)
	}
	dir := t.TempDir()
	cfg := tinyConfig{Vocab: 16, Dim: 8, Dropout: 0.2}
	require.NoError(t, trB.Save(dir, &SaveOptions{Config: cfg, DataPosition: json.RawMessage(`{"next_batch":4}`)}))
	require.NoError(t, trB.Close())

	mC, trC := resumeTrainer(t, 999) // other initial weights: Load must replace them
	defer trC.Close()
	pos, err := trC.Load(dir)
	require.NoError(t, err)
	var p struct {
		NextBatch int `json:"next_batch"`
	}
	require.NoError(t, json.Unmarshal(pos, &p))
	var gotCfg tinyConfig
	require.NoError(t, LoadConfig(dir, &gotCfg))
	assert.Equal(t, cfg, gotCfg)
	assert.Equal(t, 4, trC.StepCount())
	for i := p.NextBatch; i < 8; i++ {
		_, err := trC.Step(batches(i)...)
		require.NoError(t, err)
	}
	assert.Equal(t, trA.DropoutCalls(), trC.DropoutCalls())
	assert.Equal(t, trA.StepCount(), trC.StepCount())
	for _, name := range mA.store.Names() {
		a, _ := mA.store.Get(name)
		c, _ := mC.store.Get(name)
		assert.Equal(t, a.Data(), c.Data(), "%s differs after resume", name)
	}
	_ = mB
	for _, f := range []string{ModelFile, ConfigFile, OptimizerFile, TrainerFile, ManifestFile} {
		assert.FileExists(t, filepath.Join(dir, f))
	}
	// The weights file is a plain state dict.
	w, md, err := safetensors.Read(filepath.Join(dir, ModelFile))
	require.NoError(t, err)
	assert.Equal(t, "pt", md["format"])
	assert.ElementsMatch(t, mB.store.Names(), sortedKeys(w))
}

// Without restoring the dropout state the run diverges: the test above
// would catch a checkpoint that forgot it.
func TestResumeNeedsDropoutState(t *testing.T) {
	m1, tr1 := resumeTrainer(t, 1)
	defer tr1.Close()
	m2, tr2 := resumeTrainer(t, 1)
	defer tr2.Close()
	_, err := tr1.Step(lmBatch(tensor.Float32, 16, 2, 6, 0, nil))
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, tr1.Save(dir, nil))
	_, err = tr2.Load(dir)
	require.NoError(t, err)
	tr2.dropout = 0
	_, err = tr1.Step(lmBatch(tensor.Float32, 16, 2, 6, 1, nil))
	require.NoError(t, err)
	_, err = tr2.Step(lmBatch(tensor.Float32, 16, 2, 6, 1, nil))
	require.NoError(t, err)
	a, _ := m1.store.Get("mlp.linear1.weight")
	b, _ := m2.store.Get("mlp.linear1.weight")
	assert.NotEqual(t, a.Data(), b.Data())
}

func TestLoadRejectsMismatches(t *testing.T) {
	_, tr := resumeTrainer(t, 1)
	defer tr.Close()
	_, err := tr.Step(lmBatch(tensor.Float32, 16, 2, 6, 0, nil))
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, tr.Save(dir, nil))

	sgd, err := NewSGD(SGDConfig{Momentum: 0.9})
	require.NoError(t, err)
	m := newTinyLM(t, tensor.Float32, 1, tinyConfig{Vocab: 16, Dim: 8})
	other, err := New(m, Config{Optimizer: sgd, Schedule: Constant(1), DropoutSeed: 42})
	require.NoError(t, err)
	_, err = other.Load(dir)
	assert.ErrorContains(t, err, "checkpoint optimizer is adamw(0.9,0.98,1e-09,0.01), this trainer's is sgd(0.9,0,0)")

	other, err = New(m, Config{Optimizer: newAdamW(t), Schedule: Constant(1), DropoutSeed: 7})
	require.NoError(t, err)
	_, err = other.Load(dir)
	assert.ErrorContains(t, err, "dropout seed is 42, this trainer's is 7")

	wider := newTinyLM(t, tensor.Float32, 1, tinyConfig{Vocab: 16, Dim: 12})
	_, err = LoadWeights(filepath.Join(dir, ModelFile), wider.store, nil)
	assert.ErrorContains(t, err, `"lm_head.weight" has shape (16, 8), the model's is (16, 12)`)

	_, err = other.Load(t.TempDir())
	assert.ErrorContains(t, err, "is not a complete checkpoint: it has no manifest.json")
	assert.ErrorContains(t, tr.Save(dir, &SaveOptions{DataPosition: json.RawMessage("{bad")}), "not valid JSON")
	require.NoError(t, os.Remove(filepath.Join(dir, OptimizerFile)))
	_, err = tr.Load(dir)
	assert.ErrorContains(t, err, OptimizerFile)
}
