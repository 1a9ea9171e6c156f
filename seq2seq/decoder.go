package seq2seq

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
	// SourceBucket pads every batch of sources up to a multiple of it, so
	// that sentences of nearby lengths share compiled programs (0: 8).
	SourceBucket int
	// MaxPrograms caps the compiled programs kept (0:
	// train.DefaultMaxPrograms).
	MaxPrograms int
}

// Decoder is the model as a decode.Model: Start runs the encoder once over
// a batch of sources (a KindEncode program) and every new token is one run
// of a KindDecode program for all rows. The decoder's state — each row's
// LSTM state and, with attention, its encoder states h_j, keys U·h_j and
// padding mask — lives in tensors of one row per hypothesis, which Reorder
// copies for beam search. Programs are compiled on first use and kept in a
// train.Cache across calls.
//
//	dec, _ := m.NewDecoder(seq2seq.DecoderConfig{})
//	defer dec.Close()
//	out, _ := decode.BeamSearch(dec, sources, decode.BeamConfig{Beam: 5,
//		Limits: decode.Limits{MaxLen: 10, MaxLenA: 1.5, EOS: []int{m.Config.EOSID}}})
//
// With attention, its states are decode.Attenders: every search returns
// α_ij for each token, over the row's source tokens and the end token
// Source appends. A Decoder and its states are not safe for concurrent
// use; it reads the model's weights at every step, so it sees training
// continue.
type Decoder struct {
	m        *Model
	bucket   int
	programs *train.Cache
}

var _ decode.Model = (*Decoder)(nil)

// NewDecoder returns a decoder over the model's weights.
func (m *Model) NewDecoder(cfg DecoderConfig) (*Decoder, error) {
	if cfg.SourceBucket < 0 {
		return nil, errors.Errorf("seq2seq: source bucket %d is negative (0 means 8)", cfg.SourceBucket)
	}
	if cfg.SourceBucket == 0 {
		cfg.SourceBucket = 8
	}
	c, err := train.NewCache(cfg.MaxPrograms, func(k train.Key) (*train.Program, error) { return train.Compile(m, k, 0) })
	if err != nil {
		return nil, err
	}
	return &Decoder{m: m, bucket: cfg.SourceBucket, programs: c}, nil
}

// Stats counts the programs built, reused and evicted.
func (d *Decoder) Stats() train.CacheStats { return d.programs.Stats() }

// Close releases the compiled programs.
func (d *Decoder) Close() error { return d.programs.Close() }

// Start implements decode.Model: sources are token ids of the source
// vocabulary (an empty one is read as its end token alone); it encodes them
// and returns each row's logits over its first target token.
func (d *Decoder) Start(sources [][]int) (decode.State, [][]float32, error) {
	m := d.m
	cfg := m.Config
	if len(sources) == 0 {
		return nil, nil, errors.New("seq2seq: no sources")
	}
	rows := make([][]int, len(sources))
	longest := 0
	for b, s := range sources {
		for i, id := range s {
			if id < 0 || id >= cfg.SrcVocab {
				return nil, nil, errors.Errorf("seq2seq: source %d: token %d at position %d is outside the vocabulary [0, %d)", b, id, i, cfg.SrcVocab)
			}
		}
		rows[b] = m.Source(s)
		longest = max(longest, len(rows[b]))
	}
	B, S := len(rows), (longest+d.bucket-1)/d.bucket*d.bucket
	src := make([]int, B*S)
	lengths := make([]int, B)
	for b, r := range rows {
		copy(src[b*S:], r)
		for j := len(r); j < S; j++ {
			src[b*S+j] = cfg.PadID
		}
		lengths[b] = len(r)
	}
	dt := m.store.Dtype()
	p, err := d.programs.Get(train.Key{Mode: blocks.Eval, Kind: KindEncode, Batch: B, Source: S})
	if err != nil {
		return nil, nil, err
	}
	keep, err := blocks.StepMask(dt, lengths, S, cfg.Hidden)
	if err != nil {
		return nil, nil, err
	}
	lets := map[string]G.Value{
		"src":      tensor.New(tensor.WithShape(B*S), tensor.WithBacking(src)),
		"src_keep": keep,
	}
	st := &state{d: d, rows: B, S: S, lengths: lengths, vals: map[string]*tensor.Dense{}}
	if m.attention != nil {
		lets["src_mask"] = paddingMask(dt, lengths, S)
		st.vals["src_mask"] = lets["src_mask"].(*tensor.Dense)
	}
	if err := run(p, lets); err != nil {
		return nil, nil, errors.Wrap(err, "seq2seq: encoding")
	}
	for _, name := range p.Outputs() {
		v, err := p.Output(name)
		if err != nil {
			return nil, nil, err
		}
		st.vals[name] = v.(*tensor.Dense).Clone().(*tensor.Dense)
	}
	y := make([]int, B)
	for b := range y {
		y[b] = cfg.BOSID
	}
	logits, err := st.step(y)
	if err != nil {
		return nil, nil, err
	}
	if m.attention != nil {
		return attnState{st}, logits, nil
	}
	return st, logits, nil
}

// run sets a program's inputs and runs it.
func run(p *train.Program, lets map[string]G.Value) error {
	for name, v := range lets {
		if err := p.Let(name, v); err != nil {
			return err
		}
	}
	return p.Run()
}

// state is the rows being decoded. Every tensor in vals has one row per
// program row (leading axis P ≥ rows): the decoder's h.l and c.l and, with
// attention, memory, keys and src_mask (context for a fixed model that
// feeds it). When rows leave, the others run on with filler rows rather
// than compile a program for every smaller batch.
type state struct {
	d       *Decoder
	rows    int
	S       int
	lengths []int // each row's source length, end token included
	vals    map[string]*tensor.Dense
	alpha   [][]float32
}

var _ decode.Attender = (*attnState)(nil)

// attnState is a state of the attention model: it reports α.
type attnState struct{ *state }

// Attention implements decode.Attender: each row's α_ij of its last step,
// over its source (Source's form: the tokens, then the end token).
func (s attnState) Attention() [][]float32 { return s.alpha }

// P is the program rows.
func (s *state) P() int { return s.vals["h.0"].Shape()[0] }

// Next implements decode.State.
func (s *state) Next(tokens []int) ([][]float32, error) {
	if len(tokens) != s.rows {
		return nil, errors.Errorf("seq2seq: %d tokens for %d rows", len(tokens), s.rows)
	}
	V := s.d.m.Config.TgtVocab
	for b, id := range tokens {
		if id < 0 || id >= V {
			return nil, errors.Errorf("seq2seq: row %d: token %d is outside the vocabulary [0, %d)", b, id, V)
		}
	}
	return s.step(tokens)
}

// step runs one decoder step with the previous tokens y of the live rows.
func (s *state) step(y []int) ([][]float32, error) {
	m := s.d.m
	cfg := m.Config
	P := s.P()
	ids := make([]int, P)
	copy(ids, y)
	p, err := s.d.programs.Get(train.Key{Mode: blocks.Eval, Kind: KindDecode, Batch: P, Source: s.S, Len: 1})
	if err != nil {
		return nil, err
	}
	lets := map[string]G.Value{"y": tensor.New(tensor.WithShape(P), tensor.WithBacking(ids))}
	for name, v := range s.vals {
		lets[name] = v
	}
	if err := run(p, lets); err != nil {
		return nil, errors.Wrap(err, "seq2seq: decoding step")
	}
	for l := range cfg.Layers {
		for _, name := range []string{"h." + strconv.Itoa(l), "c." + strconv.Itoa(l)} {
			v, err := p.Output(name)
			if err != nil {
				return nil, err
			}
			s.vals[name] = v.(*tensor.Dense).Clone().(*tensor.Dense)
		}
	}
	logits, err := p.Output("logits")
	if err != nil {
		return nil, err
	}
	out := make([][]float32, s.rows)
	for b := range out {
		out[b] = rowOf(logits, b, cfg.TgtVocab)
	}
	if m.attention != nil {
		a, err := p.Output("alpha")
		if err != nil {
			return nil, err
		}
		s.alpha = make([][]float32, s.rows)
		for b := range s.alpha {
			s.alpha[b] = rowOf(a, b, s.S)[:s.lengths[b]]
		}
	}
	return out, nil
}

// Reorder implements decode.State: row i becomes old row rows[i].
func (s *state) Reorder(rows []int) error {
	for _, r := range rows {
		if r < 0 || r >= s.rows {
			return errors.Errorf("seq2seq: reorder: row %d of %d", r, s.rows)
		}
	}
	P := max(s.P(), len(rows))
	for name, v := range s.vals {
		s.vals[name] = gatherRows(v, rows, P)
	}
	lengths := make([]int, len(rows))
	alpha := make([][]float32, len(rows))
	for i, r := range rows {
		lengths[i] = s.lengths[r]
		if s.alpha != nil {
			alpha[i] = s.alpha[r]
		}
	}
	s.lengths, s.rows = lengths, len(rows)
	if s.alpha != nil {
		s.alpha = alpha
	}
	return nil
}

// Close implements decode.State; the programs stay with the Decoder.
func (s *state) Close() error { s.vals = nil; return nil }

// rowOf copies row b of an [P, n] value as float32.
func rowOf(v G.Value, b, n int) []float32 {
	switch d := v.Data().(type) {
	case []float32:
		return slices.Clone(d[b*n : (b+1)*n])
	case []float64:
		out := make([]float32, n)
		for i, x := range d[b*n : (b+1)*n] {
			out[i] = float32(x)
		}
		return out
	}
	return nil
}

// gatherRows returns src [P₀, …] with row i = src row rows[i], for P rows
// (those past len(rows) zero).
func gatherRows(src *tensor.Dense, rows []int, P int) *tensor.Dense {
	shape := src.Shape().Clone()
	row := shape.TotalSize() / shape[0]
	shape[0] = P
	dst := tensor.New(tensor.Of(src.Dtype()), tensor.WithShape(shape...))
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
