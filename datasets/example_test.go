package datasets_test

import (
	"fmt"

	"github.com/seq2gpt/seq2gpt/datasets"
)

func ExampleGPT2() {
	tok, err := datasets.GPT2()
	if err != nil {
		panic(err)
	}
	ids := tok.Encode("Hello world, it's 2024!")
	text, _ := tok.Decode(ids)
	eos, _ := tok.SpecialID(datasets.EOSToken)
	fmt.Println(ids, text, eos)
	// Output: [15496 995 11 340 338 48609 0] Hello world, it's 2024! 50256
}

func ExampleTrainBPE() {
	tok, err := datasets.TrainBPE([]string{"low lower lowest low low"}, datasets.BPEConfig{
		Merges:   4,
		Specials: []string{datasets.PadToken, datasets.EOSToken},
	})
	if err != nil {
		panic(err)
	}
	pad, _ := tok.SpecialID(datasets.PadToken)
	fmt.Println(tok.NumMerges(), tok.VocabSize(), pad, len(tok.Encode(" lowest")))
	// Output: 4 262 260 3
}

func ExampleNewBatcher() {
	src := [][]int{{1, 2, 3}, {4}, {5, 6}, {7, 8, 9, 10}}
	tgt := [][]int{{1}, {2, 3}, {4}, {5, 6}}
	b, err := datasets.NewBatcher(src, tgt, datasets.BatchConfig{MaxTokens: 8, Pad: 0})
	if err != nil {
		panic(err)
	}
	for _, idx := range b.Plan(0) {
		batch := b.Make(idx)
		fmt.Println(batch.Index, batch.Source.IDs, batch.Source.Mask, batch.Target.IDs)
	}
	// Output:
	// [1 2] [4 0 5 6] [1 0 1 1] [2 3 4 0]
	// [0] [1 2 3] [1 1 1] [1]
	// [3] [7 8 9 10] [1 1 1 1] [5 6]
}

func ExampleNewLMWindows() {
	w, err := datasets.NewLMWindows([]int{10, 11, 12, 13, 14, 15, 16}, 3, 0)
	if err != nil {
		panic(err)
	}
	for i := 0; i < w.Len(); i++ {
		in, tg := w.At(i)
		fmt.Println(in, tg)
	}
	// Output:
	// [10 11 12] [11 12 13]
	// [13 14 15] [14 15 16]
}

func ExampleCorpora() {
	for _, c := range datasets.Corpora() {
		fmt.Printf("%s (%d splits)\n", c.Name, len(c.Splits))
	}
	// Output:
	// gpt2-vocab (2 splits)
	// libreoffice-en-de (3 splits)
	// sentiment-uci (1 splits)
	// sotu (1 splits)
	// paraphrase-kjv-web-constructed (3 splits)
	// wordnet-cloze-constructed (3 splits)
}
