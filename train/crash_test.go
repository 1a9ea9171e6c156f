package train

import (
	"context"
	"fmt"
	"github.com/pkg/errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The crash tests run the test binary as a child (the os/exec helper-process
// idiom) that trains with checkpoints and kills itself with SIGKILL at one
// named step of a checkpoint save; the parent then resumes from whatever
// the kill left and checks the result bit for bit against a run that was
// never interrupted.
const (
	crashDirEnv   = "SEQ2GPT_TRAIN_CRASH_DIR"
	crashPointEnv = "SEQ2GPT_TRAIN_CRASH_AT" // "<point>@<min step>"
)

// crashLoop is the run the crash tests interrupt: saves of "last" at steps
// 2, 4, 6 and 8 and of "best" at 4 and 8 (the scripted loss falls), each
// with a file of the caller's (extra.txt, as lm train writes its
// tokenizer).
func crashLoop(dir string) (LoopConfig, Evaluator, func(*Trainer) Hooks) {
	cfg := LoopConfig{Steps: 8, EvalEvery: 4, CheckpointEvery: 2, CheckpointDir: dir,
		Config: tinyConfig{Vocab: 16, Dim: 8, Dropout: 0.2}}
	eval := func(t *Trainer) (map[string]float64, error) {
		return map[string]float64{"loss": 10 - float64(t.StepCount())}, nil
	}
	hooks := func(tr *Trainer) Hooks {
		return Hooks{BeforeCheckpoint: func(d string) error {
			return os.WriteFile(filepath.Join(d, "extra.txt"), []byte(fmt.Sprintf("step %d\n", tr.StepCount())), 0o644)
		}}
	}
	return cfg, eval, hooks
}

// resumeOrStart resumes tr from dir's last checkpoint, or leaves it at step
// 0 when a crash left none.
func resumeOrStart(t testing.TB, tr *Trainer, data *seqData, dir string) int {
	if _, err := CheckpointPath(dir, LastCheckpoint); err != nil {
		return 0
	}
	step, err := Resume(tr, data, dir)
	require.NoError(t, err)
	return step
}

// TestCrashHelper is the child of TestKillAtEveryCheckpointStep; in a
// normal run it returns at once.
func TestCrashHelper(t *testing.T) {
	dir, spec := os.Getenv(crashDirEnv), os.Getenv(crashPointEnv)
	if dir == "" {
		return
	}
	point, minStep, _ := strings.Cut(spec, "@")
	from, err := strconv.Atoi(minStep)
	require.NoError(t, err)
	_, tr := resumeTrainer(t, 1)
	data := &seqData{}
	resumeOrStart(t, tr, data, dir)
	cfg, eval, hooks := crashLoop(dir)
	h := hooks(tr)
	h.crash = func(p string) {
		if p == point && tr.StepCount() >= from {
			self, _ := os.FindProcess(os.Getpid())
			_ = self.Kill() // SIGKILL: no deferred call, no flush
			select {}
		}
	}
	_, err = Run(context.Background(), tr, data, eval, cfg, h)
	require.NoError(t, err)
	os.Exit(3) // the point was never reached
}

// TestKillAtEveryCheckpointStep kills a training run (SIGKILL) at every
// step of a checkpoint save — before and after each file is written, half
// through a file, after the caller's files, after the manifest, between
// the renames that swap a checkpoint into place — of "last" and of "best",
// at a first save and at later ones, and twice in a row (the second kill in
// the run resumed from the first). Each time the run resumes from what is
// left and ends bit for bit where an uninterrupted run ends: the same
// weights, the same losses from the resumed step on, the same best
// checkpoint, only "best" and "last" left in the directory, each with its
// own step's extra file.
func TestKillAtEveryCheckpointStep(t *testing.T) {
	refDir := t.TempDir()
	mRef, trRef := resumeTrainer(t, 1)
	cfg, eval, hooks := crashLoop(refDir)
	ref, err := Run(context.Background(), trRef, &seqData{}, eval, cfg, hooks(trRef))
	require.NoError(t, err)
	require.NoError(t, trRef.Close())
	require.Equal(t, 8, ref.BestStep)

	inSave := []string{"begin", ModelFile + ":partial", ModelFile, OptimizerFile + ":partial", OptimizerFile,
		ConfigFile + ":partial", ConfigFile, TrainerFile + ":partial", TrainerFile, "files", ManifestFile}
	var scenarios [][]string
	for _, p := range inSave {
		scenarios = append(scenarios, []string{p + "@6"}) // last at 6: the one at 4 is in place
	}
	for _, name := range []string{LastCheckpoint, BestCheckpoint} {
		for _, p := range []string{"removed ." + name + ".old", "moved " + name + " aside", "renamed into " + name, "synced " + name} {
			scenarios = append(scenarios, []string{p + "@8"})
		}
	}
	scenarios = append(scenarios,
		[]string{ModelFile + "@0"},                      // the first save: nothing to resume
		[]string{"renamed into last@0"},                 // the first save, just in place
		[]string{"moved last aside@6", "begin@0"},       // only .last.old, then killed again
		[]string{"moved best aside@8", "synced last@0"}, // .best.old left, then last
	)
	for _, kills := range scenarios {
		t.Run(strings.Join(kills, "+"), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for _, k := range kills {
				cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
				cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashPointEnv+"="+k)
				out, err := cmd.CombinedOutput()
				require.Error(t, err, "the child ran to the end: %s", out)
				require.Equal(t, -1, cmd.ProcessState.ExitCode(), "killed by a signal at %s, not exited: %s", k, out)
			}

			// What the kills left: every checkpoint found is whole, the
			// caller's file included, and of its own save.
			for _, name := range []string{BestCheckpoint, LastCheckpoint} {
				ck, err := CheckpointPath(dir, name)
				if err != nil {
					continue
				}
				_, err = readManifest(ck, true)
				require.NoError(t, err)
				b, err := os.ReadFile(filepath.Join(ck, "extra.txt"))
				require.NoError(t, err, "%s has the caller's file", ck)
				assert.Equal(t, fmt.Sprintf("step %d\n", stepOf(t, ck)), string(b), "%s: the extra file of its own save", ck)
			}

			seed := uint64(99) // other initial weights: the checkpoint must replace them
			if kills[0] == ModelFile+"@0" {
				_, err := CheckpointPath(dir, LastCheckpoint)
				require.Error(t, err, "killed in the first save: no checkpoint yet")
				seed = 1 // so start afresh
			}
			m, tr := resumeTrainer(t, seed)
			defer tr.Close()
			data := &seqData{}
			from := resumeOrStart(t, tr, data, dir)
			if seed != 1 {
				assert.Positive(t, from, "a checkpoint survives")
			}
			cfg, eval, hooks := crashLoop(dir)
			sum, err := Run(context.Background(), tr, data, eval, cfg, hooks(tr))
			require.NoError(t, err)
			want := ref.Losses[from:]
			require.Len(t, sum.Losses, len(want))
			for i := range want {
				assert.Equal(t, want[i], sum.Losses[i], "loss of step %d bit for bit (resumed at %d)", from+i+1, from)
			}
			assert.Equal(t, snapshot(mRef), snapshot(m), "weights bit for bit")
			assert.Equal(t, ref.BestStep, sum.BestStep)
			assert.Equal(t, ref.BestMetric, sum.BestMetric)

			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			assert.Equal(t, []string{BestCheckpoint, LastCheckpoint}, names, "no .new or .old left")
			for _, name := range names {
				ck := filepath.Join(dir, name)
				_, err := readManifest(ck, true)
				require.NoError(t, err)
				b, err := os.ReadFile(filepath.Join(ck, "extra.txt"))
				require.NoError(t, err)
				assert.Equal(t, fmt.Sprintf("step %d\n", stepOf(t, ck)), string(b), "%s: the extra file of its own save", name)
			}
			assert.Equal(t, 8, stepOf(t, filepath.Join(dir, BestCheckpoint)))
			assert.Equal(t, 8, stepOf(t, filepath.Join(dir, LastCheckpoint)))
		})
	}
}

// TestFailedSaveLeavesPreviousCheckpoint: a save that fails (here the
// caller's files, as on a full disk) fails Run, leaves no half-made
// checkpoint behind, and the previous one stays in place and loads.
func TestFailedSaveLeavesPreviousCheckpoint(t *testing.T) {
	dir := t.TempDir()
	_, tr := resumeTrainer(t, 1)
	defer tr.Close()
	cfg, eval, _ := crashLoop(dir)
	_, err := Run(context.Background(), tr, &seqData{}, eval, cfg, Hooks{BeforeCheckpoint: func(d string) error {
		if tr.StepCount() == 4 {
			return errors.New("no space left on device")
		}
		return os.WriteFile(filepath.Join(d, "extra.txt"), []byte("ok"), 0o644)
	}})
	assert.ErrorContains(t, err, "writing the checkpoint's own files into "+filepath.Join(dir, ".best.new")+": no space left on device")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1)
	assert.Equal(t, LastCheckpoint, entries[0].Name(), "no .best.new left")
	p, err := CheckpointPath(dir, LastCheckpoint)
	require.NoError(t, err)
	assert.Equal(t, 2, stepOf(t, p))

	// Trainer.Save alone: a failed save leaves the directory unsealed.
	one := t.TempDir()
	require.NoError(t, tr.Save(one, nil))
	assert.FileExists(t, filepath.Join(one, ManifestFile))
	err = tr.Save(one, &SaveOptions{Files: func(string) error { return errors.New("disk full") }})
	assert.ErrorContains(t, err, "disk full")
	assert.NoFileExists(t, filepath.Join(one, ManifestFile))
	_, err = tr.Load(one)
	assert.ErrorContains(t, err, "is not a complete checkpoint: it has no manifest.json")
}

// TestManifestDecidesCompleteness: a checkpoint is complete exactly when
// its manifest lists every file with its size (and, for Load, its hash);
// files it does not list do not matter.
func TestManifestDecidesCompleteness(t *testing.T) {
	_, tr := resumeTrainer(t, 1)
	defer tr.Close()
	dir := t.TempDir()
	require.NoError(t, tr.Save(dir, &SaveOptions{Config: tinyConfig{Vocab: 16}, Files: func(d string) error {
		if err := os.MkdirAll(filepath.Join(d, "tok"), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(d, "tok", "vocab.json"), []byte(`{"a":0}`), 0o644)
	}}))
	m, err := readManifest(dir, true)
	require.NoError(t, err)
	var names []string
	for _, f := range m.Files {
		names = append(names, f.Name)
		assert.Len(t, f.SHA256, 64)
	}
	assert.Equal(t, []string{ConfigFile, ModelFile, OptimizerFile, "tok/vocab.json", TrainerFile}, names)
	assert.True(t, complete(dir))

	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644))
	assert.True(t, complete(dir), "an unlisted file does not matter")

	vocab := filepath.Join(dir, "tok", "vocab.json")
	require.NoError(t, os.WriteFile(vocab, []byte(`{"b":0}`), 0o644))
	assert.True(t, complete(dir), "same size")
	_, err = tr.Load(dir)
	assert.ErrorContains(t, err, "tok/vocab.json has SHA-256 ")
	require.NoError(t, os.WriteFile(vocab, []byte(`{}`), 0o644))
	assert.False(t, complete(dir))
	require.NoError(t, os.Remove(vocab))
	assert.False(t, complete(dir))
	_, err = CheckpointPath(filepath.Dir(dir), filepath.Base(dir))
	assert.ErrorContains(t, err, "tok/vocab.json is missing")
}
