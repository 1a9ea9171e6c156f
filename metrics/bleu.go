package metrics

import (
	"fmt"
	"math"
	"strings"

	"github.com/pkg/errors"
)

// BLEUConfig selects a BLEU variant. The zero value is sacreBLEU's default
// BLEU: 13a tokenization, mixed case, n-grams up to 4, exponential
// smoothing, no effective order — the signature
// nrefs:N|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0.
type BLEUConfig struct {
	// Tokenize names the tokenizer, one of Tokenizers(); "" is 13a.
	Tokenize string
	// Lowercase lowercases hypotheses and references first (Python's
	// str.lower, as sacreBLEU's --lowercase).
	Lowercase bool
	// Smooth is the smoothing method of Chen and Cherry (2014), as
	// sacreBLEU names them: "exp" (the default when empty; NIST's
	// geometric smoothing, which mteval-v13a.pl uses), "floor", "add-k" or
	// "none".
	Smooth string
	// SmoothValue is the value of floor and add-k smoothing; nil means
	// sacreBLEU's defaults, 0.1 for floor and 1 for add-k. Ignored by exp
	// and none.
	SmoothValue *float64
	// MaxOrder is the largest n-gram order; 0 means 4.
	MaxOrder int
	// EffectiveOrder averages the log precisions only over the orders the
	// hypothesis has n-grams of, instead of all MaxOrder of them
	// ("eff:yes"). sacreBLEU recommends it for sentence-level BLEU and its
	// command line turns it on for --sentence-level.
	EffectiveOrder bool
}

// smoothDefaults are sacreBLEU's BLEU.SMOOTH_DEFAULTS.
var smoothDefaults = map[string]float64{"floor": 0.1, "add-k": 1}

// SmoothMethods lists the smoothing methods BLEUConfig.Smooth accepts.
func SmoothMethods() []string { return []string{"none", "floor", "add-k", "exp"} }

// BLEU computes BLEU (Papineni et al., 2002) as sacreBLEU 2.x does:
// corpus BLEU from n-gram statistics summed over all segments, the brevity
// penalty from the reference length closest to each hypothesis's. It is
// safe for concurrent use.
type BLEU struct {
	cfg         BLEUConfig
	tok         func(string) string
	smoothValue float64
}

// NewBLEU checks cfg and returns the metric. An unknown tokenizer or
// smoothing method is an error that names the allowed values.
func NewBLEU(cfg BLEUConfig) (*BLEU, error) {
	if cfg.Tokenize == "" {
		cfg.Tokenize = "13a"
	}
	if cfg.Smooth == "" {
		cfg.Smooth = "exp"
	}
	if cfg.MaxOrder == 0 {
		cfg.MaxOrder = 4
	}
	if cfg.MaxOrder < 0 {
		return nil, errors.Errorf("BLEU: max n-gram order %d must be at least 1", cfg.MaxOrder)
	}
	tok, err := tokenizerFor(cfg.Tokenize)
	if err != nil {
		return nil, errors.Wrap(err, "BLEU")
	}
	b := &BLEU{cfg: cfg, tok: tok}
	switch cfg.Smooth {
	case "exp", "none":
	case "floor", "add-k":
		b.smoothValue = smoothDefaults[cfg.Smooth]
		if cfg.SmoothValue != nil {
			b.smoothValue = *cfg.SmoothValue
		}
		if b.smoothValue < 0 || math.IsNaN(b.smoothValue) || math.IsInf(b.smoothValue, 0) {
			return nil, errors.Errorf("BLEU: %s smoothing value %v must be a finite number ≥ 0", cfg.Smooth, b.smoothValue)
		}
	default:
		return nil, errors.Errorf("BLEU: unknown smoothing method %q; allowed: %s", cfg.Smooth, strings.Join(SmoothMethods(), ", "))
	}
	return b, nil
}

// Config returns the configuration with its defaults filled in.
func (b *BLEU) Config() BLEUConfig { return b.cfg }

// BLEUStats are BLEU's sufficient statistics, for one segment or summed
// over a corpus: hypothesis length, the closest reference length, and per
// n-gram order (index 0 is unigrams) the clipped matches and the
// hypothesis n-grams.
type BLEUStats struct {
	HypLen, RefLen int
	Correct, Total []int
}

// Add adds o's counts to s (both of the same order).
func (s *BLEUStats) Add(o BLEUStats) {
	s.HypLen += o.HypLen
	s.RefLen += o.RefLen
	if s.Correct == nil {
		s.Correct = make([]int, len(o.Correct))
		s.Total = make([]int, len(o.Total))
	}
	for i := range o.Correct {
		s.Correct[i] += o.Correct[i]
		s.Total[i] += o.Total[i]
	}
}

// BLEUScore is a BLEU score with what sacreBLEU prints beside it.
type BLEUScore struct {
	Score float64 // 0–100
	// Counts and Totals are the matched and hypothesis n-grams per order,
	// as counted (sacreBLEU's add-k smoothing adds k into the counts it
	// reports; these stay the counts).
	Counts, Totals []int
	Precisions     []float64 // per order, in percent, after smoothing
	BP             float64   // brevity penalty
	SysLen, RefLen int
	Signature      Signature
}

// Ratio is hypothesis length over reference length (0 when the
// reference length is 0).
func (s BLEUScore) Ratio() float64 {
	if s.RefLen == 0 {
		return 0
	}
	return float64(s.SysLen) / float64(s.RefLen)
}

// Verbose is the part sacreBLEU prints after the score:
// "60.1/33.0/20.1/13.1 (BP = 1.000 ratio = 1.012 hyp_len = 1910 ref_len = 1887)".
func (s BLEUScore) Verbose() string {
	ps := make([]string, len(s.Precisions))
	for i, p := range s.Precisions {
		ps[i] = formatFixed(p, 1)
	}
	return fmt.Sprintf("%s (BP = %s ratio = %s hyp_len = %d ref_len = %d)",
		strings.Join(ps, "/"), formatFixed(s.BP, 3), formatFixed(s.Ratio(), 3), s.SysLen, s.RefLen)
}

// String is the score as Python's str() of a sacreBLEU BLEUScore prints
// it: "BLEU = 27.30 60.1/33.0/20.1/13.1 (BP = 1.000 ratio = 1.012 ...)".
func (s BLEUScore) String() string { return s.Format(2, "") }

// Format is sacreBLEU's score line with width decimals and the given
// signature (s.Signature.String(), .Short(), or "" for none), as its
// command line prints it with --format text:
// "BLEU|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0 = 27.3 60.1/...".
func (s BLEUScore) Format(width int, signature string) string {
	return formatLine("BLEU", s.Score, s.Verbose(), width, signature)
}

// JSON is the score as sacreBLEU's command line prints it in its default
// --format json, with width decimals.
func (s BLEUScore) JSON(width int) string {
	return formatJSON("BLEU", s.Score, s.Verbose(), width, s.Signature)
}

// Signature is the signature of scores against nrefs references.
func (b *BLEU) Signature(nrefs int) Signature {
	smooth := b.cfg.Smooth
	if b.cfg.Smooth == "floor" || b.cfg.Smooth == "add-k" {
		smooth += "[" + formatFixed(b.smoothValue, 2) + "]"
	}
	return newSignature(nrefs,
		sigPair{"case", "c", caseName(b.cfg.Lowercase)},
		sigPair{"eff", "e", yesNo(b.cfg.EffectiveOrder)},
		sigPair{"tok", "tok", b.cfg.Tokenize},
		sigPair{"smooth", "s", smooth},
	)
}

// preprocess lowercases (optionally), strips trailing whitespace and
// tokenizes, as sacreBLEU's BLEU._preprocess_segment.
func (b *BLEU) preprocess(s string) string {
	if b.cfg.Lowercase {
		s = lower(s)
	}
	return b.tok(rstrip(s))
}

// ngrams counts the n-grams of orders 1..maxOrder of a tokenized segment;
// an n-gram's key is its tokens joined by spaces (tokens hold no spaces,
// so keys of different orders never collide).
func ngrams(tokens []string, maxOrder int) map[string]int {
	m := make(map[string]int, len(tokens)*maxOrder)
	for n := 1; n <= maxOrder; n++ {
		for i := 0; i+n <= len(tokens); i++ {
			m[strings.Join(tokens[i:i+n], " ")]++
		}
	}
	return m
}

// SegmentStats counts one hypothesis against its references (at least
// one): clipped n-gram matches against the largest count of each n-gram
// in any reference, and the reference length closest to the hypothesis
// length (the shorter one on a tie), as sacreBLEU does.
func (b *BLEU) SegmentStats(hyp string, refs []string) (BLEUStats, error) {
	if len(refs) == 0 {
		return BLEUStats{}, errors.New("BLEU: a segment needs at least one reference")
	}
	n := b.cfg.MaxOrder
	var refMax map[string]int
	refLens := make([]int, len(refs))
	for k, r := range refs {
		toks := fields(b.preprocess(r))
		refLens[k] = len(toks)
		counts := ngrams(toks, n)
		if refMax == nil {
			refMax = counts
			continue
		}
		for g, c := range counts {
			refMax[g] = max(refMax[g], c)
		}
	}
	htoks := fields(b.preprocess(hyp))
	st := BLEUStats{HypLen: len(htoks), RefLen: closestRefLen(len(htoks), refLens), Correct: make([]int, n), Total: make([]int, n)}
	for i := 0; i < len(htoks); i++ {
		for k := 1; k <= n && i+k <= len(htoks); k++ {
			st.Total[k-1]++
		}
	}
	for g, c := range ngrams(htoks, n) {
		if r, ok := refMax[g]; ok {
			st.Correct[strings.Count(g, " ")] += min(c, r)
		}
	}
	return st, nil
}

// closestRefLen is the reference length nearest hypLen, the shorter one
// on a tie (sacreBLEU's _get_closest_ref_len).
func closestRefLen(hypLen int, refLens []int) int {
	bestDiff, best := -1, -1
	for _, r := range refLens {
		d := hypLen - r
		if d < 0 {
			d = -d
		}
		if bestDiff == -1 || d < bestDiff || (d == bestDiff && r < best) {
			bestDiff, best = d, r
		}
	}
	return best
}

// myLog is sacreBLEU's my_log: log, with log(0) floored to -9999999999.
func myLog(x float64) float64 {
	if x == 0 {
		return -9999999999
	}
	return math.Log(x)
}

// ScoreStats turns statistics (one segment's or a corpus's sum) into a
// score with the signature for nrefs references, as sacreBLEU's
// BLEU.compute_bleu:
//
//	BLEU = BP · exp( (1/N) Σ_{n=1..N} log p_n ),   BP = min(1, exp(1 − r/c))
//
// with p_n the (smoothed) n-gram precisions, c the hypothesis length and r
// the reference length. With no match at all the score is 0.
func (b *BLEU) ScoreStats(st BLEUStats, nrefs int) (BLEUScore, error) {
	n := b.cfg.MaxOrder
	if len(st.Correct) != n || len(st.Total) != n {
		return BLEUScore{}, errors.Errorf("BLEU: statistics of orders %d and %d, want %d", len(st.Correct), len(st.Total), n)
	}
	bp := 1.0
	if st.HypLen < st.RefLen {
		bp = 0
		if st.HypLen > 0 {
			bp = math.Exp(1 - float64(st.RefLen)/float64(st.HypLen))
		}
	}
	s := BLEUScore{
		Counts: append([]int(nil), st.Correct...), Totals: append([]int(nil), st.Total...),
		Precisions: make([]float64, n), BP: bp, SysLen: st.HypLen, RefLen: st.RefLen,
		Signature: b.Signature(nrefs),
	}
	anyMatch := false
	for _, c := range st.Correct {
		anyMatch = anyMatch || c != 0
	}
	if !anyMatch {
		return s, nil
	}
	smoothMteval := 1.0
	eff := n
	for i := 1; i <= n; i++ {
		correct, total := float64(st.Correct[i-1]), float64(st.Total[i-1])
		if b.cfg.Smooth == "add-k" && i > 1 {
			correct += b.smoothValue
			total += b.smoothValue
		}
		if total == 0 {
			break
		}
		if b.cfg.EffectiveOrder {
			eff = i
		}
		switch {
		case correct != 0:
			s.Precisions[i-1] = 100 * correct / total
		case b.cfg.Smooth == "exp":
			smoothMteval *= 2
			s.Precisions[i-1] = 100 / (smoothMteval * total)
		case b.cfg.Smooth == "floor":
			s.Precisions[i-1] = 100 * b.smoothValue / total
		}
	}
	sum := 0.0
	for _, p := range s.Precisions[:eff] {
		sum += myLog(p)
	}
	s.Score = bp * math.Exp(sum/float64(eff))
	return s, nil
}

// Corpus is corpus BLEU of hyps against refs, where refs[k] is the k-th
// reference stream (one reference per hypothesis, as sacreBLEU takes them:
// pass [][]string{refs} for a single reference). An empty hypothesis is
// scored, not skipped.
func (b *BLEU) Corpus(hyps []string, refs [][]string) (BLEUScore, error) {
	var total BLEUStats
	err := eachSegment("BLEU", hyps, refs, func(h string, seg []string) error {
		st, err := b.SegmentStats(h, seg)
		if err == nil {
			total.Add(st)
		}
		return err
	})
	if err != nil {
		return BLEUScore{}, err
	}
	return b.ScoreStats(total, len(refs))
}

// Sentence is BLEU of one hypothesis against its references. Set
// EffectiveOrder for sentence-level scores, as sacreBLEU recommends.
func (b *BLEU) Sentence(hyp string, refs []string) (BLEUScore, error) {
	st, err := b.SegmentStats(hyp, refs)
	if err != nil {
		return BLEUScore{}, err
	}
	return b.ScoreStats(st, len(refs))
}

// eachSegment checks the streams, then calls fn with each hypothesis and
// its references (one from each stream).
func eachSegment(metric string, hyps []string, refs [][]string, fn func(hyp string, refs []string) error) error {
	if err := checkStreams(metric, hyps, refs); err != nil {
		return err
	}
	seg := make([]string, len(refs))
	for i, h := range hyps {
		for k := range refs {
			seg[k] = refs[k][i]
		}
		if err := fn(h, seg); err != nil {
			return err
		}
	}
	return nil
}

// checkStreams checks that there is something to score and that each
// reference stream has one line per hypothesis.
func checkStreams(metric string, hyps []string, refs [][]string) error {
	if len(hyps) == 0 {
		return errors.Wrapf(ErrEmpty, "%s: no hypotheses", metric)
	}
	if len(refs) == 0 {
		return errors.Errorf("%s: no reference streams", metric)
	}
	for k, r := range refs {
		if len(r) != len(hyps) {
			return errors.Errorf("%s: reference stream %d has %d segments but there are %d hypotheses", metric, k+1, len(r), len(hyps))
		}
	}
	return nil
}
