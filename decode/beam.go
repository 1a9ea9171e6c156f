package decode

import (
	"container/heap"
	"math"
	"sort"

	"github.com/pkg/errors"
)

// Penalty is how a finished hypothesis's log-probability is normalized by
// its length |Y| (tokens, its end token included) to rank it.
type Penalty int

const (
	// Fairseq divides by |Y|^α (fairseq's --lenpen; α = 1 is the mean
	// log-probability per token). The default.
	Fairseq Penalty = iota
	// GNMT divides by lp(Y) = ((5 + |Y|) / 6)^α (Wu et al. 2016, eq. 14;
	// they use α between 0.6 and 0.7).
	GNMT
	// NoPenalty ranks by log-probability alone (fairseq's lenpen 0).
	NoPenalty
)

// BeamConfig configures BeamSearch.
type BeamConfig struct {
	Limits
	// Beam is the number of hypotheses kept per input (≥ 1).
	Beam int
	// Penalty and LenPenalty (α) normalize finished hypotheses' scores;
	// LenPenalty 0 means 1, fairseq's default.
	Penalty    Penalty
	LenPenalty float64
	// NBest is the number of hypotheses returned per input, best first
	// (0 means 1; at most Beam).
	NBest int
}

// Hypothesis is one finished output of beam search.
type Hypothesis struct {
	// Tokens are the new tokens, the end token that finished it included.
	Tokens []int
	// Score is LogProb normalized by the length penalty: what hypotheses
	// are ranked by.
	Score float64
	// LogProb is Σ log p(y_t | y_<t, x), TokenLogProbs its terms
	// (fairseq's positional_scores).
	LogProb       float64
	TokenLogProbs []float64
	// Attention [step][|input|] is where the model attended for each token
	// (when its State is an Attender).
	Attention [][]float32
}

// normalize is the length-penalized score of a hypothesis of n tokens.
func (c BeamConfig) normalize(logProb float64, n int) float64 {
	a := c.LenPenalty
	if a == 0 {
		a = 1
	}
	switch c.Penalty {
	case GNMT:
		return logProb / math.Pow((5+float64(n))/6, a)
	case NoPenalty:
		return logProb
	}
	return logProb / math.Pow(float64(n), a)
}

// hyp is a live hypothesis.
type hyp struct {
	tokens []int
	score  float64 // Σ log p
	terms  []float64
	attn   [][]float32
}

// sentence is one input's search.
type sentence struct {
	live     []hyp // one state row each, in order
	finished []Hypothesis
	maxLen   int
	done     bool
}

// BeamSearch finds, for each input, the cfg.NBest hypotheses of highest
// length-normalized score, as fairseq's SequenceGenerator does:
//
//   - each input keeps Beam live hypotheses, ranked by their summed
//     log-probability; at each step their Beam × V extensions are ranked
//     and the best 2·Beam considered in order;
//   - an extension by an end token among the best Beam is finished: it
//     leaves the beam with its score normalized by the length penalty;
//     the best Beam extensions by other tokens continue;
//   - end tokens are blocked before MinLen tokens and forced after the
//     maximum length (without EOS, hypotheses finish at the maximum);
//   - an input is done when it has Beam finished hypotheses (fairseq's
//     early stop: no live one is followed further), and its rows leave
//     the state.
//
// It returns the finished hypotheses of each input, best first.
func BeamSearch(m Model, inputs [][]int, cfg BeamConfig) ([][]Hypothesis, error) {
	if cfg.Beam < 1 {
		return nil, errors.Errorf("decode: beam size %d must be at least 1", cfg.Beam)
	}
	if cfg.NBest == 0 {
		cfg.NBest = 1
	}
	if cfg.NBest < 1 || cfg.NBest > cfg.Beam {
		return nil, errors.Errorf("decode: n-best %d is not in [1, beam %d]", cfg.NBest, cfg.Beam)
	}
	if cfg.Penalty < Fairseq || cfg.Penalty > NoPenalty || math.IsNaN(cfg.LenPenalty) || math.IsInf(cfg.LenPenalty, 0) {
		return nil, errors.Errorf("decode: invalid length penalty %d with α %v", cfg.Penalty, cfg.LenPenalty)
	}
	st, logits, maxLen, vocab, err := cfg.start(m, inputs)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	K := cfg.Beam
	sents := make([]*sentence, len(inputs))
	for i := range sents {
		sents[i] = &sentence{live: []hyp{{}}, maxLen: maxLen[i]}
	}
	lp := make([]float64, vocab)
	for step := 0; ; step++ {
		att, err := attention(st, len(logits))
		if err != nil {
			return nil, err
		}
		var order, tokens []int // the next state's rows: parent row and token
		row := 0
		for _, s := range sents {
			if s.done {
				continue
			}
			top := &candidates{}
			for h := range s.live {
				logSoftmax(lp, logits[row+h])
				if step < cfg.MinLen {
					for _, e := range cfg.EOS {
						lp[e] = math.Inf(-1)
					}
				}
				if step == s.maxLen && len(cfg.EOS) > 0 { // force an end
					for v := range lp {
						if !cfg.isEOS(v) {
							lp[v] = math.Inf(-1)
						}
					}
				}
				for v, x := range lp {
					top.offer(candidate{score: s.live[h].score + x, term: x, hyp: h, tok: v, flat: h*vocab + v}, 2*K)
				}
			}
			cands := top.sorted()
			var next []hyp
			var parents []int
			for rank, c := range cands {
				if math.IsInf(c.score, -1) {
					break
				}
				parent := s.live[c.hyp]
				eos := cfg.isEOS(c.tok)
				if !eos && len(next) == K {
					continue
				}
				h := hyp{
					tokens: append(append([]int(nil), parent.tokens...), c.tok),
					score:  c.score,
					terms:  append(append([]float64(nil), parent.terms...), c.term),
				}
				if att != nil {
					h.attn = append(append([][]float32(nil), parent.attn...), att[row+c.hyp])
				}
				switch {
				case eos && rank < K:
					s.finish(h, cfg)
				case eos:
				case len(h.tokens) == s.maxLen && len(cfg.EOS) == 0:
					s.finish(h, cfg) // no end token: finished at the maximum
				default:
					next = append(next, h)
					parents = append(parents, row+c.hyp)
				}
			}
			row += len(s.live)
			if len(s.finished) >= K || len(next) == 0 {
				s.done = true
				continue
			}
			s.live = next
			order = append(order, parents...)
			for _, h := range next {
				tokens = append(tokens, h.tokens[len(h.tokens)-1])
			}
		}
		if len(order) == 0 {
			break
		}
		if err := st.Reorder(order); err != nil {
			return nil, err
		}
		if logits, err = st.Next(tokens); err != nil {
			return nil, err
		}
		if _, err := checkRows(logits, len(order), vocab); err != nil {
			return nil, err
		}
	}
	out := make([][]Hypothesis, len(sents))
	for i, s := range sents {
		sort.SliceStable(s.finished, func(a, b int) bool { return s.finished[a].Score > s.finished[b].Score })
		out[i] = s.finished[:min(cfg.NBest, len(s.finished))]
	}
	return out, nil
}

// finish adds a finished hypothesis, up to the beam size.
func (s *sentence) finish(h hyp, cfg BeamConfig) {
	if len(s.finished) >= cfg.Beam {
		return
	}
	s.finished = append(s.finished, Hypothesis{
		Tokens: h.tokens, LogProb: h.score, TokenLogProbs: h.terms, Attention: h.attn,
		Score: cfg.normalize(h.score, len(h.tokens)),
	})
}

// logSoftmax writes log softmax(l) into dst in float64.
func logSoftmax(dst []float64, l []float32) {
	m := math.Inf(-1)
	for _, x := range l {
		m = math.Max(m, float64(x))
	}
	var sum float64
	for _, x := range l {
		sum += math.Exp(float64(x) - m)
	}
	lse := m + math.Log(sum)
	for i, x := range l {
		dst[i] = float64(x) - lse
	}
}

// candidate is one extension of a live hypothesis.
type candidate struct {
	score, term float64
	hyp, tok    int
	flat        int // hyp·V + tok: ties go to the smaller
}

func (a candidate) better(b candidate) bool {
	if a.score != b.score {
		return a.score > b.score
	}
	return a.flat < b.flat
}

// candidates keeps the best n offered, in a heap whose root is the worst.
type candidates []candidate

func (c candidates) Len() int           { return len(c) }
func (c candidates) Less(i, j int) bool { return c[j].better(c[i]) }
func (c candidates) Swap(i, j int)      { c[i], c[j] = c[j], c[i] }
func (c *candidates) Push(x any)        { *c = append(*c, x.(candidate)) }
func (c *candidates) Pop() any {
	old := *c
	x := old[len(old)-1]
	*c = old[:len(old)-1]
	return x
}

func (c *candidates) offer(x candidate, n int) {
	if c.Len() < n {
		heap.Push(c, x)
		return
	}
	if x.better((*c)[0]) {
		(*c)[0] = x
		heap.Fix(c, 0)
	}
}

// sorted returns the candidates best first.
func (c *candidates) sorted() []candidate {
	out := append([]candidate(nil), *c...)
	sort.Slice(out, func(i, j int) bool { return out[i].better(out[j]) })
	return out
}
