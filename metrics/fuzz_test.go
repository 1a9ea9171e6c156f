package metrics

import (
	"math"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzBLEU: on any text BLEU and chrF never panic and stay in [0, 100], a
// hypothesis identical to its reference scores 100 with every tokenizer
// and smoothing (when it has a token, or a character for chrF), and the
// none and char tokenizers keep every non-space character.
func FuzzBLEU(f *testing.F) {
	for _, s := range []string{"", " ", "a", "The dog bit the man.", "&amp; <skipped> 1,000.5 10-20", "ΑΣ İ 中文。", "\x1c\x85\u3000", "\xff\xfe"} {
		f.Add(s, "The dog bit the man.")
	}
	bleus := map[string]*BLEU{}
	for _, tok := range Tokenizers() {
		for _, sm := range SmoothMethods() {
			b, err := NewBLEU(BLEUConfig{Tokenize: tok, Smooth: sm, EffectiveOrder: sm == "exp"})
			if err != nil {
				f.Fatal(err)
			}
			bleus[tok+"/"+sm] = b
		}
	}
	chrf, _ := NewCHRF(CHRFConfig{})
	chrfpp, _ := NewCHRF(CHRFConfig{WordOrder: 2, Lowercase: true})
	f.Fuzz(func(t *testing.T, hyp, ref string) {
		if !utf8.ValidString(hyp) || !utf8.ValidString(ref) {
			// Invalid bytes read as U+FFFD: must not panic either.
			for _, b := range bleus {
				_, _ = b.Sentence(hyp, []string{ref})
			}
			_, _ = chrf.Sentence(hyp, []string{ref})
			return
		}
		inRange := func(name string, v float64) {
			if math.IsNaN(v) || v < 0 || v > 100+1e-9 {
				t.Fatalf("%s = %v for %q vs %q", name, v, hyp, ref)
			}
		}
		for name, b := range bleus {
			s, err := b.Corpus([]string{hyp, ref}, [][]string{{ref, hyp}, {hyp, ""}})
			if err != nil {
				t.Fatal(err)
			}
			inRange(name, s.Score)
			self, err := b.Sentence(hyp, []string{hyp})
			if err != nil {
				t.Fatal(err)
			}
			inRange(name, self.Score)
			// Without effective order a hypothesis shorter than the
			// largest order has no n-grams of it and scores 0, as in
			// sacreBLEU.
			n := len(fields(b.preprocess(hyp)))
			if n > 0 && (b.cfg.EffectiveOrder || n >= b.cfg.MaxOrder) && math.Abs(self.Score-100) > 1e-9 {
				t.Fatalf("%s of %q against itself = %v, want 100", name, hyp, self.Score)
			}
			_ = s.Format(1, s.Signature.String())
			_ = s.JSON(2)
		}
		for _, c := range []*CHRF{chrf, chrfpp} {
			s, err := c.Corpus([]string{hyp, ref}, [][]string{{ref, hyp}})
			if err != nil {
				t.Fatal(err)
			}
			inRange(c.Name(), s.Score)
			self, err := c.Sentence(hyp, []string{hyp})
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(fields(hyp), "") != "" && math.Abs(self.Score-100) > 1e-9 {
				t.Fatalf("%s of %q against itself = %v, want 100", c.Name(), hyp, self.Score)
			}
		}
		for _, tok := range []string{"none", "char"} {
			once, _ := Tokenize(tok, hyp)
			twice, _ := Tokenize(tok, once)
			if tok == "none" && twice != once {
				t.Fatalf("none changed %q", hyp)
			}
			if tok == "char" && strings.Join(fields(once), "") != strings.Join(fields(hyp), "") {
				t.Fatalf("char lost characters of %q: %q", hyp, once)
			}
		}
	})
}

// FuzzCorrelation: Pearson and Spearman never panic, never return NaN, stay
// in [−1, 1], and a side correlates perfectly with itself.
func FuzzCorrelation(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4}, []byte{4, 3, 2, 1})
	f.Add([]byte{5, 5, 5}, []byte{1, 2, 3})
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		n := min(len(a), len(b))
		x, y := make([]float64, n), make([]float64, n)
		for i := range n {
			x[i], y[i] = float64(a[i])/7, float64(int8(b[i]))*1e3
		}
		for name, fn := range map[string]func([]float64, []float64) (float64, error){"pearson": Pearson, "spearman": Spearman} {
			r, err := fn(x, y)
			if err == nil && (math.IsNaN(r) || r < -1 || r > 1) {
				t.Fatalf("%s = %v on %v, %v", name, r, x, y)
			}
			self, err := fn(x, x)
			if err == nil && math.Abs(self-1) > 1e-12 {
				t.Fatalf("%s of %v with itself = %v", name, x, self)
			}
		}
		gold, pred := make([]int, n), make([]int, n)
		for i := range n {
			gold[i], pred[i] = int(a[i]%3), int(b[i]%3)
		}
		if m, err := MCC(gold, pred); err == nil && (math.IsNaN(m) || m < -1-1e-12 || m > 1+1e-12) {
			t.Fatalf("mcc = %v on %v, %v", m, gold, pred)
		}
	})
}
