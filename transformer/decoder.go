package transformer

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

// DecoderConfig configures a Decoder.
type DecoderConfig struct {
	// NoCache recomputes the encoder and the whole target prefix for every
	// token (KindLogits), as torch users' greedy loops over
	// nn.Transformer do, instead of the incremental step (slower; for
	// checking it).
	NoCache bool
	// MaxPrograms caps the compiled programs kept (0:
	// train.DefaultMaxPrograms).
	MaxPrograms int
}

// Decoder is the Transformer as a decode.Model. Start encodes each source
// once — its memory and, for every decoder layer, the cross-attention's K
// and V of it — and feeds BOS; then every new token is one run of a
// KindDecode program that attends to those and to the layer's cached
// self-attention keys and values. Its programs (an encoder per rows ×
// source bucket, a step per rows × source bucket × cache capacity) are
// compiled on first use and kept in a train.Cache across calls. Sources
// are padded to a multiple of 8 and caches grow 16, 32, 64, … so that a
// few programs serve every length.
//
//	dec, _ := m.NewDecoder(transformer.DecoderConfig{})
//	defer dec.Close()
//	out, _ := decode.BeamSearch(dec, sources, decode.BeamConfig{Beam: 4,
//		Limits: decode.Limits{MaxLen: 10, MaxLenA: 1.5, EOS: []int{m.Config.EOS}}})
//
// Its states are decode.Attenders: Attention is the last decoder layer's
// cross-attention α over the source, averaged over the heads (fairseq's
// alignment). A Decoder and its states are not safe for concurrent use.
type Decoder struct {
	m        *Model
	cfg      DecoderConfig
	programs *train.Cache
}

var _ decode.Model = (*Decoder)(nil)

// NewDecoder returns a decoder over m's current weights.
func (m *Model) NewDecoder(cfg DecoderConfig) (*Decoder, error) {
	tr := Translator{m}
	c, err := train.NewCache(cfg.MaxPrograms, func(k train.Key) (*train.Program, error) { return train.Compile(tr, k, 0) })
	if err != nil {
		return nil, err
	}
	return &Decoder{m: m, cfg: cfg, programs: c}, nil
}

// Stats counts the programs built, reused and evicted.
func (d *Decoder) Stats() train.CacheStats { return d.programs.Stats() }

// Close releases the compiled programs.
func (d *Decoder) Close() error { return d.programs.Close() }

// lengthBucket is n rounded up to a multiple of 8, at most limit.
func lengthBucket(n, limit int) int { return min(limit, (n+7)/8*8) }

// Start implements decode.Model: it reads each source (token ids of the
// source vocabulary, to which it appends EOS as Model.Source does; lengths
// may differ, and an empty source is read as EOS alone), starts each
// target with BOS and returns each row's logits over its first token.
func (d *Decoder) Start(sources [][]int) (decode.State, [][]float32, error) {
	cfg := d.m.Config
	if len(sources) == 0 {
		return nil, nil, errors.New("transformer: no sources")
	}
	s := &state{d: d, programRows: len(sources)}
	longest := 0
	for b, src := range sources {
		if len(src)+1 > cfg.MaxPositions {
			return nil, nil, errors.Errorf("transformer: source %d has %d tokens and EOS, which exceeds max_position_embeddings %d", b, len(src), cfg.MaxPositions)
		}
		for i, id := range src {
			if id < 0 || id >= cfg.SrcVocabSize {
				return nil, nil, errors.Errorf("transformer: source %d: token %d at position %d is outside the vocabulary [0, %d)", b, id, i, cfg.SrcVocabSize)
			}
		}
		s.src = append(s.src, d.m.Source(src))
		s.rows = append(s.rows, []int{cfg.BOS})
		longest = max(longest, len(s.src[b]))
	}
	s.S = lengthBucket(longest, cfg.MaxPositions)
	if !d.cfg.NoCache {
		if err := s.encode(); err != nil {
			return nil, nil, err
		}
	}
	logits, err := s.step()
	if err != nil {
		return nil, nil, err
	}
	return s, logits, nil
}

// state is the rows being decoded: each row's source and target so far
// and, unless everything is recomputed, the encoder's keys and values and
// the decoder's cache.
type state struct {
	d    *Decoder
	src  [][]int
	rows [][]int // BOS and the tokens fed since
	// programRows ≥ len(rows) is the batch of the programs run: when rows
	// leave, the others run on with empty rows rather than compile a
	// program for every smaller batch.
	programRows int
	S           int             // the sources' bucket length
	memK, memV  []*tensor.Dense // per decoder layer, [P, h, S, d_k]
	cache       *blocks.KVCache // per decoder layer, [P, h, N, d_k]
	alpha       [][]float32
}

// sourceInputs are the program inputs "src" [P·S] and the source lengths
// (0 for the empty rows past the sources).
func (s *state) sourceInputs() (*tensor.Dense, []int) {
	P, S := s.programRows, s.S
	ids, lengths := make([]int, P*S), make([]int, P)
	for b := range ids {
		ids[b] = s.d.m.Config.Pad
	}
	for b, src := range s.src {
		copy(ids[b*S:], src)
		lengths[b] = len(src)
	}
	return tensor.New(tensor.WithShape(P*S), tensor.WithBacking(ids)), lengths
}

// encode runs the encoder once over the sources and keeps each decoder
// layer's cross-attention keys and values.
func (s *state) encode() error {
	p, err := s.d.programs.Get(train.Key{Mode: blocks.Eval, Kind: KindEncode, Batch: s.programRows, Source: s.S})
	if err != nil {
		return err
	}
	ids, lengths := s.sourceInputs()
	srcMask, _, err := SourceMasks(s.d.m.Store.Dtype(), lengths, s.S, 1)
	if err != nil {
		return err
	}
	if err := let(p, map[string]G.Value{"src": ids, "src_mask": srcMask}); err != nil {
		return err
	}
	if err := p.Run(); err != nil {
		return errors.Wrap(err, "transformer: encoder")
	}
	L := s.d.m.Config.NumDecoderLayers
	s.memK, s.memV = make([]*tensor.Dense, L), make([]*tensor.Dense, L)
	for l := 0; l < L; l++ {
		if s.memK[l], err = output(p, "mem_k."+strconv.Itoa(l)); err != nil {
			return err
		}
		if s.memV[l], err = output(p, "mem_v."+strconv.Itoa(l)); err != nil {
			return err
		}
	}
	return nil
}

// Next implements decode.State.
func (s *state) Next(tokens []int) ([][]float32, error) {
	v := s.d.m.Config.TgtVocabSize
	if len(tokens) != len(s.rows) {
		return nil, errors.Errorf("transformer: %d tokens for %d rows", len(tokens), len(s.rows))
	}
	for b, id := range tokens {
		if id < 0 || id >= v {
			return nil, errors.Errorf("transformer: row %d: token %d is outside the vocabulary [0, %d)", b, id, v)
		}
	}
	for b, id := range tokens {
		s.rows[b] = append(s.rows[b], id)
	}
	return s.step()
}

// step computes every row's logits after its last token: one decode step
// against the cache, or (NoCache) the whole model again.
func (s *state) step() ([][]float32, error) {
	cfg := s.d.m.Config
	far := 0
	for b, r := range s.rows {
		if len(r) > cfg.MaxPositions {
			return nil, errors.Errorf("transformer: row %d has %d target tokens, which exceeds max_position_embeddings %d", b, len(r), cfg.MaxPositions)
		}
		far = max(far, len(r)-1)
	}
	if s.d.cfg.NoCache {
		return s.recompute(far)
	}
	return s.decodeStep(far)
}

// decodeStep runs each row's last token, at its own position, through the
// decode program, then caches its keys and values.
func (s *state) decodeStep(far int) ([][]float32, error) {
	cfg := s.d.m.Config
	dt := s.d.m.Store.Dtype()
	P := s.programRows
	capacity := blocks.CacheCapacity(far, cfg.MaxPositions-1)
	if s.cache == nil {
		c, err := blocks.NewKVCache(dt, cfg.NumDecoderLayers, P, cfg.NHead, cfg.DK(), capacity)
		if err != nil {
			return nil, err
		}
		s.cache = c
	}
	s.cache.Grow(capacity)
	N := s.cache.Capacity()
	p, err := s.d.programs.Get(train.Key{Mode: blocks.Eval, Kind: KindDecode, Batch: P, Source: s.S, Len: 1, Cache: N})
	if err != nil {
		return nil, err
	}
	ids, pos := make([]int, P), make([]int, P)
	for b := range ids {
		ids[b] = cfg.Pad
	}
	for b, r := range s.rows {
		ids[b], pos[b] = r[len(r)-1], len(r)-1
	}
	selfMask, err := blocks.CacheMask(dt, N, pos)
	if err != nil {
		return nil, err
	}
	_, lengths := s.sourceInputs()
	_, memMask, err := SourceMasks(dt, lengths, s.S, 1)
	if err != nil {
		return nil, err
	}
	lets := map[string]G.Value{
		"ids":         tensor.New(tensor.WithShape(P), tensor.WithBacking(ids)),
		"positions":   tensor.New(tensor.WithShape(P), tensor.WithBacking(pos)),
		"self_mask":   selfMask,
		"memory_mask": memMask,
	}
	for l := range s.memK {
		ls := strconv.Itoa(l)
		lets["past_k."+ls], lets["past_v."+ls] = s.cache.K[l], s.cache.V[l]
		lets["mem_k."+ls], lets["mem_v."+ls] = s.memK[l], s.memV[l]
	}
	if err := let(p, lets); err != nil {
		return nil, err
	}
	if err := p.Run(); err != nil {
		return nil, errors.Wrap(err, "transformer: decode step")
	}
	for l := range s.memK {
		k, err := p.Output("k." + strconv.Itoa(l))
		if err != nil {
			return nil, err
		}
		v, err := p.Output("v." + strconv.Itoa(l))
		if err != nil {
			return nil, err
		}
		for b := range s.rows {
			if pos[b] < N {
				if err := s.cache.Put(l, k, v, b, pos[b]); err != nil {
					return nil, err
				}
			}
		}
	}
	return s.read(p, 1, make([]int, P))
}

// recompute runs the whole model over each row's source and target so
// far (KindLogits, the target padded to a multiple of 8: the causal mask
// keeps the padding out of earlier positions) and reads each row's logits
// at its last token.
func (s *state) recompute(far int) ([][]float32, error) {
	cfg := s.d.m.Config
	P, T := s.programRows, lengthBucket(far+1, cfg.MaxPositions)
	p, err := s.d.programs.Get(train.Key{Mode: blocks.Eval, Kind: KindLogits, Batch: P, Source: s.S, Len: T})
	if err != nil {
		return nil, err
	}
	src, lengths := s.sourceInputs()
	srcMask, memMask, err := SourceMasks(s.d.m.Store.Dtype(), lengths, s.S, T)
	if err != nil {
		return nil, err
	}
	tgt, pos := make([]int, P*T), make([]int, P)
	for i := range tgt {
		tgt[i] = cfg.Pad
	}
	for b, r := range s.rows {
		copy(tgt[b*T:], r)
		pos[b] = len(r) - 1
	}
	if err := let(p, map[string]G.Value{"src": src, "src_mask": srcMask, "memory_mask": memMask,
		"tgt_in": tensor.New(tensor.WithShape(P*T), tensor.WithBacking(tgt))}); err != nil {
		return nil, err
	}
	if err := p.Run(); err != nil {
		return nil, errors.Wrap(err, "transformer: recompute")
	}
	return s.read(p, T, pos)
}

// read copies each row's logits at position at[b] of p's "logits"
// [P, T, V] and its α from the last layer's "cross.l" [P, h, T, S].
func (s *state) read(p *train.Program, T int, at []int) ([][]float32, error) {
	cfg := s.d.m.Config
	logits, err := p.Output("logits")
	if err != nil {
		return nil, err
	}
	cross, err := p.Output("cross." + strconv.Itoa(cfg.NumDecoderLayers-1))
	if err != nil {
		return nil, err
	}
	V, S, H := cfg.TgtVocabSize, s.S, cfg.NHead
	lv, cv := floats(logits), floats(cross)
	out := make([][]float32, len(s.rows))
	s.alpha = make([][]float32, len(s.rows))
	for b := range s.rows {
		off := (b*T + at[b]) * V
		out[b] = slices.Clone(lv[off : off+V])
		a := make([]float32, len(s.src[b]))
		for h := 0; h < H; h++ {
			row := ((b*H+h)*T + at[b]) * S
			for j := range a {
				a[j] += cv[row+j] / float32(H)
			}
		}
		s.alpha[b] = a
	}
	return out, nil
}

// Attention implements decode.Attender: each row's α over its source as
// the encoder read it (its tokens and EOS) for the logits last returned —
// the last decoder layer's cross-attention, averaged over its heads.
func (s *state) Attention() [][]float32 { return s.alpha }

// Reorder implements decode.State: row i becomes old row rows[i], its
// source, target, encoder keys and values and cache rows copied.
func (s *state) Reorder(rows []int) error {
	for _, r := range rows {
		if r < 0 || r >= len(s.rows) {
			return errors.Errorf("transformer: reorder: row %d of %d", r, len(s.rows))
		}
	}
	if len(rows) == len(s.rows) && slices.Equal(rows, identity(len(rows))) {
		return nil
	}
	src, tgt, alpha := make([][]int, len(rows)), make([][]int, len(rows)), make([][]float32, len(rows))
	for i, r := range rows {
		src[i], tgt[i] = s.src[r], slices.Clone(s.rows[r])
		if s.alpha != nil {
			alpha[i] = s.alpha[r]
		}
	}
	P := max(s.programRows, len(rows))
	for l := range s.memK {
		var err error
		if s.memK[l], err = blocks.GatherRows(s.memK[l], rows, P); err != nil {
			return err
		}
		if s.memV[l], err = blocks.GatherRows(s.memV[l], rows, P); err != nil {
			return err
		}
	}
	if s.cache != nil {
		if err := s.cache.Reorder(rows, P); err != nil {
			return err
		}
	}
	s.src, s.rows, s.alpha, s.programRows = src, tgt, alpha, P
	return nil
}

// Close implements decode.State; the programs stay with the Decoder.
func (s *state) Close() error {
	s.memK, s.memV, s.cache = nil, nil, nil
	return nil
}

// let sets a program's inputs.
func let(p *train.Program, inputs map[string]G.Value) error {
	for name, v := range inputs {
		if err := p.Let(name, v); err != nil {
			return err
		}
	}
	return nil
}

// output is a copy of p's output name (outputs live until the next run).
func output(p *train.Program, name string) (*tensor.Dense, error) {
	v, err := p.Output(name)
	if err != nil {
		return nil, err
	}
	d, ok := v.(*tensor.Dense)
	if !ok {
		return nil, errors.Errorf("transformer: output %s is a %T", name, v)
	}
	return d.Clone().(*tensor.Dense), nil
}

// floats is a float32 view of a float32 value or a float32 copy of a
// float64 one.
func floats(v G.Value) []float32 {
	switch d := v.Data().(type) {
	case []float32:
		return d
	case []float64:
		out := make([]float32, len(d))
		for i, x := range d {
			out[i] = float32(x)
		}
		return out
	}
	return nil
}

func identity(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}
