package main

import (
	"math"
	"sort"
	"strings"

	"github.com/pkg/errors"
	"github.com/spf13/pflag"

	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/decode"
	"github.com/seq2gpt/seq2gpt/metrics"
	"github.com/seq2gpt/seq2gpt/train"
)

// searchFlags configure decoding.
type searchFlags struct {
	beam, nbest, batch int
	lenpen, maxLenA    float64
	maxLenB            int
}

func addSearchFlags(fs *pflag.FlagSet, s *searchFlags, beam int) {
	fs.IntVar(&s.beam, "beam", beam, "beam size (1: greedy)")
	fs.Float64Var(&s.lenpen, "lenpen", 1, "length penalty α: hypotheses ranked by log p / |y|^α (fairseq's --lenpen)")
	fs.Float64Var(&s.maxLenA, "max-len-a", 1.5, "at most a·|source| + b new tokens: a")
	fs.IntVar(&s.maxLenB, "max-len-b", 10, "at most a·|source| + b new tokens: b")
	fs.IntVar(&s.batch, "batch", 32, "sentences decoded together")
}

func (s searchFlags) check() error {
	switch {
	case s.beam < 1 || s.beam > 100:
		return errors.Errorf("--beam %d: want 1 (greedy) to 100", s.beam)
	case s.nbest < 1 || s.nbest > s.beam:
		return errors.Errorf("--nbest %d: want 1 to --beam %d", s.nbest, s.beam)
	case s.batch < 1:
		return errors.Errorf("--batch %d: want at least 1", s.batch)
	case !(s.maxLenA >= 0) || math.IsInf(s.maxLenA, 0):
		return errors.Errorf("--max-len-a %v: want a finite number ≥ 0", s.maxLenA)
	case s.maxLenB < 0 || (s.maxLenB == 0 && s.maxLenA == 0):
		return errors.Errorf("--max-len-b %d: want ≥ 0, and --max-len-a or --max-len-b positive", s.maxLenB)
	case math.IsNaN(s.lenpen) || math.IsInf(s.lenpen, 0):
		return errors.Errorf("--lenpen %v: want a finite number", s.lenpen)
	}
	return nil
}

// hypothesis is one translation: its tokens (without the end token), its
// score (length-normalized log-probability; NaN for greedy) and, when the
// model attends, α for each of its tokens over the source (and its end
// token), the end token's step included.
type hypothesis struct {
	tokens    []int
	score     float64
	attention [][]float32
}

// translateAll decodes every source (token ids of the source vocabulary)
// in batches of similar length, greedily or by beam search, and returns
// each source's n-best list in input order.
func translateAll(dec decode.Model, sources [][]int, s searchFlags, eos int) ([][]hypothesis, error) {
	order := make([]int, len(sources))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return len(sources[order[a]]) < len(sources[order[b]]) })
	out := make([][]hypothesis, len(sources))
	lim := decode.Limits{MaxLen: s.maxLenB, MaxLenA: s.maxLenA, EOS: []int{eos}}
	strip := func(toks []int) []int {
		if n := len(toks); n > 0 && toks[n-1] == eos {
			return toks[:n-1]
		}
		return toks
	}
	for start := 0; start < len(order); start += s.batch {
		idx := order[start:min(start+s.batch, len(order))]
		batch := make([][]int, len(idx))
		for i, k := range idx {
			batch[i] = sources[k]
		}
		if s.beam == 1 {
			res, err := decode.Generate(dec, batch, decode.GenerateConfig{Limits: lim})
			if err != nil {
				return nil, err
			}
			for i, k := range idx {
				h := hypothesis{tokens: strip(res.Tokens[i]), score: math.NaN()}
				if res.Attention != nil {
					h.attention = res.Attention[i]
				}
				out[k] = []hypothesis{h}
			}
			continue
		}
		res, err := decode.BeamSearch(dec, batch, decode.BeamConfig{Limits: lim, Beam: s.beam, NBest: s.nbest, LenPenalty: s.lenpen, Penalty: penalty(s.lenpen)})
		if err != nil {
			return nil, err
		}
		for i, k := range idx {
			for _, h := range res[i] {
				out[k] = append(out[k], hypothesis{tokens: strip(h.Tokens), score: h.Score, attention: h.Attention})
			}
		}
	}
	return out, nil
}

// penalty is fairseq's |Y|^α, or none for α = 0 (decode reads LenPenalty 0
// as 1).
func penalty(lenpen float64) decode.Penalty {
	if lenpen == 0 {
		return decode.NoPenalty
	}
	return decode.Fairseq
}

// detokenize turns each source's best hypothesis into text (without the
// space a byte-level BPE's first token may carry).
func detokenize(tok *datasets.BPE, hyps [][]hypothesis) ([]string, error) {
	out := make([]string, len(hyps))
	for i, h := range hyps {
		if len(h) == 0 {
			continue
		}
		s, err := tok.Decode(h[0].tokens)
		if err != nil {
			return nil, err
		}
		out[i] = strings.TrimSpace(s)
	}
	return out, nil
}

// scores are corpus BLEU and chrF as sacreBLEU computes them by default,
// with their signatures.
type scores struct {
	bleu             metrics.BLEUScore
	chrf             metrics.CHRFScore
	bleuSig, chrfSig string
}

func score(hyps, refs []string) (scores, error) {
	b, err := metrics.NewBLEU(metrics.BLEUConfig{})
	if err != nil {
		return scores{}, err
	}
	c, err := metrics.NewCHRF(metrics.CHRFConfig{})
	if err != nil {
		return scores{}, err
	}
	s := scores{bleuSig: b.Signature(1).String(), chrfSig: c.Signature(1).String()}
	if s.bleu, err = b.Corpus(hyps, [][]string{refs}); err != nil {
		return s, err
	}
	s.chrf, err = c.Corpus(hyps, [][]string{refs})
	return s, err
}

// evaluator is training's validation: the teacher-forced loss over the
// whole validation split and, when sentences > 0, BLEU and chrF of greedy
// translations of its first sentences. One decoder serves every
// evaluation (its programs stay compiled; it reads the weights as they
// are).
type evaluator struct {
	m         mtModel
	tok       mtTokenizers
	valid     *datasets.Batcher
	sources   [][]int
	refs      []string
	search    searchFlags
	dec       mtDecoder
	lastHyps  []string
	sentences int
}

func (e *evaluator) evaluate(t *train.Trainer) (map[string]float64, error) {
	loss, err := e.m.EvalLoss(t, e.valid)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{"loss": loss, "ppl": expSafe(loss)}
	if e.sentences == 0 {
		return out, nil
	}
	if e.dec == nil {
		if e.dec, err = e.m.NewDecoder(); err != nil {
			return nil, err
		}
	}
	hyps, err := translateAll(e.dec, e.sources, e.search, e.m.EOS())
	if err != nil {
		return nil, err
	}
	text, err := detokenize(e.tok.tgt, hyps)
	if err != nil {
		return nil, err
	}
	e.lastHyps = text
	sc, err := score(text, e.refs)
	if err != nil {
		return nil, err
	}
	out["bleu"], out["chrf"] = sc.bleu.Score, sc.chrf.Score
	return out, nil
}

func (e *evaluator) close() error {
	if e.dec == nil {
		return nil
	}
	return e.dec.Close()
}
