package blocks

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

// TestStoreAddRefusesHugeShapes: a shape whose product passes MaxElements
// or the integer range is an error naming it, not a panic or an
// allocation.
func TestStoreAddRefusesHugeShapes(t *testing.T) {
	s, err := NewStore(tensor.Float32, 1)
	require.NoError(t, err)
	for _, shape := range []tensor.Shape{
		{4611686018427387904, 768}, // product wraps around int64
		{1 << 62, 4},               // product wraps to 0
		{1 << 21, 1 << 20},         // 2⁴¹ elements: no overflow, past the bound
		{3, 1 << 40},
	} {
		_, err := s.Add("w", shape, Zeros())
		assert.ErrorContains(t, err, "more than 1099511627776 elements", "%v", shape)
	}
	assert.Zero(t, s.Len())
	_, err = s.Add("w", tensor.Shape{2, 3}, Ones())
	require.NoError(t, err)
}

// TestStoreSetTensor copies in the store's own element type, checks the
// shape and refuses what is not a float.
func TestStoreSetTensor(t *testing.T) {
	s32, err := NewStore(tensor.Float32, 1)
	require.NoError(t, err)
	_, err = s32.Add("w", tensor.Shape{2, 2}, Zeros())
	require.NoError(t, err)
	s64, err := NewStore(tensor.Float64, 1)
	require.NoError(t, err)
	_, err = s64.Add("w", tensor.Shape{2, 2}, Zeros())
	require.NoError(t, err)

	f32 := []float32{1.5, -2, 1e-30, 3.4e38}
	f64 := []float64{0.1, -2, 1e-300, 1.0 / 3}
	require.NoError(t, s32.SetTensor("w", tensor.New(tensor.WithShape(2, 2), tensor.WithBacking(append([]float32(nil), f32...)))))
	w, _ := s32.Get("w")
	assert.Equal(t, f32, w.Data(), "float32 into float32: element for element")
	require.NoError(t, s32.SetTensor("w", tensor.New(tensor.WithShape(2, 2), tensor.WithBacking(f64))))
	assert.Equal(t, []float32{0.1, -2, 0, float32(1.0 / 3)}, w.Data(), "float64 into float32 rounds")
	require.NoError(t, s64.SetTensor("w", tensor.New(tensor.WithShape(2, 2), tensor.WithBacking(f32))))
	w, _ = s64.Get("w")
	assert.Equal(t, []float64{1.5, -2, float64(float32(1e-30)), float64(float32(3.4e38))}, w.Data(), "float32 into float64 exactly")

	// A view (a transposed tensor) is copied in its logical order.
	tr := tensor.New(tensor.WithShape(2, 2), tensor.WithBacking([]float64{1, 2, 3, 4}))
	require.NoError(t, tr.T())
	require.NoError(t, s64.SetTensor("w", tr))
	assert.Equal(t, []float64{1, 3, 2, 4}, w.Data())

	assert.ErrorContains(t, s32.SetTensor("w", tensor.New(tensor.WithShape(4), tensor.WithBacking(f32))),
		`parameter "w" has shape (2, 2), the tensor (4)`)
	assert.ErrorContains(t, s32.SetTensor("w", tensor.New(tensor.WithShape(2, 2), tensor.WithBacking([]int64{1, 2, 3, 4}))),
		"the tensor int64 (want float32 or float64)")
	assert.ErrorContains(t, s32.SetTensor("x", tensor.New(tensor.WithShape(2, 2), tensor.WithBacking(f32))), `no parameter "x"`)
}

func TestFloat64s(t *testing.T) {
	for _, c := range []struct {
		in   *tensor.Dense
		want []float64
	}{
		{tensor.New(tensor.WithShape(2), tensor.WithBacking([]float32{0.5, -1})), []float64{0.5, -1}},
		{tensor.New(tensor.WithShape(2), tensor.WithBacking([]float64{0.1, 2})), []float64{0.1, 2}},
		{tensor.New(tensor.WithShape(2), tensor.WithBacking([]int64{-3, 1 << 40})), []float64{-3, 1 << 40}},
		{tensor.New(tensor.WithShape(1), tensor.WithBacking([]int{7})), []float64{7}},
	} {
		got, err := Float64s(c.in)
		require.NoError(t, err)
		assert.Equal(t, c.want, got)
	}
	src := []float64{1, 2}
	got, err := Float64s(tensor.New(tensor.WithShape(2), tensor.WithBacking(src)))
	require.NoError(t, err)
	got[0] = 9
	assert.Equal(t, 1.0, src[0], "a copy, not the tensor's own slice")
	_, err = Float64s(tensor.New(tensor.WithShape(1), tensor.WithBacking([]bool{true})))
	assert.ErrorContains(t, err, "cannot read a bool tensor")
}
