package metrics

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The cases of sacreBLEU's own test suite (v2.6.0 test/test_bleu.py,
// test_sentence_bleu.py, test_chrf.py): inputs and expected scores as
// sacreBLEU publishes them, with its tolerances.

func ptr(v float64) *float64 { return &v }

func newBLEU(t *testing.T, cfg BLEUConfig) *BLEU {
	t.Helper()
	b, err := NewBLEU(cfg)
	require.NoError(t, err)
	return b
}

func newCHRF(t *testing.T, cfg CHRFConfig) *CHRF {
	t.Helper()
	c, err := NewCHRF(cfg)
	require.NoError(t, err)
	return c
}

// rawBLEU is sacreBLEU's raw_corpus_bleu: no tokenization, floor
// smoothing, effective order.
func rawBLEU(t *testing.T, floor *float64) *BLEU {
	return newBLEU(t, BLEUConfig{Tokenize: "none", Smooth: "floor", SmoothValue: floor, EffectiveOrder: true})
}

// The README example of sacreBLEU's test_bleu.py: three hypotheses, two
// reference streams.
var (
	readmeRefs = [][]string{
		{"The dog bit the man.", "It was not unexpected.", "The man bit him first."},
		{"The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."},
	}
	readmeHyps = []string{"The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."}
)

func TestPublishedCorpusBLEU(t *testing.T) {
	const eps = 1e-8
	for _, tc := range []struct {
		name string
		hyps []string
		cfg  BLEUConfig
		want float64
	}{
		{"default", readmeHyps, BLEUConfig{}, 48.530827},
		{"empty hypotheses are not removed", []string{"", "", ""}, BLEUConfig{}, 0},
		{"tokenize none", readmeHyps, BLEUConfig{Tokenize: "none"}, 49.1919566},
		{"tokenize 13a", readmeHyps, BLEUConfig{Tokenize: "13a"}, 48.530827},
		{"tokenize intl", readmeHyps, BLEUConfig{Tokenize: "intl"}, 43.91623493},
		{"smooth none", readmeHyps, BLEUConfig{Smooth: "none"}, 48.530827},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := newBLEU(t, tc.cfg).Corpus(tc.hyps, readmeRefs)
			require.NoError(t, err)
			assert.InDelta(t, tc.want, s.Score, eps)
		})
	}
}

func TestPublishedMaxOrder(t *testing.T) {
	for order, want := range map[int]string{1: "77.65", 2: "60.50", 3: "53.93", 4: "48.53", 5: "46.14", 6: "43.28"} {
		s, err := newBLEU(t, BLEUConfig{MaxOrder: order}).Corpus(readmeHyps, readmeRefs)
		require.NoError(t, err)
		assert.Equal(t, want, formatFixed(s.Score, 2), "order %d", order)
	}
}

func TestPublishedRawBLEU(t *testing.T) {
	const eps = 1e-8
	for _, tc := range []struct {
		hyps []string
		refs [][]string
		want float64 // score / 100
	}{
		{[]string{"this is a test", "another test"}, [][]string{{"ref1", "ref2"}}, 0}, // 0 since sacreBLEU #141
		{[]string{"this is a test"}, [][]string{{"this is a test"}}, 1},
		{[]string{"this is a fest"}, [][]string{{"this is a test"}}, 0.223606797749979},
		// test_effective_order
		{[]string{"test"}, [][]string{{"a test"}}, 0.3678794411714425},
		{[]string{"a test"}, [][]string{{"a test"}}, 1},
		{[]string{"a little test"}, [][]string{{"a test"}}, 0.03218297948685433},
	} {
		s, err := rawBLEU(t, ptr(0.01)).Corpus(tc.hyps, tc.refs)
		require.NoError(t, err)
		assert.InDelta(t, tc.want, s.Score/100, eps, "%q", tc.hyps)
	}
}

func TestPublishedStatistics(t *testing.T) {
	s, err := rawBLEU(t, ptr(0.01)).Corpus([]string{"am I am a character sequence"}, [][]string{{"I am a symbol string sequence a a"}})
	require.NoError(t, err)
	assert.Equal(t, []int{4, 2, 1, 0}, s.Counts)
	assert.Equal(t, []int{6, 5, 4, 3}, s.Totals)
}

func TestPublishedOffset(t *testing.T) {
	hyps, refs := []string{"am I am a character sequence"}, [][]string{{"I am a symbol string sequence a a"}}
	s, err := rawBLEU(t, ptr(0)).Corpus(hyps, refs)
	require.NoError(t, err)
	assert.InDelta(t, 0, s.Score/100, 1e-8, "floor 0")
	s, err = rawBLEU(t, nil).Corpus(hyps, refs) // sacreBLEU's default floor, 0.1
	require.NoError(t, err)
	assert.InDelta(t, 0.1555722182, s.Score/100, 1e-8)
}

func TestPublishedScoring(t *testing.T) {
	// BLEU.compute_bleu([9,7,5,3], [10,8,6,4], 11, 11) with its default
	// smoothing, none.
	b := newBLEU(t, BLEUConfig{Smooth: "none"})
	s, err := b.ScoreStats(BLEUStats{HypLen: 11, RefLen: 11, Correct: []int{9, 7, 5, 3}, Total: []int{10, 8, 6, 4}}, 1)
	require.NoError(t, err)
	assert.InDelta(t, 0.8375922397, s.Score/100, 1e-8)
}

func TestPublishedDegenerateStatistics(t *testing.T) {
	for _, tc := range []struct {
		correct, total []int
		hypLen, refLen int
		floor          float64
	}{
		{[]int{0, 0, 0, 0}, []int{4, 4, 2, 1}, 0, 1, 0},
		{[]int{0, 0, 0, 0}, []int{10, 11, 12, 0}, 14, 10, 0},
		{[]int{0, 0, 0, 0}, []int{0, 0, 0, 0}, 0, 0, 0},
		{[]int{6, 5, 4, 0}, []int{6, 5, 4, 3}, 6, 6, 0},
		{[]int{0, 0, 0, 0}, []int{0, 0, 0, 0}, 0, 0, 0.1},
		{[]int{0, 0, 0, 0}, []int{0, 0, 0, 0}, 1, 5, 0.01},
	} {
		b := newBLEU(t, BLEUConfig{Smooth: "floor", SmoothValue: ptr(tc.floor)})
		s, err := b.ScoreStats(BLEUStats{HypLen: tc.hypLen, RefLen: tc.refLen, Correct: tc.correct, Total: tc.total}, 1)
		require.NoError(t, err)
		assert.Equal(t, 0.0, s.Score, "%+v", tc)
	}
}

// test_sentence_bleu.py: the example of sacreBLEU issue #98.
func TestPublishedSentenceBLEU(t *testing.T) {
	const ref = "producţia de zahăr brut se exprimă în zahăr alb;"
	const hyp = "Producția de zahăr primă va fi exprimată în ceea ce privește zahărul alb;"
	for _, tc := range []struct {
		smooth    string
		value     *float64
		lowercase bool
		tok       string
		want      float64
	}{
		{"exp", nil, false, "13a", 8.493},
		{"none", nil, false, "13a", 0},
		{"floor", nil, false, "13a", 4.51688},
		{"floor", ptr(0.1), false, "13a", 4.51688},
		{"floor", ptr(0.5), false, "13a", 10.10},
		{"add-k", nil, false, "13a", 14.882},
		{"add-k", ptr(1), false, "13a", 14.882},
		{"add-k", ptr(2), false, "13a", 21.389},
		{"exp", nil, false, "none", 7.347},
		{"exp", nil, false, "intl", 8.493},
		{"exp", nil, false, "char", 40.8759},
		{"exp", nil, true, "char", 42.0267},
	} {
		b := newBLEU(t, BLEUConfig{Smooth: tc.smooth, SmoothValue: tc.value, Lowercase: tc.lowercase, Tokenize: tc.tok, EffectiveOrder: true})
		s, err := b.Sentence(hyp, []string{ref})
		require.NoError(t, err)
		assert.InDelta(t, tc.want, s.Score, 1e-3, "%+v", tc)
	}
	// The example of issue #141: no match at all is 0 whatever the smoothing.
	for _, sm := range []struct {
		smooth string
		value  *float64
	}{{"exp", nil}, {"none", nil}, {"floor", nil}, {"floor", ptr(0.1)}, {"add-k", nil}, {"add-k", ptr(1)}} {
		s, err := newBLEU(t, BLEUConfig{Smooth: sm.smooth, SmoothValue: sm.value, EffectiveOrder: true}).Sentence("this is a cat", []string{"okay thanks"})
		require.NoError(t, err)
		assert.Equal(t, 0.0, s.Score, sm.smooth)
	}
}

func TestPublishedCHRF(t *testing.T) {
	const eps = 1e-4
	eps3 := CHRFConfig{CharOrder: 6, Beta: 3, EpsSmoothing: true}
	eff3 := CHRFConfig{CharOrder: 6, Beta: 3}
	space3 := CHRFConfig{CharOrder: 6, Beta: 3, Whitespace: true}
	for _, tc := range []struct {
		cfg        CHRFConfig
		hyps, refs []string
		want       float64
	}{
		{eps3, []string{"abcdefg"}, []string{"hijklmnop"}, 0},
		{eps3, []string{"a"}, []string{"b"}, 0},
		{eps3, []string{""}, []string{"b"}, 0},
		{eps3, []string{""}, []string{"ref"}, 0},
		{eps3, []string{""}, []string{"reference"}, 0},
		{eps3, []string{"aa"}, []string{"ab"}, 8.3333},
		{eps3, []string{"a", "b"}, []string{"a", "c"}, 8.3333},
		{eps3, []string{"a"}, []string{"a"}, 16.6667},
		{eps3, []string{"a b c"}, []string{"a b c"}, 50},
		{eps3, []string{"a b c"}, []string{"abc"}, 50},
		{eps3, []string{" risk assessment must be made of those who are qualified and expertise in the sector - these are the scientists ."},
			[]string{"risk assessment has to be undertaken by those who are qualified and expert in that area - that is the scientists ."}, 63.361730},
		{eps3, []string{" Die    Beziehung zwischen  Obama und Netanjahu ist nicht gerade  freundlich. "},
			[]string{"Das Verhältnis zwischen Obama und Netanyahu ist nicht gerade freundschaftlich."}, 64.1302698},
		{eps3, []string{"Niemand hat die Absicht, eine Mauer zu errichten"}, []string{"Niemand hat die Absicht, eine Mauer zu errichten"}, 100},
		// sacreBLEU < 2.0 effective-order mode (today's default)
		{eff3, []string{"a"}, []string{"a"}, 100},
		{eff3, []string{""}, []string{"reference"}, 0},
		{eff3, []string{"a b c"}, []string{"a b c"}, 100},
		{eff3, []string{"a b c"}, []string{"abc"}, 100},
		{eff3, []string{""}, []string{"c"}, 0},
		{eff3, []string{"a", "b"}, []string{"a", "c"}, 50},
		{eff3, []string{"aa"}, []string{"ab"}, 25},
		// keep whitespace
		{space3, []string{"Die Beziehung zwischen Obama und Netanjahu ist nicht gerade freundlich."},
			[]string{"Das Verhältnis zwischen Obama und Netanyahu ist nicht gerade freundschaftlich."}, 67.3481606},
		{space3, []string{"risk assessment must be made of those who are qualified and expertise in the sector - these are the scientists ."},
			[]string{"risk assessment has to be undertaken by those who are qualified and expert in that area - that is the scientists ."}, 65.2414427},
	} {
		s, err := newCHRF(t, tc.cfg).Corpus(tc.hyps, [][]string{tc.refs})
		require.NoError(t, err)
		assert.InDelta(t, tc.want, s.Score, eps, "%+v %q", tc.cfg, tc.hyps)
	}
}

func TestPublishedSentenceCHRF(t *testing.T) {
	c := newCHRF(t, CHRFConfig{EpsSmoothing: true})
	for _, tc := range []struct {
		hyp, ref string
		want     float64
	}{
		{"Co nás nejvíc trápí, protože lékaři si vybírají, kdo bude žít a kdo zemře.",
			"Nejvíce smutní jsme z toho, že musíme rozhodovat o tom, kdo bude žít a kdo zemře.", 39.14078509},
		{"Nebo prostě nemají vybavení, které by jim pomohlo, uvedli lékaři.",
			"A někdy nemáme ani potřebný materiál, abychom jim pomohli, popsali lékaři.", 31.22557079},
		{"Lapali po dechu, jejich životy skončily dřív, než skutečně začaly.",
			"Lapali po dechu a pak jejich život skončil - dřív, než skutečně mohl začít, připomněli.", 57.15704367},
	} {
		s, err := c.Sentence(tc.hyp, []string{tc.ref})
		require.NoError(t, err)
		assert.InDelta(t, tc.want, s.Score, 1e-4, tc.hyp)
	}
}
