package sgemm

// shape is one product of a GPT training step: op(A) m×k times op(B) k×n,
// with the transposes it has in the step.
type shape struct {
	Name           string
	ATrans, BTrans bool
	M, K, N        int
	Count          int // how many times one step computes it
}

// gptStep lists the products of one training step of a GPT preset (rows =
// batch·context, d = n_embd, T = context, d_k = d/heads, V = vocabulary,
// HF-layout [in, out] weights, the lm head tied to W_e [V, d]).
func gptStep(layers, d, heads, ctx, vocab, batch int) []shape {
	r, dk, bh := batch*ctx, d/heads, batch*heads
	var s []shape
	// A linear x[r, in]·W[in, out] and its gradients dx = dy·Wᵀ, dW = xᵀ·dy.
	linear := func(name string, in, out int) {
		s = append(s,
			shape{name, false, false, r, in, out, layers},
			shape{name + " dx", false, true, r, out, in, layers},
			shape{name + " dW", true, false, in, r, out, layers})
	}
	linear("qkv", d, 3*d)
	linear("proj", d, d)
	linear("ffn1", d, 4*d)
	linear("ffn2", 4*d, d)
	// Per batch and head: S = Q·Kᵀ, O = P·V and their gradients.
	n := layers * bh
	s = append(s,
		shape{"scores", false, true, ctx, dk, ctx, n},
		shape{"scores dQ", false, false, ctx, ctx, dk, n},
		shape{"scores dK", true, false, ctx, ctx, dk, n},
		shape{"att·V", false, false, ctx, ctx, dk, n},
		shape{"att·V dP", false, true, ctx, dk, ctx, n},
		shape{"att·V dV", true, false, ctx, ctx, dk, n},
		// Tied lm head: logits = h·W_eᵀ, dh = dy·W_e, dW_e = dyᵀ·h.
		shape{"lm head", false, true, r, d, vocab, 1},
		shape{"lm head dx", false, false, r, vocab, d, 1},
		shape{"lm head dW", true, false, vocab, r, d, 1})
	return s
}

// gptShapes are the distinct products of the tiny, small and medium presets'
// steps (gpt.Tiny, Small, Medium with the benchmarks' batches 16, 16, 8).
func gptShapes() []shape {
	var all []shape
	seen := map[[3]int]bool{}
	for _, step := range [][]shape{gptStep(2, 64, 2, 32, 256, 16), gptStep(4, 128, 4, 64, 1000, 16), gptStep(6, 256, 8, 128, 4000, 8)} {
		for _, s := range step {
			if key := [3]int{s.M, s.K, s.N}; !seen[key] {
				seen[key] = true
				all = append(all, s)
			}
		}
	}
	return all
}

// For the benchmarks (package sgemm_test).
type Shape = shape

var GPTStep = gptStep
