package gpt

import (
	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/train"
)

// LM is the model as the engine sees it: the one adapter from GPT to
// train.Model. Its programs (train.Key.Kind) are the language model over
// windows with its loss (KindLM: what the Trainer trains and evaluates),
// the same without targets (KindLogits) or with each layer's attention
// weights (KindAttention, for pictures), and a decoding step against a
// key/value cache (KindDecode); Decoder runs KindLogits and KindDecode for
// decode/.
type LM struct{ *Model }

var _ train.Model = LM{}

// Store implements train.Model.
func (l LM) Store() *blocks.Store { return l.Model.Store }

// Build implements train.Model: key.Len is the window length T (1 for a
// decode step, whose cache capacity is key.Cache).
func (l LM) Build(g *blocks.Graph, key train.Key) (train.Built, error) {
	if err := l.checkKey(key); err != nil {
		return train.Built{}, err
	}
	if key.Kind == KindDecode {
		return l.decodeStep(g, key.Batch, key.Cache)
	}
	return l.window(g, key.Batch, key.Len, key.Kind)
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
	tv := make([]float64, len(targets))
	n := 0
	for i, id := range targets {
		if id != IgnoreIndex {
			if id < 0 || id >= l.Config.VocabSize {
				return train.Batch{}, errors.Errorf("gpt: target %d at position %d is outside the vocabulary [0, %d)", id, i, l.Config.VocabSize)
			}
			n++
		}
		tv[i] = float64(id)
	}
	return train.Batch{
		Key:    train.Key{Batch: batch, Len: steps},
		Inputs: map[string]G.Value{"ids": it, "targets": denseOf(l.Model.Store.Dtype(), tv, len(tv))},
		Weight: float64(n),
	}, nil
}
