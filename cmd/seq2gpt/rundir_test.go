package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func runFlags(t *testing.T, args ...string) *pflag.FlagSet {
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	fs.String("data", "", "")
	fs.Float64("lr", 0.002, "")
	fs.IntSlice("ids", nil, "")
	fs.Int("steps", 10, "")
	fs.Bool("verbose", false, "")
	require.NoError(t, fs.Parse(args))
	return fs
}

// TestRunDir: the run file records the defining and remembered flags and
// the facts; a resumed run takes them, refuses contradictions naming both
// values, lets remembered flags change with a note; a new run refuses a
// directory with a run unless --overwrite, which removes only the run's
// entries and only when the new run is saved.
func TestRunDir(t *testing.T) {
	dir := t.TempDir()
	opts := func(resume, overwrite bool) RunDirOptions {
		return RunDirOptions{Command: "test", Dir: dir, Resume: resume, Overwrite: overwrite,
			Defining: []string{"data", "lr", "ids"}, Remembered: []string{"steps"}}
	}
	_, err := OpenRunDir(runFlags(t), opts(true, false))
	assert.EqualError(t, err, "--resume: "+dir+" holds no run (no run.json and no checkpoint)")

	rd, err := OpenRunDir(runFlags(t, "--data", "a.txt", "--ids", "3,4", "--steps", "7"), opts(false, false))
	require.NoError(t, err)
	require.NoError(t, rd.Fact("data", map[string]string{"sha256": "aaa", "name": "a.txt"}))
	require.NoError(t, rd.Save())
	b, err := os.ReadFile(filepath.Join(dir, RunFile))
	require.NoError(t, err)
	var rec runRecord
	require.NoError(t, json.Unmarshal(b, &rec))
	assert.Equal(t, map[string]string{"data": "a.txt", "lr": "0.002", "ids": "[3,4]", "steps": "7"}, rec.Flags)
	assert.JSONEq(t, `{"name": "a.txt", "sha256": "aaa"}`, string(rec.Facts["data"]))

	_, err = OpenRunDir(runFlags(t, "--data", "a.txt"), opts(false, false))
	assert.EqualError(t, err, dir+" holds a run (run.json): continue it with --resume, or replace it with --overwrite")
	_, err = OpenRunDir(runFlags(t), opts(true, true))
	assert.ErrorContains(t, err, "--resume and --overwrite: give one")

	// Resumed with no flags: the saved values.
	fs := runFlags(t)
	rd, err = OpenRunDir(fs, opts(true, false))
	require.NoError(t, err)
	assert.True(t, rd.Resumed)
	data, _ := fs.GetString("data")
	ids, _ := fs.GetIntSlice("ids")
	steps, _ := fs.GetInt("steps")
	assert.Equal(t, "a.txt", data)
	assert.Equal(t, []int{3, 4}, ids)
	assert.Equal(t, 7, steps)
	assert.Empty(t, rd.Notes)
	require.NoError(t, rd.Fact("data", map[string]string{"name": "a.txt", "sha256": "aaa"}))
	err = rd.Fact("data", map[string]string{"name": "a.txt", "sha256": "bbb"})
	assert.EqualError(t, err, "this is not the run in "+dir+`: its data.sha256 is "aaa", this run's "bbb"`)

	// Contradictions name both values; a remembered flag may change.
	_, err = OpenRunDir(runFlags(t, "--data", "b.txt", "--lr", "1e-3"), opts(true, false))
	assert.EqualError(t, err, "--data b.txt contradicts the run in "+dir+", which has --data a.txt; "+
		"--lr 0.001 contradicts the run in "+dir+", which has --lr 0.002 "+
		"(continue it without these flags, or start another run with another --out or --overwrite)")
	rd, err = OpenRunDir(runFlags(t, "--lr", "2e-3", "--steps", "20"), opts(true, false))
	require.NoError(t, err, "the same value, written otherwise, is no contradiction")
	assert.Equal(t, []string{"--steps 20 (the run had 7)"}, rd.Notes)

	// --overwrite removes the run's entries, not the user's, when saved.
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "last"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644))
	rd, err = OpenRunDir(runFlags(t, "--data", "c.txt"), opts(false, true))
	require.NoError(t, err)
	assert.DirExists(t, filepath.Join(dir, "last"), "nothing removed before the run is saved")
	require.NoError(t, rd.Save())
	assert.NoDirExists(t, filepath.Join(dir, "last"))
	assert.FileExists(t, filepath.Join(dir, "notes.txt"))
	b, err = os.ReadFile(filepath.Join(dir, RunFile))
	require.NoError(t, err)
	assert.Contains(t, string(b), `"data": "c.txt"`)
	assert.NotContains(t, string(b), "sha256", "the old run's facts are gone")

	_, err = OpenRunDir(runFlags(t), RunDirOptions{Command: "other", Dir: dir, Resume: true})
	assert.EqualError(t, err, "--resume: "+dir+` holds a "test" run, not "other"`)
}

// tinyRun writes a text and a small model config and returns lm train's
// flags for them.
func tinyRun(t *testing.T, dir string) (data string, args []string) {
	data = writeText(t, dir)
	cfg := filepath.Join(dir, "cfg.json")
	require.NoError(t, os.WriteFile(cfg, []byte(`{"n_positions": 16, "n_embd": 16, "n_head": 2, "n_layer": 1}`), 0o644))
	return data, []string{"lm", "train", "--data", data, "--config", cfg, "--merges", "30", "--batch", "2",
		"--eval-every", "2", "--eval-batches", "1", "--checkpoint-every", "2", "--samples", "0"}
}

// TestResumeRemembersTheRun: --resume with no other flags continues the
// run as it was defined (it once switched silently to the embedded corpus
// and evaluated on another text); a flag that contradicts the saved run,
// or data that changed, is an error naming both values.
func TestResumeRemembersTheRun(t *testing.T) {
	dir := t.TempDir()
	data, args := tinyRun(t, dir)
	out := filepath.Join(dir, "run")
	stdout, err := run(t, append(args, "--out", out, "--steps", "4", "--lr", "3e-3")...)
	require.NoError(t, err, stdout)
	first := strings.SplitN(stdout, "\n", 2)[0]
	require.True(t, strings.HasPrefix(first, "data: "+data+" — "), first)

	stdout, err = run(t, "lm", "train", "--out", out, "--resume", "--steps", "6")
	require.NoError(t, err, stdout)
	assert.Contains(t, stdout, first+"\n", "the same text, split the same way")
	assert.Contains(t, stdout, "note: --steps 6 (the run had 4)")
	assert.Contains(t, stdout, "resumed at step 4")
	assert.Contains(t, stdout, "stopped (steps) at step 6")
	stdout, err = run(t, "lm", "train", "--out", out, "--resume")
	require.NoError(t, err, stdout)
	assert.Contains(t, stdout, "resumed at step 6")
	assert.Contains(t, stdout, "stopped (steps) at step 6", "the run's 6 steps are remembered, not the default 1500")

	other := filepath.Join(dir, "other.txt")
	require.NoError(t, os.WriteFile(other, []byte(strings.Repeat("other text ", 400)), 0o644))
	_, err = run(t, "lm", "train", "--out", out, "--resume", "--data", other)
	assert.ErrorContains(t, err, "--data "+other+" contradicts the run in "+out+", which has --data "+data)
	_, err = run(t, "lm", "train", "--out", out, "--resume", "--lr", "0.01", "--preset", "small")
	assert.ErrorContains(t, err, "--preset small contradicts the run in "+out+", which has --preset tiny; "+
		"--lr 0.01 contradicts the run in "+out+", which has --lr 0.003")
	_, err = run(t, "lm", "train", "--out", out, "--resume", "--data", "")
	assert.ErrorContains(t, err, `--data "" contradicts the run in `+out+", which has --data "+data)

	// A run from before run files: resumed with the flags given, and
	// recorded from then on.
	require.NoError(t, os.Remove(filepath.Join(out, RunFile)))
	stdout, err = run(t, append(args, "--out", out, "--resume", "--steps", "7", "--lr", "3e-3")...)
	require.NoError(t, err, stdout)
	assert.Contains(t, stdout, "note: "+out+" has a checkpoint but no run.json (an older run): resuming with the flags given, which it records now")
	assert.Contains(t, stdout, "stopped (steps) at step 7")
	assert.FileExists(t, filepath.Join(out, RunFile))

	b, err := os.ReadFile(data)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(data, append(b, "A changed ending.\n"...), 0o644))
	_, err = run(t, "lm", "train", "--out", out, "--resume", "--steps", "9")
	assert.ErrorContains(t, err, "this is not the run in "+out+": its data.split is ")
	assert.ErrorContains(t, err, "; its data.valid_sha256 is ")
}

// TestNewRunRefusesExistingRun: lm train into a directory that holds a run
// is refused without --resume or --overwrite (it once overwrote it);
// --overwrite starts over.
func TestNewRunRefusesExistingRun(t *testing.T) {
	dir := t.TempDir()
	_, args := tinyRun(t, dir)
	out := filepath.Join(dir, "run")
	stdout, err := run(t, append(args, "--out", out, "--steps", "2")...)
	require.NoError(t, err, stdout)
	before, err := os.ReadFile(filepath.Join(out, "last", "model.safetensors"))
	require.NoError(t, err)
	stdout, err = run(t, append(args, "--out", out, "--steps", "2", "--seed", "9")...)
	assert.EqualError(t, err, out+" holds a run (best, last, loss.png, run.json): continue it with --resume, or replace it with --overwrite")
	assert.Empty(t, stdout)
	after, err := os.ReadFile(filepath.Join(out, "last", "model.safetensors"))
	require.NoError(t, err)
	assert.Equal(t, before, after, "untouched")

	stdout, err = run(t, append(args, "--out", out, "--steps", "2", "--seed", "9", "--overwrite")...)
	require.NoError(t, err, stdout)
	after, err = os.ReadFile(filepath.Join(out, "last", "model.safetensors"))
	require.NoError(t, err)
	assert.NotEqual(t, before, after, "replaced by the new run")
	b, err := os.ReadFile(filepath.Join(out, RunFile))
	require.NoError(t, err)
	assert.Contains(t, string(b), `"seed": "9"`)
}
