package seq2seq_test

import (
	"fmt"

	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/decode"
	"github.com/seq2gpt/seq2gpt/seq2seq"
	"github.com/seq2gpt/seq2gpt/train"
)

// An attention model trained a few steps through the engine on two
// sentence pairs, then decoded greedily: every token comes with its α over
// the source and its end token.
func Example() {
	m, err := seq2seq.New(seq2seq.Config{Arch: seq2seq.Attention, SrcVocab: 10, TgtVocab: 10, Embed: 8, Hidden: 16,
		Layers: 1, PadID: 0, BOSID: 1, EOSID: 2, SrcEOSID: 2}, 1)
	if err != nil {
		panic(err)
	}
	src := [][]int{m.Source([]int{3, 4, 5}), m.Source([]int{6, 7})}
	tgt := [][]int{m.Target([]int{5, 4, 3}), m.Target([]int{7, 6})}
	batches, err := datasets.NewBatcher(src, tgt, datasets.BatchConfig{MaxTokens: 64})
	if err != nil {
		panic(err)
	}
	data, err := m.NewData(batches, 1)
	if err != nil {
		panic(err)
	}
	opt, _ := train.NewAdam(train.AdamConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8})
	tr, err := train.New(m, train.Config{Optimizer: opt, Schedule: train.Constant(1e-2), ClipNorm: 1})
	if err != nil {
		panic(err)
	}
	defer tr.Close()
	for range 5 {
		b, _ := data.Next()
		if _, err := tr.Step(b...); err != nil {
			panic(err)
		}
	}

	dec, err := m.NewDecoder(seq2seq.DecoderConfig{})
	if err != nil {
		panic(err)
	}
	defer dec.Close()
	res, err := decode.Greedy(dec, [][]int{{3, 4, 5}}, decode.Limits{MaxLen: 4, MinLen: 4, EOS: []int{m.Config.EOSID}})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%d parameters; %d tokens, each with α over %d source positions\n",
		m.NumParams(), len(res.Tokens[0]), len(res.Attention[0][0]))
	// Output: 8746 parameters; 4 tokens, each with α over 4 source positions
}
