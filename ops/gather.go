package ops

import (
	"fmt"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Rows gathers rows of a table [N, D] by ids, a 1-D tensor.Int of n ids, into
// an output of shape out (n·D elements: an embedding lookup [B·T] → [B, T, D],
// nn.Embedding's forward). A table of more axes is read as [N, D] with N the
// product of all but the last (the states h [B, T, d] at the positions
// B·T flattened: fine-tuning's extract tokens, BERT's masked positions).
// Its gradient with respect to the table adds each row of ∂y into the row
// of its id (ids repeat; rows no id names get 0). An id outside [0, N)
// fails the run with an error naming it.
//
// Why an op of our own: Gorgonia's ByIndices and its gradient allocate their
// outputs every run, and the lookup's [B·T, D] output had to be reshaped to
// [B, T, D] by a stock Reshape, which rewrites its input's header in place.
// This op writes the shape it is asked for into tensors it keeps.
func Rows(table, ids *G.Node, out tensor.Shape) (*G.Node, error) {
	ts := table.Shape().Clone()
	if table.Dims() < 2 || ids.Dims() != 1 || ids.Dtype() != tensor.Int {
		return nil, errors.Errorf("Rows: table %v and ids %v %v; want (…, N, D) and (n) Int", ts, ids.Shape(), ids.Dtype())
	}
	D := ts[len(ts)-1]
	n, N := ids.Shape()[0], ts.TotalSize()/D
	if out.TotalSize() != n*D || len(out) == 0 || out[len(out)-1] != D {
		return nil, errors.Errorf("Rows: %d ids of a (%d, %d) table cannot fill shape %v", n, N, D, out)
	}
	out = out.Clone()
	params := fmt.Sprintf("out=%v", out)
	return apply(kernel{
		name: "Rows", params: params, inRanks: []int{len(ts), 1}, intIn: []bool{false, true}, outRank: len(out),
		shape: func([]tensor.Shape) (tensor.Shape, error) { return out.Clone(), nil },
		do: func(t []tensor.Tensor, buf *buffers) (G.Value, error) {
			if err := checkDtypes("Rows", t[:1]); err != nil {
				return nil, err
			}
			idx, err := rowIDs(t[1], n, N)
			if err != nil {
				return nil, err
			}
			y := buf.dense(t[0], out)
			switch d := t[0].Data().(type) {
			case []float32:
				gatherRows(d, y.Data().([]float32), idx, D)
			case []float64:
				gatherRows(d, y.Data().([]float64), idx, D)
			}
			return y, nil
		},
		diff: []bool{true, false},
		grad: func(in G.Nodes, _, dy *G.Node) (G.Nodes, error) {
			dt, err := apply(kernel{
				name: "RowsGrad", params: params + fmt.Sprintf(",table=%v", ts), inRanks: []int{len(out), 1}, intIn: []bool{false, true}, outRank: len(ts),
				shape: func([]tensor.Shape) (tensor.Shape, error) { return ts.Clone(), nil },
				do: func(t []tensor.Tensor, buf *buffers) (G.Value, error) {
					idx, err := rowIDs(t[1], n, N)
					if err != nil {
						return nil, err
					}
					dt := buf.like(t[0], ts)
					switch d := t[0].Data().(type) {
					case []float32:
						scatterRows(d, dt.Data().([]float32), idx, D)
					case []float64:
						scatterRows(d, dt.Data().([]float64), idx, D)
					}
					return dt, nil
				},
			}, dy, in[1])
			return G.Nodes{dt, nil}, err
		},
	}, table, ids)
}

// rowIDs checks that ids holds n ints in [0, N).
func rowIDs(ids tensor.Tensor, n, N int) ([]int, error) {
	idx, ok := ids.Data().([]int)
	if !ok || len(idx) != n {
		return nil, errors.Errorf("Rows: ids are %v %v, want (%d) Int", ids.Shape(), ids.Dtype(), n)
	}
	for i, id := range idx {
		if id < 0 || id >= N {
			return nil, errors.Errorf("Rows: id %d at position %d is outside the table's %d rows", id, i, N)
		}
	}
	return idx, nil
}

func gatherRows[T floats](table, y []T, idx []int, D int) {
	for i, id := range idx {
		copy(y[i*D:(i+1)*D], table[id*D:(id+1)*D])
	}
}

func scatterRows[T floats](dy, dt []T, idx []int, D int) {
	for i, id := range idx {
		row, g := dt[id*D:(id+1)*D], dy[i*D:(i+1)*D]
		for j := range row {
			row[j] += g[j]
		}
	}
}
