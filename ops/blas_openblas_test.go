//go:build openblas

package ops

import (
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/netlib/blas/netlib"
	G "gorgonia.org/gorgonia"
)

func TestBLASIsOpenBLAS(t *testing.T) {
	require.Equal(t, "openblas", BLASName)
	require.Equal(t, "openblas", BLASKernel())
	require.IsType(t, netlib.Implementation{}, G.WhichBLAS())
	// A product through the C library: [1 2; 3 4]·[5 6; 7 8] = [19 22; 43 50].
	c := make([]float32, 4)
	G.WhichBLAS().Sgemm(blas.NoTrans, blas.NoTrans, 2, 2, 2, 1, []float32{1, 2, 3, 4}, 2, []float32{5, 6, 7, 8}, 2, 0, c, 2)
	require.Equal(t, []float32{19, 22, 43, 50}, c)
}
