package sgemm

import (
	"sync"
	"unsafe"

	"github.com/seq2gpt/seq2gpt/internal/vecmath"
)

// kernel is one micro-kernel with its blocking and packing routines.
//
// The product is blocked as in GotoBLAS: for each nc-wide block of columns
// and kc-deep block of k, op(B)'s block is packed into strips of nr columns
// (kc steps of nr floats); for each mc-high block of rows, op(A)'s block is
// packed (alpha folded in) into strips of mr rows; the micro-kernel then
// multiplies one A strip by one B strip into an mr×nr tile of C. A B strip
// (kc·nr floats) stays in L1 across the strips of an A block, the A block
// (mc·kc) in L2.
type kernel struct {
	name       string
	mr, nr     int
	kc, mc, nc int
	has        func() bool // whether this CPU runs it

	// micro computes C[0:rows, 0:cols] = Ã·B̃ (+ beta·C when accum ≠ 0).
	micro func(kc int, a, b, c *float32, ldc, rows, cols int, beta float32, accum int)
	// transA packs a full A strip whose rows run along k (A not transposed):
	// dst[p*mr+r] = alpha·src[r*lds+p] for p < 8·blocks.
	transA func(blocks int, src *float32, lds int, dst *float32, alpha float32)
	// copyA packs a full A strip stored k-major (A transposed):
	// dst[p*mr+r] = alpha·src[p*lds+r] for p < kc.
	copyA func(kc int, src *float32, lds int, dst *float32, alpha float32)
	// transB and copyB do the same for a full B strip of nr columns, with B
	// transposed and not transposed.
	transB func(blocks int, src *float32, lds int, dst *float32, alpha float32)
	copyB  func(kc int, src *float32, lds int, dst *float32, alpha float32)
	// rowAXPY4 adds a[0]·b[0:n] + … + a[3]·b[3·ldb:3·ldb+n] to c[0:n] (n ≥ 1)
	// and rowDot4 sets out[q] = a[0:k]·b[q·ldb:q·ldb+k] for q < 4 (k ≥ 1):
	// the inner loops of rows. Every kernel with a micro-kernel has them.
	rowAXPY4 func(n int, c, b *float32, ldb int, a *float32)
	rowDot4  func(k int, a, b *float32, ldb int, out *float32)
}

func (k *kernel) usable() bool { return k.micro != nil && k.has() }

// operands are the arguments of one validated Sgemm call, m, n, k > 0 and
// alpha ≠ 0.
type operands struct {
	aT, bT      bool
	m, n, k     int
	alpha, beta float32
	a           []float32
	lda         int
	b           []float32
	ldb         int
	c           []float32
	ldc         int
}

const (
	// minWork is the number of multiply-adds per goroutine below which
	// handing part of a product to another goroutine costs more than it
	// saves (waking it takes microseconds). At 1<<18 the attention products
	// of GPT-medium (128×128×32) ran on two goroutines at 0.75× OpenBLAS;
	// on one they run level with it (BENCHMARKS.md).
	minWork = 1 << 19
	// maxThreads bounds the goroutines of one product.
	maxThreads = 16
)

// gemm runs a product on up to threads goroutines, each with at least
// minWork multiply-adds. It splits the larger of
// m and n, in whole strips, so that the operand every goroutine packs in
// full (op(B) when splitting rows, op(A) when splitting columns) is the
// smaller one.
func gemm(kr *kernel, threads, minWork int, op operands) {
	splitN := op.n > op.m
	unit, size := kr.mr, op.m
	if splitN {
		unit, size = kr.nr, op.n
	}
	strips := (size + unit - 1) / unit
	t := min(threads, maxThreads, strips)
	if work := op.m * op.n * op.k; work/minWork < t {
		t = max(1, work/minWork)
	}
	if t <= 1 {
		bf := getBufs(kr)
		part(kr, &op, 0, op.m, 0, op.n, bf)
		putBufs(bf)
		return
	}

	j := jobPool.Get().(*job)
	j.kr, j.op = kr, op
	chunk := (strips + t - 1) / t * unit
	bounds := func(p int) (lo, hi int) { return p * chunk, min(size, (p+1)*chunk) }

	var ws [maxThreads]*worker
	got := acquire(ws[:t-1])
	for i := 0; i < got; i++ {
		lo, hi := bounds(i + 1)
		ws[i].in <- task{j: j, lo: lo, hi: hi, splitN: splitN}
	}
	// This goroutine takes part 0 and any part no idle worker was free for.
	bf := getBufs(kr)
	for p := 0; p < t; p++ {
		if p == 0 || p > got {
			lo, hi := bounds(p)
			if hi > lo {
				j.run(lo, hi, splitN, bf)
			}
		}
	}
	putBufs(bf)
	for i := 0; i < got; i++ {
		<-j.done
	}
	j.kr, j.op = nil, operands{}
	jobPool.Put(j)
}

// part computes the block C[i0:i1, j0:j1] of the product.
func part(kr *kernel, op *operands, i0, i1, j0, j1 int, bf *bufs) {
	if op.m <= fewRows {
		rows(kr, op, i0, i1, j0, j1, bf)
		return
	}
	mr, nr := kr.mr, kr.nr
	// Even k blocks, a multiple of 8 deep (the transposing packs' step).
	nk := (op.k + kr.kc - 1) / kr.kc
	kc := ((op.k+nk-1)/nk + 7) &^ 7
	pa, pb := bf.a, bf.b
	for jc := j0; jc < j1; jc += kr.nc {
		nc := min(kr.nc, j1-jc)
		for pc := 0; pc < op.k; pc += kc {
			kcur := min(kc, op.k-pc)
			packB(kr, op, pc, kcur, jc, nc, pb)
			// The first k block applies beta; C is not read when beta is 0.
			beta, accum := float32(1), 1
			if pc == 0 {
				beta = op.beta
				if beta == 0 {
					accum = 0
				}
			}
			for ic := i0; ic < i1; ic += kr.mc {
				mc := min(kr.mc, i1-ic)
				packA(kr, op, ic, mc, pc, kcur, pa)
				for jr := 0; jr < nc; jr += nr {
					cols := min(nr, nc-jr)
					bp := &pb[jr/nr*kcur*nr]
					crow := ic*op.ldc + jc + jr
					for ir := 0; ir < mc; ir += mr {
						rows := min(mr, mc-ir)
						kr.micro(kcur, &pa[ir/mr*kcur*mr], bp, &op.c[crow+ir*op.ldc], op.ldc, rows, cols, beta, accum)
					}
				}
			}
		}
	}
}

// fewRows is the most rows of C computed straight from op(B), without
// packing. A packed element of op(B) is read once per strip of mr rows; in a
// product of one strip that is one read, so packing doubles the traffic over
// op(B) and the micro-kernel's tile is mostly zero rows. Batch-1 generation is
// products of one row by every weight matrix (GPT-medium's decoding step spent
// 58% of its time packing B). The test is on the whole product's m, not a
// part's, so that an element's sum never depends on how the product was
// split between goroutines.
const fewRows = 4

// rows computes C[i0:i1, j0:j1] = alpha·op(A)·op(B) + beta·C row by row from
// the operands in place. With B not transposed it is Σ_p (alpha·A[i,p])·B[p,:],
// four rows of B at a time (rowAXPY4) for every row of C while they are in
// L1; with B transposed, dot products of A's row with B's rows, four rows at
// a time (rowDot4).
func rows(kr *kernel, op *operands, i0, i1, j0, j1 int, bf *bufs) {
	a, b, c, k, n := op.a, op.b, op.c, op.k, j1-j0
	at := func(i, p int) float32 {
		if op.aT {
			return a[p*op.lda+i]
		}
		return a[i*op.lda+p]
	}
	scale(i1-i0, n, op.beta, c[i0*op.ldc+j0:], op.ldc)
	if !op.bT {
		coef := &bf.coef // not on the stack: kr.rowAXPY4 is a func value, so it would escape
		p := 0
		for ; p+4 <= k; p += 4 {
			for i := i0; i < i1; i++ {
				for q := range coef {
					coef[q] = op.alpha * at(i, p+q)
				}
				kr.rowAXPY4(n, &c[i*op.ldc+j0], &b[p*op.ldb+j0], op.ldb, &coef[0])
			}
		}
		for ; p < k; p++ { // the last k mod 4 rows of B
			brow := b[p*op.ldb+j0 : p*op.ldb+j1]
			for i := i0; i < i1; i++ {
				crow := c[i*op.ldc+j0 : i*op.ldc+j1]
				vecmath.AXPY(crow, op.alpha*at(i, p), brow, crow)
			}
		}
		return
	}
	dots := &bf.coef
	for i := i0; i < i1; i++ {
		var arow []float32
		if op.aT {
			if cap(bf.row) < k {
				bf.row = make([]float32, k)
			}
			arow = bf.row[:k]
			for p := range arow {
				arow[p] = a[p*op.lda+i]
			}
		} else {
			arow = a[i*op.lda : i*op.lda+k]
		}
		crow := c[i*op.ldc+j0 : i*op.ldc+j1]
		j := 0
		for ; j+4 <= n; j += 4 {
			kr.rowDot4(k, &arow[0], &b[(j0+j)*op.ldb], op.ldb, &dots[0])
			for q, d := range dots {
				crow[j+q] += op.alpha * d
			}
		}
		for ; j < n; j++ { // the last n mod 4 rows of B
			crow[j] += op.alpha * float32(vecmath.Dot(arow, b[(j0+j)*op.ldb:(j0+j)*op.ldb+k]))
		}
	}
}

// packA packs alpha·op(A)[i0:i0+mc, p0:p0+kc] into strips of mr rows,
// k-major inside a strip; the rows of a last, short strip are zero.
func packA(kr *kernel, op *operands, i0, mc, p0, kc int, dst []float32) {
	mr, a, lda, alpha := kr.mr, op.a, op.lda, op.alpha
	for ir := 0; ir < mc; ir += mr {
		mm := min(mr, mc-ir)
		s := dst[ir/mr*kc*mr : (ir/mr+1)*kc*mr]
		i := i0 + ir
		switch {
		case mm == mr && op.aT:
			kr.copyA(kc, &a[p0*lda+i], lda, &s[0], alpha)
		case mm == mr:
			blocks := kc / 8
			if blocks > 0 {
				kr.transA(blocks, &a[i*lda+p0], lda, &s[0], alpha)
			}
			for p := 8 * blocks; p < kc; p++ {
				for r := 0; r < mr; r++ {
					s[p*mr+r] = alpha * a[(i+r)*lda+p0+p]
				}
			}
		default:
			for p := 0; p < kc; p++ {
				d := s[p*mr : p*mr+mr]
				for r := 0; r < mm; r++ {
					if op.aT {
						d[r] = alpha * a[(p0+p)*lda+i+r]
					} else {
						d[r] = alpha * a[(i+r)*lda+p0+p]
					}
				}
				clear(d[mm:])
			}
		}
	}
}

// packB packs op(B)[p0:p0+kc, j0:j0+nc] into strips of nr columns, k-major
// inside a strip; the columns of a last, narrow strip are zero.
func packB(kr *kernel, op *operands, p0, kc, j0, nc int, dst []float32) {
	nr, b, ldb := kr.nr, op.b, op.ldb
	for jr := 0; jr < nc; jr += nr {
		nn := min(nr, nc-jr)
		s := dst[jr/nr*kc*nr : (jr/nr+1)*kc*nr]
		j := j0 + jr
		switch {
		case nn == nr && !op.bT:
			kr.copyB(kc, &b[p0*ldb+j], ldb, &s[0], 1)
		case nn == nr:
			blocks := kc / 8
			if blocks > 0 {
				kr.transB(blocks, &b[j*ldb+p0], ldb, &s[0], 1)
			}
			for p := 8 * blocks; p < kc; p++ {
				for c := 0; c < nr; c++ {
					s[p*nr+c] = b[(j+c)*ldb+p0+p]
				}
			}
		default:
			for p := 0; p < kc; p++ {
				d := s[p*nr : p*nr+nr]
				for c := 0; c < nn; c++ {
					if op.bT {
						d[c] = b[(j+c)*ldb+p0+p]
					} else {
						d[c] = b[(p0+p)*ldb+j+c]
					}
				}
				clear(d[nn:])
			}
		}
	}
}

// bufs are one goroutine's packing buffers, 64-byte aligned.
type bufs struct {
	a, b []float32
	row  []float32  // A's row gathered for rows, when A is transposed
	coef [4]float32 // rowAXPY4's coefficients, rowDot4's results
}

// freeBufs holds the packing buffers not in use. Not a sync.Pool: a pool
// is emptied at every garbage collection, and each refill allocated 1.7 MB
// of buffers again (60 KB per GPT-tiny training step, most of what that
// step still allocated). Buffers in use at once are bounded by the workers
// plus the goroutines calling Sgemm; more than the channel holds are dropped.
var freeBufs = make(chan *bufs, 4*maxThreads)

func putBufs(bf *bufs) {
	select {
	case freeBufs <- bf:
	default:
	}
}

func getBufs(kr *kernel) *bufs {
	var bf *bufs
	select {
	case bf = <-freeBufs:
	default:
		bf = new(bufs)
	}
	if na := kr.mc * kr.kc; len(bf.a) < na {
		bf.a = aligned(na)
	}
	if nb := kr.kc * ((kr.nc + kr.nr - 1) / kr.nr * kr.nr); len(bf.b) < nb {
		bf.b = aligned(nb)
	}
	return bf
}

// aligned returns n floats starting on a 64-byte boundary (a cache line,
// and the width of an AVX-512 load).
func aligned(n int) []float32 {
	s := make([]float32, n+15)
	off := int(uintptr(unsafe.Pointer(&s[0]))%64) / 4
	if off != 0 {
		off = 16 - off
	}
	return s[off : off+n]
}

// A job is one product shared between goroutines; done receives one value
// from each worker that finished its part.
type job struct {
	kr   *kernel
	op   operands
	done chan struct{}
}

var jobPool = sync.Pool{New: func() any { return &job{done: make(chan struct{}, maxThreads)} }}

// run computes the rows (or, with splitN, the columns) [lo, hi) of the job.
func (j *job) run(lo, hi int, splitN bool, bf *bufs) {
	if splitN {
		part(j.kr, &j.op, 0, j.op.m, lo, hi, bf)
	} else {
		part(j.kr, &j.op, lo, hi, 0, j.op.n, bf)
	}
}

type task struct {
	j      *job
	lo, hi int
	splitN bool
}

// A worker is a goroutine that runs parts of products. Workers are started
// on first need and live for the life of the program, parked on their
// channel when idle.
type worker struct {
	in chan task
}

var (
	idle      = make(chan *worker, maxThreads)
	startMu   sync.Mutex
	startedWs int
)

// acquire fills ws with idle workers, starting new ones until maxThreads−1
// exist, and returns how many it got. It never waits for a busy worker: a
// product that finds none free runs on fewer goroutines.
func acquire(ws []*worker) int {
	got := 0
	for got < len(ws) {
		select {
		case w := <-idle:
			ws[got] = w
			got++
			continue
		default:
		}
		startMu.Lock()
		if startedWs >= maxThreads-1 {
			startMu.Unlock()
			return got
		}
		startedWs++
		startMu.Unlock()
		w := &worker{in: make(chan task, 1)}
		go w.loop()
		ws[got] = w
		got++
	}
	return got
}

func (w *worker) loop() {
	for t := range w.in {
		bf := getBufs(t.j.kr)
		t.j.run(t.lo, t.hi, t.splitN, bf)
		putBufs(bf)
		// Back in the idle list before reporting, so that the caller's next
		// product finds this worker free.
		idle <- w
		t.j.done <- struct{}{}
	}
}
