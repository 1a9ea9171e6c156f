package bert

import (
	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/ops"
	"github.com/seq2gpt/seq2gpt/train"
)

// IgnoreIndex marks targets that do not count in a loss (PyTorch's default
// ignore_index, and HF's label for unmasked positions).
const IgnoreIndex = -100

// The graph functions of MLM, by train.Key.Kind. Every program takes B =
// Key.Batch rows of T = Key.Len tokens: inputs "ids", "segments"
// (tensor.Int [B·T]) and "mask" ([B, T, T], see PaddingMask).
const (
	// KindMLM ("") is pre-training: the masked-LM loss over the chosen
	// positions only. Inputs besides the rows: "mlm_positions" (tensor.Int
	// [P], P = B·Masker.PerRow(T): flat indices b·T + i of the chosen
	// positions, the unused ones 0) and "mlm_targets" ([P], the original
	// ids, IgnoreIndex where unused); with Config.NSP also "nsp_labels"
	// ([B]: 0 when segment B follows A, 1 when it is random, IgnoreIndex
	// for empty rows). The loss is
	//
	//	L = −(1/|M|) Σ_{i∈M} log P(x_i | x̃) (+ the NSP cross-entropy)
	//
	// and the outputs are "mlm_logits" [P, V] (and "nsp_logits" [B, 2]).
	// Only the chosen positions go through the MLM head — the gather of
	// BERT's own pre-training code (masked_lm_positions) — which saves the
	// [B·T, V] product on the 85% of positions that do not count.
	KindMLM = ""
	// KindLogits is the MLM head at every position, for filling in
	// [MASK]s: outputs "logits" [B, T, V], "hidden" [B, T, d] and
	// "pooled" [B, d] (and "nsp_logits" with Config.NSP).
	KindLogits = "logits"
	// KindEncode is the encoder alone (HF's BertModel): outputs "hidden"
	// [B, T, d], the last hidden state, and "pooled" [B, d].
	KindEncode = "encode"
)

// MLM is the model as the engine sees it: the one adapter from BERT to
// train.Model, with the Masker that chooses its MLM positions. Its programs
// (train.Key.Kind) are pre-training (KindMLM: what the Trainer trains and
// evaluates), the MLM logits at every position (KindLogits) and the
// encoder's hidden states (KindEncode).
type MLM struct {
	*Model
	Masker *Masker
}

var _ train.Model = MLM{}

// Store implements train.Model.
func (l MLM) Store() *blocks.Store { return l.Model.Store }

// Build implements train.Model.
func (l MLM) Build(g *blocks.Graph, key train.Key) (train.Built, error) {
	if err := l.checkKey(key); err != nil {
		return train.Built{}, err
	}
	var b train.Built
	in, err := l.NewInputs(g, key.Batch, key.Len)
	if err != nil {
		return b, err
	}
	b.Inputs, b.Outputs = in.Nodes(), map[string]*G.Node{}
	err = blocks.Build(func() error {
		h := blocks.Must(l.Encode(g, in))
		switch key.Kind {
		case KindEncode, KindLogits:
			b.Outputs["hidden"] = h
			b.Outputs["pooled"] = blocks.Must(l.Pool(g, h))
			if key.Kind == KindLogits {
				b.Outputs["logits"] = blocks.Must(l.MLMLogits(g, h))
				if l.Config.NSP {
					b.Outputs["nsp_logits"] = blocks.Must(l.NSPLogits(g, b.Outputs["pooled"]))
				}
			}
			return nil
		}
		b.Loss = blocks.Must(l.pretrainingLoss(g, key, h, b))
		return nil
	})
	return b, err
}

// pretrainingLoss adds KindMLM's inputs, outputs and loss to b.
func (l MLM) pretrainingLoss(g *blocks.Graph, key train.Key, h *G.Node, b train.Built) (loss *G.Node, err error) {
	B, T, d := key.Batch, key.Len, l.Config.HiddenSize
	P := B * l.Masker.PerRow(T)
	err = g.Block("loss", func() error {
		pos := blocks.Must(g.Input("mlm_positions", tensor.Shape{P}, tensor.Int))
		targets := blocks.Must(g.Input("mlm_targets", tensor.Shape{P}))
		b.Inputs["mlm_positions"], b.Inputs["mlm_targets"] = pos, targets
		// h_i for i ∈ M: rows of h read as [B·T, d].
		chosen := blocks.Must(ops.Rows(h, pos, tensor.Shape{P, d}))
		logits := blocks.Must(l.MLMLogits(g, chosen))
		b.Outputs["mlm_logits"] = logits
		loss = blocks.Must(ops.CrossEntropy(logits, targets, IgnoreIndex, 0))
		if !l.Config.NSP {
			return nil
		}
		labels := blocks.Must(g.Input("nsp_labels", tensor.Shape{B}))
		b.Inputs["nsp_labels"] = labels
		nsp := blocks.Must(l.NSPLogits(g, blocks.Must(l.Pool(g, h))))
		b.Outputs["nsp_logits"] = nsp
		loss = blocks.Must(G.Add(loss, blocks.Must(ops.CrossEntropy(nsp, labels, IgnoreIndex, 0))))
		return nil
	})
	return loss, err
}

// checkKey checks that key is one of MLM's programs.
func (l MLM) checkKey(key train.Key) error {
	if key.Source != 0 || key.Choices != 0 || key.Cache != 0 {
		return errors.Errorf("bert: key %v: BERT takes no source, choices or cache", key)
	}
	if key.Len > l.Config.MaxPositionEmbeddings {
		return errors.Errorf("bert: key %v: %d steps exceed max_position_embeddings %d", key, key.Len, l.Config.MaxPositionEmbeddings)
	}
	switch key.Kind {
	case KindMLM:
		if l.Masker == nil {
			return errors.Errorf("bert: key %v: pre-training needs a Masker", key)
		}
	case KindLogits, KindEncode:
	default:
		return errors.Errorf("bert: key %v: unknown kind %q (want %q, %q or %q)", key, key.Kind, KindMLM, KindLogits, KindEncode)
	}
	return nil
}
