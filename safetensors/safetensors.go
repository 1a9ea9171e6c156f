// Package safetensors reads and writes the safetensors format of
// huggingface/safetensors, the format of PyTorch and HuggingFace weights,
// without cgo:
//
//	8 bytes      N, the header length, unsigned little-endian
//	N bytes      JSON: {"<name>": {"dtype": "F32", "shape": [..],
//	             "data_offsets": [begin, end]}, ..., "__metadata__": {string: string}}
//	rest         the tensors' bytes, little-endian, row-major; offsets are
//	             relative to the end of the header
//
// The header is padded with spaces to a multiple of 8 bytes so that the data
// starts aligned, as the reference writer does. F32, F64 and I64 tensors are
// supported.
//
// Files are untrusted input: Read takes only regular files, checks the
// header against the file's size before reading any data, and every
// tensor's shape, dtype and offsets against the data, which the tensors must
// tile exactly. ReadHeader reads the header alone, so a caller can check
// names and shapes before allocating anything.
package safetensors

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"os"
	"sort"

	"github.com/pkg/errors"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/internal/atomicfile"
)

// MaxHeader is the largest header accepted, the reference reader's limit.
const MaxHeader = 100 << 20

// metadataKey is the header entry that holds the metadata.
const metadataKey = "__metadata__"

// Info is one tensor's header entry.
type Info struct {
	Dtype tensor.Dtype // Float32, Float64 or Int64
	Shape []int        // as in the file; [] is a scalar
	// Begin and End are the tensor's byte offsets in the data, which starts
	// after the header.
	Begin, End int64
}

// Header is a file's header: its tensors by name and its metadata.
type Header struct {
	Tensors  map[string]Info
	Metadata map[string]string
	// DataStart is the offset of the data in the file: 8 + the header length.
	DataStart int64
}

// Names lists the tensors in lexical order.
func (h Header) Names() []string {
	names := make([]string, 0, len(h.Tensors))
	for n := range h.Tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Write writes tensors (Float32, Float64 or Int64) and metadata to path
// atomically: a crash leaves the old file or the new one.
func Write(path string, tensors map[string]*tensor.Dense, metadata map[string]string) error {
	return errors.Wrap(atomicfile.Write(path, func(w io.Writer) error {
		return Encode(w, tensors, metadata)
	}), "safetensors")
}

// Encode writes the safetensors encoding of tensors to w. The output is
// deterministic: tensors are laid out wider elements first, then by name
// (the reference writer's order, so every tensor starts aligned to its
// element size), and the header's keys are sorted.
func Encode(w io.Writer, tensors map[string]*tensor.Dense, metadata map[string]string) error {
	header := map[string]any{}
	if len(metadata) > 0 {
		header[metadataKey] = metadata
	}
	names := make([]string, 0, len(tensors))
	for n := range tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	sort.SliceStable(names, func(i, j int) bool {
		return tensors[names[i]].Dtype().Size() > tensors[names[j]].Dtype().Size()
	})
	type entry struct {
		Dtype   string   `json:"dtype"`
		Shape   []int    `json:"shape"`
		Offsets [2]int64 `json:"data_offsets"`
	}
	var off int64
	for _, name := range names {
		if name == metadataKey || name == "" {
			return errors.Errorf("safetensors: tensor name %q is reserved", name)
		}
		t := tensors[name]
		code, size, err := codeOf(t.Dtype())
		if err != nil {
			return errors.Wrapf(err, "safetensors: tensor %q", name)
		}
		n := int64(t.Shape().TotalSize()) * size
		shape := []int{}
		if !t.Shape().IsScalar() {
			shape = append(shape, t.Shape()...)
		}
		header[name] = entry{Dtype: code, Shape: shape, Offsets: [2]int64{off, off + n}}
		off += n
	}
	js, err := json.Marshal(header) // map keys come out sorted
	if err != nil {
		return errors.Wrap(err, "safetensors: header")
	}
	for len(js)%8 != 0 {
		js = append(js, ' ')
	}
	bw := bufio.NewWriter(w)
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(js)))
	_, _ = bw.Write(lenBuf[:])
	_, _ = bw.Write(js)
	for _, name := range names {
		if err := writeLE(bw, tensors[name]); err != nil {
			return errors.Wrapf(err, "safetensors: tensor %q", name)
		}
	}
	return errors.Wrap(bw.Flush(), "safetensors")
}

func codeOf(dt tensor.Dtype) (string, int64, error) {
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

func dtypeOf(code string) (tensor.Dtype, int64, bool) {
	switch code {
	case "F32":
		return tensor.Float32, 4, true
	case "F64":
		return tensor.Float64, 8, true
	case "I64":
		return tensor.Int64, 8, true
	}
	return tensor.Dtype{}, 0, false
}

// writeLE writes t's elements little-endian, a chunk at a time.
func writeLE(w io.Writer, t *tensor.Dense) error {
	if t.IsMaterializable() { // a view or a lazy transpose
		t = t.Materialize().(*tensor.Dense)
	}
	switch d := t.Data().(type) {
	case []float32:
		return writeChunks(w, d, 4, func(b []byte, x float32) { binary.LittleEndian.PutUint32(b, math.Float32bits(x)) })
	case []float64:
		return writeChunks(w, d, 8, func(b []byte, x float64) { binary.LittleEndian.PutUint64(b, math.Float64bits(x)) })
	case []int64:
		return writeChunks(w, d, 8, func(b []byte, x int64) { binary.LittleEndian.PutUint64(b, uint64(x)) })
	case float32:
		return writeLE(w, tensor.New(tensor.WithShape(1), tensor.WithBacking([]float32{d})))
	case float64:
		return writeLE(w, tensor.New(tensor.WithShape(1), tensor.WithBacking([]float64{d})))
	case int64:
		return writeLE(w, tensor.New(tensor.WithShape(1), tensor.WithBacking([]int64{d})))
	}
	return errors.Errorf("unsupported data %T", t.Data())
}

// writeChunks encodes d, size bytes an element, through a small buffer.
func writeChunks[T any](w io.Writer, d []T, size int, put func([]byte, T)) error {
	var chunk [1 << 12]byte
	for len(d) > 0 {
		n := min(len(d), len(chunk)/size)
		for i, x := range d[:n] {
			put(chunk[size*i:], x)
		}
		if _, err := w.Write(chunk[:size*n]); err != nil {
			return err
		}
		d = d[n:]
	}
	return nil
}

// ReadHeader reads and checks the header of the file at path without
// reading its data: every tensor's dtype, shape and offsets agree with each
// other and with the file's size.
func ReadHeader(path string) (Header, error) {
	f, _, h, err := open(path)
	if err != nil {
		return Header{}, err
	}
	_ = f.Close()
	return h, nil
}

// Read reads the file at path: its tensors and its metadata. path must be
// a regular file (a symbolic link to one is followed), whose size agrees
// with its header.
func Read(path string) (map[string]*tensor.Dense, map[string]string, error) {
	f, size, h, err := open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	// The data's size is the file's, which open checked against the
	// header; a file that grew since is read no further.
	data := make([]byte, size-h.DataStart)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, nil, errors.Wrapf(err, "safetensors: %s: reading %d data bytes", path, len(data))
	}
	return decodeTensors(h, data), h.Metadata, nil
}

// open opens a regular file and reads and checks its header, leaving the
// file positioned at the data.
func open(path string) (*os.File, int64, Header, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, 0, Header{}, errors.Wrap(err, "safetensors")
	}
	// A device (/dev/zero) would be read without end, a FIFO would block.
	if !fi.Mode().IsRegular() {
		return nil, 0, Header{}, errors.Errorf("safetensors: %s is not a regular file (mode %v)", path, fi.Mode())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, Header{}, errors.Wrap(err, "safetensors")
	}
	fi2, err := f.Stat()
	if err == nil && !os.SameFile(fi, fi2) {
		err = errors.New("the file changed while it was opened")
	}
	var h Header
	if err == nil {
		h, err = readHeader(f, fi2.Size())
	}
	if err != nil {
		_ = f.Close()
		return nil, 0, Header{}, errors.Wrapf(err, "safetensors: %s", path)
	}
	return f, fi2.Size(), h, nil
}

// readHeader reads and checks the header at the start of r, a file of size
// bytes, leaving r at the data.
func readHeader(r io.Reader, size int64) (Header, error) {
	if size < 8 {
		return Header{}, errors.Errorf("%d bytes is too short for a header length", size)
	}
	var lenBuf [8]byte
	if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
		return Header{}, errors.Wrap(err, "reading the header length")
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > MaxHeader || n > uint64(size-8) {
		return Header{}, errors.Errorf("header length %d does not fit in %d bytes (at most %d)", n, size, MaxHeader)
	}
	js := make([]byte, n)
	if _, err := io.ReadFull(r, js); err != nil {
		return Header{}, errors.Wrap(err, "reading the header")
	}
	return parseHeader(js, size-8-int64(n))
}

// Decode parses the safetensors encoding in b, checking that the header is
// well formed and that the tensors exactly tile the data.
func Decode(b []byte) (map[string]*tensor.Dense, map[string]string, error) {
	h, err := readHeader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, nil, errors.Wrap(err, "safetensors")
	}
	return decodeTensors(h, b[h.DataStart:]), h.Metadata, nil
}

// parseHeader parses the JSON header of a file with dataLen data bytes.
func parseHeader(js []byte, dataLen int64) (Header, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(js, &raw); err != nil {
		return Header{}, errors.Wrap(err, "header")
	}
	if raw == nil {
		return Header{}, errors.New("header is null, want a JSON object")
	}
	h := Header{Tensors: map[string]Info{}, DataStart: 8 + int64(len(js))}
	type span struct {
		name       string
		begin, end int64
	}
	var spans []span
	// In name order, so that of several problems the same one is named
	// every time.
	names := make([]string, 0, len(raw))
	for name := range raw {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		msg := raw[name]
		if name == metadataKey {
			if err := json.Unmarshal(msg, &h.Metadata); err != nil {
				return Header{}, errors.Wrap(err, "__metadata__ must map strings to strings")
			}
			continue
		}
		// Pointers tell a missing or null field from a zero one.
		var e struct {
			Dtype   *string  `json:"dtype"`
			Shape   *[]int   `json:"shape"`
			Offsets *[]int64 `json:"data_offsets"`
		}
		dec := json.NewDecoder(bytes.NewReader(msg))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			return Header{}, errors.Wrapf(err, "tensor %q", name)
		}
		if e.Dtype == nil || e.Shape == nil || e.Offsets == nil {
			return Header{}, errors.Errorf("tensor %q needs dtype, shape and data_offsets, got %s", name, msg)
		}
		dt, size, ok := dtypeOf(*e.Dtype)
		if !ok {
			return Header{}, errors.Errorf("tensor %q has dtype %q (supported: F32, F64, I64)", name, *e.Dtype)
		}
		shape, offsets := *e.Shape, *e.Offsets
		if len(offsets) != 2 {
			return Header{}, errors.Errorf("tensor %q has data_offsets %v, want [begin, end]", name, offsets)
		}
		// The element count is bounded by the data at every factor, so a
		// shape like [2⁶², 4] cannot overflow into a small product.
		count := int64(1)
		for _, d := range shape {
			if d <= 0 || int64(d) > dataLen/size/count {
				return Header{}, errors.Errorf("tensor %q has shape %v, which is empty or larger than the %d data bytes (empty tensors are not supported)",
					name, shape, dataLen)
			}
			count *= int64(d)
		}
		begin, end := offsets[0], offsets[1]
		if begin < 0 || end < begin || end > dataLen || end-begin != count*size {
			return Header{}, errors.Errorf("tensor %q of %s %v has offsets [%d, %d] in %d data bytes",
				name, *e.Dtype, shape, begin, end, dataLen)
		}
		spans = append(spans, span{name, begin, end})
		h.Tensors[name] = Info{Dtype: dt, Shape: shape, Begin: begin, End: end}
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].begin < spans[j].begin })
	var at int64
	for _, s := range spans {
		if s.begin != at {
			return Header{}, errors.Errorf("tensor %q starts at %d, want %d (gap or overlap)", s.name, s.begin, at)
		}
		at = s.end
	}
	if at != dataLen {
		return Header{}, errors.Errorf("tensors cover %d of %d data bytes", at, dataLen)
	}
	return h, nil
}

// decodeTensors makes the tensors of a checked header from its data.
func decodeTensors(h Header, data []byte) map[string]*tensor.Dense {
	out := make(map[string]*tensor.Dense, len(h.Tensors))
	for name, e := range h.Tensors {
		b := data[e.Begin:e.End]
		var backing any
		switch e.Dtype {
		case tensor.Float32:
			d := make([]float32, len(b)/4)
			for i := range d {
				d[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
			}
			backing = d
		case tensor.Float64:
			d := make([]float64, len(b)/8)
			for i := range d {
				d[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
			}
			backing = d
		case tensor.Int64:
			d := make([]int64, len(b)/8)
			for i := range d {
				d[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
			}
			backing = d
		}
		shape := e.Shape
		if len(shape) == 0 {
			// A scalar: keep it as a one-element vector, which tensor
			// handles everywhere.
			shape = []int{1}
		}
		out[name] = tensor.New(tensor.WithShape(shape...), tensor.WithBacking(backing))
	}
	return out
}
