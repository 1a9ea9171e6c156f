package gpt

import (
	"math"
	"math/rand/v2"
	"sort"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
)

// Sampling picks the next token from the logits of the last position.
type Sampling struct {
	// Temperature divides the logits; 0 means greedy (argmax).
	Temperature float64
	// TopK keeps the k most likely tokens (0: all), as nanoGPT's top_k.
	TopK int
	// TopP keeps the smallest set of most likely tokens whose probability
	// reaches p (nucleus sampling, Holtzman et al. 2020); 0 or 1: all.
	TopP float64
	// Seed makes sampling reproducible.
	Seed uint64
}

// Overflow says what happens when the prompt plus new tokens outgrow
// n_positions.
type Overflow int

const (
	// Slide keeps the last n_positions tokens as the context, as nanoGPT
	// crops idx_cond (the cache is then given up: learned absolute positions
	// change meaning when the window moves).
	Slide Overflow = iota
	// Error stops with an error.
	Error
)

// GenerateConfig configures Generate.
type GenerateConfig struct {
	MaxNewTokens int
	Sampling
	// StopTokens end a row when generated (the stop token is kept).
	StopTokens []int
	Overflow   Overflow
	// NoCache recomputes the whole window for every token instead of using
	// the key/value cache (slower; for checking the cache).
	NoCache bool
	// KeepLogits returns the logits each new token was drawn from.
	KeepLogits bool
}

// Generation is what Generate returns: each row's new tokens and, with
// KeepLogits, the logits [step][V] they were drawn from.
type Generation struct {
	Tokens [][]int
	Logits [][][]float32
}

// Generator generates text from a model, keeping its compiled graphs for
// reuse across calls.
type Generator struct {
	m      *Model
	decode map[[2]int]*decodeGraph // by (batch, capacity)
	window map[int]*windowGraph
}

// NewGenerator returns a generator over m's current weights.
func (m *Model) NewGenerator() *Generator {
	return &Generator{m: m, decode: map[[2]int]*decodeGraph{}, window: map[int]*windowGraph{}}
}

// Close releases the compiled graphs.
func (gen *Generator) Close() {
	for _, d := range gen.decode {
		d.vm.Close()
	}
	for _, w := range gen.window {
		w.vm.Close()
	}
}

type windowGraph struct {
	lg     *LMGraph
	logits G.Value
	vm     G.VM
}

// Generate continues each prompt (B rows, each non-empty) with up to
// cfg.MaxNewTokens tokens. Rows advance together one position per step: a
// row whose prompt is longer keeps reading its prompt while shorter ones
// already generate, so prompts of different lengths need no padding.
func (gen *Generator) Generate(prompts [][]int, cfg GenerateConfig) (*Generation, error) {
	m := gen.m
	v := m.Config.VocabSize
	if len(prompts) == 0 {
		return nil, errors.New("gpt: no prompts")
	}
	if cfg.MaxNewTokens < 0 || cfg.Temperature < 0 || cfg.TopK < 0 || cfg.TopP < 0 || cfg.TopP > 1 {
		return nil, errors.Errorf("gpt: invalid generation settings: max new tokens %d, temperature %v, top-k %d, top-p %v",
			cfg.MaxNewTokens, cfg.Temperature, cfg.TopK, cfg.TopP)
	}
	longest := 0
	seqs := make([][]int, len(prompts))
	for b, p := range prompts {
		if len(p) == 0 {
			return nil, errors.Errorf("gpt: prompt %d is empty", b)
		}
		for i, id := range p {
			if id < 0 || id >= v {
				return nil, errors.Errorf("gpt: prompt %d: token %d at position %d is outside the vocabulary [0, %d)", b, id, i, v)
			}
		}
		longest = max(longest, len(p))
		seqs[b] = append([]int(nil), p...)
	}
	if cfg.Overflow == Error && longest+cfg.MaxNewTokens > m.Config.NPositions {
		return nil, errors.Errorf("gpt: prompt of %d tokens plus %d new tokens exceeds n_positions %d",
			longest, cfg.MaxNewTokens, m.Config.NPositions)
	}
	out := &Generation{Tokens: make([][]int, len(prompts))}
	if cfg.KeepLogits {
		out.Logits = make([][][]float32, len(prompts))
	}
	if cfg.MaxNewTokens == 0 {
		return out, nil
	}
	stop := map[int]bool{}
	for _, s := range cfg.StopTokens {
		stop[s] = true
	}
	rng := newRNG(cfg.Seed)
	done := make([]bool, len(prompts))
	B := len(prompts)

	var cache *kvCache
	for t := 0; ; t++ {
		// logits[b] predicts position t+1 of row b.
		var logits [][]float32
		var err error
		if !cfg.NoCache && t < m.Config.NPositions {
			if cache == nil {
				if cache, err = gen.newCache(B); err != nil {
					return nil, err
				}
			}
			ids := make([]int, B)
			for b, s := range seqs {
				ids[b] = s[min(t, len(s)-1)] // a finished row repeats its last token, unread
			}
			logits, err = cache.step(ids, t)
		} else {
			logits, err = gen.windowStep(seqs, t)
		}
		if err != nil {
			return nil, err
		}
		finished := true
		for b := range seqs {
			if done[b] || t+1 < len(seqs[b]) {
				finished = finished && done[b]
				continue
			}
			next := sample(logits[b], cfg.Sampling, rng)
			seqs[b] = append(seqs[b], next)
			out.Tokens[b] = append(out.Tokens[b], next)
			if cfg.KeepLogits {
				out.Logits[b] = append(out.Logits[b], logits[b])
			}
			if len(out.Tokens[b]) == cfg.MaxNewTokens || stop[next] {
				done[b] = true
			}
			finished = finished && done[b]
		}
		if finished {
			return out, nil
		}
	}
}

// kvCache holds every layer's keys and values for the positions seen so
// far, [B, h, N, d_k], in the smallest capacity N that fits.
type kvCache struct {
	gen  *Generator
	d    *decodeGraph
	k, v []*tensor.Dense
}

func (gen *Generator) newCache(batch int) (*kvCache, error) {
	c := &kvCache{gen: gen}
	return c, c.fit(batch, 0)
}

// fit makes sure the cache can take position t, moving to the next
// capacity (and its graph) when it cannot.
func (c *kvCache) fit(batch, t int) error {
	want := cacheCapacity(t, c.gen.m.Config.NPositions)
	if c.d != nil && c.d.capacity >= want {
		return nil
	}
	key := [2]int{batch, want}
	d, ok := c.gen.decode[key]
	if !ok {
		var err error
		if d, err = c.gen.m.buildDecode(batch, want); err != nil {
			return err
		}
		c.gen.decode[key] = d
	}
	for l := range d.pastK {
		shape := []int{batch, d.heads, want, d.dk}
		k := tensor.New(tensor.Of(c.gen.m.Store.Dtype()), tensor.WithShape(shape...))
		v := tensor.New(tensor.Of(c.gen.m.Store.Dtype()), tensor.WithShape(shape...))
		if c.d != nil {
			copySlots(k, c.k[l], t)
			copySlots(v, c.v[l], t)
			c.k[l], c.v[l] = k, v
		} else {
			c.k, c.v = append(c.k, k), append(c.v, v)
		}
	}
	c.d = d
	return nil
}

// copySlots copies the first n slots of src [B, h, N₁, d_k] into dst
// [B, h, N₂, d_k].
func copySlots(dst, src *tensor.Dense, n int) {
	ds, ss := dst.Shape(), src.Shape()
	dk := ds[3]
	dd, sd := dst.Data().([]float32), src.Data().([]float32)
	for bh := 0; bh < ds[0]*ds[1]; bh++ {
		copy(dd[bh*ds[2]*dk:bh*ds[2]*dk+n*dk], sd[bh*ss[2]*dk:bh*ss[2]*dk+n*dk])
	}
}

// step runs token ids[b] at position t of every row and stores its keys
// and values in cache slot t.
func (c *kvCache) step(ids []int, t int) ([][]float32, error) {
	if err := c.fit(len(ids), t); err != nil {
		return nil, err
	}
	d := c.d
	idt := tensor.New(tensor.WithShape(len(ids)), tensor.WithBacking(append([]int(nil), ids...))) // range checked by Generate
	pos := make([]int, len(ids))
	for i := range pos {
		pos[i] = t
	}
	lets := []struct {
		n *G.Node
		v *tensor.Dense
	}{
		{d.ids, idt},
		{d.pos, tensor.New(tensor.WithShape(len(pos)), tensor.WithBacking(pos))},
		{d.mask, decodeMask(d.Store.Dtype(), d.batch, d.capacity, t)},
	}
	for _, l := range lets {
		if err := G.Let(l.n, l.v); err != nil {
			return nil, err
		}
	}
	for l := range d.pastK {
		if err := G.Let(d.pastK[l], c.k[l]); err != nil {
			return nil, err
		}
		if err := G.Let(d.pastV[l], c.v[l]); err != nil {
			return nil, err
		}
	}
	d.vm.Reset()
	if err := d.vm.RunAll(); err != nil {
		return nil, errors.Wrap(err, "gpt: decode step")
	}
	if t < d.capacity {
		for l := range c.k {
			putSlot(c.k[l], d.newK[l], t)
			putSlot(c.v[l], d.newV[l], t)
		}
	}
	return rows(d.logits, d.batch), nil
}

// putSlot copies new [B, h, 1, d_k] into slot t of cache [B, h, N, d_k].
func putSlot(cache *tensor.Dense, nv G.Value, t int) {
	s := cache.Shape()
	n, dk := s[2], s[3]
	dst := cache.Data().([]float32)
	src := nv.Data().([]float32)
	for bh := 0; bh < s[0]*s[1]; bh++ {
		copy(dst[(bh*n+t)*dk:(bh*n+t+1)*dk], src[bh*dk:(bh+1)*dk])
	}
}

// rows splits logits [B, T, V] (T = 1) into B rows of the last position.
func rows(v G.Value, batch int) [][]float32 {
	data := v.Data().([]float32)
	vocab := v.Shape()[len(v.Shape())-1]
	steps := len(data) / batch / vocab
	out := make([][]float32, batch)
	for b := range out {
		off := (b*steps + steps - 1) * vocab
		out[b] = append([]float32(nil), data[off:off+vocab]...)
	}
	return out
}

// windowStep recomputes the whole context for position t of every row:
// the last n_positions tokens up to t (right-padded; the causal mask keeps
// padding out of earlier positions).
func (gen *Generator) windowStep(seqs [][]int, t int) ([][]float32, error) {
	m := gen.m
	W := m.Config.NPositions
	B := len(seqs)
	w, ok := gen.window[B]
	if !ok {
		lg, err := m.BuildLM(blocks.Eval, B, W, false, 0)
		if err != nil {
			return nil, err
		}
		w = &windowGraph{lg: lg}
		G.Read(lg.Logits, &w.logits)
		w.vm = G.NewTapeMachine(lg.G)
		gen.window[B] = w
	}
	start := max(0, t+1-W)
	ids := make([]int, B*W)
	for b, s := range seqs {
		if start < len(s) { // a finished row is shorter; its logits are unread
			copy(ids[b*W:(b+1)*W], s[start:min(t+1, len(s))])
		}
	}
	if err := w.lg.Feed(ids, nil); err != nil {
		return nil, err
	}
	w.vm.Reset()
	if err := w.vm.RunAll(); err != nil {
		return nil, errors.Wrap(err, "gpt: window step")
	}
	data := w.logits.Data().([]float32)
	V := m.Config.VocabSize
	at := t - start
	out := make([][]float32, B)
	for b := range out {
		off := (b*W + at) * V
		out[b] = append([]float32(nil), data[off:off+V]...)
	}
	return out, nil
}

// sample draws the next token from one row of logits.
func sample(logits []float32, s Sampling, rng *rand.Rand) int {
	if s.Temperature == 0 {
		best := 0
		for i, v := range logits {
			if v > logits[best] {
				best = i
			}
		}
		return best
	}
	type cand struct {
		id int
		z  float64
	}
	cs := make([]cand, len(logits))
	for i, v := range logits {
		cs[i] = cand{i, float64(v) / s.Temperature}
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].z > cs[j].z })
	if s.TopK > 0 && s.TopK < len(cs) {
		kth := cs[s.TopK-1].z
		n := s.TopK
		for n < len(cs) && cs[n].z == kth { // ties with the k-th stay, as nanoGPT's v[-1] threshold
			n++
		}
		cs = cs[:n]
	}
	p := make([]float64, len(cs))
	var sum float64
	for i, c := range cs {
		p[i] = math.Exp(c.z - cs[0].z)
		sum += p[i]
	}
	for i := range p {
		p[i] /= sum
	}
	if s.TopP > 0 && s.TopP < 1 {
		var cum float64
		for i := range p {
			cum += p[i]
			if cum >= s.TopP {
				cs, p = cs[:i+1], p[:i+1]
				break
			}
		}
		sum = 0
		for _, x := range p {
			sum += x
		}
		for i := range p {
			p[i] /= sum
		}
	}
	u := rng.Float64()
	for i, x := range p {
		u -= x
		if u < 0 {
			return cs[i].id
		}
	}
	return cs[len(cs)-1].id
}

func newRNG(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x5eed)) }
