package train

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

type fixTensor struct {
	Shape []int     `json:"shape"`
	Data  []float64 `json:"data"`
}

func (f fixTensor) dense(dt tensor.Dtype) *tensor.Dense {
	t := tensor.New(tensor.Of(dt), tensor.WithShape(f.Shape...))
	switch d := t.Data().(type) {
	case []float32:
		for i, v := range f.Data {
			d[i] = float32(v)
		}
	case []float64:
		copy(d, f.Data)
	}
	return t
}

func loadFixture(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, v))
}

// f64s copies a Float32 or Float64 tensor's data to float64.
func f64s(t *tensor.Dense) []float64 {
	switch d := t.Data().(type) {
	case []float32:
		out := make([]float64, len(d))
		for i, x := range d {
			out[i] = float64(x)
		}
		return out
	case []float64:
		return append([]float64(nil), d...)
	case float32:
		return []float64{float64(d)}
	case float64:
		return []float64{d}
	}
	panic("f64s: unsupported data")
}
