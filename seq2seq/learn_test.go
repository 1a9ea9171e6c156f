package seq2seq

import (
	"flag"
	"math"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/decode"
	"github.com/seq2gpt/seq2gpt/metrics"
	"github.com/seq2gpt/seq2gpt/train"
)

var long = flag.Bool("seq2seq.long", false, "run the README's fixed-context vs attention comparison on the embedded en–de corpus (tens of minutes on 2 cores)")

// budget is one learning run's size: the tokenizer, the model and the
// training.
type budget struct {
	merges               int // joint BPE merges
	maxLen               int // longest side kept, in tokens (end token included)
	embed, hidden, layer int
	steps, maxTokens     int // optimizer steps, tokens (source + target, padding included) per batch
	lr                   float64
	dropout, smoothing   float64
	testSentences        int    // the first n of the test split (0: all)
	shortTest            bool   // only test pairs within maxLen
	validPairs           int    // the first n validation pairs (0: all)
	seed                 uint64 // weights, data order and dropout (0: 1)
}

func (b budget) seedOr1() uint64 {
	if b.seed == 0 {
		return 1
	}
	return b.seed
}

// corpus is the embedded en–de corpus tokenized with one joint BPE.
type corpus struct {
	tok                      *datasets.BPE
	pad, bos, eos            int
	train, valid, test       [][2][]int // (source, target) token ids, no specials
	testRefs                 []string
	trainDropped, trainPairs int
}

func loadCorpus(t testing.TB, b budget) *corpus {
	t.Helper()
	split := func(name string) []datasets.Pair {
		p, err := datasets.LibreOfficeEnDe(name)
		require.NoError(t, err)
		return p
	}
	tr, va, te := split("train"), split("valid"), split("test")
	texts := make([]string, 0, 2*len(tr))
	for _, p := range tr {
		texts = append(texts, p.Source, p.Target)
	}
	tok, err := datasets.TrainBPE(texts, datasets.BPEConfig{Merges: b.merges, Specials: []string{datasets.PadToken, datasets.BOSToken, datasets.EOSToken}})
	require.NoError(t, err)
	c := &corpus{tok: tok}
	c.pad, _ = tok.SpecialID(datasets.PadToken)
	c.bos, _ = tok.SpecialID(datasets.BOSToken)
	c.eos, _ = tok.SpecialID(datasets.EOSToken)
	enc := func(ps []datasets.Pair, filter bool) (out [][2][]int, dropped int) {
		for _, p := range ps {
			s, g := tok.Encode(p.Source), tok.Encode(p.Target)
			if filter && (len(s)+1 > b.maxLen || len(g)+1 > b.maxLen) {
				dropped++
				continue
			}
			out = append(out, [2][]int{s, g})
		}
		return out, dropped
	}
	c.train, c.trainDropped = enc(tr, true)
	c.trainPairs = len(tr)
	c.valid, _ = enc(va, true)
	if b.validPairs > 0 {
		c.valid = c.valid[:min(len(c.valid), b.validPairs)]
	}
	for _, p := range te {
		if b.testSentences > 0 && len(c.test) == b.testSentences {
			break
		}
		s, g := tok.Encode(p.Source), tok.Encode(p.Target)
		if b.shortTest && (len(s)+1 > b.maxLen || len(g)+1 > b.maxLen) {
			continue
		}
		c.test = append(c.test, [2][]int{s, g})
		c.testRefs = append(c.testRefs, p.Target)
	}
	return c
}

// result is what one learning run measured.
type result struct {
	arch             string
	params           int
	steps            int
	tokens           int64 // target tokens trained on
	elapsed          time.Duration
	validLoss        float64
	bleu             metrics.BLEUScore
	chrf             metrics.CHRFScore
	bleuSig, chrfSig string
}

func (c *corpus) batcher(t testing.TB, m *Model, pairs [][2][]int, b budget, shuffle bool) *datasets.Batcher {
	src, tgt := make([][]int, len(pairs)), make([][]int, len(pairs))
	for i, p := range pairs {
		src[i], tgt[i] = m.Source(p[0]), m.Target(p[1])
	}
	buckets, err := datasets.BucketsOf(8, b.maxLen)
	require.NoError(t, err)
	bt, err := datasets.NewBatcher(src, tgt, datasets.BatchConfig{MaxTokens: b.maxTokens, Buckets: buckets, Pad: c.pad, Seed: b.seedOr1(), Shuffle: shuffle})
	require.NoError(t, err)
	return bt
}

// learn trains arch on the corpus within the budget and scores greedy
// translations of the test sentences.
func learn(t testing.TB, c *corpus, arch string, b budget) result {
	cfg := Config{Arch: arch, SrcVocab: c.tok.VocabSize(), TgtVocab: c.tok.VocabSize(), Embed: b.embed, Hidden: b.hidden,
		Layers: b.layer, Dropout: b.dropout, PadID: c.pad, BOSID: c.bos, EOSID: c.eos, SrcEOSID: c.eos}
	if arch == Fixed {
		cfg.ReverseSource = true
	}
	m, err := New(cfg, b.seedOr1())
	require.NoError(t, err)
	m.LabelSmoothing = b.smoothing
	opt, err := train.NewAdam(train.AdamConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8})
	require.NoError(t, err)
	tr, err := train.New(m, train.Config{Optimizer: opt, Schedule: train.Constant(b.lr), ClipNorm: 1, DropoutSeed: b.seedOr1(), MaxPrograms: 64})
	require.NoError(t, err)
	defer tr.Close()
	data, err := m.NewData(c.batcher(t, m, c.train, b, true), 1)
	require.NoError(t, err)
	valid := c.batcher(t, m, c.valid, b, false)
	var tokens int64
	start := time.Now()
	sum, err := train.Run(t.Context(), tr, data, nil, train.LoopConfig{Steps: b.steps}, train.Hooks{
		OnStep: func(s train.StepInfo) {
			tokens += s.Tokens
			if s.Step%100 == 0 {
				t.Logf("%s step %d loss %.3f  %.0f tok/s", arch, s.Step, s.Loss, s.TokensPerSec)
			}
		},
	})
	require.NoError(t, err)
	elapsed := time.Since(start)
	vl, err := m.EvalLoss(tr, valid)
	require.NoError(t, err)
	hyps := c.translate(t, m)
	bleu, err := metrics.NewBLEU(metrics.BLEUConfig{})
	require.NoError(t, err)
	bs, err := bleu.Corpus(hyps, [][]string{c.testRefs})
	require.NoError(t, err)
	chrf, err := metrics.NewCHRF(metrics.CHRFConfig{})
	require.NoError(t, err)
	cs, err := chrf.Corpus(hyps, [][]string{c.testRefs})
	require.NoError(t, err)
	for i := range 3 {
		t.Logf("%s: %q → %q (ref %q)", arch, mustDecode(t, c.tok, c.test[i][0]), hyps[i], c.testRefs[i])
	}
	return result{arch: arch, params: m.NumParams(), steps: sum.Steps, tokens: tokens, elapsed: elapsed, validLoss: vl,
		bleu: bs, chrf: cs, bleuSig: bleu.Signature(1).String(), chrfSig: chrf.Signature(1).String()}
}

func mustDecode(t testing.TB, tok *datasets.BPE, ids []int) string {
	s, err := tok.Decode(ids)
	require.NoError(t, err)
	return s
}

// translate decodes every test source greedily, in batches of 64 of
// similar length, and returns the detokenized hypotheses in order.
func (c *corpus) translate(t testing.TB, m *Model) []string {
	dec, err := m.NewDecoder(DecoderConfig{})
	require.NoError(t, err)
	defer dec.Close()
	order := make([]int, len(c.test))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return len(c.test[order[a]][0]) < len(c.test[order[b]][0]) })
	hyps := make([]string, len(c.test))
	for start := 0; start < len(order); start += 64 {
		idx := order[start:min(start+64, len(order))]
		srcs := make([][]int, len(idx))
		for i, k := range idx {
			srcs[i] = c.test[k][0]
		}
		res, err := decode.Greedy(dec, srcs, decode.Limits{MaxLen: 10, MaxLenA: 1.5, EOS: []int{c.eos}})
		require.NoError(t, err)
		for i, k := range idx {
			toks := res.Tokens[i]
			if n := len(toks); n > 0 && toks[n-1] == c.eos {
				toks = toks[:n-1]
			}
			hyps[k] = mustDecode(t, c.tok, toks)
		}
	}
	return hyps
}

func logResult(t testing.TB, r result) {
	t.Logf("%-9s %5.2fM params  %d steps  %d target tokens  %s  valid loss %.3f (ppl %.1f)\n  %s\n  %s",
		r.arch, float64(r.params)/1e6, r.steps, r.tokens, r.elapsed.Round(time.Second), r.validLoss, math.Exp(r.validLoss),
		r.bleu.Format(1, r.bleuSig), r.chrf.Format(1, r.chrfSig))
}

// unigramLoss is the cross-entropy (nats per token, end tokens included)
// on the validation targets of a unigram model of the training targets
// with add-one smoothing: what a model that ignores the source and the
// target prefix reaches.
func (c *corpus) unigramLoss() float64 {
	V := c.tok.VocabSize()
	counts := make([]float64, V)
	n := 0.0
	for _, p := range c.train {
		for _, id := range append(p[1], c.eos) {
			counts[id]++
			n++
		}
	}
	var nll, m float64
	for _, p := range c.valid {
		for _, id := range append(p[1], c.eos) {
			nll -= math.Log((counts[id] + 1) / (n + float64(V)))
			m++
		}
	}
	return nll / m
}

// TestAttentionLearnsFaster trains both architectures at one small size
// (E 32, H 64, one layer) for the same 200 steps on the short pairs of the
// embedded en–de corpus (at most 15 BPE tokens a side) and compares them on
// held-out data. What it asserts is the robust part at this budget: both
// learn (validation loss well below the unigram model's) and attention's
// validation loss is lower than fixed context's (by 0.12, 0.18 and 0.21
// nats at seeds 1, 2 and 3 when this was written; the test asserts 0.05).
// BLEU at this budget is a point or two and is logged, not asserted; the BLEU ordering is
// asserted by TestAttentionBeatsFixedBLEU (-seq2seq.long) and shown in
// README.
func TestAttentionLearnsFaster(t *testing.T) {
	b := budget{merges: 500, maxLen: 16, embed: 32, hidden: 64, layer: 1, steps: 200, maxTokens: 800, lr: 3e-3,
		testSentences: 100, shortTest: true, validPairs: 300}
	c := loadCorpus(t, b)
	uni := c.unigramLoss()
	t.Logf("vocabulary %d; %d training pairs of at most %d tokens a side (%d longer left out), %d validation, %d test; unigram loss %.3f",
		c.tok.VocabSize(), len(c.train), b.maxLen-1, c.trainDropped, len(c.valid), len(c.test), uni)
	res := map[string]result{}
	for _, arch := range []string{Fixed, Attention} {
		r := learn(t, c, arch, b)
		logResult(t, r)
		require.Less(t, r.validLoss, uni-0.3, "%s learns: validation loss below the unigram model's", arch)
		res[arch] = r
	}
	require.Less(t, res[Attention].validLoss, res[Fixed].validLoss-0.05, "attention's validation loss is lower")
}

// TestAttentionBeatsFixedBLEU is README's comparison, which takes an hour
// or more on 2 shared cores: with -seq2seq.long it trains both models as
// README's seq2gpt translate train command lines do (the same tokenizer,
// data order, seeds and budget: 2,000 steps) and scores greedy
// translations of the whole embedded test split.
func TestAttentionBeatsFixedBLEU(t *testing.T) {
	if !*long {
		t.Skip("an hour or more on 2 cores: run with -seq2seq.long")
	}
	b := budget{merges: 2000, maxLen: 40, embed: 64, hidden: 128, layer: 1, steps: 2000, maxTokens: 1600, lr: 2e-3,
		dropout: 0.1, smoothing: 0.1}
	c := loadCorpus(t, b)
	res := map[string]result{}
	for _, arch := range []string{Attention, Fixed} {
		res[arch] = learn(t, c, arch, b)
		logResult(t, res[arch])
	}
	require.Greater(t, res[Attention].bleu.Score, res[Fixed].bleu.Score+1, "attention beats fixed context in BLEU")
}
