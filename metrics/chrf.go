package metrics

import (
	"strings"

	"github.com/pkg/errors"
)

// CHRFConfig selects a chrF variant. The zero value is sacreBLEU's default
// chrF2: character n-grams up to 6, no word n-grams, β = 2, whitespace
// removed, effective-order averaging — the signature
// nrefs:N|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0.
type CHRFConfig struct {
	// CharOrder is the largest character n-gram order; 0 means 6.
	CharOrder int
	// WordOrder is the largest word n-gram order; 0 (the default) is chrF,
	// 2 is chrF++ (Popović 2017).
	WordOrder int
	// Beta weighs recall β times as much as precision; 0 means 2.
	Beta int
	// Lowercase lowercases both sides first (sacreBLEU's --chrf-lowercase).
	Lowercase bool
	// Whitespace keeps spaces inside character n-grams (default: removed).
	Whitespace bool
	// EpsSmoothing averages per-order F-scores with ε for empty orders, as
	// chrF++.py, NLTK and Moses do ("eff:no"), instead of sacreBLEU's
	// default: F of the precision and recall averaged over the orders that
	// have n-grams on both sides ("eff:yes").
	EpsSmoothing bool
}

// CHRF computes chrF (Popović 2015) and chrF++ as sacreBLEU 2.x does:
// per sentence the reference with the best F-score, statistics summed over
// the corpus. It is safe for concurrent use.
type CHRF struct {
	cfg   CHRFConfig
	order int // CharOrder + WordOrder
}

// NewCHRF checks cfg and returns the metric.
func NewCHRF(cfg CHRFConfig) (*CHRF, error) {
	if cfg.CharOrder == 0 {
		cfg.CharOrder = 6
	}
	if cfg.Beta == 0 {
		cfg.Beta = 2
	}
	if cfg.CharOrder < 0 || cfg.WordOrder < 0 || cfg.Beta < 0 {
		return nil, errors.Errorf("chrF: char order %d, word order %d and beta %d must not be negative", cfg.CharOrder, cfg.WordOrder, cfg.Beta)
	}
	return &CHRF{cfg: cfg, order: cfg.CharOrder + cfg.WordOrder}, nil
}

// Config returns the configuration with its defaults filled in.
func (c *CHRF) Config() CHRFConfig { return c.cfg }

// Name is the metric's name as sacreBLEU prints it: chrF2, or chrF2++ with
// word order 2 (one + per word order).
func (c *CHRF) Name() string {
	return "chrF" + itoa(c.cfg.Beta) + strings.Repeat("+", c.cfg.WordOrder)
}

// Signature is the signature of scores against nrefs references.
func (c *CHRF) Signature(nrefs int) Signature {
	return newSignature(nrefs,
		sigPair{"case", "c", caseName(c.cfg.Lowercase)},
		sigPair{"eff", "e", yesNo(!c.cfg.EpsSmoothing)},
		sigPair{"nc", "nc", itoa(c.cfg.CharOrder)},
		sigPair{"nw", "nw", itoa(c.cfg.WordOrder)},
		sigPair{"space", "s", yesNo(c.cfg.Whitespace)},
	)
}

// CHRFStats are chrF's sufficient statistics: for each order (character
// orders 1..CharOrder, then word orders 1..WordOrder) the hypothesis
// n-grams, the reference n-grams and the matches.
type CHRFStats struct {
	Hyp, Ref, Match []int
}

// Add adds o's counts to s (both of the same orders).
func (s *CHRFStats) Add(o CHRFStats) {
	if s.Hyp == nil {
		s.Hyp, s.Ref, s.Match = make([]int, len(o.Hyp)), make([]int, len(o.Ref)), make([]int, len(o.Match))
	}
	for i := range o.Hyp {
		s.Hyp[i] += o.Hyp[i]
		s.Ref[i] += o.Ref[i]
		s.Match[i] += o.Match[i]
	}
}

// CHRFScore is a chrF score with its name and signature.
type CHRFScore struct {
	Score     float64 // 0–100
	Name      string  // chrF2, chrF2++
	Stats     CHRFStats
	Signature Signature
}

// String is the score as Python's str() of a sacreBLEU CHRFScore prints
// it: "chrF2 = 64.13".
func (s CHRFScore) String() string { return s.Format(2, "") }

// Format is sacreBLEU's score line with width decimals and the given
// signature (s.Signature.String(), .Short(), or "" for none):
// "chrF2|nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0 = 64.1".
func (s CHRFScore) Format(width int, signature string) string {
	return formatLine(s.Name, s.Score, "", width, signature)
}

// JSON is the score as sacreBLEU's command line prints it in its default
// --format json, with width decimals.
func (s CHRFScore) JSON(width int) string {
	return formatJSON(s.Name, s.Score, "", width, s.Signature)
}

// chrfPunct is Python's string.punctuation, which chrF++ splits off words.
const chrfPunct = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"

// splitPunct separates one punctuation character from the end of each
// word, or else from its start (sacreBLEU's CHRF._remove_punctuation, after
// Popović's chrF++.py; "(hi)" becomes "(hi" and ")").
func splitPunct(s string) []string {
	var out []string
	for _, w := range fields(s) {
		rs := []rune(w)
		switch {
		case len(rs) == 1:
			out = append(out, w)
		case strings.ContainsRune(chrfPunct, rs[len(rs)-1]):
			out = append(out, string(rs[:len(rs)-1]), string(rs[len(rs)-1]))
		case strings.ContainsRune(chrfPunct, rs[0]):
			out = append(out, string(rs[0]), string(rs[1:]))
		default:
			out = append(out, w)
		}
	}
	return out
}

// ngramCounts are the n-gram counts of one segment, one map per order.
type ngramCounts []map[string]int

// extract counts a segment's character n-grams (with whitespace removed
// unless Whitespace) and, for chrF++, its word n-grams.
func (c *CHRF) extract(s string) ngramCounts {
	if c.cfg.Lowercase {
		s = lower(s)
	}
	counts := make(ngramCounts, 0, c.order)
	line := s
	if !c.cfg.Whitespace {
		line = strings.Join(fields(s), "")
	}
	rs := []rune(line)
	for n := 1; n <= c.cfg.CharOrder; n++ {
		m := make(map[string]int, len(rs))
		for i := 0; i+n <= len(rs); i++ {
			m[string(rs[i:i+n])]++
		}
		counts = append(counts, m)
	}
	if c.cfg.WordOrder > 0 {
		words := splitPunct(s)
		for n := 1; n <= c.cfg.WordOrder; n++ {
			m := make(map[string]int, len(words))
			for i := 0; i+n <= len(words); i++ {
				m[strings.Join(words[i:i+n], " ")]++
			}
			counts = append(counts, m)
		}
	}
	return counts
}

// match is the statistics of hypothesis counts against one reference's.
func (c *CHRF) match(hyp, ref ngramCounts) CHRFStats {
	st := CHRFStats{Hyp: make([]int, c.order), Ref: make([]int, c.order), Match: make([]int, c.order)}
	for i := range c.order {
		nh, nm := 0, 0
		for g, n := range hyp[i] {
			nh += n
			if r, ok := ref[i][g]; ok {
				nm += min(n, r)
			}
		}
		nr := 0
		for _, n := range ref[i] {
			nr += n
		}
		// A reference with no n-grams of this order does not count the
		// hypothesis's either (sacreBLEU's _get_match_statistics).
		if len(ref[i]) == 0 {
			nh = 0
		}
		st.Hyp[i], st.Ref[i], st.Match[i] = nh, nr, nm
	}
	return st
}

// fScore is chrF from statistics (sacreBLEU's _compute_f_score), in
// 0–100. By default it is the F_β of the precision and recall averaged
// over the orders with n-grams on both sides:
//
//	chrF_β = (1 + β²) · P · R / (β² · P + R)
//
// with EpsSmoothing the mean over all orders of each order's F_β, with
// ε = 1e-16 for an empty side.
func (c *CHRF) fScore(st CHRFStats) float64 {
	const eps = 1e-16
	factor := float64(c.cfg.Beta * c.cfg.Beta)
	score, avgPrec, avgRec := 0.0, 0.0, 0.0
	eff := 0
	for i := range c.order {
		nh, nr, nm := float64(st.Hyp[i]), float64(st.Ref[i]), float64(st.Match[i])
		prec, rec := eps, eps
		if nh > 0 {
			prec = nm / nh
		}
		if nr > 0 {
			rec = nm / nr
		}
		if denom := factor*prec + rec; denom > 0 {
			score += (1 + factor) * prec * rec / denom
		} else {
			score += eps
		}
		if st.Hyp[i] > 0 && st.Ref[i] > 0 {
			avgPrec += prec
			avgRec += rec
			eff++
		}
	}
	if c.cfg.EpsSmoothing {
		return 100 * score / float64(c.order)
	}
	if eff == 0 {
		return 0
	}
	avgPrec /= float64(eff)
	avgRec /= float64(eff)
	if avgPrec+avgRec == 0 {
		return 0
	}
	score = (1 + factor) * avgPrec * avgRec
	score /= factor*avgPrec + avgRec
	return 100 * score
}

// SegmentStats are the statistics of one hypothesis against the reference
// (of at least one) that gives it the best F-score, the first on a tie.
func (c *CHRF) SegmentStats(hyp string, refs []string) (CHRFStats, error) {
	if len(refs) == 0 {
		return CHRFStats{}, errors.New("chrF: a segment needs at least one reference")
	}
	h := c.extract(hyp)
	var best CHRFStats
	bestF := -1.0
	for _, r := range refs {
		st := c.match(h, c.extract(r))
		if f := c.fScore(st); f > bestF {
			best, bestF = st, f
		}
	}
	return best, nil
}

// ScoreStats turns statistics (one segment's or a corpus's sum) into a
// score with the signature for nrefs references.
func (c *CHRF) ScoreStats(st CHRFStats, nrefs int) (CHRFScore, error) {
	if len(st.Hyp) != c.order || len(st.Ref) != c.order || len(st.Match) != c.order {
		return CHRFScore{}, errors.Errorf("chrF: statistics of %d orders, want %d", len(st.Hyp), c.order)
	}
	return CHRFScore{Score: c.fScore(st), Name: c.Name(), Stats: st, Signature: c.Signature(nrefs)}, nil
}

// Corpus is corpus chrF of hyps against refs, where refs[k] is the k-th
// reference stream: statistics summed over sentences, then one F-score.
func (c *CHRF) Corpus(hyps []string, refs [][]string) (CHRFScore, error) {
	var total CHRFStats
	err := eachSegment("chrF", hyps, refs, func(h string, seg []string) error {
		st, err := c.SegmentStats(h, seg)
		if err == nil {
			total.Add(st)
		}
		return err
	})
	if err != nil {
		return CHRFScore{}, err
	}
	return c.ScoreStats(total, len(refs))
}

// Sentence is chrF of one hypothesis against its references.
func (c *CHRF) Sentence(hyp string, refs []string) (CHRFScore, error) {
	st, err := c.SegmentStats(hyp, refs)
	if err != nil {
		return CHRFScore{}, err
	}
	return c.ScoreStats(st, len(refs))
}
