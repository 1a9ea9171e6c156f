package gpt

import (
	"slices"
	"strconv"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/decode"
	"github.com/seq2gpt/seq2gpt/train"
)

// Overflow says what happens when a row's prompt plus new tokens outgrow
// n_positions.
type Overflow int

const (
	// Slide keeps the last n_positions tokens as the context, as nanoGPT
	// crops idx_cond (the cache is then given up: learned absolute
	// positions change meaning when the window moves).
	Slide Overflow = iota
	// Error stops with an error when a token would need a position past
	// n_positions.
	Error
)

// DecoderConfig configures a Decoder.
type DecoderConfig struct {
	Overflow Overflow
	// NoCache recomputes the whole window for every token instead of using
	// the key/value cache (slower; for checking the cache).
	NoCache bool
	// MaxPrograms caps the compiled step programs kept (0:
	// train.DefaultMaxPrograms).
	MaxPrograms int
}

// Decoder is GPT as a decode.Model: each row's prompt is read into a
// key/value cache, then every new token is one run of a KindDecode program
// against it. Its programs (one per rows × cache capacity, and the window
// for NoCache and sliding) are compiled on first use and kept in a
// train.Cache across calls.
//
//	dec, _ := m.NewDecoder(gpt.DecoderConfig{})
//	defer dec.Close()
//	out, _ := decode.Generate(dec, prompts, decode.GenerateConfig{Limits: decode.Limits{MaxLen: 50}})
//
// A Decoder and its states are not safe for concurrent use.
type Decoder struct {
	m        *Model
	cfg      DecoderConfig
	programs *train.Cache
}

var _ decode.Model = (*Decoder)(nil)

// NewDecoder returns a decoder over m's current weights.
func (m *Model) NewDecoder(cfg DecoderConfig) (*Decoder, error) {
	if cfg.Overflow != Slide && cfg.Overflow != Error {
		return nil, errors.Errorf("gpt: unknown overflow %d", cfg.Overflow)
	}
	lm := LM{m}
	c, err := train.NewCache(cfg.MaxPrograms, func(k train.Key) (*train.Program, error) { return train.Compile(lm, k, 0) })
	if err != nil {
		return nil, err
	}
	return &Decoder{m: m, cfg: cfg, programs: c}, nil
}

// Stats counts the programs built, reused and evicted.
func (d *Decoder) Stats() train.CacheStats { return d.programs.Stats() }

// Close releases the compiled programs.
func (d *Decoder) Close() error { return d.programs.Close() }

// Start implements decode.Model: it reads each prompt (non-empty, in the
// vocabulary; lengths may differ) and returns each row's logits over its
// first new token.
func (d *Decoder) Start(prompts [][]int) (decode.State, [][]float32, error) {
	v := d.m.Config.VocabSize
	if len(prompts) == 0 {
		return nil, nil, errors.New("gpt: no prompts")
	}
	s := &state{d: d, window: d.cfg.NoCache}
	longest := 0
	for b, p := range prompts {
		if len(p) == 0 {
			return nil, nil, errors.Errorf("gpt: prompt %d is empty", b)
		}
		for i, id := range p {
			if id < 0 || id >= v {
				return nil, nil, errors.Errorf("gpt: prompt %d: token %d at position %d is outside the vocabulary [0, %d)", b, id, i, v)
			}
		}
		s.rows = append(s.rows, slices.Clone(p))
		longest = max(longest, len(p))
	}
	s.programRows = len(prompts)
	if err := s.overflow(); err != nil {
		return nil, nil, err
	}
	if s.window {
		logits, err := s.windowLogits()
		return s, logits, err
	}
	// Read the prompts one position at a time; a row whose prompt has
	// ended waits (its cache is not written) until the longest is read.
	logits := make([][]float32, len(prompts))
	for t := 0; t < longest; t++ {
		active := make([]bool, len(s.rows))
		for b, r := range s.rows {
			active[b] = t < len(r)
		}
		step, err := s.step(t, active)
		if err != nil {
			return nil, nil, err
		}
		for b, r := range s.rows {
			if t == len(r)-1 {
				logits[b] = step[b]
			}
		}
	}
	return s, logits, nil
}

// state is the rows being decoded: every row's tokens and, unless the
// window is recomputed, the key/value cache of all but its last token.
type state struct {
	d    *Decoder
	rows [][]int // each row's prompt and new tokens
	// programRows ≥ len(rows) is the batch of the programs run: when rows
	// leave, the others run on with empty rows rather than compile a
	// program for every smaller batch.
	programRows int
	window      bool // recompute the window: NoCache, or a row slid past n_positions
	capacity    int  // N, the cache slots of the current decode program
	k, v        []*tensor.Dense
}

// Next implements decode.State.
func (s *state) Next(tokens []int) ([][]float32, error) {
	if len(tokens) != len(s.rows) {
		return nil, errors.Errorf("gpt: %d tokens for %d rows", len(tokens), len(s.rows))
	}
	for b, id := range tokens {
		if id < 0 || id >= s.d.m.Config.VocabSize {
			return nil, errors.Errorf("gpt: row %d: token %d is outside the vocabulary [0, %d)", b, id, s.d.m.Config.VocabSize)
		}
		s.rows[b] = append(s.rows[b], id)
	}
	if err := s.overflow(); err != nil {
		return nil, err
	}
	if s.window {
		return s.windowLogits()
	}
	// Every row feeds its new token at its own position.
	active := make([]bool, len(s.rows))
	for b := range active {
		active[b] = true
	}
	return s.step(-1, active)
}

// overflow checks that every row's last token has a position: past
// n_positions it is an error, or (Slide) the cache is given up for the
// sliding window.
func (s *state) overflow() error {
	n := s.d.m.Config.NPositions
	for b, r := range s.rows {
		if len(r) <= n {
			continue
		}
		if s.d.cfg.Overflow == Error {
			return errors.Errorf("gpt: row %d has %d tokens, which exceeds n_positions %d (overflow error; slide keeps the last n_positions)", b, len(r), n)
		}
		s.window = true
	}
	if s.window {
		s.k, s.v = nil, nil
	}
	return nil
}

// Reorder implements decode.State: row i becomes old row rows[i], its
// tokens and cache rows copied.
func (s *state) Reorder(rows []int) error {
	for _, r := range rows {
		if r < 0 || r >= len(s.rows) {
			return errors.Errorf("gpt: reorder: row %d of %d", r, len(s.rows))
		}
	}
	if len(rows) == len(s.rows) && slices.Equal(rows, identity(len(rows))) {
		return nil
	}
	next := make([][]int, len(rows))
	for i, r := range rows {
		next[i] = slices.Clone(s.rows[r])
	}
	s.rows = next
	P := max(s.programRows, len(rows))
	if s.k != nil {
		for l := range s.k {
			s.k[l] = gatherRows(s.k[l], rows, P)
			s.v[l] = gatherRows(s.v[l], rows, P)
		}
	}
	s.programRows = P
	return nil
}

// Close implements decode.State; the programs stay with the Decoder.
func (s *state) Close() error { s.k, s.v = nil, nil; return nil }

// step runs one token of every active row through the decode program:
// during the prompt (t ≥ 0) row b's token t, afterwards (t < 0) its last
// token, at its own position, its keys and values then cached. Inactive
// and empty rows run too (the batch is fixed) but change nothing.
func (s *state) step(t int, active []bool) ([][]float32, error) {
	cfg := s.d.m.Config
	P := s.programRows
	ids, pos := make([]int, P), make([]int, P)
	far := 0
	for b, r := range s.rows {
		p := len(r) - 1
		if t >= 0 {
			p = min(t, len(r)-1)
		}
		if active[b] {
			ids[b], pos[b] = r[p], p
			far = max(far, p)
		}
	}
	if err := s.fit(far); err != nil {
		return nil, err
	}
	p, err := s.d.programs.Get(train.Key{Mode: blocks.Eval, Kind: KindDecode, Batch: P, Len: 1, Cache: s.capacity})
	if err != nil {
		return nil, err
	}
	dt := s.d.m.Store.Dtype()
	lets := map[string]G.Value{
		"ids":       tensor.New(tensor.WithShape(P), tensor.WithBacking(ids)),
		"positions": tensor.New(tensor.WithShape(P), tensor.WithBacking(pos)),
		"mask":      decodeMask(dt, s.capacity, pos),
	}
	for l := range s.k {
		lets["past_k."+strconv.Itoa(l)], lets["past_v."+strconv.Itoa(l)] = s.k[l], s.v[l]
	}
	for name, v := range lets {
		if err := p.Let(name, v); err != nil {
			return nil, err
		}
	}
	if err := p.Run(); err != nil {
		return nil, errors.Wrap(err, "gpt: decode step")
	}
	for l := range s.k {
		for _, kv := range []struct {
			cache *tensor.Dense
			name  string
		}{{s.k[l], "k."}, {s.v[l], "v."}} {
			nv, err := p.Output(kv.name + strconv.Itoa(l))
			if err != nil {
				return nil, err
			}
			for b := range s.rows {
				if active[b] && pos[b] < s.capacity {
					putSlot(kv.cache, nv, b, pos[b])
				}
			}
		}
	}
	logits, err := p.Output("logits")
	if err != nil {
		return nil, err
	}
	out := make([][]float32, len(s.rows))
	for b := range out {
		out[b] = rowAt(logits, b, 0, 1, cfg.VocabSize)
	}
	return out, nil
}

// fit makes sure the cache holds positions 0…t−1 and slot t, moving to
// the next capacity of the doubling series (and its program) when not.
func (s *state) fit(t int) error {
	cfg := s.d.m.Config
	want := cacheCapacity(t, cfg.NPositions)
	if s.k != nil && s.capacity >= want {
		return nil
	}
	dk := cfg.NEmbd / cfg.NHead
	shape := []int{s.programRows, cfg.NHead, want, dk}
	dt := s.d.m.Store.Dtype()
	if s.k == nil {
		s.k, s.v = make([]*tensor.Dense, cfg.NLayer), make([]*tensor.Dense, cfg.NLayer)
	}
	for l := range s.k {
		k := tensor.New(tensor.Of(dt), tensor.WithShape(shape...))
		v := tensor.New(tensor.Of(dt), tensor.WithShape(shape...))
		if s.k[l] != nil {
			copySlots(k, s.k[l])
			copySlots(v, s.v[l])
		}
		s.k[l], s.v[l] = k, v
	}
	s.capacity = want
	return nil
}

// windowLogits recomputes the last n_positions tokens of every row (right-
// padded; the causal mask keeps padding out of earlier positions) and
// returns each row's logits at its last token.
func (s *state) windowLogits() ([][]float32, error) {
	cfg := s.d.m.Config
	W, P := cfg.NPositions, s.programRows
	p, err := s.d.programs.Get(train.Key{Mode: blocks.Eval, Kind: KindLogits, Batch: P, Len: W})
	if err != nil {
		return nil, err
	}
	ids := make([]int, P*W)
	at := make([]int, len(s.rows))
	for b, r := range s.rows {
		start := max(0, len(r)-W)
		copy(ids[b*W:(b+1)*W], r[start:])
		at[b] = len(r) - 1 - start
	}
	if err := p.Let("ids", tensor.New(tensor.WithShape(P*W), tensor.WithBacking(ids))); err != nil {
		return nil, err
	}
	if err := p.Run(); err != nil {
		return nil, errors.Wrap(err, "gpt: window step")
	}
	logits, err := p.Output("logits")
	if err != nil {
		return nil, err
	}
	out := make([][]float32, len(s.rows))
	for b := range out {
		out[b] = rowAt(logits, b, at[b], W, cfg.VocabSize)
	}
	return out, nil
}

// rowAt copies the V logits of row b, position t of logits [B, T, V].
func rowAt(logits G.Value, b, t, steps, vocab int) []float32 {
	off := (b*steps + t) * vocab
	switch d := logits.Data().(type) {
	case []float32:
		return slices.Clone(d[off : off+vocab])
	case []float64:
		out := make([]float32, vocab)
		for i, x := range d[off : off+vocab] {
			out[i] = float32(x)
		}
		return out
	}
	return nil
}

// copySlots copies every slot of src [B, h, N₁, d_k] into the first N₁
// slots of dst [B, h, N₂, d_k].
func copySlots(dst, src *tensor.Dense) {
	switch d := dst.Data().(type) {
	case []float32:
		copySlotsOf(d, src.Data().([]float32), dst.Shape(), src.Shape())
	case []float64:
		copySlotsOf(d, src.Data().([]float64), dst.Shape(), src.Shape())
	}
}

func copySlotsOf[T float32 | float64](dd, sd []T, ds, ss tensor.Shape) {
	dk, n := ds[3], ss[2]
	for bh := 0; bh < ds[0]*ds[1]; bh++ {
		copy(dd[bh*ds[2]*dk:bh*ds[2]*dk+n*dk], sd[bh*n*dk:(bh+1)*n*dk])
	}
}

// putSlot copies row b of new [B, h, 1, d_k] into slot t of cache
// [B, h, N, d_k].
func putSlot(cache *tensor.Dense, nv G.Value, b, t int) {
	switch d := cache.Data().(type) {
	case []float32:
		putSlotOf(d, nv.Data().([]float32), cache.Shape(), b, t)
	case []float64:
		putSlotOf(d, nv.Data().([]float64), cache.Shape(), b, t)
	}
}

func putSlotOf[T float32 | float64](dst, src []T, s tensor.Shape, b, t int) {
	h, n, dk := s[1], s[2], s[3]
	for i := b * h; i < (b+1)*h; i++ {
		copy(dst[(i*n+t)*dk:(i*n+t+1)*dk], src[i*dk:(i+1)*dk])
	}
}

// gatherRows returns a cache [P, h, N, d_k] whose row i is row rows[i] of
// src (rows past len(rows) empty).
func gatherRows(src *tensor.Dense, rows []int, P int) *tensor.Dense {
	s := src.Shape()
	shape := []int{P, s[1], s[2], s[3]}
	dst := tensor.New(tensor.Of(src.Dtype()), tensor.WithShape(shape...))
	row := s[1] * s[2] * s[3]
	switch d := dst.Data().(type) {
	case []float32:
		sd := src.Data().([]float32)
		for i, r := range rows {
			copy(d[i*row:(i+1)*row], sd[r*row:(r+1)*row])
		}
	case []float64:
		sd := src.Data().([]float64)
		for i, r := range rows {
			copy(d[i*row:(i+1)*row], sd[r*row:(r+1)*row])
		}
	}
	return dst
}

func identity(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}
