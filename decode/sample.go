package decode

import (
	"math"
	"math/rand/v2"
	"sort"

	"github.com/pkg/errors"
)

// MinTemperature is the lowest temperature that samples: below it (0
// included) the next token is the argmax. At 10⁻⁴ a logit gap of 0.01
// already weighs e⁻¹⁰⁰, so the bound changes no result a user could see,
// and it keeps logit/temperature finite (10⁻³²⁰ would overflow it to ±Inf
// and turn the softmax into NaN).
const MinTemperature = 1e-4

// Sampling picks the next token from a row's logits.
type Sampling struct {
	// Temperature divides the logits; below MinTemperature (0 included)
	// decoding is greedy (argmax, the first of equal maxima).
	Temperature float64
	// TopK keeps the k most likely tokens (0: all), and those tied with
	// the k-th, as nanoGPT's top_k.
	TopK int
	// TopP keeps the smallest set of most likely tokens whose probability
	// reaches p (nucleus sampling, Holtzman et al. 2020); 0 or 1: all.
	// Applied after TopK, as HuggingFace's warpers.
	TopP float64
	// Seed makes sampling reproducible: one stream for the batch, drawn
	// row by row at each step.
	Seed uint64
}

// Greedy reports whether s picks the argmax.
func (s Sampling) Greedy() bool { return s.Temperature < MinTemperature }

func (s Sampling) validate() error {
	if !(s.Temperature >= 0) || math.IsInf(s.Temperature, 0) || s.TopK < 0 || !(s.TopP >= 0 && s.TopP <= 1) {
		return errors.Errorf("decode: invalid sampling: temperature %v (want ≥ 0 and finite), top-k %d (want ≥ 0), top-p %v (want in [0, 1])",
			s.Temperature, s.TopK, s.TopP)
	}
	return nil
}

// GenerateConfig configures Generate.
type GenerateConfig struct {
	Limits
	Sampling
	// OnToken, if set, is called with each token as it is chosen, rows in
	// order at each step (for streaming text). An error stops Generate,
	// which returns it.
	OnToken func(row, token int) error
	// KeepLogits returns the logits each token was chosen from.
	KeepLogits bool
}

// Result is what Generate returns, per input row.
type Result struct {
	// Tokens are each row's new tokens, the end token that ended it
	// included.
	Tokens [][]int
	// Logits [row][step][V] are the logits each token was chosen from
	// (with KeepLogits).
	Logits [][][]float32
	// Attention [row][step][|input|] is where the model attended when it
	// chose each token (when its State is an Attender).
	Attention [][][]float32
}

// Greedy continues each input with its most likely token at every step
// until an end token or its maximum length.
func Greedy(m Model, inputs [][]int, l Limits) (*Result, error) {
	return Generate(m, inputs, GenerateConfig{Limits: l})
}

// Generate continues each input token by token, sampling each from its
// row's logits (greedily below MinTemperature), until the row draws an end
// token or reaches its maximum length. Finished rows leave the state
// (Reorder), so the others go on without them.
func Generate(m Model, inputs [][]int, cfg GenerateConfig) (*Result, error) {
	if err := cfg.Sampling.validate(); err != nil {
		return nil, err
	}
	st, logits, maxLen, vocab, err := cfg.start(m, inputs)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	rng := newRNG(cfg.Seed)
	n := len(inputs)
	out := &Result{Tokens: make([][]int, n)}
	if cfg.KeepLogits {
		out.Logits = make([][][]float32, n)
	}
	alive := make([]int, n) // the input of each state row
	for i := range alive {
		alive[i] = i
	}
	blocked := make([]float32, vocab)
	for step := 0; ; step++ {
		att, err := attention(st, len(alive))
		if err != nil {
			return nil, err
		}
		var next, keep, tokens []int
		for r, i := range alive {
			l := logits[r]
			if step < cfg.MinLen && len(cfg.EOS) > 0 {
				copy(blocked, l)
				for _, e := range cfg.EOS {
					blocked[e] = float32(math.Inf(-1))
				}
				l = blocked
			}
			tok := pick(l, cfg.Sampling, rng)
			out.Tokens[i] = append(out.Tokens[i], tok)
			if cfg.KeepLogits {
				out.Logits[i] = append(out.Logits[i], append([]float32(nil), logits[r]...))
			}
			if att != nil {
				if out.Attention == nil {
					out.Attention = make([][][]float32, n)
				}
				out.Attention[i] = append(out.Attention[i], att[r])
			}
			if cfg.OnToken != nil {
				if err := cfg.OnToken(i, tok); err != nil {
					return out, err
				}
			}
			if !cfg.isEOS(tok) && len(out.Tokens[i]) < maxLen[i] {
				next = append(next, i)
				keep = append(keep, r)
				tokens = append(tokens, tok)
			}
		}
		if len(next) == 0 {
			return out, nil
		}
		if len(next) < len(alive) {
			if err := st.Reorder(keep); err != nil {
				return nil, err
			}
		}
		alive = next
		if logits, err = st.Next(tokens); err != nil {
			return nil, err
		}
		if _, err := checkRows(logits, len(alive), vocab); err != nil {
			return nil, err
		}
	}
}

// pick draws the next token from one row of logits: argmax when greedy,
// else a sample from softmax(logits / T) cut to the top k and the top p.
func pick(logits []float32, s Sampling, rng *rand.Rand) int {
	if s.Greedy() {
		return argmax(logits)
	}
	type cand struct {
		id int
		z  float64
	}
	// T ≥ MinTemperature keeps z finite for any float32 logit, and z − z₀
	// ≤ 0 keeps every exp in [0, 1]: nothing overflows.
	cs := make([]cand, len(logits))
	for i, v := range logits {
		cs[i] = cand{i, float64(v) / s.Temperature}
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].z > cs[j].z })
	if math.IsInf(cs[0].z, -1) {
		return cs[0].id // every token is blocked; the model said nothing
	}
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

func argmax(logits []float32) int {
	best := 0
	for i, v := range logits {
		if v > logits[best] {
			best = i
		}
	}
	return best
}

func newRNG(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x5eed)) }
