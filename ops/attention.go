package ops

import (
	"fmt"
	"runtime"
	"sync"

	"github.com/pkg/errors"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/internal/sgemm"
	"github.com/seq2gpt/seq2gpt/internal/vecmath"
)

// Attention is scaled dot-product attention over every head at once, fused
// ("Attention is all you need", §3.2.1):
//
//	α = softmax(scale·Q·Kᵀ + M)       (each query's row, over the keys)
//	out = dropout(α)·V
//
// for Q [..., T_q, d_k], K [..., T_k, d_k] and V [..., T_k, d_v] with the
// same leading axes (3-D, or 4-D [B, h, T, d] with the heads on axis 1), and
// M additive (0 where a query may attend, −Inf where it may not): the
// scores' shape [..., T_q, T_k], or [B, T_q, T_k] shared by the heads, or
// nil. A query whose every key is masked gets zero weights and a zero
// output. dropout p > 0 drops weights as Dropout does (inverted, a mask
// drawn from rng on every run, the same mask Dropout would draw over α), so
// it is for training graphs; evaluation graphs pass 0.
//
// It returns the output [..., T_q, d_v] and the weights α [..., T_q, T_k]
// before dropout, for pictures (α is the node Q, K, V's gradients are
// computed from, so reading it costs no copy). Both are differentiable: a
// loss on α reaches Q and K.
//
// Why an op of our own: composed, attention is two batched products, the
// softmax, the dropout and, backward, four more products, the dropout's and
// the softmax's gradients — eight nodes, each allocating a tensor of the
// scores' size, and Gorgonia's batched product goes head by head through
// tensor views. Fused, the forward is one pass per head (two products and
// the softmax in between, on the BLAS Gorgonia uses), the backward another
// (four products, the softmax's gradient in place), the heads split among
// GOMAXPROCS goroutines, with one scratch buffer per goroutine kept between
// runs. The backward reads the saved α rather than recomputing it.
func Attention(q, k, v, mask *G.Node, scale, dropout float64, rng *DropoutRNG) (out, weights *G.Node, err error) {
	if dropout < 0 || dropout >= 1 {
		return nil, nil, errors.Errorf("Attention: dropout %v is not in [0, 1)", dropout)
	}
	if dropout > 0 && rng == nil {
		return nil, nil, errors.New("Attention: dropout without a DropoutRNG")
	}
	shapes := []tensor.Shape{q.Shape(), k.Shape(), v.Shape()}
	in := []*G.Node{q, k, v}
	if mask != nil {
		shapes = append(shapes, mask.Shape())
		in = append(in, mask)
	}
	if _, err := attnLayout(shapes); err != nil {
		return nil, nil, err
	}
	st := &attnState{scale: scale, p: dropout, rng: rng}
	if dropout > 0 {
		rng.ops++
	}
	ranks := make([]int, len(in))
	for i, n := range in {
		ranks[i] = n.Dims()
	}
	out, err = apply(kernel{
		name: "Attention", params: st.params(),
		inRanks: ranks, outRank: q.Dims(),
		shape: func(s []tensor.Shape) (tensor.Shape, error) {
			d, err := attnLayout(s)
			if err != nil {
				return nil, err
			}
			return d.outShape(s[0]), nil
		},
		do:   st.forward,
		diff: append([]bool{true, true, true}, make([]bool, len(in)-3)...),
		grad: func(in G.Nodes, _, dOut *G.Node) (G.Nodes, error) {
			g, err := st.backward(in[0], in[1], in[2], st.weights, dOut, true)
			return append(g, make(G.Nodes, len(in)-3)...), err
		},
	}, in...)
	if err != nil {
		return nil, nil, err
	}
	// α is read out of the forward run through a node of its own: its input
	// out orders it after the forward, and the backward takes it as an input,
	// so α's register stays live until the gradients are computed.
	st.weights, err = apply(kernel{
		name: "AttentionWeights", params: st.params(),
		inRanks: []int{out.Dims(), q.Dims(), k.Dims()}, outRank: q.Dims(),
		shape: func(s []tensor.Shape) (tensor.Shape, error) {
			return append(s[1][:len(s[1])-1].Clone(), s[2][len(s[2])-2]), nil
		},
		do: func([]tensor.Tensor, *buffers) (G.Value, error) {
			if st.probs == nil {
				return nil, errors.New("AttentionWeights: run before its Attention")
			}
			return st.probs, nil
		},
		diff: []bool{false, true, true},
		grad: func(in G.Nodes, _, dW *G.Node) (G.Nodes, error) {
			g, err := st.backward(in[1], in[2], nil, st.weights, dW, false)
			if err != nil {
				return nil, err
			}
			return G.Nodes{nil, g[0], g[1]}, nil
		},
	}, out, q, k)
	if err != nil {
		return nil, nil, err
	}
	return out, st.weights, nil
}

// attnState is what one Attention op's forward run leaves for its weights
// node and its backward ops.
type attnState struct {
	scale, p float64
	rng      *DropoutRNG
	weights  *G.Node
	// probs is α of the latest run, a fresh tensor every run (it leaves
	// the op through the weights node, and Gorgonia may write into the
	// memory of a value once its node is dead). keep holds the dropout
	// multipliers (0 or 1/(1 − p)) of the latest run, []float32 or
	// []float64; scratch is per-goroutine working memory. Neither leaves
	// the op, so both are kept between runs.
	probs   *tensor.Dense
	keep    any
	scratch any
}

// params names the op in hashes: the pointer keeps two attentions over the
// same inputs from being merged (each has its own state and dropout mask).
func (st *attnState) params() string {
	return fmt.Sprintf("scale=%v,p=%v,state=%p", st.scale, st.p, st)
}

// attnDims is the layout of one attention: n = the product of the leading
// axes (heads × batch), heads = axis 1 of a 4-D input (the mask's
// broadcast axis), and the matrices' sizes.
type attnDims struct {
	n, heads, tq, tk, dk, dv int
	sharedMask               bool
}

// attnLayout checks Q, K, V (and the mask) against each other.
func attnLayout(s []tensor.Shape) (attnDims, error) {
	q, k, v := s[0], s[1], s[2]
	r := len(q)
	if r < 3 {
		return attnDims{}, errors.Errorf("Attention: Q has shape %v, want [..., T_q, d_k]", q)
	}
	lead := q[:r-2]
	if len(k) != r || !k[:r-2].Eq(lead) || k[r-1] != q[r-1] {
		return attnDims{}, errors.Errorf("Attention: K has shape %v, want %v's leading axes and d_k %d: [..., T_k, %d]", k, q, q[r-1], q[r-1])
	}
	if len(v) != r || !v[:r-2].Eq(lead) || v[r-2] != k[r-2] {
		return attnDims{}, errors.Errorf("Attention: V has shape %v, want K %v's leading axes and T_k %d: [..., %d, d_v]", v, k, k[r-2], k[r-2])
	}
	d := attnDims{n: lead.TotalSize(), heads: 1, tq: q[r-2], tk: k[r-2], dk: q[r-1], dv: v[r-1]}
	if r == 4 {
		d.heads = q[1]
	}
	if len(s) == 4 {
		scores := append(lead.Clone(), d.tq, d.tk)
		switch m := s[3]; {
		case m.Eq(scores):
		case r == 4 && m.Eq(tensor.Shape{q[0], d.tq, d.tk}):
			d.sharedMask = true
		default:
			return attnDims{}, errors.Errorf("Attention: mask has shape %v, want the scores' %v or, shared by the heads, %v", m, scores, tensor.Shape{q[0], d.tq, d.tk})
		}
	}
	return d, nil
}

func (d attnDims) outShape(q tensor.Shape) tensor.Shape {
	s := q.Clone()
	s[len(s)-1] = d.dv
	return s
}

func (d attnDims) probsShape(q tensor.Shape) tensor.Shape {
	s := q.Clone()
	s[len(s)-1] = d.tk
	return s
}

// maskOf is the offset of head i's mask in the mask's data.
func (d attnDims) maskOf(i int) int {
	if d.sharedMask {
		i /= d.heads
	}
	return i * d.tq * d.tk
}

func (st *attnState) forward(t []tensor.Tensor, buf *buffers) (G.Value, error) {
	if err := checkDtypes("Attention", t); err != nil {
		return nil, err
	}
	shapes := make([]tensor.Shape, len(t))
	for i, x := range t {
		shapes[i] = x.Shape()
	}
	d, err := attnLayout(shapes)
	if err != nil {
		return nil, err
	}
	out := buf.dense(t[0], d.outShape(shapes[0]))
	st.probs = buf.like(t[0], d.probsShape(shapes[0]))
	var call uint64
	if st.p > 0 {
		call = st.rng.Calls
		st.rng.Calls++
	}
	var mask tensor.Tensor
	if len(t) == 4 {
		mask = t[3]
	}
	switch t[0].Dtype() {
	case tensor.Float32:
		attnForward[float32](st, d, t[0], t[1], t[2], mask, out, call)
	default:
		attnForward[float64](st, d, t[0], t[1], t[2], mask, out, call)
	}
	return out, nil
}

func attnForward[T floats](st *attnState, d attnDims, qt, kt, vt, mt tensor.Tensor, outt *tensor.Dense, call uint64) {
	q, k, v, out, p := qt.Data().([]T), kt.Data().([]T), vt.Data().([]T), outt.Data().([]T), st.probs.Data().([]T)
	var mask []T
	if mt != nil {
		mask = mt.Data().([]T)
	}
	tt := d.tq * d.tk
	var keep []T
	if st.p > 0 {
		keep = grow[T](&st.keep, d.n*tt)
		tab, th := [2]T{0, T(1 / (1 - st.p))}, keepThreshold(st.p)
		for i := range keep {
			keep[i] = tab[b2u(keeps(st.rng.Seed, call, uint64(i), th))]
		}
	}
	workers := attnWorkers(d)
	scratch := grow[T](&st.scratch, workers*tt)
	parallel(d.n, workers, func(w, lo, hi int) {
		pd := scratch[w*tt : (w+1)*tt]
		for i := lo; i < hi; i++ {
			qh, kh, vh := q[i*d.tq*d.dk:(i+1)*d.tq*d.dk], k[i*d.tk*d.dk:(i+1)*d.tk*d.dk], v[i*d.tk*d.dv:(i+1)*d.tk*d.dv]
			ph, oh := p[i*tt:(i+1)*tt], out[i*d.tq*d.dv:(i+1)*d.tq*d.dv]
			var mh []T
			if mask != nil {
				mh = mask[d.maskOf(i) : d.maskOf(i)+tt]
			}
			gemmT(false, true, d.tq, d.tk, d.dk, qh, d.dk, kh, d.dk, ph, d.tk) // Q·Kᵀ
			softmaxInPlace(ph, mh, d.tk, st.scale)                             // α = softmax(scale·Q·Kᵀ + M)
			a := ph
			if keep != nil {
				mulTo(pd, ph, keep[i*tt:(i+1)*tt]) // dropout(α)
				a = pd
			}
			gemmT(false, false, d.tq, d.dv, d.tk, a, d.tk, vh, d.dv, oh, d.dv) // dropout(α)·V
		}
	})
}

// backward adds the gradients of Q, K and (withV) V, from dOut = ∂L/∂out
// (withV) or dOut = ∂L/∂α (the weights node's gradient), as one op writing
// ∂L/∂Q and two that hand out the ∂L/∂K and ∂L/∂V it computed alongside.
func (st *attnState) backward(q, k, v, weights, dOut *G.Node, withV bool) (G.Nodes, error) {
	name := "AttentionGrad"
	in := G.Nodes{q, k, weights, dOut}
	if withV {
		in = append(in, v)
	} else {
		name = "AttentionWeightsGrad"
	}
	var dk, dv *tensor.Dense // this backward's ∂L/∂K and ∂L/∂V of the latest run
	ranks := make([]int, len(in))
	for i, n := range in {
		ranks[i] = n.Dims()
	}
	qs := q.Shape().Clone()
	dq, err := apply(kernel{
		name: name, params: st.params(),
		inRanks: ranks, outRank: len(qs),
		shape: func([]tensor.Shape) (tensor.Shape, error) { return qs.Clone(), nil },
		do: func(t []tensor.Tensor, buf *buffers) (G.Value, error) {
			if err := checkDtypes(name, t); err != nil {
				return nil, err
			}
			var vt tensor.Tensor
			if withV {
				vt = t[4]
			}
			shapes := []tensor.Shape{t[0].Shape(), t[1].Shape(), t[1].Shape()}
			if vt != nil {
				shapes[2] = vt.Shape()
			}
			d, err := attnLayout(shapes)
			if err != nil {
				return nil, err
			}
			if withV && st.p > 0 && lenOf(st.keep) != d.n*d.tq*d.tk {
				return nil, errors.Errorf("%s: run before its forward op", name)
			}
			dqt := buf.like(t[0], t[0].Shape())
			dk = buf.like(t[0], t[1].Shape())
			dv = nil
			if withV {
				dv = buf.like(t[0], vt.Shape())
			}
			switch t[0].Dtype() {
			case tensor.Float32:
				attnBackward[float32](st, d, t[0], t[1], vt, t[2], t[3], dqt, dk, dv)
			default:
				attnBackward[float64](st, d, t[0], t[1], vt, t[2], t[3], dqt, dk, dv)
			}
			return dqt, nil
		},
	}, in...)
	if err != nil {
		return nil, err
	}
	take := func(what string, shape tensor.Shape, get func() *tensor.Dense) (*G.Node, error) {
		return apply(kernel{
			name: name + what, params: st.params(),
			inRanks: []int{dq.Dims()}, outRank: len(shape),
			shape: func([]tensor.Shape) (tensor.Shape, error) { return shape.Clone(), nil },
			do: func([]tensor.Tensor, *buffers) (G.Value, error) {
				if x := get(); x != nil {
					return x, nil
				}
				return nil, errors.Errorf("%s%s: run before %s", name, what, name)
			},
		}, dq)
	}
	gk, err := take("K", k.Shape(), func() *tensor.Dense { return dk })
	if err != nil {
		return nil, err
	}
	if !withV {
		return G.Nodes{dq, gk}, nil
	}
	gv, err := take("V", v.Shape(), func() *tensor.Dense { return dv })
	if err != nil {
		return nil, err
	}
	return G.Nodes{dq, gk, gv}, nil
}

// attnBackward computes, head by head, from g = ∂L/∂out (vt not nil) or
// g = ∂L/∂α (vt nil):
//
//	∂L/∂V = dropout(α)ᵀ·g                    ∂L/∂dropout(α) = g·Vᵀ
//	∂L/∂α = dropout's mask ⊙ ∂L/∂dropout(α)  (or g itself)
//	∂L/∂S = scale · α ⊙ (∂L/∂α − Σ_j α_j ∂L/∂α_j)
//	∂L/∂Q = ∂L/∂S·K                          ∂L/∂K = ∂L/∂Sᵀ·Q
func attnBackward[T floats](st *attnState, d attnDims, qt, kt, vt, pt, gt tensor.Tensor, dqt, dkt, dvt *tensor.Dense) {
	q, k, p, g := qt.Data().([]T), kt.Data().([]T), pt.Data().([]T), gt.Data().([]T)
	dq, dk := dqt.Data().([]T), dkt.Data().([]T)
	var v, dv, keep []T
	if vt != nil {
		v, dv = vt.Data().([]T), dvt.Data().([]T)
		if st.p > 0 {
			keep = st.keep.([]T)
		}
	}
	tt := d.tq * d.tk
	workers := attnWorkers(d)
	scratch := grow[T](&st.scratch, workers*2*tt)
	parallel(d.n, workers, func(w, lo, hi int) {
		ds, pd := scratch[w*2*tt:(w*2+1)*tt], scratch[(w*2+1)*tt:(w+1)*2*tt]
		for i := lo; i < hi; i++ {
			qh, kh, ph := q[i*d.tq*d.dk:(i+1)*d.tq*d.dk], k[i*d.tk*d.dk:(i+1)*d.tk*d.dk], p[i*tt:(i+1)*tt]
			if v == nil {
				softmaxBackInPlace(ds, ph, g[i*tt:(i+1)*tt], d.tk, st.scale)
			} else {
				vh, gh := v[i*d.tk*d.dv:(i+1)*d.tk*d.dv], g[i*d.tq*d.dv:(i+1)*d.tq*d.dv]
				dvh := dv[i*d.tk*d.dv : (i+1)*d.tk*d.dv]
				gemmT(false, true, d.tq, d.tk, d.dv, gh, d.dv, vh, d.dv, ds, d.tk) // g·Vᵀ
				a := ph
				if keep != nil {
					kh := keep[i*tt : (i+1)*tt]
					mulTo(pd, ph, kh)
					mulTo(ds, ds, kh)
					a = pd
				}
				gemmT(true, false, d.tk, d.dv, d.tq, a, d.tk, gh, d.dv, dvh, d.dv) // dropout(α)ᵀ·g
				softmaxBackInPlace(ds, ph, ds, d.tk, st.scale)
			}
			gemmT(false, false, d.tq, d.dk, d.tk, ds, d.tk, kh, d.dk, dq[i*d.tq*d.dk:(i+1)*d.tq*d.dk], d.dk) // ∂L/∂S·K
			gemmT(true, false, d.tk, d.dk, d.tq, ds, d.tk, qh, d.dk, dk[i*d.tk*d.dk:(i+1)*d.tk*d.dk], d.dk)  // ∂L/∂Sᵀ·Q
		}
	})
}

// attnWorkers is how many goroutines share the heads of d: up to
// GOMAXPROCS where the BLAS is pure Go (seq2gpt's SGEMM, gonum's), which
// runs a product of one head's size on one goroutine, and each with at
// least minAttnWork multiply-adds, so that a decoding step's few small heads
// do not wait for a goroutine to start; one with OpenBLAS, which has
// threads of its own.
func attnWorkers(d attnDims) int {
	switch G.WhichBLAS().(type) {
	case sgemm.Implementation, gonum.Implementation:
		work := d.n * d.tq * d.tk * (d.dk + d.dv)
		return max(1, min(d.n, runtime.GOMAXPROCS(0), work/minAttnWork))
	}
	return 1
}

// minAttnWork is the fewest multiply-adds worth a goroutine of their own
// (some tens of microseconds).
const minAttnWork = 1 << 16

// parallel runs f over [0, n) split into workers contiguous ranges, the
// first on the calling goroutine.
func parallel(n, workers int, f func(w, lo, hi int)) {
	if workers <= 1 {
		f(0, 0, n)
		return
	}
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(w, w*n/workers, (w+1)*n/workers)
		}()
	}
	f(0, 0, n/workers)
	wg.Wait()
}

// grow returns (*buf)[:n] as a []T, reallocating when it is too small or of
// another type.
func grow[T floats](buf *any, n int) []T {
	if b, ok := (*buf).([]T); ok && cap(b) >= n {
		*buf = b[:n]
		return b[:n]
	}
	b := make([]T, n)
	*buf = b
	return b
}

func lenOf(buf any) int {
	switch b := buf.(type) {
	case []float32:
		return len(b)
	case []float64:
		return len(b)
	}
	return 0
}

// gemmT is c = op(a)·op(b) on row-major data with Gorgonia's BLAS (c is
// not read).
func gemmT[T floats](aT, bT bool, m, n, k int, a []T, lda int, b []T, ldb int, c []T, ldc int) {
	ta, tb := blas.NoTrans, blas.NoTrans
	if aT {
		ta = blas.Trans
	}
	if bT {
		tb = blas.Trans
	}
	switch cd := any(c).(type) {
	case []float32:
		G.WhichBLAS().Sgemm(ta, tb, m, n, k, 1, any(a).([]float32), lda, any(b).([]float32), ldb, 0, cd, ldc)
	case []float64:
		G.WhichBLAS().Dgemm(ta, tb, m, n, k, 1, any(a).([]float64), lda, any(b).([]float64), ldb, 0, cd, ldc)
	}
}

// softmaxInPlace is x = softmax(scale·x + mask) row by row (rows of n),
// SoftMax's kernels.
func softmaxInPlace[T floats](x, mask []T, n int, scale float64) {
	same := func(r int) int { return r }
	switch xs := any(x).(type) {
	case []float32:
		m, _ := any(mask).([]float32)
		softmaxRows32(xs, m, xs, n, float32(scale), same)
	case []float64:
		m, _ := any(mask).([]float64)
		softmaxRows(xs, m, xs, n, scale, same)
	}
}

// softmaxBackInPlace is dx = scale·y ⊙ (dy − Σ_j dy_j y_j) row by row; dx
// may be dy.
func softmaxBackInPlace[T floats](dx, y, dy []T, n int, scale float64) {
	switch d := any(dx).(type) {
	case []float32:
		softmaxBack32(any(y).([]float32), any(dy).([]float32), d, n, float32(scale))
	case []float64:
		softmaxBack(any(y).([]float64), any(dy).([]float64), d, n, scale)
	}
}

// mulTo is dst = x ⊙ y; dst may be x.
func mulTo[T floats](dst, x, y []T) {
	if d, ok := any(dst).([]float32); ok {
		vecmath.MulAffine(d, any(x).([]float32), any(y).([]float32), 1, 0)
		return
	}
	for i := range dst {
		dst[i] = x[i] * y[i]
	}
}
