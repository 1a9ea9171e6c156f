package metrics

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sacreBLEUFixture is testdata/sacrebleu.json, written by
// testdata/gen_sacrebleu.py from sacreBLEU 2.6.0.
type sacreBLEUFixture struct {
	Version string `json:"sacrebleu_version"`
	Corpus  struct {
		Hyps []string   `json:"hyps"`
		Refs [][]string `json:"refs"`
	} `json:"corpus"`
	BLEU []struct {
		Tokenize       string    `json:"tokenize"`
		Lowercase      bool      `json:"lowercase"`
		Smooth         string    `json:"smooth_method"`
		SmoothValue    *float64  `json:"smooth_value"`
		MaxOrder       int       `json:"max_ngram_order"`
		EffectiveOrder bool      `json:"effective_order"`
		NRefs          int       `json:"nrefs"`
		Score          float64   `json:"score"`
		Counts         []float64 `json:"counts"` // floats: sacreBLEU adds add-k's k into them
		Totals         []float64 `json:"totals"`
		Precisions     []float64 `json:"precisions"`
		BP             float64   `json:"bp"`
		SysLen         int       `json:"sys_len"`
		RefLen         int       `json:"ref_len"`
		Signature      string    `json:"signature"`
		Short          string    `json:"short"`
		Str            string    `json:"str"`
		Line           string    `json:"line"`
		JSON           string    `json:"json"`
	} `json:"bleu"`
	SentenceBLEU []struct {
		Tokenize       string    `json:"tokenize"`
		Lowercase      bool      `json:"lowercase"`
		Smooth         string    `json:"smooth_method"`
		EffectiveOrder bool      `json:"effective_order"`
		NRefs          int       `json:"nrefs"`
		Scores         []float64 `json:"scores"`
	} `json:"sentence_bleu"`
	CHRF []struct {
		CharOrder    int     `json:"char_order"`
		WordOrder    int     `json:"word_order"`
		Beta         int     `json:"beta"`
		Lowercase    bool    `json:"lowercase"`
		Whitespace   bool    `json:"whitespace"`
		EpsSmoothing bool    `json:"eps_smoothing"`
		NRefs        int     `json:"nrefs"`
		Score        float64 `json:"score"`
		Name         string  `json:"name"`
		Signature    string  `json:"signature"`
		Short        string  `json:"short"`
		Str          string  `json:"str"`
		Line         string  `json:"line"`
		JSON         string  `json:"json"`
	} `json:"chrf"`
	SentenceCHRF []struct {
		WordOrder    int       `json:"word_order"`
		EpsSmoothing bool      `json:"eps_smoothing"`
		NRefs        int       `json:"nrefs"`
		Scores       []float64 `json:"scores"`
	} `json:"sentence_chrf"`
	Tokenize []map[string]string `json:"tokenize"`
	Stress   []struct {
		Hyp      string             `json:"hyp"`
		Ref      string             `json:"ref"`
		BLEU     map[string]float64 `json:"bleu"`
		SelfBLEU map[string]float64 `json:"self_bleu"`
		CHRF     float64            `json:"chrf"`
		CHRFpp   float64            `json:"chrfpp"`
		SelfCHRF float64            `json:"self_chrf"`
	} `json:"stress"`
	StressCorpus struct {
		CHRF map[string]float64 `json:"chrf"`
		BLEU map[string]float64 `json:"bleu"`
	} `json:"stress_corpus"`
}

func readSacreBLEU() (sacreBLEUFixture, error) {
	var f sacreBLEUFixture
	b, err := os.ReadFile(filepath.Join("testdata", "sacrebleu.json"))
	if err != nil {
		return f, err
	}
	return f, json.Unmarshal(b, &f)
}

func loadSacreBLEU(t *testing.T) sacreBLEUFixture {
	t.Helper()
	f, err := readSacreBLEU()
	require.NoError(t, err)
	require.Equal(t, SacreBLEUVersion, f.Version, "the fixture was made with another sacreBLEU")
	require.Len(t, f.Corpus.Hyps, 300)
	return f
}

func floats(x []int) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

// streams returns the first n reference streams.
func streams(f sacreBLEUFixture, n int) [][]string { return f.Corpus.Refs[:n] }

// scoreTol is the tolerance on a 0–100 score: sacreBLEU's arithmetic is
// reproduced operation for operation, so only the last bits of log and
// exp (Go's against the C library's) may differ.
const scoreTol = 1e-9

// TestSacreBLEUCorpusBLEU: every tokenizer, smoothing, case, order and
// reference count on the 300-sentence corpus gives sacreBLEU's statistics,
// score, signature and printed lines.
func TestSacreBLEUCorpusBLEU(t *testing.T) {
	f := loadSacreBLEU(t)
	require.Len(t, f.BLEU, 84)
	for _, tc := range f.BLEU {
		name := fmt.Sprintf("%s/lc=%v/%s/%v/order=%d/eff=%v/nrefs=%d", tc.Tokenize, tc.Lowercase, tc.Smooth, tc.SmoothValue, tc.MaxOrder, tc.EffectiveOrder, tc.NRefs)
		t.Run(name, func(t *testing.T) {
			b := newBLEU(t, BLEUConfig{Tokenize: tc.Tokenize, Lowercase: tc.Lowercase, Smooth: tc.Smooth, SmoothValue: tc.SmoothValue, MaxOrder: tc.MaxOrder, EffectiveOrder: tc.EffectiveOrder})
			s, err := b.Corpus(f.Corpus.Hyps, streams(f, tc.NRefs))
			require.NoError(t, err)
			assert.InDelta(t, tc.Score, s.Score, scoreTol)
			assert.Equal(t, tc.SysLen, s.SysLen)
			assert.Equal(t, tc.RefLen, s.RefLen)
			counts, totals := floats(s.Counts), floats(s.Totals)
			if tc.Smooth == "add-k" { // sacreBLEU reports the counts with k added from order 2 on
				for i := 1; i < len(counts); i++ {
					counts[i] += b.smoothValue
					totals[i] += b.smoothValue
				}
			}
			assert.Equal(t, tc.Counts, counts)
			assert.Equal(t, tc.Totals, totals)
			assert.InDeltaSlice(t, tc.Precisions, s.Precisions, 1e-9)
			assert.InDelta(t, tc.BP, s.BP, 1e-12)
			assert.Equal(t, tc.Signature, s.Signature.String())
			assert.Equal(t, tc.Short, s.Signature.Short())
			assert.Equal(t, tc.Line, s.Format(1, s.Signature.String()))
			if tc.Str != "" {
				assert.Equal(t, tc.Str, s.String())
			}
			if tc.JSON != "" {
				assert.Equal(t, tc.JSON, s.JSON(1))
			}
		})
	}
}

func TestSacreBLEUSentenceBLEU(t *testing.T) {
	f := loadSacreBLEU(t)
	for _, tc := range f.SentenceBLEU {
		b := newBLEU(t, BLEUConfig{Tokenize: tc.Tokenize, Lowercase: tc.Lowercase, Smooth: tc.Smooth, EffectiveOrder: tc.EffectiveOrder})
		require.Len(t, tc.Scores, len(f.Corpus.Hyps))
		for i, h := range f.Corpus.Hyps {
			refs := make([]string, tc.NRefs)
			for k := range refs {
				refs[k] = f.Corpus.Refs[k][i]
			}
			s, err := b.Sentence(h, refs)
			require.NoError(t, err)
			assert.InDelta(t, tc.Scores[i], s.Score, scoreTol, "%s eff=%v nrefs=%d sentence %d: %q", tc.Tokenize, tc.EffectiveOrder, tc.NRefs, i, h)
		}
	}
}

func TestSacreBLEUCorpusCHRF(t *testing.T) {
	f := loadSacreBLEU(t)
	require.Len(t, f.CHRF, 35)
	for _, tc := range f.CHRF {
		c := newCHRF(t, CHRFConfig{CharOrder: tc.CharOrder, WordOrder: tc.WordOrder, Beta: tc.Beta, Lowercase: tc.Lowercase, Whitespace: tc.Whitespace, EpsSmoothing: tc.EpsSmoothing})
		s, err := c.Corpus(f.Corpus.Hyps, streams(f, tc.NRefs))
		require.NoError(t, err)
		msg := fmt.Sprintf("%+v", tc.Signature)
		assert.InDelta(t, tc.Score, s.Score, scoreTol, msg)
		assert.Equal(t, tc.Name, s.Name, msg)
		assert.Equal(t, tc.Signature, s.Signature.String(), msg)
		assert.Equal(t, tc.Short, s.Signature.Short(), msg)
		assert.Equal(t, tc.Str, s.String(), msg)
		assert.Equal(t, tc.Line, s.Format(1, s.Signature.String()), msg)
		assert.Equal(t, tc.JSON, s.JSON(1), msg)
	}
}

func TestSacreBLEUSentenceCHRF(t *testing.T) {
	f := loadSacreBLEU(t)
	for _, tc := range f.SentenceCHRF {
		c := newCHRF(t, CHRFConfig{WordOrder: tc.WordOrder, EpsSmoothing: tc.EpsSmoothing})
		for i, h := range f.Corpus.Hyps {
			refs := make([]string, tc.NRefs)
			for k := range refs {
				refs[k] = f.Corpus.Refs[k][i]
			}
			s, err := c.Sentence(h, refs)
			require.NoError(t, err)
			assert.InDelta(t, tc.Scores[i], s.Score, scoreTol, "nw=%d eps=%v nrefs=%d sentence %d", tc.WordOrder, tc.EpsSmoothing, tc.NRefs, i)
		}
	}
}

// TestSacreBLEUTokenizers: each tokenizer gives sacreBLEU's string on lines
// built to hit every rule (entities, digits, Unicode punctuation and
// symbols, CJK, Python-only whitespace, final sigma).
func TestSacreBLEUTokenizers(t *testing.T) {
	f := loadSacreBLEU(t)
	require.NotEmpty(t, f.Tokenize)
	for _, tc := range f.Tokenize {
		line := tc["line"]
		assert.Equal(t, tc["lower"], lower(line), "lower(%q)", line)
		for _, name := range Tokenizers() {
			got, err := Tokenize(name, line)
			require.NoError(t, err)
			assert.Equal(t, tc[name], got, "%s(%q)", name, line)
		}
		b := newBLEU(t, BLEUConfig{Lowercase: true})
		assert.Equal(t, tc["13a_lower_rstrip"], b.preprocess(line), "BLEU preprocessing of %q", line)
	}
}

func TestSacreBLEUStressScores(t *testing.T) {
	f := loadSacreBLEU(t)
	chrf, chrfpp := newCHRF(t, CHRFConfig{}), newCHRF(t, CHRFConfig{WordOrder: 2})
	for _, tc := range f.Stress {
		for _, tok := range Tokenizers() {
			b := newBLEU(t, BLEUConfig{Tokenize: tok, EffectiveOrder: true})
			s, err := b.Sentence(tc.Hyp, []string{tc.Ref})
			require.NoError(t, err)
			assert.InDelta(t, tc.BLEU[tok], s.Score, scoreTol, "%s: %q vs %q", tok, tc.Hyp, tc.Ref)
			s, err = b.Sentence(tc.Hyp, []string{tc.Hyp})
			require.NoError(t, err)
			assert.InDelta(t, tc.SelfBLEU[tok], s.Score, scoreTol, "%s: %q vs itself", tok, tc.Hyp)
		}
		for _, m := range []struct {
			c    *CHRF
			ref  string
			want float64
		}{{chrf, tc.Ref, tc.CHRF}, {chrfpp, tc.Ref, tc.CHRFpp}, {chrf, tc.Hyp, tc.SelfCHRF}} {
			s, err := m.c.Sentence(tc.Hyp, []string{m.ref})
			require.NoError(t, err)
			assert.InDelta(t, m.want, s.Score, scoreTol, "%s: %q vs %q", m.c.Name(), tc.Hyp, m.ref)
		}
	}
}

// TestSacreBLEUStressCorpus: corpus scores with short and empty
// references, where chrF leaves out the hypothesis n-grams of the orders a
// reference lacks.
func TestSacreBLEUStressCorpus(t *testing.T) {
	f := loadSacreBLEU(t)
	var hyps, refs []string
	for i := range f.Stress {
		hyps = append(hyps, f.Stress[i].Hyp)
		refs = append(refs, f.Stress[i].Ref)
	}
	for name, cfg := range map[string]CHRFConfig{"chrF2": {}, "chrF2++": {WordOrder: 2}, "eps": {EpsSmoothing: true}, "ws": {Whitespace: true}} {
		s, err := newCHRF(t, cfg).Corpus(hyps, [][]string{refs})
		require.NoError(t, err)
		require.Contains(t, f.StressCorpus.CHRF, name)
		assert.InDelta(t, f.StressCorpus.CHRF[name], s.Score, scoreTol, name)
	}
	for _, tok := range Tokenizers() {
		s, err := newBLEU(t, BLEUConfig{Tokenize: tok}).Corpus(hyps, [][]string{refs})
		require.NoError(t, err)
		assert.InDelta(t, f.StressCorpus.BLEU[tok], s.Score, scoreTol, tok)
	}
}

// TestPythonStringSemantics: isSpace, lower and the Final_Sigma context
// agree with Python 3's str methods on every code point
// (testdata/pystr.json).
func TestPythonStringSemantics(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "pystr.json"))
	require.NoError(t, err)
	var tab struct {
		Python            string              `json:"python"`
		Unicode           string              `json:"unicode"`
		Unassigned        [][2]rune           `json:"unassigned"`
		Space             [][2]rune           `json:"space"`
		CasedNotIgnorable [][2]rune           `json:"cased_not_ignorable"`
		Ignorable         [][2]rune           `json:"ignorable"`
		Lower             [][]json.RawMessage `json:"lower"` // [code point, [its lowercase]]
	}
	require.NoError(t, json.Unmarshal(b, &tab))
	in := func(ranges [][2]rune) func(rune) bool {
		set := map[rune]bool{}
		for _, r := range ranges {
			for c := r[0]; c <= r[1]; c++ {
				set[c] = true
			}
		}
		return func(r rune) bool { return set[r] }
	}
	pySpace, pyCased, pyIgn, unassigned := in(tab.Space), in(tab.CasedNotIgnorable), in(tab.Ignorable), in(tab.Unassigned)
	pyLower := map[rune]string{}
	for _, e := range tab.Lower {
		var cp rune
		var lw []rune
		require.NoError(t, json.Unmarshal(e[0], &cp))
		require.NoError(t, json.Unmarshal(e[1], &lw))
		pyLower[cp] = string(lw)
	}
	require.Greater(t, len(pyLower), 1000)
	var bad []string
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if (r >= 0xd800 && r <= 0xdfff) || unassigned(r) {
			continue
		}
		c := string(r)
		if isSpace(r) != pySpace(r) {
			bad = append(bad, fmt.Sprintf("isspace U+%04X", r))
		}
		want, ok := pyLower[r]
		if !ok {
			want = c
		}
		if got := lower(c); got != want {
			bad = append(bad, fmt.Sprintf("lower U+%04X: %q, Python %q", r, got, want))
		}
		// Σ after " "+c is final iff c is cased and not case-ignorable; Σ
		// after "A"+c iff c is case-ignorable or cased.
		if got := strings.HasSuffix(lower(" "+c+"Σ"), "ς"); got != pyCased(r) {
			bad = append(bad, fmt.Sprintf("cased U+%04X: final sigma %v, Python %v", r, got, pyCased(r)))
		}
		if got := strings.HasSuffix(lower("A"+c+"Σ"), "ς"); got != (pyIgn(r) || pyCased(r)) {
			bad = append(bad, fmt.Sprintf("case-ignorable U+%04X: final sigma %v, Python %v", r, got, pyIgn(r) || pyCased(r)))
		}
	}
	assert.Empty(t, bad, "against Python %s (Unicode %s)", tab.Python, tab.Unicode)
}

// BenchmarkCorpusBLEU: sacreBLEU's default BLEU of the 300-sentence
// fixture corpus against two references.
func BenchmarkCorpusBLEU(b *testing.B) {
	f, err := readSacreBLEU()
	if err != nil {
		b.Fatal(err)
	}
	m, _ := NewBLEU(BLEUConfig{})
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.Corpus(f.Corpus.Hyps, f.Corpus.Refs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCorpusCHRF: sacreBLEU's default chrF2 on the same corpus.
func BenchmarkCorpusCHRF(b *testing.B) {
	f, err := readSacreBLEU()
	if err != nil {
		b.Fatal(err)
	}
	m, _ := NewCHRF(CHRFConfig{})
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.Corpus(f.Corpus.Hyps, f.Corpus.Refs); err != nil {
			b.Fatal(err)
		}
	}
}
