package transformer_test

import (
	"context"
	"fmt"

	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/decode"
	"github.com/seq2gpt/seq2gpt/train"
	"github.com/seq2gpt/seq2gpt/transformer"
)

// A Transformer trained through the engine, then decoded with beam
// search. Sources and targets are token ids (a tokenizer's); the model
// adds EOS to both (Model.Source, Model.Target) and BOS before the target.
func Example() {
	cfg := transformer.Tiny() // 2 + 2 layers, d_model 64
	cfg.SrcVocabSize, cfg.TgtVocabSize = 50, 50
	m, _ := transformer.New(cfg, 1)
	fmt.Println(m.NumParams(), "parameters")

	src := [][]int{m.Source([]int{5, 6, 7}), m.Source([]int{8, 9})}
	tgt := [][]int{m.Target([]int{10, 11}), m.Target([]int{12, 13, 14})}
	batcher, _ := datasets.NewBatcher(src, tgt, datasets.BatchConfig{MaxTokens: 64, Pad: cfg.Pad})
	data, _ := m.NewData(batcher, 1)
	opt, _ := train.NewAdam(train.AdamConfig{Beta1: 0.9, Beta2: 0.98, Eps: 1e-9})
	noam, _ := train.NewNoam(cfg.DModel, 4000, 1) // the paper's schedule
	tr, _ := train.New(transformer.Translator{Model: m}, train.Config{Optimizer: opt, Schedule: noam})
	defer tr.Close()
	sum, _ := train.Run(context.Background(), tr, data, nil, train.LoopConfig{Steps: 3}, train.Hooks{})
	fmt.Println(sum.Steps, "steps")

	dec, _ := m.NewDecoder(transformer.DecoderConfig{})
	defer dec.Close()
	hyps, _ := decode.BeamSearch(dec, [][]int{{5, 6, 7}}, decode.BeamConfig{Beam: 4,
		Limits: decode.Limits{MaxLen: 4, EOS: []int{cfg.EOS}}})
	best := hyps[0][0]
	fmt.Println(len(best.Tokens) <= 5, len(best.Attention[0]), "source positions attended")
	// Output:
	// 236978 parameters
	// 3 steps
	// true 4 source positions attended
}
