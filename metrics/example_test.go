package metrics_test

import (
	"errors"
	"fmt"

	"github.com/seq2gpt/seq2gpt/metrics"
)

// Corpus BLEU and chrF with sacreBLEU's defaults, printed as the sacrebleu
// command prints them (the example of sacreBLEU's README: three
// hypotheses, two references each).
func ExampleBLEU() {
	hyps := []string{"The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."}
	refs := [][]string{
		{"The dog bit the man.", "It was not unexpected.", "The man bit him first."},
		{"The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."},
	}
	bleu, _ := metrics.NewBLEU(metrics.BLEUConfig{})
	b, _ := bleu.Corpus(hyps, refs)
	fmt.Println(b.Format(1, b.Signature.String()))
	fmt.Println(b)
	chrf, _ := metrics.NewCHRF(metrics.CHRFConfig{})
	c, _ := chrf.Corpus(hyps, refs)
	fmt.Println(c.Format(1, c.Signature.Short()))
	// Output:
	// BLEU|nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0 = 48.5 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)
	// BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)
	// chrF2|#:2|c:mixed|e:yes|nc:6|nw:0|s:no|v:2.6.0 = 59.7
}

// GLUE's official metrics for a task; a constant model's MCC is
// undefined and says so.
func ExampleGLUE() {
	gold := []int{1, 0, 1, 1, 0, 1, 0, 0}
	pred := []int{1, 0, 0, 1, 1, 1, 0, 0}
	s, _ := metrics.GLUE("mrpc", gold, pred)
	fmt.Println(s)
	s, _ = metrics.GLUE("cola", gold, []int{1, 1, 1, 1, 1, 1, 1, 1})
	fmt.Println(s)
	_, err := metrics.MCC(gold, []int{1, 1, 1, 1, 1, 1, 1, 1})
	var u *metrics.UndefinedError
	fmt.Println(errors.As(err, &u), err)
	// Output:
	// f1 0.7500, accuracy 0.7500
	// mcc undefined (every prediction is 1)
	// true mcc is undefined: every prediction is 1
}
