package train

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
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
	require.NoError(t, WriteSafetensors(path, ts, nil))

	dst := newTinyLM(t, tensor.Float32, 2, tinyConfig{Vocab: 16, Dim: 12})
	before := snapshot(dst)
	err := LoadWeights(path, dst.store)
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
	err = LoadWeights(path, same.store)
	assert.ErrorContains(t, err, "(3 problems)")
	rep, err := LoadWeightsWith(path, same.store, LoadOptions{Partial: true, ConvertDtype: true})
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
	_, err = LoadWeightsPartial(path, same.store)
	assert.ErrorContains(t, err, `(1 problems): "mlp.linear1.bias" is float64`)
}

// TestLoadTruncatedOrCorruptCheckpoint: every truncation of a checkpoint's
// files and a corrupted header are errors, not panics, and leave the
// trainer as it was.
func TestLoadTruncatedOrCorruptCheckpoint(t *testing.T) {
	m, tr := resumeTrainer(t, 1)
	defer tr.Close()
	_, err := tr.Step(lmBatch(tensor.Float32, 16, 2, 6, 0, nil))
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, tr.Save(dir, nil, nil))
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
			assert.Error(t, err, "%s cut at %d of %d", file, cut, len(good))
			assert.ErrorContains(t, err, file)
			assert.Equal(t, before, snapshot(m2), "%s cut at %d", file, cut)
			assert.Zero(t, tr2.StepCount())
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
			assert.Error(t, err, "%s: corrupt %s", file, what)
			assert.Equal(t, before, snapshot(m2))
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, file), good, 0o644))
	}
	_, err = tr2.Load(dir)
	require.NoError(t, err, "the restored files load")
	assert.Equal(t, snapshot(m), snapshot(m2))
}

// FuzzDecodeSafetensors: no input panics, and whatever decodes re-encodes
// to a file that decodes to the same tensors.
func FuzzDecodeSafetensors(f *testing.F) {
	var buf bytes.Buffer
	require.NoError(f, EncodeSafetensors(&buf, sampleTensors(), map[string]string{"format": "pt"}))
	f.Add(buf.Bytes())
	if b, err := os.ReadFile(filepath.Join("testdata", "torch.safetensors")); err == nil {
		f.Add(b)
	}
	f.Add([]byte("\x10\x00\x00\x00\x00\x00\x00\x00{}              "))
	f.Add([]byte("\x40\x00\x00\x00\x00\x00\x00\x00" + `{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}}`))
	f.Add([]byte("\x38\x00\x00\x00\x00\x00\x00\x00" + `{"a":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, md, err := DecodeSafetensors(b)
		if err != nil {
			return
		}
		var out bytes.Buffer
		require.NoError(t, EncodeSafetensors(&out, ts, md))
		again, md2, err := DecodeSafetensors(out.Bytes())
		require.NoError(t, err)
		require.Equal(t, len(md), len(md2))
		require.Len(t, again, len(ts))
		for name, x := range ts {
			require.Equal(t, x.Shape(), again[name].Shape(), name)
			require.Equal(t, x.Dtype(), again[name].Dtype(), name)
		}
	})
}

// crashEnv makes the test binary a child that rewrites one file and one
// checkpoint in a loop until it is killed (see TestCrashMidWrite).
const crashEnv = "SEQ2GPT_TRAIN_CRASH_DIR"

// TestCrashHelper is the child process of TestCrashMidWrite (the os/exec
// helper-process idiom); in a normal run it returns at once.
func TestCrashHelper(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		return
	}
	_, tr := resumeTrainer(t, 1)
	big := make([]byte, 4<<20)
	for i := 0; ; i++ {
		for j := range big {
			big[j] = byte('a' + i%2)
		}
		require.NoError(t, WriteFileAtomic(filepath.Join(dir, "blob"), big))
		_, err := tr.Step(lmBatch(tensor.Float32, 16, 2, 6, i, nil))
		require.NoError(t, err)
		pos := []byte(`{"next":` + strconv.Itoa(i+1) + `}`)
		_, err = tr.saveCheckpoint(dir, LastCheckpoint, nil, pos)
		require.NoError(t, err)
		if i == 0 {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "ready"), nil, 0o644))
		}
	}
}

// TestCrashMidWrite kills (SIGKILL) a child process that keeps rewriting a
// 4 MiB file with WriteFileAtomic and a checkpoint with the loop's
// directory swap, at several moments: the file is always one whole
// version, and the checkpoint always loads, with a data position that
// matches its step.
func TestCrashMidWrite(t *testing.T) {
	for _, delay := range []time.Duration{0, 7 * time.Millisecond, 23 * time.Millisecond, 61 * time.Millisecond} {
		dir := t.TempDir()
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnv+"="+dir)
		require.NoError(t, cmd.Start())
		deadline := time.Now().Add(30 * time.Second)
		for {
			if _, err := os.Stat(filepath.Join(dir, "ready")); err == nil {
				break
			}
			require.True(t, time.Now().Before(deadline), "child never saved")
			time.Sleep(2 * time.Millisecond)
		}
		time.Sleep(delay)
		require.NoError(t, cmd.Process.Kill())
		_ = cmd.Wait()

		b, err := os.ReadFile(filepath.Join(dir, "blob"))
		require.NoError(t, err)
		require.Len(t, b, 4<<20, "delay %v", delay)
		assert.True(t, bytes.Count(b, b[:1]) == len(b), "one whole version (delay %v)", delay)

		_, tr := resumeTrainer(t, 5)
		data := &seqData{}
		step, err := Resume(tr, data, dir)
		require.NoError(t, err, "delay %v", delay)
		assert.Positive(t, step)
		assert.Equal(t, step, data.next, "position and weights from the same save")
		require.NoError(t, tr.Close())
	}
}
