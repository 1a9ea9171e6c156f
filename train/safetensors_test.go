package train

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

func sampleTensors() map[string]*tensor.Dense {
	return map[string]*tensor.Dense{
		"layer.weight": tensor.New(tensor.WithShape(2, 3), tensor.WithBacking([]float32{1, -2, 3.5, 0, 1e-20, -7})),
		"layer.bias":   tensor.New(tensor.WithShape(3), tensor.WithBacking([]float32{0.1, 0.2, 0.3})),
		"f64":          tensor.New(tensor.WithShape(1, 2), tensor.WithBacking([]float64{1.0 / 3, -2e300})),
	}
}

func TestSafetensorsRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	in := sampleTensors()
	require.NoError(t, EncodeSafetensors(&buf, in, map[string]string{"format": "pt"}))
	b := buf.Bytes()
	n := binary.LittleEndian.Uint64(b)
	assert.Zero(t, (8+n)%8, "data starts 8-byte aligned")
	assert.Contains(t, string(b[8:8+n]), `"layer.bias":{"dtype":"F32","shape":[3],"data_offsets":[16,28]}`)
	out, md, err := DecodeSafetensors(b)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"format": "pt"}, md)
	require.Len(t, out, 3)
	for name, want := range in {
		assert.Equal(t, want.Shape(), out[name].Shape(), name)
		assert.Equal(t, want.Data(), out[name].Data(), name)
	}
	// Encoding is deterministic.
	var again bytes.Buffer
	require.NoError(t, EncodeSafetensors(&again, out, md))
	assert.Equal(t, b, again.Bytes())
}

// TestSafetensorsReadsTorchFixture reads a file that the torch fixture
// script wrote by hand (F32, F64 and I64 tensors and metadata).
func TestSafetensorsReadsTorchFixture(t *testing.T) {
	var want map[string]fixTensor
	loadFixture(t, "torch_safetensors.json", &want)
	got, md, err := ReadSafetensors(filepath.Join("testdata", "torch.safetensors"))
	require.NoError(t, err)
	assert.Equal(t, "pt", md["format"])
	require.Len(t, got, len(want))
	for name, w := range want {
		g := got[name]
		require.NotNil(t, g, name)
		assert.Equal(t, tensor.Shape(w.Shape), g.Shape(), name)
		var vals []float64
		if d, ok := g.Data().([]int64); ok {
			for _, x := range d {
				vals = append(vals, float64(x))
			}
		} else {
			vals = f64s(g)
		}
		assert.Equal(t, w.Data, vals, name)
	}
	assert.Equal(t, tensor.Int64, got["steps"].Dtype())
	assert.Equal(t, tensor.Float64, got["scale"].Dtype())
}

func TestSafetensorsRejectsBadFiles(t *testing.T) {
	var buf bytes.Buffer
	require.NoError(t, EncodeSafetensors(&buf, sampleTensors(), nil))
	good := buf.Bytes()
	_, _, err := DecodeSafetensors(good[:4])
	assert.ErrorContains(t, err, "too short")
	_, _, err = DecodeSafetensors(good[:len(good)-4])
	assert.ErrorContains(t, err, "offsets")
	_, _, err = DecodeSafetensors(append(append([]byte(nil), good...), 0, 0, 0, 0))
	assert.ErrorContains(t, err, "cover")
	bad := append([]byte(nil), good...)
	binary.LittleEndian.PutUint64(bad, 1<<40)
	_, _, err = DecodeSafetensors(bad)
	assert.ErrorContains(t, err, "header length")
	bad = bytes.Replace(append([]byte(nil), good...), []byte(`"F64"`), []byte(`"BF1"`), 1)
	_, _, err = DecodeSafetensors(bad)
	assert.ErrorContains(t, err, `dtype "BF1"`)
	err = EncodeSafetensors(&buf, map[string]*tensor.Dense{"i": tensor.New(tensor.WithBacking([]int{1}))}, nil)
	assert.ErrorContains(t, err, `tensor "i": element type int`)
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.bin")
	require.NoError(t, WriteFileAtomic(path, []byte("one")))
	require.NoError(t, WriteFileAtomic(path, []byte("two")))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "two", string(b))
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file left behind")
	assert.Error(t, WriteFileAtomic(filepath.Join(dir, "missing", "x"), nil))
}

// torchPython is /usr/bin/python3 if it can import torch.
func torchPython(t *testing.T) (string, bool) {
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import torch").Run(); err != nil {
		return "", false
	}
	return py, true
}

// TestSafetensorsPythonRoundTrip has torch read a file written here, double
// every tensor, add one and write it back. The fixture half of the format
// check (TestSafetensorsReadsTorchFixture) runs without Python.
func TestSafetensorsPythonRoundTrip(t *testing.T) {
	py, ok := torchPython(t)
	if !ok {
		t.Skip("skipped: needs /usr/bin/python3 with torch (Debian python3-torch); TestSafetensorsReadsTorchFixture covers torch-written files without it")
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.safetensors"), filepath.Join(dir, "out.safetensors")
	src := sampleTensors()
	require.NoError(t, WriteSafetensors(in, src, map[string]string{"format": "pt", "from": "go"}))
	cmd := exec.Command(py, filepath.Join("testdata", "roundtrip.py"), in, out)
	msg, err := cmd.CombinedOutput()
	require.NoError(t, err, string(msg))
	assert.JSONEq(t, `{"f64":[1,2],"layer.bias":[3],"layer.weight":[2,3]}`, string(bytes.TrimSpace(msg)))
	got, md, err := ReadSafetensors(out)
	require.NoError(t, err)
	assert.Equal(t, "go", md["from"])
	assert.Contains(t, md["roundtrip"], "torch ")
	for name, s := range src {
		want := f64s(s)
		for i := range want {
			want[i] *= 2
		}
		assert.Equal(t, want, f64s(got[name]), name)
		assert.Equal(t, s.Dtype(), got[name].Dtype(), name)
	}
	assert.Equal(t, []float32{0, 1, 2}, got["torch.added"].Data())
}
