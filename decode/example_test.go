package decode_test

import (
	"fmt"
	"log"

	"github.com/seq2gpt/seq2gpt/decode"
)

// counter is a toy model over 5 tokens: after token t it favours t+1, and
// token 0 ends a sequence. Its state is each row's last token.
type counter struct{}

type rows []int

func (counter) Start(inputs [][]int) (decode.State, [][]float32, error) {
	s := rows{}
	for _, in := range inputs {
		s = append(s, in[len(in)-1])
	}
	return &s, s.logits(), nil
}

func (s rows) logits() [][]float32 {
	out := make([][]float32, len(s))
	for i, last := range s {
		out[i] = make([]float32, 5)
		out[i][(last+1)%5] = 2 // the likely next token; 0 ends
		out[i][2] += 1.5       // and 2 is always likely
	}
	return out
}

func (s *rows) Next(tokens []int) ([][]float32, error) {
	copy(*s, tokens)
	return s.logits(), nil
}

func (s *rows) Reorder(order []int) error {
	next := make(rows, len(order))
	for i, r := range order {
		next[i] = (*s)[r]
	}
	*s = next
	return nil
}

func (s *rows) Close() error { return nil }

// Example decodes two inputs greedily and with a beam of 3, keeping the two
// best hypotheses of each (scores are fairseq's mean log-probability per
// token, the end token included).
func Example() {
	inputs := [][]int{{1}, {2, 3}}
	lim := decode.Limits{MaxLen: 6, EOS: []int{0}}
	out, err := decode.Greedy(counter{}, inputs, lim)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("greedy:", out.Tokens)

	hyps, err := decode.BeamSearch(counter{}, inputs, decode.BeamConfig{Limits: lim, Beam: 3, NBest: 2})
	if err != nil {
		log.Fatal(err)
	}
	for i, hs := range hyps {
		for _, h := range hs {
			fmt.Printf("input %d: %v score %.3f\n", i, h.Tokens, h.Score)
		}
	}
	// Output:
	// greedy: [[2 3 4 0] [4 0]]
	// input 0: [2 3 4 0] score -0.553
	// input 0: [2 0] score -1.407
	// input 1: [4 0] score -0.699
	// input 1: [2 3 4 0] score -0.824
}
