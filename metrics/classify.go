package metrics

import (
	"math"
	"slices"

	"github.com/pkg/errors"
)

// The classification metrics take the gold labels first and the
// predictions second, in scikit-learn's order (y_true, y_pred), and give
// the values scikit-learn gives (testdata/sklearn.json) wherever those are
// defined. Where scikit-learn returns 0.0 for an undefined value (MCC with
// a constant side, F1 of a label that occurs nowhere) these return an
// *UndefinedError instead, so that a constant model is never mistaken for
// one that scored 0.

// checkPairs checks that there is something to score and that both sides
// have one entry per example.
func checkPairs(metric string, nGold, nPred int) error {
	if nGold != nPred {
		return errors.Errorf("%s: %d gold labels but %d predictions", metric, nGold, nPred)
	}
	if nGold == 0 {
		return errors.Wrapf(ErrEmpty, "%s: no examples", metric)
	}
	return nil
}

// Accuracy is the fraction of predictions equal to their gold label.
func Accuracy(gold, pred []int) (float64, error) {
	if err := checkPairs("accuracy", len(gold), len(pred)); err != nil {
		return 0, err
	}
	right := 0
	for i := range gold {
		if gold[i] == pred[i] {
			right++
		}
	}
	return float64(right) / float64(len(gold)), nil
}

// confusion counts, for one label taken as positive, the true positives,
// false positives and false negatives.
func confusion(gold, pred []int, positive int) (tp, fp, fn int) {
	for i := range gold {
		g, p := gold[i] == positive, pred[i] == positive
		switch {
		case g && p:
			tp++
		case p:
			fp++
		case g:
			fn++
		}
	}
	return tp, fp, fn
}

// f1 is F1 = 2·P·R / (P + R) computed as scikit-learn computes it, with a
// precision or recall of 0/0 taken as 0 (then F1 = 2·TP/(2·TP + FP + FN)
// = 0, which is well defined).
func f1(tp, fp, fn int) float64 {
	var p, r float64
	if tp+fp > 0 {
		p = float64(tp) / float64(tp+fp)
	}
	if tp+fn > 0 {
		r = float64(tp) / float64(tp+fn)
	}
	if p+r == 0 {
		return 0
	}
	return 2 * p * r / (p + r)
}

// F1 is the F1 score of one label against the rest (scikit-learn's
// f1_score with average="binary" and pos_label=positive on binary labels):
// the harmonic mean of precision and recall of that label. It is
// undefined, an *UndefinedError, when the label occurs in neither gold
// nor predictions (scikit-learn returns 0.0 there with a warning).
func F1(gold, pred []int, positive int) (float64, error) {
	if err := checkPairs("f1", len(gold), len(pred)); err != nil {
		return 0, err
	}
	tp, fp, fn := confusion(gold, pred, positive)
	if tp+fp+fn == 0 {
		return 0, undefined("f1", "the positive label %d occurs in neither the gold labels nor the predictions", positive)
	}
	return f1(tp, fp, fn), nil
}

// MacroF1 is the unweighted mean of every label's F1, over the labels that
// occur in gold or predictions (scikit-learn's average="macro").
func MacroF1(gold, pred []int) (float64, error) {
	if err := checkPairs("macro f1", len(gold), len(pred)); err != nil {
		return 0, err
	}
	labels := slices.Concat(gold, pred)
	slices.Sort(labels)
	labels = slices.Compact(labels)
	sum := 0.0
	for _, l := range labels {
		tp, fp, fn := confusion(gold, pred, l)
		sum += f1(tp, fp, fn)
	}
	return sum / float64(len(labels)), nil
}

// MCC is the Matthews correlation coefficient in its multi-class form
// (Gorodkin 2004; scikit-learn's matthews_corrcoef). With C the confusion
// matrix, t_k and p_k the gold and predicted counts of label k, c the
// correct predictions and s the examples,
//
//	MCC = (c·s − Σ_k t_k·p_k) / √((s² − Σ_k p_k²)(s² − Σ_k t_k²))
//
// which for two labels is (TP·TN − FP·FN) / √((TP+FP)(TP+FN)(TN+FP)(TN+FN)).
// It is undefined, an *UndefinedError, when the predictions or the gold
// labels are all one label: scikit-learn 1.2 returns 0.0 there (without a
// warning), and GLUE's CoLA scripts report that 0.0.
func MCC(gold, pred []int) (float64, error) {
	if err := checkPairs("mcc", len(gold), len(pred)); err != nil {
		return 0, err
	}
	t, p := map[int]float64{}, map[int]float64{}
	correct := 0.0
	for i := range gold {
		t[gold[i]]++
		p[pred[i]]++
		if gold[i] == pred[i] {
			correct++
		}
	}
	s := float64(len(gold))
	// Sum over the labels in sorted order, as numpy's dot over the
	// confusion matrix does.
	labels := slices.Concat(gold, pred)
	slices.Sort(labels)
	labels = slices.Compact(labels)
	var tp, pp, tt float64
	for _, l := range labels {
		tp += t[l] * p[l]
		pp += p[l] * p[l]
		tt += t[l] * t[l]
	}
	covTP := correct*s - tp
	covPP := s*s - pp
	covTT := s*s - tt
	if covPP*covTT == 0 {
		switch {
		case covPP == 0 && covTT == 0:
			return 0, undefined("mcc", "every prediction is %d and every gold label is %d", pred[0], gold[0])
		case covPP == 0:
			return 0, undefined("mcc", "every prediction is %d", pred[0])
		default:
			return 0, undefined("mcc", "every gold label is %d", gold[0])
		}
	}
	return covTP / math.Sqrt(covTT*covPP), nil
}
