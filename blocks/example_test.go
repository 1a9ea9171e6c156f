package blocks_test

import (
	"errors"
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

// Writing a block: the body is its equation, y = LayerNorm(x + FFN(x)),
// with each node under Must. Block turns the first failure into the error
// the function returns; a wrong shape is a *ShapeError naming both shapes.
func ExampleMust() {
	store, _ := blocks.NewStore(tensor.Float32, 1)
	ffn, _ := blocks.NewFeedForward(store, "layer.ffn", blocks.FeedForwardConfig{DModel: 8, DFF: 32})
	ln, _ := blocks.NewLayerNorm(store, "layer.ln", 8, 0)

	residual := func(g *blocks.Graph, x *G.Node) (y *G.Node, err error) {
		err = g.Block("layer", func() error {
			y = blocks.Must(ln.Forward(g, blocks.Must(G.Add(x, blocks.Must(ffn.Forward(g, x))))))
			return nil
		})
		return y, err
	}

	g := blocks.NewGraph(store, blocks.Eval, 0)
	x, _ := g.Input("x", tensor.Shape{2, 3, 8})
	y, err := residual(g, x)
	fmt.Println(y.Shape(), err)

	wrong, _ := g.Input("wrong", tensor.Shape{2, 3, 6})
	_, err = residual(g, wrong)
	fmt.Println(err)
	var se *blocks.ShapeError
	if errors.As(err, &se) {
		fmt.Println(se.Got, se.Want)
	}
	// Output:
	// (2, 3, 8) <nil>
	// layer.ffn.linear1: Linear input has shape (2, 3, 6), want (..., 8)
	// (2, 3, 6) (..., 8)
}
