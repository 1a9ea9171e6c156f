package gpt

import (
	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/train"
)

// LM is the model as the training engine sees it: a train.Model whose
// programs take windows of token ids ("ids", tensor.Int [B·T]) and their
// next tokens ("targets", [B·T]) and minimise the next-token cross-entropy.
type LM struct{ *Model }

var _ train.Model = LM{}

// Store implements train.Model.
func (l LM) Store() *blocks.Store { return l.Model.Store }

// Build implements train.Model: key.Len is the window length T.
func (l LM) Build(g *blocks.Graph, key train.Key) (train.Built, error) {
	lg, err := l.addLM(g, key.Batch, key.Len, true)
	if err != nil {
		return train.Built{}, err
	}
	return train.Built{
		Loss:    lg.Loss,
		Inputs:  map[string]*G.Node{"ids": lg.IDs, "targets": lg.Targets},
		Outputs: map[string]*G.Node{"logits": lg.Logits},
	}, nil
}

// Batch turns B windows of T ids and their targets into the engine's batch,
// weighted by the number of targets that count.
func (l LM) Batch(batch, steps int, ids, targets []int) (train.Batch, error) {
	if len(ids) != batch*steps || len(targets) != batch*steps {
		return train.Batch{}, errors.Errorf("gpt: %d ids and %d targets for a [%d, %d] batch", len(ids), len(targets), batch, steps)
	}
	it, err := blocks.IDs(ids, l.Config.VocabSize)
	if err != nil {
		return train.Batch{}, err
	}
	tv := make([]float32, len(targets))
	n := 0
	for i, id := range targets {
		if id != IgnoreIndex {
			if id < 0 || id >= l.Config.VocabSize {
				return train.Batch{}, errors.Errorf("gpt: target %d at position %d is outside the vocabulary [0, %d)", id, i, l.Config.VocabSize)
			}
			n++
		}
		tv[i] = float32(id)
	}
	return train.Batch{
		Key:    train.Key{Batch: batch, Len: steps},
		Inputs: map[string]G.Value{"ids": it, "targets": tensor.New(tensor.WithShape(len(tv)), tensor.WithBacking(tv))},
		Weight: float64(n),
	}, nil
}
