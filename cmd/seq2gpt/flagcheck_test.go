package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRange(t *testing.T) {
	for _, c := range []struct {
		r    Range
		in   []float64
		out  []float64
		text string
	}{
		{NonNegative, []float64{0, 1e-320, 5}, []float64{-1e-300, math.NaN(), math.Inf(1)}, "a finite number ≥ 0"},
		{Positive, []float64{1e-9, 3}, []float64{0, -2, math.Inf(1)}, "a finite number > 0"},
		{Probability, []float64{0, 0.5, 1}, []float64{-0.1, 1.0001, math.NaN()}, "a number in [0, 1]"},
		{Dropout, []float64{0, 0.99}, []float64{1, -0.5}, "a number in [0, 1)"},
		{Fraction, []float64{0.1}, []float64{0, 1}, "a number in (0, 1)"},
		{AtLeast(1), []float64{1, 1e6}, []float64{0, 1.5, -3}, "an integer ≥ 1"},
		{Below(50), []float64{0, 49}, []float64{50, -1, 2.5}, "an integer in [0, 50)"},
	} {
		for _, x := range c.in {
			assert.True(t, c.r.Contains(x), "%v in %v", x, c.r)
		}
		for _, x := range c.out {
			assert.False(t, c.r.Contains(x), "%v not in %v", x, c.r)
		}
		assert.Equal(t, c.text, c.r.String())
	}
}

func TestFlagChecksNameFlagValueAndRange(t *testing.T) {
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	fs.Float64("temperature", 0.8, "")
	fs.Int("steps", 10, "")
	fs.Float64("dropout", -1, "") // -1: a sentinel default, not checked
	fs.IntSlice("stop-id", nil, "")
	require.NoError(t, fs.Parse([]string{"--temperature", "NaN", "--stop-id", "3,99999"}))
	c := NewFlagChecks(fs)
	c.Check("temperature", NonNegative)
	c.Check("steps", AtLeast(1))
	c.Check("dropout", Dropout)
	c.Check("stop-id", Below(50))
	err := c.Err()
	require.Error(t, err)
	assert.Equal(t, "--temperature NaN: want a finite number ≥ 0; --stop-id 99999: want an integer in [0, 50)", err.Error())

	c = NewFlagChecks(fs)
	c.Check("temperature", NonNegative)
	var fe *FlagError
	require.ErrorAs(t, c.Err(), &fe)
	assert.Equal(t, FlagError{Flag: "temperature", Value: "NaN", Want: "a finite number ≥ 0"}, *fe)
}

// TestCommandsRefuseBadFlags: every numeric flag of lm train, generate,
// eval and graph refuses NaN, infinities and values outside its range with
// one line naming the flag, its value and the allowed range, before any
// work (no corpus is read, no model built), and nothing else (no list of
// every setting).
func TestCommandsRefuseBadFlags(t *testing.T) {
	hf := filepath.Join("..", "..", "gpt", "testdata", "hf-gelu")
	gen := []string{"lm", "generate", "--model", hf, "--ids", "1"}
	out := filepath.Join(t.TempDir(), "run")
	tr := []string{"lm", "train", "--out", out}
	for _, c := range []struct {
		args []string
		want string
	}{
		{append(gen, "--temperature", "NaN"), "--temperature NaN: want a finite number ≥ 0"},
		{append(gen, "--temperature", "Inf"), "--temperature +Inf: want a finite number ≥ 0"},
		{append(gen, "--temperature", "-1"), "--temperature -1: want a finite number ≥ 0"},
		{append(gen, "--top-p", "2"), "--top-p 2: want a number in [0, 1]"},
		{append(gen, "--top-p", "NaN"), "--top-p NaN: want a number in [0, 1]"},
		{append(gen, "--top-k", "-3"), "--top-k -3: want an integer ≥ 0"},
		{append(gen, "--stop-id", "99999"), "--stop-id 99999: want an integer in [0, 50)"},
		{append(gen, "--stop-id", "-1"), "--stop-id -1: want an integer in [0, 50)"},
		{append(gen, "--max-new-tokens", "0"), "--max-new-tokens 0: want an integer ≥ 1"},
		{append(gen, "--num-samples", "0"), "--num-samples 0: want an integer ≥ 1"},
		{append(gen, "--overflow", "wrap"), "--overflow wrap: want slide or error"},
		{append(tr, "--steps", "0"), "--steps 0: want an integer ≥ 1"},
		{append(tr, "--batch", "-2"), "--batch -2: want an integer ≥ 1"},
		{append(tr, "--accum", "0"), "--accum 0: want an integer ≥ 1"},
		{append(tr, "--lr", "NaN"), "--lr NaN: want a finite number > 0"},
		{append(tr, "--lr", "-1"), "--lr -1: want a finite number > 0"},
		{append(tr, "--min-lr", "Inf"), "--min-lr +Inf: want a finite number ≥ 0"},
		{append(tr, "--weight-decay", "-0.1"), "--weight-decay -0.1: want a finite number ≥ 0"},
		{append(tr, "--clip", "NaN"), "--clip NaN: want a finite number ≥ 0"},
		{append(tr, "--dropout", "1"), "--dropout 1: want a number in [0, 1)"},
		{append(tr, "--warmup", "-5"), "--warmup -5: want an integer ≥ 0"},
		{append(tr, "--merges", "-2"), "--merges -2: want an integer ≥ 0"},
		{append(tr, "--eval-every", "-1"), "--eval-every -1: want an integer ≥ 0"},
		{append(tr, "--eval-batches", "-1"), "--eval-batches -1: want an integer ≥ 0"},
		{append(tr, "--patience", "-1"), "--patience -1: want an integer ≥ 0"},
		{append(tr, "--checkpoint-every", "-1"), "--checkpoint-every -1: want an integer ≥ 0"},
		{append(tr, "--samples", "-1"), "--samples -1: want an integer ≥ 0"},
		{append(tr, "--sample-tokens", "-1"), "--sample-tokens -1: want an integer ≥ 0"},
		{append(tr, "--lr", "NaN", "--steps", "0"), "--steps 0: want an integer ≥ 1; --lr NaN: want a finite number > 0"},
		{[]string{"lm", "eval", "--model", hf, "--data", "x.txt", "--batch", "0"}, "--batch 0: want an integer ≥ 1"},
		{[]string{"graph", "--batch", "0"}, "--batch 0: want an integer ≥ 1"},
		{[]string{"graph", "--steps", "-4"}, "--steps -4: want an integer ≥ 0"},
	} {
		name := strings.Join(c.args[2:], " ")
		stdout, err := run(t, c.args...)
		require.Error(t, err, name)
		assert.Equal(t, c.want, err.Error(), name)
		assert.NotContains(t, stdout, "data:", "%s: no work before the flags are checked", name)
	}
}

// TestConfigFilesRefuseUnknownKeys: every JSON config a user passes (lm
// train --config, graph --config) refuses unknown keys, naming the nearest
// known one, before any work.
func TestConfigFilesRefuseUnknownKeys(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.json")
	require.NoError(t, os.WriteFile(cfg, []byte(`{"n_layers": 6, "n_embed": 128}`), 0o644))
	want := `unknown key "n_embed" (did you mean "n_embd"?); unknown key "n_layers" (did you mean "n_layer"?)`
	stdout, err := run(t, "lm", "train", "--config", cfg, "--out", filepath.Join(dir, "run"), "--steps", "1")
	assert.ErrorContains(t, err, "--config "+cfg+": gpt: config: "+want)
	assert.NotContains(t, stdout, "model:")
	_, err = run(t, "graph", "--config", dir)
	assert.ErrorContains(t, err, want)
}
