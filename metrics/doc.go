// Package metrics scores model output: BLEU and chrF exactly as sacreBLEU
// computes them, and the classification and regression metrics of GLUE
// exactly as scikit-learn and scipy compute them. It knows no model and
// imports nothing of this module.
//
// # BLEU and chrF: sacreBLEU 2.6.0
//
//	b, _ := metrics.NewBLEU(metrics.BLEUConfig{}) // sacreBLEU's defaults
//	s, _ := b.Corpus(hyps, [][]string{refs})        // refs[k]: the k-th reference stream
//	fmt.Println(s.Format(1, s.Signature.String()))
//	// BLEU|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0 = 40.0 63.9/45.4/33.7/26.3 (BP = 1.000 ratio = 1.310 hyp_len = 4955 ref_len = 3782)
//
// The correspondence with sacreBLEU (sacrebleu/metrics/bleu.py, chrf.py,
// tokenizers/):
//
//	sacreBLEU                                    here
//	BLEU(tokenize, lowercase, smooth_method,     NewBLEU(BLEUConfig{Tokenize, Lowercase, Smooth,
//	     smooth_value, max_ngram_order,                  SmoothValue, MaxOrder, EffectiveOrder})
//	     effective_order)
//	BLEU.corpus_score(hyps, refs)                (*BLEU).Corpus(hyps, refs)
//	BLEU.sentence_score(hyp, refs)               (*BLEU).Sentence(hyp, refs)
//	BLEU.compute_bleu(correct, total, ...)       (*BLEU).ScoreStats(BLEUStats{...}, nrefs)
//	BLEU.get_signature()                         BLEUScore.Signature, (*BLEU).Signature(nrefs)
//	str(score), score.format(width, sig)         BLEUScore.String(), .Format(width, sig), .JSON(width)
//	CHRF(char_order, word_order, beta,           NewCHRF(CHRFConfig{CharOrder, WordOrder, Beta,
//	     lowercase, whitespace, eps_smoothing)           Lowercase, Whitespace, EpsSmoothing})
//	tokenizers none, zh, 13a, intl, char         Tokenize(name, line), Tokenizers()
//
// What is reproduced, and tested against sacreBLEU's own test cases and
// against fixtures sacreBLEU 2.6.0 wrote (testdata/gen_sacrebleu.py):
// the 13a (mteval-v13a), intl (mteval-v14 international), zh, char and none
// tokenizers rule for rule, including sacreBLEU's quirks (zh's CJK ranges
// as Python reads them; intl's unpadded line); Python's whitespace and
// full lowercase mapping (İ → i̇, final ς); clipped n-gram counts against
// the per-n-gram maximum over references; the brevity penalty from the
// reference length closest to each hypothesis (the shorter on a tie),
// summed over the corpus; the smoothing methods none, floor (0.1), add-k
// (1) and exp (NIST's 1/2^k), with the early 0 when nothing matches and
// log(0) floored at −9999999999; effective order; chrF's per-sentence
// best reference, corpus sums, effective-order and ε averaging, chrF++'s
// punctuation splitting; the score line, JSON and signature strings
// byte for byte. Invalid UTF-8 is read as U+FFFD.
//
// Not reproduced: the ja-mecab, ko-mecab, spm, flores101, flores200 and
// spBLEU-1K tokenizers (they need MeCab or SentencePiece models); TER;
// bootstrap confidence intervals and paired significance tests; a variable
// number of references per segment (sacreBLEU's None entries, "nrefs:var");
// with add-k smoothing BLEUScore.Counts are the counts, where sacreBLEU
// reports them with k added; a chrF char order or beta of 0 cannot be
// asked for (0 means the default).
//
// The version field of a signature (SacreBLEUVersion, "version:2.6.0")
// names the sacreBLEU release whose behaviour a score matches: a score
// printed with it is the score sacreBLEU 2.6.0 prints for the same input
// and options.
package metrics
