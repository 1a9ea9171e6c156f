package tasks_test

import (
	"fmt"

	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/gpt"
	"github.com/seq2gpt/seq2gpt/tasks"
)

// A pre-trained GPT becomes a similarity model: the special tokens are
// appended to its vocabulary, each pair is read in both orders, and the
// head is HuggingFace's "score" layer. (The model here is untrained: the
// point is the layout and the shapes.)
func Example() {
	tok, _ := datasets.TrainBPE([]string{"the cat sat on the mat. a cat was on a mat."}, datasets.BPEConfig{Merges: 20})
	cfg := gpt.Tiny()
	cfg.VocabSize = tok.VocabSize()
	lm, _ := gpt.New(cfg, 1)

	body, _ := tasks.NewGPT(lm, tok, 1) // [s] $ [e] and pad appended, W_e grown
	task, _ := tasks.Lookup("mrpc")
	model, _ := tasks.New(body, task, tasks.DefaultConfig())

	in, trunc, _ := tasks.Encode(task, body.Template(), tok, []tasks.Example{
		{Text: "the cat sat", TextB: "a cat was on a mat", Label: 1},
	})
	for _, s := range in[0].Seqs {
		text, _ := tok.Decode(s.IDs)
		fmt.Printf("%q, feature at %d\n", text, s.Pool)
	}
	fmt.Println(trunc)
	fmt.Println(model.HeadLayout().Prefix, task.Metrics())
	// Output:
	// "<|start|>the cat sat<|delim|>a cat was on a mat<|extract|>", feature at 16
	// "<|start|>a cat was on a mat<|delim|>the cat sat<|extract|>", feature at 16
	// no example truncated (longest 17 of 32 tokens)
	// score [f1 accuracy]
}
