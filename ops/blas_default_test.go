//go:build !openblas

package ops

import (
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/blas/gonum"
	G "gorgonia.org/gorgonia"
)

// The default build stays pure Go: Gorgonia's own default, gonum's BLAS.
func TestBLASIsGonum(t *testing.T) {
	require.Equal(t, "gonum", BLASName)
	require.IsType(t, gonum.Implementation{}, G.WhichBLAS())
}
