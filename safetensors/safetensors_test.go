package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

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

func encode(t testing.TB, ts map[string]*tensor.Dense, md map[string]string) []byte {
	var buf bytes.Buffer
	require.NoError(t, Encode(&buf, ts, md))
	return buf.Bytes()
}

// f64s copies a tensor's elements to float64.
func f64s(t *tensor.Dense) []float64 {
	var out []float64
	switch d := t.Data().(type) {
	case []float32:
		for _, x := range d {
			out = append(out, float64(x))
		}
	case []float64:
		out = append(out, d...)
	case []int64:
		for _, x := range d {
			out = append(out, float64(x))
		}
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	in := sampleTensors()
	b := encode(t, in, map[string]string{"format": "pt"})
	n := binary.LittleEndian.Uint64(b)
	assert.Zero(t, (8+n)%8, "data starts 8-byte aligned")
	assert.Contains(t, string(b[8:8+n]), `"layer.bias":{"dtype":"F32","shape":[3],"data_offsets":[16,28]}`)
	out, md, err := Decode(b)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"format": "pt"}, md)
	require.Len(t, out, 3)
	for name, want := range in {
		assert.Equal(t, want.Shape(), out[name].Shape(), name)
		assert.Equal(t, want.Data(), out[name].Data(), name)
	}
	assert.Equal(t, b, encode(t, out, md), "encoding is deterministic")

	// A transposed tensor is written in its logical (row-major) order.
	tr := tensor.New(tensor.WithShape(2, 3), tensor.WithBacking([]float32{1, 2, 3, 4, 5, 6}))
	require.NoError(t, tr.T())
	out, _, err = Decode(encode(t, map[string]*tensor.Dense{"t": tr}, nil))
	require.NoError(t, err)
	assert.Equal(t, tensor.Shape{3, 2}, out["t"].Shape())
	assert.Equal(t, []float32{1, 4, 2, 5, 3, 6}, out["t"].Data())

	// A tensor larger than the encoder's chunk goes through whole.
	big := make([]float64, 3000)
	for i := range big {
		big[i] = float64(i) / 7
	}
	path := filepath.Join(t.TempDir(), "big.safetensors")
	require.NoError(t, Write(path, map[string]*tensor.Dense{"big": tensor.New(tensor.WithShape(3, 1000), tensor.WithBacking(big))}, nil))
	got, _, err := Read(path)
	require.NoError(t, err)
	assert.Equal(t, big, got["big"].Data())
}

// TestReadsTorchFixture reads a file that the torch fixture script wrote by
// hand (F32, F64 and I64 tensors and metadata).
func TestReadsTorchFixture(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "torch_safetensors.json"))
	require.NoError(t, err)
	var want map[string]struct {
		Shape []int     `json:"shape"`
		Data  []float64 `json:"data"`
	}
	require.NoError(t, json.Unmarshal(b, &want))
	path := filepath.Join("testdata", "torch.safetensors")
	got, md, err := Read(path)
	require.NoError(t, err)
	assert.Equal(t, "pt", md["format"])
	require.Len(t, got, len(want))
	for name, w := range want {
		g := got[name]
		require.NotNil(t, g, name)
		assert.Equal(t, tensor.Shape(w.Shape), g.Shape(), name)
		assert.Equal(t, w.Data, f64s(g), name)
	}
	assert.Equal(t, tensor.Int64, got["steps"].Dtype())
	assert.Equal(t, tensor.Float64, got["scale"].Dtype())

	h, err := ReadHeader(path)
	require.NoError(t, err)
	assert.Equal(t, []string{"encoder.bias", "encoder.weight", "scale", "steps"}, h.Names())
	assert.Equal(t, Info{Dtype: tensor.Float32, Shape: []int{3, 5}, Begin: 20, End: 80}, h.Tensors["encoder.weight"])
	assert.Equal(t, "gen_fixtures.py", h.Metadata["writer"])
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, fi.Size(), h.DataStart+h.Tensors["steps"].End, "the last tensor ends the file")
}

// header builds a file from a raw JSON header and n data bytes.
func header(js string, n int) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(js)))
	return append(append(b, js...), make([]byte, n)...)
}

func TestRejectsBadFiles(t *testing.T) {
	good := encode(t, sampleTensors(), nil)
	for _, c := range []struct {
		name string
		b    []byte
		want string
	}{
		{"too short", good[:4], "too short"},
		{"data cut", good[:len(good)-4], "offsets"},
		{"data too long", append(bytes.Clone(good), 0, 0, 0, 0), "cover"},
		{"header length", func() []byte {
			b := bytes.Clone(good)
			binary.LittleEndian.PutUint64(b, 1<<40)
			return b
		}(), "header length"},
		{"dtype", bytes.Replace(bytes.Clone(good), []byte(`"F64"`), []byte(`"BF1"`), 1), `dtype "BF1"`},
		{"null header", header("null", 0), "header is null"},
		{"array header", header("[]", 0), "header"},
		{"three offsets", header(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}}`, 8), "data_offsets [0 8 8], want [begin, end]"},
		{"one offset", header(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[8]}}`, 8), "want [begin, end]"},
		{"null offsets", header(`{"a":{"dtype":"F32","shape":[2],"data_offsets":null}}`, 8), "needs dtype, shape and data_offsets"},
		{"no shape", header(`{"a":{"dtype":"F32","data_offsets":[0,8]}}`, 8), "needs dtype, shape and data_offsets"},
		{"null tensor", header(`{"a":null}`, 8), "needs dtype, shape and data_offsets"},
		{"unknown field", header(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}}`, 8), `unknown field "x"`},
		{"negative dim", header(`{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`, 8), "shape [-2]"},
		{"overflowing shape", header(`{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}}`, 0), "larger than the 0 data bytes"},
		{"overlap", header(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8), "gap or overlap"},
		{"metadata", header(`{"__metadata__":{"a":1}}`, 0), "__metadata__ must map strings to strings"},
	} {
		_, _, err := Decode(c.b)
		assert.ErrorContains(t, err, c.want, c.name)
	}
	var buf bytes.Buffer
	err := Encode(&buf, map[string]*tensor.Dense{"i": tensor.New(tensor.WithBacking([]int{1}))}, nil)
	assert.ErrorContains(t, err, `tensor "i": element type int`)
	err = Encode(&buf, map[string]*tensor.Dense{"__metadata__": tensor.New(tensor.WithBacking([]float32{1}))}, nil)
	assert.ErrorContains(t, err, "reserved")
}

// TestReadRefusesHostileFiles: what is not a regular file, or whose size
// disagrees with its header, is refused before any data is read.
func TestReadRefusesHostileFiles(t *testing.T) {
	dir := t.TempDir()
	good := encode(t, sampleTensors(), nil)

	zero := filepath.Join(dir, "zero.safetensors")
	require.NoError(t, os.Symlink("/dev/zero", zero))
	_, _, err := Read(zero)
	assert.ErrorContains(t, err, "is not a regular file")
	_, err = ReadHeader(zero)
	assert.ErrorContains(t, err, "is not a regular file")

	fifo := filepath.Join(dir, "fifo.safetensors")
	require.NoError(t, syscall.Mkfifo(fifo, 0o644))
	done := make(chan error, 1)
	go func() { _, _, err := Read(fifo); done <- err }()
	select {
	case err := <-done:
		assert.ErrorContains(t, err, "is not a regular file")
	case <-time.After(10 * time.Second):
		t.Fatal("Read blocked on a FIFO")
	}

	_, _, err = Read(dir)
	assert.ErrorContains(t, err, "is not a regular file")

	// A header that claims more data than the file holds (a file cut
	// short, or a hand-made one) is refused by ReadHeader already.
	cut := filepath.Join(dir, "cut.safetensors")
	require.NoError(t, os.WriteFile(cut, good[:len(good)-1], 0o644))
	_, err = ReadHeader(cut)
	assert.ErrorContains(t, err, "cut.safetensors")
	assert.ErrorContains(t, err, "offsets")
	_, _, err = Read(cut)
	assert.ErrorContains(t, err, "offsets")
	huge := filepath.Join(dir, "huge.safetensors")
	require.NoError(t, os.WriteFile(huge, header(`{"a":{"dtype":"F32","shape":[1000000000,1000],"data_offsets":[0,4000000000000]}}`, 16), 0o644))
	_, _, err = Read(huge)
	assert.ErrorContains(t, err, "larger than the 16 data bytes")

	_, _, err = Read(filepath.Join(dir, "missing.safetensors"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// torchPython is /usr/bin/python3 if it can import torch.
func torchPython() (string, bool) {
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import torch").Run(); err != nil {
		return "", false
	}
	return py, true
}

// TestPythonRoundTrip has torch read a file written here, double every
// tensor, add one and write it back. The fixture half of the format check
// (TestReadsTorchFixture) runs without Python.
func TestPythonRoundTrip(t *testing.T) {
	py, ok := torchPython()
	if !ok {
		t.Skip("skipped: needs /usr/bin/python3 with torch (Debian python3-torch); TestReadsTorchFixture covers torch-written files without it")
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.safetensors"), filepath.Join(dir, "out.safetensors")
	src := sampleTensors()
	require.NoError(t, Write(in, src, map[string]string{"format": "pt", "from": "go"}))
	msg, err := exec.Command(py, filepath.Join("testdata", "roundtrip.py"), in, out).CombinedOutput()
	require.NoError(t, err, string(msg))
	assert.JSONEq(t, `{"f64":[1,2],"layer.bias":[3],"layer.weight":[2,3]}`, string(bytes.TrimSpace(msg)))
	got, md, err := Read(out)
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

// FuzzDecode: no input panics, and whatever decodes re-encodes to a file
// that decodes to the same tensors. Read and ReadHeader check a file's
// header with the same code as Decode (readHeader).
func FuzzDecode(f *testing.F) {
	f.Add(encode(f, sampleTensors(), map[string]string{"format": "pt"}))
	if b, err := os.ReadFile(filepath.Join("testdata", "torch.safetensors")); err == nil {
		f.Add(b)
	}
	f.Add(header("{}      ", 0))
	f.Add(header("null    ", 0))
	f.Add(header(`{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}}`, 0))
	f.Add(header(`{"a":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]}}`, 0))
	f.Add(header(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}}`, 8))
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, md, err := Decode(b)
		if err != nil {
			return
		}
		enc := encode(t, ts, md)
		again, md2, err := Decode(enc)
		require.NoError(t, err)
		require.Equal(t, enc, encode(t, again, md2), "bit for bit (NaNs included)")
		require.Equal(t, len(md), len(md2))
		require.Len(t, again, len(ts))
		for name, x := range ts {
			require.Equal(t, x.Shape(), again[name].Shape(), name)
			require.Equal(t, x.Dtype(), again[name].Dtype(), name)
		}
	})
}
