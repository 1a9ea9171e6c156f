package train

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"

	"github.com/pkg/errors"
	"gorgonia.org/tensor"
)

// The safetensors format (huggingface/safetensors), written and read here
// without cgo:
//
//	8 bytes      N, the header length, unsigned little-endian
//	N bytes      JSON: {"<name>": {"dtype": "F32", "shape": [..],
//	             "data_offsets": [begin, end]}, ..., "__metadata__": {string: string}}
//	rest         the tensors' bytes, little-endian, row-major; offsets are
//	             relative to the end of the header
//
// The header is padded with spaces to a multiple of 8 bytes so that the data
// starts aligned, as the reference writer does.

const maxHeader = 100 << 20 // the reference reader's limit

type stEntry struct {
	Dtype   string   `json:"dtype"`
	Shape   []int    `json:"shape"`
	Offsets [2]int64 `json:"data_offsets"`
}

// WriteSafetensors writes tensors (Float32 or Float64) and metadata to path
// atomically (see WriteFileAtomic).
func WriteSafetensors(path string, tensors map[string]*tensor.Dense, metadata map[string]string) error {
	var buf bytes.Buffer
	if err := EncodeSafetensors(&buf, tensors, metadata); err != nil {
		return errors.Wrapf(err, "train: writing %s", path)
	}
	return WriteFileAtomic(path, buf.Bytes())
}

// EncodeSafetensors writes the safetensors encoding of tensors to w.
func EncodeSafetensors(w io.Writer, tensors map[string]*tensor.Dense, metadata map[string]string) error {
	header := map[string]any{}
	if len(metadata) > 0 {
		header["__metadata__"] = metadata
	}
	// Wider elements first, then by name, so every tensor starts aligned to
	// its element size (the reference writer's order).
	names := sortedKeys(tensors)
	sort.SliceStable(names, func(i, j int) bool {
		return tensors[names[i]].Dtype().Size() > tensors[names[j]].Dtype().Size()
	})
	var off int64
	for _, name := range names {
		if name == "__metadata__" || name == "" {
			return errors.Errorf("safetensors: tensor name %q is reserved", name)
		}
		t := tensors[name]
		code, size, err := stDtype(t.Dtype())
		if err != nil {
			return errors.Wrapf(err, "safetensors: tensor %q", name)
		}
		n := int64(t.Shape().TotalSize()) * size
		header[name] = stEntry{Dtype: code, Shape: shapeOf(t), Offsets: [2]int64{off, off + n}}
		off += n
	}
	js, err := json.Marshal(header) // map keys come out sorted
	if err != nil {
		return errors.Wrap(err, "safetensors: header")
	}
	for len(js)%8 != 0 {
		js = append(js, ' ')
	}
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(js)))
	if _, err := w.Write(lenBuf[:]); err != nil {
		return errors.Wrap(err, "safetensors")
	}
	if _, err := w.Write(js); err != nil {
		return errors.Wrap(err, "safetensors")
	}
	for _, name := range names {
		if err := writeLE(w, tensors[name]); err != nil {
			return errors.Wrapf(err, "safetensors: tensor %q", name)
		}
	}
	return nil
}

// shapeOf is t's shape as a JSON list; a scalar is [].
func shapeOf(t *tensor.Dense) []int {
	if t.Shape().IsScalar() {
		return []int{}
	}
	return append([]int{}, t.Shape()...)
}

func stDtype(dt tensor.Dtype) (string, int64, error) {
	switch dt {
	case tensor.Float32:
		return "F32", 4, nil
	case tensor.Float64:
		return "F64", 8, nil
	case tensor.Int64:
		return "I64", 8, nil
	}
	return "", 0, errors.Errorf("element type %v is not supported (F32, F64, I64)", dt)
}

func writeLE(w io.Writer, t *tensor.Dense) error {
	if t.IsView() {
		t = t.Materialize().(*tensor.Dense)
	}
	var b []byte
	switch d := t.Data().(type) {
	case []float32:
		b = make([]byte, 4*len(d))
		for i, x := range d {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
		}
	case []float64:
		b = make([]byte, 8*len(d))
		for i, x := range d {
			binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(x))
		}
	case []int64:
		b = make([]byte, 8*len(d))
		for i, x := range d {
			binary.LittleEndian.PutUint64(b[8*i:], uint64(x))
		}
	case float32:
		b = binary.LittleEndian.AppendUint32(nil, math.Float32bits(d))
	case float64:
		b = binary.LittleEndian.AppendUint64(nil, math.Float64bits(d))
	default:
		return errors.Errorf("unsupported data %T", d)
	}
	_, err := w.Write(b)
	return err
}

// ReadSafetensors reads a safetensors file: its tensors (F32, F64 or I64)
// and its metadata.
func ReadSafetensors(path string) (map[string]*tensor.Dense, map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, errors.Wrap(err, "train")
	}
	ts, md, err := DecodeSafetensors(b)
	return ts, md, errors.Wrapf(err, "train: reading %s", path)
}

// DecodeSafetensors parses the safetensors encoding in b, checking that the
// header is well formed and that the tensors exactly tile the data.
func DecodeSafetensors(b []byte) (map[string]*tensor.Dense, map[string]string, error) {
	if len(b) < 8 {
		return nil, nil, errors.Errorf("safetensors: %d bytes is too short for a header length", len(b))
	}
	n := binary.LittleEndian.Uint64(b)
	if n > maxHeader || n > uint64(len(b)-8) {
		return nil, nil, errors.Errorf("safetensors: header length %d does not fit in %d bytes", n, len(b))
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &raw); err != nil {
		return nil, nil, errors.Wrap(err, "safetensors: header")
	}
	data := b[8+n:]
	var md map[string]string
	type span struct {
		name       string
		begin, end int64
	}
	var spans []span
	out := map[string]*tensor.Dense{}
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &md); err != nil {
				return nil, nil, errors.Wrap(err, "safetensors: __metadata__ must map strings to strings")
			}
			continue
		}
		var e stEntry
		dec := json.NewDecoder(bytes.NewReader(msg))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return nil, nil, errors.Wrapf(err, "safetensors: tensor %q", name)
		}
		var size int64
		switch e.Dtype {
		case "F32":
			size = 4
		case "F64", "I64":
			size = 8
		default:
			return nil, nil, errors.Errorf("safetensors: tensor %q has dtype %q (supported: F32, F64, I64)", name, e.Dtype)
		}
		// The element count is bounded by the data at every factor, so a
		// shape like [2⁶², 4] cannot overflow into a small product.
		count := int64(1)
		for _, d := range e.Shape {
			if d <= 0 || int64(d) > int64(len(data))/size/count {
				return nil, nil, errors.Errorf("safetensors: tensor %q has shape %v, which is empty or larger than the %d data bytes (empty tensors are not supported)",
					name, e.Shape, len(data))
			}
			count *= int64(d)
		}
		begin, end := e.Offsets[0], e.Offsets[1]
		if begin < 0 || end < begin || end > int64(len(data)) || end-begin != count*size {
			return nil, nil, errors.Errorf("safetensors: tensor %q of %s %v has offsets [%d, %d] in %d data bytes",
				name, e.Dtype, e.Shape, begin, end, len(data))
		}
		spans = append(spans, span{name, begin, end})
		out[name] = decodeTensor(e.Dtype, e.Shape, data[begin:end])
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].begin < spans[j].begin })
	var at int64
	for _, s := range spans {
		if s.begin != at {
			return nil, nil, errors.Errorf("safetensors: tensor %q starts at %d, want %d (gap or overlap)", s.name, s.begin, at)
		}
		at = s.end
	}
	if at != int64(len(data)) {
		return nil, nil, errors.Errorf("safetensors: tensors cover %d of %d data bytes", at, len(data))
	}
	return out, md, nil
}

func decodeTensor(dtype string, shape []int, b []byte) *tensor.Dense {
	var backing any
	switch dtype {
	case "F32":
		d := make([]float32, len(b)/4)
		for i := range d {
			d[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		backing = d
	case "F64":
		d := make([]float64, len(b)/8)
		for i := range d {
			d[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
		}
		backing = d
	case "I64":
		d := make([]int64, len(b)/8)
		for i := range d {
			d[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
		}
		backing = d
	}
	if len(shape) == 0 {
		// A scalar: keep it as a one-element vector, which tensor handles
		// everywhere.
		shape = []int{1}
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(backing))
}

// WriteFileAtomic replaces path with data so that a crash leaves either the
// old file or the new one, never a torn one: it writes a temporary file in
// the same directory, syncs it, renames it over path and syncs the directory
// (so the rename itself survives a power cut).
func WriteFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return errors.Wrap(err, "train: atomic write")
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		_ = f.Close()
		return errors.Wrapf(err, "train: writing %s", tmp)
	}
	if err = f.Sync(); err != nil {
		_ = f.Close()
		return errors.Wrapf(err, "train: syncing %s", tmp)
	}
	if err = f.Close(); err != nil {
		return errors.Wrapf(err, "train: closing %s", tmp)
	}
	if err = os.Chmod(tmp, 0o644); err != nil {
		return errors.Wrapf(err, "train: chmod %s", tmp)
	}
	if err = os.Rename(tmp, path); err != nil {
		return errors.Wrapf(err, "train: renaming %s to %s", tmp, path)
	}
	d, err := os.Open(dir)
	if err != nil {
		return errors.Wrapf(err, "train: opening directory %s", dir)
	}
	if err = d.Sync(); err != nil {
		_ = d.Close()
		return errors.Wrapf(err, "train: syncing directory %s", dir)
	}
	return errors.Wrapf(d.Close(), "train: closing directory %s", dir)
}
