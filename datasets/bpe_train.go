package datasets

import (
	"bufio"
	"io"
	"sort"
	"unicode/utf8"

	"github.com/pkg/errors"
)

// BPEConfig configures BPE training.
type BPEConfig struct {
	// Merges is the number of merges to learn. Training stops earlier when no
	// pair is frequent enough.
	Merges int
	// MinFrequency is the least number of occurrences a pair needs to be
	// merged; zero means 2, since merging a pair seen once saves nothing.
	MinFrequency int
	// Specials are appended after the learned tokens (see AddSpecial).
	Specials []string
}

// BPETrainer learns byte-level BPE merges. Add text with Add or AddReader,
// then call Train. Text is pre-tokenized into words as it arrives and only the
// count of each distinct word is kept, so memory is proportional to the
// vocabulary of the corpus, not its size.
type BPETrainer struct {
	cfg    BPEConfig
	counts map[string]int64
}

// NewBPETrainer validates cfg and returns a trainer.
func NewBPETrainer(cfg BPEConfig) (*BPETrainer, error) {
	if cfg.Merges < 0 {
		return nil, errors.Errorf("datasets: BPE merges must be >= 0, got %d", cfg.Merges)
	}
	if cfg.MinFrequency < 0 {
		return nil, errors.Errorf("datasets: BPE min frequency must be >= 0, got %d", cfg.MinFrequency)
	}
	if cfg.MinFrequency == 0 {
		cfg.MinFrequency = 2
	}
	return &BPETrainer{cfg: cfg, counts: map[string]int64{}}, nil
}

// Add counts the words of text (pieces of at most MaxPieceBytes, as
// Encode merges them).
func (tr *BPETrainer) Add(text string) {
	pieces(text, func(p string) { tr.counts[p]++ })
}

// AddReader counts the words of everything r yields. It reads in chunks cut
// after a lone newline (one preceded by a printable ASCII character and
// followed by a non-space character): no GPT-2 word spans that point and the
// newline is a word of its own either way, so the counts equal those of Add
// on the whole text.
func (tr *BPETrainer) AddReader(r io.Reader) error {
	br := bufio.NewReaderSize(r, 1<<16)
	var pending []byte
	buf := make([]byte, 1<<20)
	for {
		n, err := io.ReadFull(br, buf)
		pending = append(pending, buf[:n]...)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			tr.Add(string(pending))
			return nil
		}
		if err != nil {
			return errors.Wrap(err, "datasets: reading BPE training text")
		}
		cut := -1
		for i := len(pending) - 1; i > 1; i-- {
			if pending[i-1] == '\n' && pending[i-2] > ' ' && pending[i-2] < utf8.RuneSelf {
				if k, _ := at(string(pending[i:min(i+4, len(pending))]), 0); k != classSpace {
					cut = i
					break
				}
			}
		}
		if cut > 0 {
			tr.Add(string(pending[:cut]))
			pending = append(pending[:0], pending[cut:]...)
		}
	}
}

// Words returns the number of distinct words counted so far.
func (tr *BPETrainer) Words() int { return len(tr.counts) }

type trainWord struct {
	sym []int32
	n   int64
}

type pairEntry struct {
	count int64
	p     pair
}

// pairHeap is a max-heap by count; ties go to the smaller (a, b) so that
// training is deterministic.
type pairHeap []pairEntry

func (h pairHeap) less(i, j int) bool {
	if h[i].count != h[j].count {
		return h[i].count > h[j].count
	}
	if h[i].p.a != h[j].p.a {
		return h[i].p.a < h[j].p.a
	}
	return h[i].p.b < h[j].p.b
}

func (h *pairHeap) push(e pairEntry) {
	*h = append(*h, e)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if !s.less(i, p) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *pairHeap) pop() pairEntry {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s = s[:n]
	for i := 0; ; {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && s.less(r, l) {
			m = r
		}
		if !s.less(m, i) {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}

// Train learns the merges. Pair frequencies are counted once over the
// distinct words (weighted by their counts) and then updated incrementally:
// a merge touches only the words that contain the merged pair, found through
// an index from pair to words, and a max-heap with lazy deletion yields the
// next most frequent pair. The cost of a merge is proportional to the
// occurrences it changes, not to the corpus, so training is not quadratic.
func (tr *BPETrainer) Train() (*BPE, error) {
	t := newBaseBPE()
	keys := make([]string, 0, len(tr.counts))
	for w := range tr.counts {
		keys = append(keys, w)
	}
	sort.Strings(keys) // deterministic word indices
	words := make([]trainWord, len(keys))
	counts := map[pair]int64{}
	where := map[pair][]int32{}
	for wi, k := range keys {
		sym := make([]int32, len(k))
		for i := 0; i < len(k); i++ {
			sym[i] = t.byte0[k[i]]
		}
		n := tr.counts[k]
		words[wi] = trainWord{sym, n}
		for i := 0; i+1 < len(sym); i++ {
			p := pair{sym[i], sym[i+1]}
			counts[p] += n
			if l := where[p]; len(l) == 0 || l[len(l)-1] != int32(wi) {
				where[p] = append(l, int32(wi))
			}
		}
	}
	h := make(pairHeap, 0, len(counts))
	for p, c := range counts {
		h.push(pairEntry{c, p})
	}
	minFreq := int64(tr.cfg.MinFrequency)
	lastSeen := make([]int32, len(words))
	for i := range lastSeen {
		lastSeen[i] = -1
	}
	grown := map[pair]struct{}{}
	for len(t.order) < tr.cfg.Merges && len(h) > 0 {
		e := h.pop()
		cur := counts[e.p]
		if e.count != cur {
			if cur >= minFreq {
				h.push(pairEntry{cur, e.p}) // the count fell since the entry was pushed
			}
			continue
		}
		if cur < minFreq {
			break
		}
		step := int32(len(t.order))
		c := t.addMerge(e.p.a, e.p.b)
		clear(grown)
		for _, wi := range where[e.p] {
			if lastSeen[wi] == step {
				continue
			}
			lastSeen[wi] = step
			w := &words[wi]
			if !contains(w.sym, e.p) {
				continue // stale index entry: an earlier merge consumed the pair
			}
			for i := 0; i+1 < len(w.sym); i++ {
				counts[pair{w.sym[i], w.sym[i+1]}] -= w.n
			}
			out := w.sym[:0]
			for i := 0; i < len(w.sym); i++ {
				if i+1 < len(w.sym) && w.sym[i] == e.p.a && w.sym[i+1] == e.p.b {
					out = append(out, c)
					i++
				} else {
					out = append(out, w.sym[i])
				}
			}
			w.sym = out
			for i := 0; i+1 < len(w.sym); i++ {
				p := pair{w.sym[i], w.sym[i+1]}
				counts[p] += w.n
				if w.sym[i] == c || w.sym[i+1] == c {
					grown[p] = struct{}{}
					if l := where[p]; len(l) == 0 || l[len(l)-1] != wi {
						where[p] = append(l, wi)
					}
				}
			}
		}
		delete(counts, e.p)
		delete(where, e.p)
		for p := range grown {
			if n := counts[p]; n >= minFreq {
				h.push(pairEntry{n, p})
			}
		}
	}
	for p, n := range counts {
		if n == 0 {
			delete(counts, p)
		}
	}
	if len(tr.cfg.Specials) > 0 {
		if _, err := t.AddSpecial(tr.cfg.Specials...); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func contains(sym []int32, p pair) bool {
	for i := 0; i+1 < len(sym); i++ {
		if sym[i] == p.a && sym[i+1] == p.b {
			return true
		}
	}
	return false
}

// TrainBPE learns a byte-level BPE from texts; see BPETrainer.
func TrainBPE(texts []string, cfg BPEConfig) (*BPE, error) {
	tr, err := NewBPETrainer(cfg)
	if err != nil {
		return nil, err
	}
	for _, s := range texts {
		tr.Add(s)
	}
	return tr.Train()
}
