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
//
// # Classification, regression and GLUE: scikit-learn and scipy
//
//	s, err := metrics.GLUE("mrpc", gold, pred) // []int label indices
//	fmt.Println(s)                              // f1 0.8123, accuracy 0.7500
//	s, err = metrics.STSB(goldScores, predScores)
//
// Accuracy, F1 (one label against the rest; sklearn's binary F1 with
// pos_label), MacroF1, MCC (the multi-class form; sklearn's
// matthews_corrcoef), Pearson (scipy.stats.pearsonr) and Spearman
// (scipy.stats.spearmanr, average ranks for ties) take the gold values
// first, as sklearn does, and equal sklearn 1.2.1's and scipy 1.10.1's
// values to 1e-12 (testdata/gen_sklearn.py). GLUE gives each task's
// official metrics, main one first: CoLA mcc; MRPC and QQP f1 (label 1
// positive) and accuracy; STS-B pearson and spearman; SST-2, MNLI matched
// and mismatched, QNLI, RTE and WNLI accuracy; AX mcc.
//
// Undefined values are never NaN. Empty input is ErrEmpty (wrapped; use
// errors.Is). A value that does not exist is an *UndefinedError that says
// why: MCC when the predictions or the gold labels are one label, Pearson
// and Spearman when a side is constant or there is one pair, F1 when the
// positive label occurs nowhere. The libraries differ: sklearn 1.2.1
// returns 0.0 for such an MCC without a warning and 0.0 with an
// UndefinedMetricWarning for such an F1; scipy returns NaN with a
// ConstantInputWarning (or raises for fewer than two pairs). We return
// the error because a constant model (common early in fine-tuning) should
// not look like one that scored 0; GLUE and STSB turn it into a Score
// whose Undefined field says why (Value 0), so an evaluation still
// reports its other metrics. F1 with no predicted positives, but gold
// ones, is 0 (2·TP / (2·TP + FP + FN) is defined), as in sklearn.
package metrics
