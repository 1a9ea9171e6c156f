package main

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seq2gpt/seq2gpt/gpt"
)

// TestOutOfMemoryIsAnError: a model far larger than the machine (n_embd
// 20000 × 48 layers once ran 29 s and died with Go's "fatal error: out of
// memory") is refused at once, before anything is allocated, with the
// estimate by part and the memory available.
func TestOutOfMemoryIsAnError(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "cfg.json", `{"n_embd": 20000, "n_layer": 48, "n_head": 16}`)
	data := writeFile(t, dir, "text.txt", sentences(200, " "))
	start := time.Now()
	stdout, err := run(t, "lm", "train", "--data", data, "--config", cfg, "--merges", "10", "--out", filepath.Join(dir, "run"))
	require.Error(t, err)
	assert.Regexp(t, `^training this model needs about \d+\.\d GiB \(weights \d+\.\d GiB, gradients \d+\.\d GiB, AdamW moments \d+\.\d GiB, `+
		`activations for a batch of 16 × 32 tokens \d+\.\d GiB\), more than the \d+(\.\d)? [GM]iB available \((MemAvailable in /proc/meminfo|the cgroup's memory.max less its memory.current)\): `+
		`use a smaller model \(n_embd, n_layer, vocabulary\) or a smaller --batch$`, err.Error())
	assert.NotContains(t, stdout, "model:", "refused before the model is built")
	assert.Less(t, time.Since(start), 20*time.Second)
	assert.NoFileExists(t, filepath.Join(dir, "run", RunFile), "nothing recorded for a run that never started")
}

func TestTrainMemoryEstimate(t *testing.T) {
	cfg := gpt.Tiny()
	n, err := cfg.NumParams()
	require.NoError(t, err)
	m := trainMemory(cfg, 16)
	assert.Equal(t, 4*float64(n), m.Weights)
	assert.Equal(t, m.Weights, m.Gradients)
	assert.Equal(t, 2*m.Weights, m.Optimizer)
	// Activations grow with the batch, linearly.
	assert.InDelta(t, 2*m.Activations, trainMemory(cfg, 32).Activations, 1)

	dir := t.TempDir()
	mi := writeFile(t, dir, "meminfo", "MemTotal:       16000000 kB\nMemFree:  100 kB\nMemAvailable:    8000000 kB\n")
	got, err := memAvailable(mi)
	require.NoError(t, err)
	assert.Equal(t, 8000000.0*1024, got)
	_, err = memAvailable(writeFile(t, dir, "bad", "MemTotal: 1 kB\n"))
	assert.ErrorContains(t, err, "has no MemAvailable")

	cg := t.TempDir()
	writeFile(t, cg, "memory.max", "1073741824\n")
	writeFile(t, cg, "memory.current", "73741824\n")
	left, ok := cgroupLeft(cg)
	require.True(t, ok)
	assert.Equal(t, 1e9, left)
	writeFile(t, cg, "memory.max", "max\n")
	_, ok = cgroupLeft(cg)
	assert.False(t, ok, "no limit")
}
