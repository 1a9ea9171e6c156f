package blocks

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/internal/gradcheck"
)

// referenceLSTM is one nn.LSTM layer (batch_first) in plain Go, float64:
// x [B][T][I]; rows shorter than T (lengths) carry their state over the
// padding and output zeros there. It returns out [B][T][H], h_n and c_n.
func referenceLSTM(s *Store, prefix string, hidden int, x [][][]float64, lengths []int) (out [][][]float64, hn, cn [][]float64) {
	get := func(n string) []float64 {
		t, _ := s.Get(join(prefix, n))
		return t.Data().([]float64)
	}
	wih, whh, bih, bhh := get("weight_ih_l0"), get("weight_hh_l0"), get("bias_ih_l0"), get("bias_hh_l0")
	sig := func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }
	H := hidden
	for b, seq := range x {
		h, c := make([]float64, H), make([]float64, H)
		var rows [][]float64
		for t, xt := range seq {
			if t >= lengths[b] {
				rows = append(rows, make([]float64, H))
				continue
			}
			gates := make([]float64, 4*H)
			for r := range gates {
				v := bih[r] + bhh[r]
				for i, xi := range xt {
					v += wih[r*len(xt)+i] * xi
				}
				for j, hj := range h {
					v += whh[r*H+j] * hj
				}
				gates[r] = v
			}
			nh, nc := make([]float64, H), make([]float64, H)
			for j := 0; j < H; j++ {
				i, f, g, o := sig(gates[j]), sig(gates[H+j]), math.Tanh(gates[2*H+j]), sig(gates[3*H+j])
				nc[j] = f*c[j] + i*g
				nh[j] = o * math.Tanh(nc[j])
			}
			h, c = nh, nc
			rows = append(rows, h)
		}
		out, hn, cn = append(out, rows), append(hn, h), append(cn, c)
	}
	return out, hn, cn
}

// TestLSTMAtRealSizes checks the LSTM against a plain-Go nn.LSTM where
// Gorgonia's stock slice merged parts (TestStockSliceHashCollides): with
// 128 hidden units the four gate slices of [B, 4H] were two (g read i's
// rows, o read f's), with 256 one; and from step 256 on, step t read the
// gates of step t − 256. The torch fixtures are H = 3 and T = 4.
func TestLSTMAtRealSizes(t *testing.T) {
	for _, tc := range []struct {
		name          string
		in, hidden, T int
		lengths       []int
	}{
		{"hidden_128_padded", 4, 128, 3, []int{3, 2}},
		{"hidden_256", 3, 256, 2, []int{2}},
		{"steps_260", 2, 3, 260, []int{260}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore64(t)
			l := Must(NewLSTM(s, "lstm", tc.in, tc.hidden, 1))
			g := NewGraph(s, Eval, 0)
			B := len(tc.lengths)
			xt := gradcheck.Tensor(5, 1, B, tc.T, tc.in)
			x := valued(t, g, "x", xt)
			keep := valued(t, g, "keep", Must(StepMask(tensor.Float64, tc.lengths, tc.T, tc.hidden)))
			out, err := l.Forward(g, x, keep, nil, nil)
			require.NoError(t, err)
			var ov, hv, cv G.Value
			G.Read(out.Out, &ov)
			G.Read(out.H[0], &hv)
			G.Read(out.C[0], &cv)
			vm := G.NewTapeMachine(g.G)
			defer vm.Close()
			require.NoError(t, vm.RunAll())

			xs := make([][][]float64, B)
			for b := range xs {
				xs[b] = rowsOf(Must(xt.Slice(G.S(b))).(*tensor.Dense).Materialize().(*tensor.Dense))
			}
			wantOut, wantH, wantC := referenceLSTM(s, "lstm", tc.hidden, xs, tc.lengths)
			got := ov.Data().([]float64)
			H := tc.hidden
			for b := range wantOut {
				for step, row := range wantOut[b] {
					off := (b*tc.T + step) * H
					require.InDeltaSlice(t, row, got[off:off+H], 1e-9, "row %d step %d", b, step)
				}
				require.InDeltaSlice(t, wantH[b], hv.Data().([]float64)[b*H:(b+1)*H], 1e-9, "h_n row %d", b)
				require.InDeltaSlice(t, wantC[b], cv.Data().([]float64)[b*H:(b+1)*H], 1e-9, "c_n row %d", b)
			}
		})
	}
}

// run evaluates nodes of g once and returns their values.
func runNodes(t *testing.T, g *Graph, nodes ...*G.Node) []G.Value {
	t.Helper()
	vals := make([]G.Value, len(nodes))
	for i, n := range nodes {
		G.Read(n, &vals[i])
	}
	vm := G.NewTapeMachine(g.G)
	defer vm.Close()
	require.NoError(t, vm.RunAll())
	return vals
}

// TestLSTMStepIsForward runs a 2-layer stack one step at a time (Step, as
// a decoder does) and over the whole sequence (Forward) from the same
// initial state: the outputs and final states are the same.
func TestLSTMStepIsForward(t *testing.T) {
	s := newStore64(t)
	l := Must(NewLSTM(s, "lstm", 3, 4, 2))
	g := NewGraph(s, Eval, 0)
	B, T := 2, 3
	x := valued(t, g, "x", gradcheck.Tensor(1, 1, B, T, 3))
	h0 := []*G.Node{valued(t, g, "h0", gradcheck.Tensor(2, 1, B, 4)), valued(t, g, "h1", gradcheck.Tensor(3, 1, B, 4))}
	c0 := []*G.Node{valued(t, g, "c0", gradcheck.Tensor(4, 1, B, 4)), valued(t, g, "c1", gradcheck.Tensor(5, 1, B, 4))}
	whole, err := l.Forward(g, x, nil, h0, c0)
	require.NoError(t, err)
	h, c := h0, c0
	var steps []*G.Node
	for i := range T {
		var top *G.Node
		top, h, c, err = l.Step(g, G.Must(G.Reshape(G.Must(G.Slice(x, nil, G.S(i))), tensor.Shape{B, 3})), h, c)
		require.NoError(t, err)
		steps = append(steps, top)
	}
	vals := runNodes(t, g, append([]*G.Node{whole.Out, whole.H[1], whole.C[0], h[1], c[0]}, steps...)...)
	out := vals[0].Data().([]float64)
	for i := range T {
		got := vals[5+i].Data().([]float64)
		for b := range B {
			require.InDeltaSlice(t, out[(b*T+i)*4:(b*T+i+1)*4], got[b*4:(b+1)*4], 1e-12, "step %d row %d", i, b)
		}
	}
	require.InDeltaSlice(t, vals[1].Data(), vals[3].Data(), 1e-12, "h_n of the top layer")
	require.InDeltaSlice(t, vals[2].Data(), vals[4].Data(), 1e-12, "c_n of the first layer")

	bi := Must(NewBiLSTM(s, "bi", 3, 4, 1))
	_, _, _, err = bi.Step(g, h0[0], h0, c0)
	require.ErrorContains(t, err, "bidirectional")
}

// TestLSTMDropoutBetweenLayers: nn.LSTM's dropout acts between layers
// only, in training graphs only. A 1-layer stack trains as it evaluates; a
// 2-layer one does not.
func TestLSTMDropoutBetweenLayers(t *testing.T) {
	for _, tc := range []struct {
		layers int
		same   bool
	}{{1, true}, {2, false}} {
		s := newStore64(t)
		l := Must(NewLSTM(s, "lstm", 3, 4, tc.layers))
		l.Dropout = 0.5
		var outs []G.Value
		for _, mode := range []Mode{Eval, Train} {
			g := NewGraph(s, mode, 7)
			x := valued(t, g, "x", gradcheck.Tensor(1, 1, 2, 3, 3))
			o, err := l.Forward(g, x, nil, nil, nil)
			require.NoError(t, err)
			outs = append(outs, runNodes(t, g, o.Out)[0])
		}
		if tc.same {
			require.Equal(t, outs[0].Data(), outs[1].Data(), "%d layer", tc.layers)
		} else {
			require.NotEqual(t, outs[0].Data(), outs[1].Data(), "%d layers", tc.layers)
		}
	}
}
