//go:build !openblas

package ops

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/internal/sgemm"
)

// The default build installs seq2gpt's SGEMM for Gorgonia and the tensor
// package alike, and says which kernel runs.
func TestBLASIsSgemm(t *testing.T) {
	require.Equal(t, "seq2gpt-sgemm", BLASName)
	require.IsType(t, sgemm.Implementation{}, G.WhichBLAS())
	require.IsType(t, sgemm.Implementation{}, tensor.WhichBLAS())
	want := "gonum"
	if k := sgemm.Kernel(); k != "gonum" {
		want = "seq2gpt-sgemm " + k
	}
	require.Equal(t, want, BLASKernel())
	t.Logf("BLAS kernel: %s", BLASKernel())
}

// Gorgonia's Mul and BatchedMatMul and the tensor package's MatMul reach the
// installed SGEMM and agree with gonum's to rounding.
func TestBLASProducts(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	randT := func(shape ...int) *tensor.Dense {
		x := tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float32))
		for i := range x.Data().([]float32) {
			x.Data().([]float32)[i] = rng.Float32()*2 - 1
		}
		return x
	}
	a, b := randT(37, 70), randT(70, 45)
	got, err := tensor.MatMul(a, b)
	require.NoError(t, err)
	want := make([]float32, 37*45)
	gonum.Implementation{}.Sgemm(blas.NoTrans, blas.NoTrans, 37, 45, 70, 1, a.Float32s(), 70, b.Float32s(), 45, 0, want, 45)
	require.InDeltaSlice(t, want, got.Data(), 1e-4)

	g := G.NewGraph()
	x := G.NewTensor(g, G.Float32, 3, G.WithShape(3, 37, 70), G.WithName("x"), G.WithValue(randT(3, 37, 70)))
	y := G.NewTensor(g, G.Float32, 3, G.WithShape(3, 45, 70), G.WithName("y"), G.WithValue(randT(3, 45, 70)))
	z, err := G.BatchedMatMul(x, y, false, true)
	require.NoError(t, err)
	m := G.NewTapeMachine(g)
	defer m.Close()
	require.NoError(t, m.RunAll())
	xs, ys, zs := x.Value().Data().([]float32), y.Value().Data().([]float32), z.Value().Data().([]float32)
	for i := 0; i < 3; i++ {
		want := make([]float32, 37*45)
		gonum.Implementation{}.Sgemm(blas.NoTrans, blas.Trans, 37, 45, 70, 1, xs[i*37*70:], 70, ys[i*45*70:], 70, 0, want, 45)
		require.InDeltaSlice(t, want, zs[i*37*45:(i+1)*37*45], 1e-4)
	}
}
