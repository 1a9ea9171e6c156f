package ops

import (
	"fmt"

	"github.com/pkg/errors"
	"gonum.org/v1/gonum/blas"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// LSTMLayerOutput is what LSTMLayer returns: every step's output
// out [B, T, H] and the final state h_T, c_T [B, H].
type LSTMLayerOutput struct {
	Out, H, C *G.Node
}

// LSTMLayer is one LSTM layer's whole recurrence over a padded batch, in
// one op forward and one backward (backpropagation through time), as
// cuDNN's and torch's fused nn.LSTM run it. From the input half of the
// gates for every step, gx [B, T, 4H] = W_ih x_t + b_ih (one matrix
// product outside, before the recurrence), and for t = 0 … T−1 (T−1 … 0
// when reverse):
//
//	z_t = gx_t + W_hh h_{t−1} + b_hh = [i f g o]
//	c'_t = σ(f) ⊙ c_{t−1} + σ(i) ⊙ tanh(g),   h'_t = σ(o) ⊙ tanh(c'_t)
//	h_t = h_{t−1} + m_t ⊙ (h'_t − h_{t−1}),   c_t likewise,   out_t = m_t ⊙ h'_t
//
// whh [4H, H], bhh [4H]; h0 and c0 [B, H] are the initial state, nil for
// zeros; keep [B, T, H] is the step mask m (blocks.StepMask: 1 at a real
// step, 0 at padding, where the state is carried over and the output is
// 0), nil when every step is real (then h_t = h'_t, out_t = h'_t). keep is
// not differentiated. The result is out [B, T, H] in time order and the
// state after the last step processed.
//
// Why one op for the layer: unrolled into per-step nodes, step t reads its
// slice of gx through a Select, whose backward is a zero [B, T, 4H] tensor
// with one slice set, and autodiff sums the T of them in a chain of adds:
// O(T²) work and memory for what is one tensor of gradients, on top of a
// dozen nodes per step forward and twice that backward. This op writes
// ∂L/∂gx step by step into one tensor, and ∂L/∂W_hh = Σ_t ∂z_tᵀ h_{t−1}
// in one matrix product over all steps.
//
// Why the op keeps a workspace: the backward pass needs every step's gates
// and the states each step read, and a Gorgonia op has one output. The
// forward writes them into a workspace the op owns (kept, not reallocated,
// while the shapes stay) and the backward op, which reads the forward's
// output and so runs after it in the same pass of the machine, reads them
// there. A graph runs on one machine at a time, as Gorgonia requires
// anyway. The forward's output packs out, h_T and c_T as [B, T+2, H]
// (views of it are what LSTMLayer returns); the backward's packs the
// gradients of gx, W_hh, b_hh, h0 and c0 into one vector.
//
// Rounding: each step computes what the per-step composition
// (ops.Linear for W_hh h + b_hh, an add, LSTMCellState, LSTMHidden and the
// carry old + m ⊙ (new − old)) computes, in the same order, so the forward
// agrees with it to the last bit; backward, only the sums over steps
// (∂W_hh, ∂b_hh) are taken in another order.
func LSTMLayer(gx, whh, bhh, h0, c0, keep *G.Node, reverse bool) (LSTMLayerOutput, error) {
	d, err := lstmLayerDims(gx, whh, bhh, h0, c0, keep)
	if err != nil {
		return LSTMLayerOutput{}, err
	}
	d.reverse = reverse
	in := G.Nodes{gx, whh, bhh}
	for _, n := range []*G.Node{h0, c0, keep} {
		if n != nil {
			in = append(in, n)
		}
	}
	ranks := make([]int, len(in))
	diff := make([]bool, len(in))
	for i, n := range in {
		ranks[i], diff[i] = n.Dims(), true
	}
	if keep != nil {
		diff[len(in)-1] = false
	}
	ws := &lstmWork{}
	yShape := tensor.Shape{d.B, d.T + 2, d.H}
	y, err := apply(kernel{
		name: "LSTMLayer", params: d.String(),
		inRanks: ranks, outRank: 3,
		shape: func([]tensor.Shape) (tensor.Shape, error) { return yShape.Clone(), nil },
		do: func(t []tensor.Tensor, buf *buffers) (G.Value, error) {
			if err := checkDtypes("LSTMLayer", t); err != nil {
				return nil, err
			}
			if err := d.checkRun(t); err != nil {
				return nil, err
			}
			y := buf.like(t[0], yShape)
			switch gd := t[0].Data().(type) {
			case []float32:
				lstmForward(workOf[float32](ws, d), d, gd, t[1].Data().([]float32), t[2].Data().([]float32),
					d.opt(t, d.hasH0, 3), d.opt(t, d.hasC0, d.c0At()), d.opt(t, d.hasKeep, d.keepAt()), y.Data().([]float32))
			case []float64:
				lstmForward(workOf[float64](ws, d), d, gd, t[1].Data().([]float64), t[2].Data().([]float64),
					d.opt(t, d.hasH0, 3), d.opt(t, d.hasC0, d.c0At()), d.opt(t, d.hasKeep, d.keepAt()), y.Data().([]float64))
			}
			return y, nil
		},
		diff: diff,
		grad: func(in G.Nodes, y, dy *G.Node) (G.Nodes, error) { return lstmLayerGrad(d, ws, in, y, dy) },
	}, in...)
	if err != nil {
		return LSTMLayerOutput{}, err
	}
	var o LSTMLayerOutput
	if o.Out, err = Narrow(y, 1, 0, d.T); err != nil {
		return o, err
	}
	if o.H, err = Select(y, 1, d.T); err != nil {
		return o, err
	}
	o.C, err = Select(y, 1, d.T+1)
	return o, err
}

// lstmDims are an LSTMLayer's sizes and which optional inputs it has.
type lstmDims struct {
	B, T, H                 int
	hasH0, hasC0, hasKeep   bool
	reverse                 bool
	gxShape, wShape, bShape tensor.Shape
}

func (d lstmDims) String() string {
	return fmt.Sprintf("B=%d,T=%d,H=%d,h0=%v,c0=%v,keep=%v,reverse=%v", d.B, d.T, d.H, d.hasH0, d.hasC0, d.hasKeep, d.reverse)
}

func (d lstmDims) c0At() int {
	if d.hasH0 {
		return 4
	}
	return 3
}

func (d lstmDims) keepAt() int {
	if d.hasC0 {
		return d.c0At() + 1
	}
	return d.c0At()
}

// opt is input i's data if the op has that input, else nil.
func (lstmDims) opt(t []tensor.Tensor, has bool, i int) any {
	if !has {
		return nil
	}
	return t[i].Data()
}

func lstmLayerDims(gx, whh, bhh, h0, c0, keep *G.Node) (lstmDims, error) {
	if gx == nil || whh == nil || bhh == nil {
		return lstmDims{}, errors.New("LSTMLayer: gates, W_hh and b_hh are required")
	}
	gs, ws, bs := gx.Shape(), whh.Shape(), bhh.Shape()
	if gx.Dims() != 3 || gs[2]%4 != 0 {
		return lstmDims{}, errors.Errorf("LSTMLayer: input gates have shape %v, want (B, T, 4H)", gs)
	}
	d := lstmDims{B: gs[0], T: gs[1], H: gs[2] / 4, hasH0: h0 != nil, hasC0: c0 != nil, hasKeep: keep != nil,
		gxShape: gs.Clone(), wShape: ws.Clone(), bShape: bs.Clone()}
	if !ws.Eq(tensor.Shape{4 * d.H, d.H}) {
		return d, errors.Errorf("LSTMLayer: W_hh has shape %v, want %v for gates %v", ws, tensor.Shape{4 * d.H, d.H}, gs)
	}
	if !bs.Eq(tensor.Shape{4 * d.H}) {
		return d, errors.Errorf("LSTMLayer: b_hh has shape %v, want %v for gates %v", bs, tensor.Shape{4 * d.H}, gs)
	}
	for _, s := range []struct {
		what string
		n    *G.Node
		want tensor.Shape
	}{{"initial h", h0, tensor.Shape{d.B, d.H}}, {"initial c", c0, tensor.Shape{d.B, d.H}}, {"step mask", keep, tensor.Shape{d.B, d.T, d.H}}} {
		if s.n != nil && !s.n.Shape().Eq(s.want) {
			return d, errors.Errorf("LSTMLayer: %s has shape %v, want %v for gates %v", s.what, s.n.Shape(), s.want, gs)
		}
	}
	return d, nil
}

// checkRun checks the values a run gives against the shapes the op was
// built for.
func (d lstmDims) checkRun(t []tensor.Tensor) error {
	want := []tensor.Shape{d.gxShape, d.wShape, d.bShape}
	state := tensor.Shape{d.B, d.H}
	if d.hasH0 {
		want = append(want, state)
	}
	if d.hasC0 {
		want = append(want, state)
	}
	if d.hasKeep {
		want = append(want, tensor.Shape{d.B, d.T, d.H})
	}
	for i, w := range want {
		if !t[i].Shape().Eq(w) {
			return errors.Errorf("LSTMLayer: input %d has shape %v, built for %v", i, t[i].Shape(), w)
		}
	}
	return nil
}

// step is the time index of the s-th step processed.
func (d lstmDims) step(s int) int {
	if d.reverse {
		return d.T - 1 - s
	}
	return s
}

// lstmWork holds the workspace of one LSTMLayer op (a *lstmBuf of the
// run's dtype).
type lstmWork struct{ buf any }

// lstmBuf is the workspace, time-major ([T, B, ·], step t's rows
// contiguous, as the matrix products read them): the activations
// [σ(i) σ(f) tanh(g) σ(o)], tanh(c'_t), and the h_{t−1}, c_{t−1} each step
// read; scratch for the forward's gates and the backward's state
// gradients.
type lstmBuf[T floats] struct {
	act, dz          []T // [T, B, 4H]
	tc, hp, cp       []T // [T, B, H]
	z                []T // [B, 4H]
	h, c, cn, dh, dc []T // [B, H]
}

// workOf returns ws's buffer for d, allocated on first use (the backward's
// scratch on the backward's first use) and whenever the dtype changes.
func workOf[T floats](ws *lstmWork, d lstmDims) *lstmBuf[T] {
	if b, ok := ws.buf.(*lstmBuf[T]); ok {
		return b
	}
	n, n4, bh := d.T*d.B*d.H, 4*d.T*d.B*d.H, d.B*d.H
	b := &lstmBuf[T]{
		act: make([]T, n4),
		tc:  make([]T, n), hp: make([]T, n), cp: make([]T, n),
		z: make([]T, 4*bh),
		h: make([]T, bh), c: make([]T, bh), cn: make([]T, bh),
	}
	ws.buf = b
	return b
}

// lstmForward runs the recurrence, writing the workspace and
// y [B, T+2, H] = [out_0 … out_{T−1}, h_T, c_T] along axis 1.
func lstmForward[T floats](w *lstmBuf[T], d lstmDims, gx, whh, bhh []T, h0, c0, keep any, y []T) {
	B, steps, H := d.B, d.T, d.H
	bh, h4 := B*H, 4*H
	if h0 != nil {
		copy(w.h, h0.([]T))
	} else {
		clear(w.h)
	}
	if c0 != nil {
		copy(w.c, c0.([]T))
	} else {
		clear(w.c)
	}
	var m []T
	if keep != nil {
		m = keep.([]T)
	}
	for s := range steps {
		t := d.step(s)
		hp, cp := w.hp[t*bh:(t+1)*bh], w.cp[t*bh:(t+1)*bh]
		copy(hp, w.h)
		copy(cp, w.c)
		// z = h_{t−1}·W_hhᵀ + b_hh (as ops.Linear computes it), + gx_t.
		for r := range B {
			copy(w.z[r*h4:(r+1)*h4], bhh)
		}
		gemmSlices(blas.NoTrans, blas.Trans, B, h4, H, hp, H, whh, H, 1, w.z, h4)
		for r := range B {
			z := w.z[r*h4 : (r+1)*h4]
			g := gx[(r*steps+t)*h4 : (r*steps+t+1)*h4]
			for j := range z {
				z[j] = g[j] + z[j]
			}
			a := w.act[(t*B+r)*h4 : (t*B+r+1)*h4]
			gatesIFG(a, z, H)
			sigmoid(a[3*H:], z[3*H:])
			ai, af, ag, ao := a[:H], a[H:2*H], a[2*H:3*H], a[3*H:]
			cpr, cn := cp[r*H:(r+1)*H], w.cn[r*H:(r+1)*H]
			for j := range cn {
				cn[j] = af[j]*cpr[j] + ai[j]*ag[j]
			}
			tc := w.tc[(t*B+r)*H : (t*B+r+1)*H]
			tanh(tc, cn)
			hr, cr := w.h[r*H:(r+1)*H], w.c[r*H:(r+1)*H]
			out := y[(r*(steps+2)+t)*H : (r*(steps+2)+t+1)*H]
			if m == nil {
				for j := range out {
					hn := ao[j] * tc[j]
					out[j], hr[j], cr[j] = hn, hn, cn[j]
				}
				continue
			}
			mr := m[(r*steps+t)*H : (r*steps+t+1)*H]
			for j := range out {
				hn := ao[j] * tc[j]
				out[j] = mr[j] * hn
				hr[j] = hr[j] + mr[j]*(hn-hr[j])
				cr[j] = cr[j] + mr[j]*(cn[j]-cr[j])
			}
		}
	}
	for r := range B {
		copy(y[(r*(steps+2)+steps)*H:(r*(steps+2)+steps+1)*H], w.h[r*H:(r+1)*H])
		copy(y[(r*(steps+2)+steps+1)*H:(r*(steps+2)+steps+2)*H], w.c[r*H:(r+1)*H])
	}
}

// lstmGradParts are the offsets of the gradients in the backward's packed
// vector: ∂gx [B, T, 4H], ∂W_hh [4H, H], ∂b_hh [4H], ∂h0, ∂c0 [B, H].
func (d lstmDims) gradParts() (off []int, shapes []tensor.Shape) {
	shapes = []tensor.Shape{d.gxShape.Clone(), d.wShape.Clone(), d.bShape.Clone(), {d.B, d.H}, {d.B, d.H}}
	o := 0
	for _, s := range shapes {
		off = append(off, o)
		o += s.TotalSize()
	}
	return append(off, o), shapes
}

// lstmLayerGrad builds the backward: one op running backpropagation
// through time into a packed vector, and a slice of it for each input.
func lstmLayerGrad(d lstmDims, ws *lstmWork, in G.Nodes, y, dy *G.Node) (G.Nodes, error) {
	off, shapes := d.gradParts()
	bin := G.Nodes{y, dy, in[1]}
	ranks := []int{3, 3, 2}
	if d.hasKeep {
		bin, ranks = append(bin, in[len(in)-1]), append(ranks, 3)
	}
	total := off[len(off)-1]
	packed, err := apply(kernel{
		name: "LSTMLayerGrad", params: d.String(),
		inRanks: ranks, outRank: 1,
		shape: func([]tensor.Shape) (tensor.Shape, error) { return tensor.Shape{total}, nil },
		do: func(t []tensor.Tensor, buf *buffers) (G.Value, error) {
			if err := checkDtypes("LSTMLayerGrad", t); err != nil {
				return nil, err
			}
			p := buf.like(t[0], tensor.Shape{total})
			var keep any
			if d.hasKeep {
				keep = t[3].Data()
			}
			switch dd := t[1].Data().(type) {
			case []float32:
				w, ok := ws.buf.(*lstmBuf[float32])
				if !ok {
					return nil, errors.New("LSTMLayerGrad: the forward has not run in float32")
				}
				lstmBackward(w, d, dd, t[2].Data().([]float32), keep, p.Data().([]float32), off)
			case []float64:
				w, ok := ws.buf.(*lstmBuf[float64])
				if !ok {
					return nil, errors.New("LSTMLayerGrad: the forward has not run in float64")
				}
				lstmBackward(w, d, dd, t[2].Data().([]float64), keep, p.Data().([]float64), off)
			}
			return p, nil
		},
	}, bin...)
	if err != nil {
		return nil, err
	}
	part := func(k int) (*G.Node, error) {
		lo, hi, s := off[k], off[k+1], shapes[k]
		return apply(kernel{
			name: "LSTMLayerGradPart", params: fmt.Sprintf("%d:%d,%v", lo, hi, s),
			inRanks: []int{1}, outRank: len(s),
			shape: func([]tensor.Shape) (tensor.Shape, error) { return s.Clone(), nil },
			do: func(t []tensor.Tensor, buf *buffers) (G.Value, error) {
				out := buf.like(t[0], s)
				switch pd := t[0].Data().(type) {
				case []float32:
					copy(out.Data().([]float32), pd[lo:hi])
				case []float64:
					copy(out.Data().([]float64), pd[lo:hi])
				}
				return out, nil
			},
		}, packed)
	}
	grads := make(G.Nodes, len(in))
	which := []int{0, 1, 2}
	if d.hasH0 {
		which = append(which, 3)
	}
	if d.hasC0 {
		which = append(which, 4)
	}
	for i, k := range which {
		if grads[i], err = part(k); err != nil {
			return nil, err
		}
	}
	return grads, nil
}

// lstmBackward is backpropagation through time from dy [B, T+2, H]
// (∂L/∂out_t, ∂L/∂h_T, ∂L/∂c_T), writing the packed gradients p. With
// dh, dc the gradients of the carried state h_t, c_t, step by step from
// the last processed:
//
//	∂h'_t = m ⊙ (dh + ∂out_t),   ∂c'_t = m ⊙ dc + ∂h'_t ⊙ σ(o) ⊙ (1 − tanh²(c'_t))
//	∂z_t as LSTMCellState's and LSTMHidden's backward give it
//	dh ← dh − m ⊙ dh + ∂z_t · W_hh,   dc ← dc − m ⊙ dc + ∂c'_t ⊙ σ(f)
//
// (without a mask m = 1 and the carried terms vanish), then
// ∂W_hh = Σ_t ∂z_tᵀ h_{t−1} and ∂b_hh = Σ_t ∂z_t over all steps at once.
func lstmBackward[T floats](w *lstmBuf[T], d lstmDims, dy, whh []T, keep any, p []T, off []int) {
	B, steps, H := d.B, d.T, d.H
	h4 := 4 * H
	if w.dz == nil { // the backward's scratch, only in programs that differentiate
		w.dz, w.dh, w.dc = make([]T, steps*B*h4), make([]T, B*H), make([]T, B*H)
	}
	dgx, dw, db, dh0, dc0 := p[off[0]:off[1]], p[off[1]:off[2]], p[off[2]:off[3]], p[off[3]:off[4]], p[off[4]:off[5]]
	for r := range B {
		copy(w.dh[r*H:(r+1)*H], dy[(r*(steps+2)+steps)*H:(r*(steps+2)+steps+1)*H])
		copy(w.dc[r*H:(r+1)*H], dy[(r*(steps+2)+steps+1)*H:(r*(steps+2)+steps+2)*H])
	}
	var m []T
	if keep != nil {
		m = keep.([]T)
	}
	for s := steps - 1; s >= 0; s-- {
		t := d.step(s)
		dz := w.dz[t*B*h4 : (t+1)*B*h4]
		for r := range B {
			a := w.act[(t*B+r)*h4 : (t*B+r+1)*h4]
			ai, af, ag, ao := a[:H], a[H:2*H], a[2*H:3*H], a[3*H:]
			tc := w.tc[(t*B+r)*H : (t*B+r+1)*H]
			cp := w.cp[(t*B+r)*H : (t*B+r+1)*H]
			dout := dy[(r*(steps+2)+t)*H : (r*(steps+2)+t+1)*H]
			dhr, dcr := w.dh[r*H:(r+1)*H], w.dc[r*H:(r+1)*H]
			dzr := dz[r*h4 : (r+1)*h4]
			di, df, dg, do := dzr[:H], dzr[H:2*H], dzr[2*H:3*H], dzr[3*H:]
			var mr []T
			if m != nil {
				mr = m[(r*steps+t)*H : (r*steps+t+1)*H]
			}
			for j := range dhr {
				var dhn, dcn, hCarry, cCarry T
				if mr == nil {
					dhn, dcn = dhr[j]+dout[j], dcr[j]
				} else {
					dhn, dcn = mr[j]*dhr[j]+mr[j]*dout[j], mr[j]*dcr[j]
					hCarry, cCarry = dhr[j]-mr[j]*dhr[j], dcr[j]-mr[j]*dcr[j]
				}
				do[j] = dhn * tc[j] * (ao[j] * (1 - ao[j]))
				dct := dcn + dhn*ao[j]*(1-tc[j]*tc[j])
				di[j] = dct * ag[j] * (ai[j] * (1 - ai[j]))
				df[j] = dct * cp[j] * (af[j] * (1 - af[j]))
				dg[j] = dct * ai[j] * (1 - ag[j]*ag[j])
				dcr[j] = af[j]*dct + cCarry
				dhr[j] = hCarry
			}
			copy(dgx[(r*steps+t)*h4:(r*steps+t+1)*h4], dzr)
		}
		// dh += ∂z_t · W_hh (ops.Linear's ∂x).
		beta := T(0)
		if m != nil {
			beta = 1
		}
		gemmSlices(blas.NoTrans, blas.NoTrans, B, H, h4, dz, h4, whh, H, beta, w.dh, H)
	}
	copy(dh0, w.dh)
	copy(dc0, w.dc)
	// ∂W_hh = Σ_t ∂z_tᵀ h_{t−1}: [4H, T·B] · [T·B, H]; ∂b_hh = Σ_t Σ_b ∂z_t.
	gemmSlices(blas.Trans, blas.NoTrans, h4, H, steps*B, w.dz, h4, w.hp, H, 0, dw, H)
	sumRows(w.dz, db, h4)
}

// gemmSlices is c = op(a)·op(b) + beta·c on row-major slices with
// Gorgonia's BLAS; m, n, k are the sizes of op(a) [m, k] and op(b) [k, n].
func gemmSlices[T floats](ta, tb blas.Transpose, m, n, k int, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	impl := G.WhichBLAS()
	switch cd := any(c).(type) {
	case []float32:
		impl.Sgemm(ta, tb, m, n, k, 1, any(a).([]float32), lda, any(b).([]float32), ldb, float32(beta), cd, ldc)
	case []float64:
		impl.Dgemm(ta, tb, m, n, k, 1, any(a).([]float64), lda, any(b).([]float64), ldb, float64(beta), cd, ldc)
	}
}
