package decode

import (
	"math"
	"sort"
	"testing"

	"github.com/pkg/errors"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBeamSearchEqualsExhaustiveSearch: with a beam wider than every step's
// candidates, nothing is pruned and no input stops early, so beam search
// must finish every possible hypothesis, and its n-best list must be the
// exhaustive ranking under each length penalty — with a minimum length,
// and maximum lengths a·|input| + b that differ between two inputs of a
// batch.
func TestBeamSearchEqualsExhaustiveSearch(t *testing.T) {
	f := &fakeLM{vocab: 4, seed: 3}
	inputs := [][]int{{2}, {1, 3, 2}}
	// Input 0 gets ⌊0.7⌋ + 1 = 1 new token (+ end), input 1 ⌊2.1⌋ + 1 = 3.
	lim := Limits{MaxLen: 1, MaxLenA: 0.7, MinLen: 1, EOS: []int{0}}
	for _, c := range []struct {
		name    string
		penalty Penalty
		alpha   float64
	}{{"fairseq α=1", Fairseq, 0}, {"fairseq α=0.5", Fairseq, 0.5}, {"GNMT α=0.6", GNMT, 0.6}, {"no penalty", NoPenalty, 0}} {
		t.Run(c.name, func(t *testing.T) {
			cfg := BeamConfig{Limits: lim, Beam: 64, NBest: 64, Penalty: c.penalty, LenPenalty: c.alpha}
			got, err := BeamSearch(f, inputs, cfg)
			require.NoError(t, err)
			for i, in := range inputs {
				want := exhaustive(f, in, lim)
				for k := range want {
					want[k].Score = cfg.normalize(want[k].LogProb, len(want[k].Tokens))
				}
				sort.SliceStable(want, func(a, b int) bool { return want[a].Score > want[b].Score })
				require.Len(t, got[i], len(want), "input %d: every hypothesis finished", i)
				for k := range want {
					assert.Equal(t, want[k].Tokens, got[i][k].Tokens, "input %d rank %d", i, k)
					assert.InDelta(t, want[k].Score, got[i][k].Score, 1e-12)
					assert.InDelta(t, want[k].LogProb, got[i][k].LogProb, 1e-12)
					assert.InDeltaSlice(t, want[k].TokenLogProbs, got[i][k].TokenLogProbs, 1e-12)
				}
				t.Logf("input %d: %d hypotheses, best %v score %.4f", i, len(want), want[0].Tokens, want[0].Score)
			}
		})
	}
}

// TestBeamWidthVocabularyIsExact: without end tokens and two new tokens,
// a beam as wide as the vocabulary keeps every first token, so the best V
// of the V² two-token outputs are exactly the exhaustive best V.
func TestBeamWidthVocabularyIsExact(t *testing.T) {
	f := &fakeLM{vocab: 6, seed: 4}
	lim := Limits{MaxLen: 2}
	got, err := BeamSearch(f, [][]int{{4, 5}}, BeamConfig{Limits: lim, Beam: 6, NBest: 6})
	require.NoError(t, err)
	want := exhaustive(f, []int{4, 5}, lim)
	require.Len(t, want, 36)
	sort.SliceStable(want, func(a, b int) bool { return want[a].LogProb > want[b].LogProb })
	require.Len(t, got[0], 6)
	for k := range got[0] {
		assert.Equal(t, want[k].Tokens, got[0][k].Tokens, "rank %d", k)
		assert.InDelta(t, want[k].LogProb/2, got[0][k].Score, 1e-12, "fairseq α=1: mean log-probability")
	}
	// A narrower beam is not exact on this model: greedy's first token is
	// not the best output's.
	narrow, err := BeamSearch(f, [][]int{{4, 5}}, BeamConfig{Limits: lim, Beam: 1})
	require.NoError(t, err)
	assert.Less(t, narrow[0][0].LogProb, want[0].LogProb-0.1, "beam 1 finds %v, the best is %v", narrow[0][0].Tokens, want[0].Tokens)
}

// TestGreedyEqualsBeamOne: beam search of width 1 follows the argmax, so it
// gives greedy decoding's tokens (plus the end token it forces at the
// maximum length), on inputs of different lengths in one batch.
func TestGreedyEqualsBeamOne(t *testing.T) {
	for seed := uint64(0); seed < 20; seed++ {
		f := &fakeLM{vocab: 5, seed: seed}
		inputs := [][]int{{1}, {2, 3, 4}, {4, 4}}
		lim := Limits{MaxLen: 6, EOS: []int{0}, MinLen: 1}
		g, err := Greedy(f, inputs, lim)
		require.NoError(t, err)
		b, err := BeamSearch(f, inputs, BeamConfig{Limits: lim, Beam: 1})
		require.NoError(t, err)
		for i := range inputs {
			want := g.Tokens[i]
			if want[len(want)-1] != 0 {
				require.Len(t, want, 6)
				want = append(want, 0) // forced after the maximum
			}
			require.Equal(t, want, b[i][0].Tokens, "seed %d input %d", seed, i)
		}
	}
}

// TestBeamSearchLeavesAndAttends: an input that is done leaves the state,
// EOS is never chosen before MinLen, and each token's attention is the
// model's attention for that hypothesis's prefix, through every Reorder.
func TestBeamSearchLeavesAndAttends(t *testing.T) {
	f := &fakeLM{vocab: 5, seed: 7}
	inputs := [][]int{{1, 2}, {3, 1, 4, 1, 2}}
	// Input 0 finishes within 2 tokens (+ end); input 1 has up to 8.
	lim := Limits{MaxLen: 2, MaxLenA: 1.2, MinLen: 2, EOS: []int{0}}
	got, err := BeamSearch(f, inputs, BeamConfig{Limits: lim, Beam: 3, NBest: 3})
	require.NoError(t, err)
	for i, hs := range got {
		require.Len(t, hs, 3, "input %d", i)
		for _, h := range hs {
			require.GreaterOrEqual(t, len(h.Tokens), 3, "two tokens before the end")
			assert.Equal(t, 0, h.Tokens[len(h.Tokens)-1])
			require.Len(t, h.Attention, len(h.Tokens))
			for s := range h.Tokens {
				assert.Equal(t, f.attention(fakeRow{inputs[i], h.Tokens[:s]}), h.Attention[s], "input %d step %d", i, s)
			}
			assert.GreaterOrEqual(t, h.Score, hs[len(hs)-1].Score, "best first")
		}
	}
	assert.Equal(t, 2, f.calls[0], "Start reads one row per input")
	assert.Equal(t, 6, f.calls[1], "then a beam of 3 each")
	assert.Equal(t, 3, f.calls[len(f.calls)-1], "at the end only input 1's beam is left")
}

// TestTopKTopPFrequencies samples known distributions many times: the
// frequencies match the renormalized kept probabilities and excluded
// tokens never appear.
func TestTopKTopPFrequencies(t *testing.T) {
	p := []float64{0.5, 0.25, 0.15, 0.1}
	logits := make([]float32, len(p))
	for i, x := range p {
		logits[i] = float32(math.Log(x)) + 3 // a shift changes nothing
	}
	const n = 40000
	for _, c := range []struct {
		name string
		s    Sampling
		want []float64
	}{
		{"all", Sampling{Temperature: 1}, p},
		{"top-k 2", Sampling{Temperature: 1, TopK: 2}, []float64{2.0 / 3, 1.0 / 3, 0, 0}},
		{"top-p 0.7", Sampling{Temperature: 1, TopP: 0.7}, []float64{2.0 / 3, 1.0 / 3, 0, 0}},
		{"top-p 0.8", Sampling{Temperature: 1, TopP: 0.8}, []float64{0.5 / 0.9, 0.25 / 0.9, 0.15 / 0.9, 0}},
		{"top-p 0.45", Sampling{Temperature: 1, TopP: 0.45}, []float64{1, 0, 0, 0}},
		// Top-p reads the distribution top-k renormalized (0.56, 0.28, 0.17),
		// as HuggingFace's warpers in turn: 0.56 + 0.28 reaches 0.8.
		{"top-k 3 then top-p 0.8", Sampling{Temperature: 1, TopK: 3, TopP: 0.8}, []float64{2.0 / 3, 1.0 / 3, 0, 0}},
		{"temperature 2", Sampling{Temperature: 2}, sqrtNorm(p)},
		{"temperature 0.5", Sampling{Temperature: 0.5}, squareNorm(p)},
	} {
		t.Run(c.name, func(t *testing.T) {
			rng := newRNG(42)
			counts := make([]float64, len(p))
			for range n {
				counts[pick(logits, c.s, rng)]++
			}
			for v := range p {
				if c.want[v] == 0 {
					assert.Zero(t, counts[v], "token %d is excluded", v)
					continue
				}
				// 5 standard errors of a binomial frequency.
				se := math.Sqrt(c.want[v] * (1 - c.want[v]) / n)
				assert.InDelta(t, c.want[v], counts[v]/n, 5*se+1e-9, "token %d", v)
			}
		})
	}
	// Ties with the k-th token stay (nanoGPT's threshold).
	tied := []float32{1, 3, 2, 2}
	seen := map[int]bool{}
	rng := newRNG(1)
	for range 2000 {
		seen[pick(tied, Sampling{Temperature: 1, TopK: 2}, rng)] = true
	}
	assert.Equal(t, map[int]bool{1: true, 2: true, 3: true}, seen)
}

func sqrtNorm(p []float64) []float64 { return powNorm(p, 0.5) }

func squareNorm(p []float64) []float64 { return powNorm(p, 2) }

func powNorm(p []float64, e float64) []float64 {
	out := make([]float64, len(p))
	var s float64
	for i, x := range p {
		out[i] = math.Pow(x, e)
		s += out[i]
	}
	for i := range out {
		out[i] /= s
	}
	return out
}

// TestTinyTemperatureIsGreedy: temperatures below MinTemperature are greedy
// (10⁻³²⁰ used to overflow logit/T to ±Inf and sample garbage), and just
// above it the sample is still the argmax, never NaN.
func TestTinyTemperatureIsGreedy(t *testing.T) {
	logits := []float32{-3, 2.5, 2.49, -1e30, 30000}
	rng := newRNG(1)
	for _, temp := range []float64{0, 1e-320, math.SmallestNonzeroFloat64, 1e-10, MinTemperature / 2, MinTemperature, 1e-3} {
		for range 50 {
			assert.Equal(t, 4, pick(logits, Sampling{Temperature: temp, TopP: 0.9}, rng), "temperature %v", temp)
		}
	}
	near := []float32{2.5, 2.49}
	assert.Equal(t, 0, pick(near, Sampling{Temperature: 1e-320}, rng))
	f := &fakeLM{vocab: 7, seed: 2}
	g, err := Greedy(f, [][]int{{1}}, Limits{MaxLen: 5})
	require.NoError(t, err)
	s, err := Generate(f, [][]int{{1}}, GenerateConfig{Limits: Limits{MaxLen: 5}, Sampling: Sampling{Temperature: 1e-320, Seed: 9}})
	require.NoError(t, err)
	assert.Equal(t, g.Tokens, s.Tokens)
}

// TestGenerateRowsLeaveAndStream: rows end at an end token or their own
// maximum and then leave the state; OnToken sees every token in order and
// can stop the run; seeds reproduce.
func TestGenerateRowsLeaveAndStream(t *testing.T) {
	f := &fakeLM{vocab: 6, seed: 5}
	inputs := [][]int{{1}, {2, 2, 2, 2}, {3, 3}}
	var streamed [3][]int
	cfg := GenerateConfig{Limits: Limits{MaxLen: 2, MaxLenA: 1, EOS: []int{0}}, KeepLogits: true,
		Sampling: Sampling{Temperature: 1, Seed: 4},
		OnToken:  func(row, tok int) error { streamed[row] = append(streamed[row], tok); return nil }}
	out, err := Generate(f, inputs, cfg)
	require.NoError(t, err)
	for i, toks := range out.Tokens {
		assert.Equal(t, streamed[i], toks, "streamed row %d", i)
		maxLen := len(inputs[i]) + 2
		if toks[len(toks)-1] != 0 {
			assert.Len(t, toks, maxLen)
		}
		assert.LessOrEqual(t, len(toks), maxLen)
		require.Len(t, out.Logits[i], len(toks))
		require.Len(t, out.Attention[i], len(toks))
		for s := range toks {
			assert.Equal(t, f.logits(fakeRow{inputs[i], toks[:s]}), out.Logits[i][s])
			assert.Equal(t, f.attention(fakeRow{inputs[i], toks[:s]}), out.Attention[i][s])
		}
		for _, tok := range toks[:len(toks)-1] {
			assert.NotEqual(t, 0, tok, "an end token ends the row")
		}
	}
	// Each call has one row per unfinished input.
	for s, rows := range f.calls {
		alive := 0
		for _, toks := range out.Tokens {
			if len(toks) > s {
				alive++
			}
		}
		assert.Equal(t, alive, rows, "step %d", s)
	}
	assert.Equal(t, 3, f.calls[0])
	assert.Less(t, f.calls[len(f.calls)-1], 3, "finished rows left")

	again, err := Generate(f, inputs, GenerateConfig{Limits: cfg.Limits, Sampling: cfg.Sampling})
	require.NoError(t, err)
	assert.Equal(t, out.Tokens, again.Tokens, "same seed, same sample")

	stop := errors.New("enough")
	n := 0
	_, err = Generate(f, inputs, GenerateConfig{Limits: Limits{MaxLen: 10}, Sampling: cfg.Sampling,
		OnToken: func(int, int) error {
			if n++; n == 4 {
				return stop
			}
			return nil
		}})
	assert.ErrorIs(t, err, stop)
	assert.Equal(t, 4, n)

	// MinLen blocks the end token.
	out, err = Generate(f, inputs, GenerateConfig{Limits: Limits{MaxLen: 4, MinLen: 4, EOS: []int{0, 1, 2, 3, 4}}})
	require.NoError(t, err)
	for _, toks := range out.Tokens {
		assert.Equal(t, []int{5, 5, 5, 5}, toks, "only token 5 is not an end token")
	}
}

func TestDecodeValidates(t *testing.T) {
	f := &fakeLM{vocab: 4}
	in := [][]int{{1}}
	for _, c := range []struct {
		cfg  GenerateConfig
		want string
	}{
		{GenerateConfig{Limits: Limits{MaxLen: 3}, Sampling: Sampling{Temperature: -1}}, "temperature -1"},
		{GenerateConfig{Limits: Limits{MaxLen: 3}, Sampling: Sampling{Temperature: math.NaN()}}, "temperature NaN"},
		{GenerateConfig{Limits: Limits{MaxLen: 3}, Sampling: Sampling{Temperature: 1, TopP: 1.5}}, "top-p 1.5"},
		{GenerateConfig{Limits: Limits{MaxLen: 3}, Sampling: Sampling{TopK: -2}}, "top-k -2"},
		{GenerateConfig{Limits: Limits{MaxLen: 0}}, "input 0 may have 0 new tokens"},
		{GenerateConfig{Limits: Limits{MaxLen: 2, MinLen: 3}}, "min len 3"},
		{GenerateConfig{Limits: Limits{MaxLen: -1}}, "must not be negative"},
		{GenerateConfig{Limits: Limits{MaxLen: 2, EOS: []int{4}}}, "end token 4 is outside the vocabulary [0, 4)"},
	} {
		_, err := Generate(f, in, c.cfg)
		assert.ErrorContains(t, err, c.want)
	}
	_, err := Generate(f, nil, GenerateConfig{Limits: Limits{MaxLen: 1}})
	assert.ErrorContains(t, err, "no inputs")
	_, err = BeamSearch(f, in, BeamConfig{Limits: Limits{MaxLen: 2}})
	assert.ErrorContains(t, err, "beam size 0")
	_, err = BeamSearch(f, in, BeamConfig{Limits: Limits{MaxLen: 2}, Beam: 2, NBest: 3})
	assert.ErrorContains(t, err, "n-best 3 is not in [1, beam 2]")
	_, err = BeamSearch(f, in, BeamConfig{Limits: Limits{MaxLen: 2}, Beam: 2, Penalty: 7})
	assert.ErrorContains(t, err, "invalid length penalty")
}
