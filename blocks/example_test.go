package blocks_test

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
)

// A causal self-attention over a padded batch: the store holds the weights,
// the graph holds one shape, the mask hides the future and the padding.
func Example() {
	store, _ := blocks.NewStore(tensor.Float32, 1)
	attn, _ := blocks.NewMultiHeadAttention(store, "attn", blocks.MultiHeadConfig{DModel: 8, Heads: 2})

	g := blocks.NewGraph(store, blocks.Eval, 0)
	x, _ := g.Input("x", tensor.Shape{2, 3, 8})
	mask, _ := g.Input("mask", tensor.Shape{2, 3, 3})
	_, weights, err := attn.Forward(g, x, x, mask)
	if err != nil {
		panic(err)
	}

	m, _ := blocks.AttentionMask(tensor.Float32, 2, 3, 3, []int{3, 2}, true)
	_ = G.Let(mask, m)
	_ = G.Let(x, tensor.New(tensor.WithShape(2, 3, 8), tensor.WithBacking(make([]float32, 48))))
	var w G.Value
	G.Read(weights, &w)
	vm := G.NewTapeMachine(g.G)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		panic(err)
	}
	fmt.Println(store.Names())
	fmt.Println(w.Shape())
	// Row 2 of the second sequence: key 2 is padding, keys 0 and 1 share α.
	fmt.Printf("%.2f\n", w.Data().([]float32)[1*2*9+2*3:1*2*9+3*3])
	// Output:
	// [attn.in_proj_weight attn.in_proj_bias attn.out_proj.weight attn.out_proj.bias]
	// (2, 2, 3, 3)
	// [0.50 0.50 0.00]
}
