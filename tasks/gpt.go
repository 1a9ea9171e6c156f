package tasks

import (
	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/gpt"
	"github.com/seq2gpt/seq2gpt/ops"
)

// GPT is GPT-1 as a task body (Radford et al. 2018, §3.2–3.3): an input
// is one token sequence [s] a $ b [e] whose start, delimiter and extract
// tokens no text can produce; the feature is the last block's state h_l
// at [e]; and the auxiliary objective is the language-model loss on the
// same sequences,
//
//	L₁ = −Σ_i log P(u_i | u_1 … u_{i−1})   over each sequence's tokens after [s]
//
// averaged over the tokens ($ and [e] included, padding not). Padding
// follows [e] and the attention is causal, so it changes nothing before
// it: no padding mask is needed.
type GPT struct {
	Model *gpt.Model
	// The special tokens' ids: Start [s], Delim $, Extract [e], and Pad
	// (what follows [e] in a padded row; HuggingFace's pad_token_id).
	Start, Delim, Extract, Pad int
}

var _ Body = (*GPT)(nil)

// GPTSpecials are the special tokens NewGPT adds, in order: start,
// delimiter, extract and padding.
func GPTSpecials() []string {
	return []string{datasets.StartToken, datasets.DelimToken, datasets.ExtractToken, datasets.PadToken}
}

// NewGPT makes m a task body over tok's vocabulary: it makes GPTSpecials
// special tokens of tok (appending those it lacks) and, when the
// vocabulary grew, returns the body over a copy of m whose token
// embedding W_e has the new rows, drawn from N(0, initializer_range) with
// seed (HuggingFace's resize_token_embeddings); the output layer is tied
// to W_e, so it grows with it. m itself is not changed. Saving tok with
// the model keeps the ids (the BPE formats store special tokens).
func NewGPT(m *gpt.Model, tok datasets.Tokenizer, seed uint64) (*GPT, error) {
	if m == nil || tok == nil {
		return nil, errors.New("tasks: NewGPT needs a model and a tokenizer")
	}
	if v := tok.VocabSize(); v != m.Config.VocabSize {
		// Checked before AddSpecial changes tok.
		return nil, errors.Errorf("tasks: the tokenizer has %d ids and the model a vocabulary of %d: they do not belong together", v, m.Config.VocabSize)
	}
	sp, err := tok.AddSpecial(GPTSpecials()...)
	if err != nil {
		return nil, err
	}
	grown, err := growVocab(m, tok.VocabSize(), seed)
	if err != nil {
		return nil, err
	}
	return &GPT{Model: grown, Start: sp[0].ID, Delim: sp[1].ID, Extract: sp[2].ID, Pad: sp[3].ID}, nil
}

// growVocab returns m with a vocabulary of n ≥ its own: m itself when
// equal, else a copy whose token embedding has new rows from
// N(0, initializer_range), seeded.
func growVocab(m *gpt.Model, n int, seed uint64) (*gpt.Model, error) {
	v := m.Config.VocabSize
	if n == v {
		return m, nil
	}
	if n < v {
		return nil, errors.Errorf("tasks: cannot shrink the vocabulary from %d to %d", v, n)
	}
	cfg := m.Config
	cfg.VocabSize = n
	s, err := blocks.NewStore(m.Store.Dtype(), seed)
	if err != nil {
		return nil, err
	}
	grown, err := gpt.NewIn(s, cfg)
	if err != nil {
		return nil, err
	}
	for _, name := range s.Names() {
		old, ok := m.Store.Get(name)
		if !ok {
			return nil, errors.Errorf("tasks: the model has no %s", name)
		}
		vals, err := blocks.Float64s(old)
		if err != nil {
			return nil, err
		}
		if name == "tokens_embed.weight" {
			fresh, _ := s.Get(name)
			rows, err := blocks.Float64s(fresh)
			if err != nil {
				return nil, err
			}
			vals = append(vals, rows[v*cfg.NEmbd:]...)
		}
		if err := s.Set(name, vals); err != nil {
			return nil, err
		}
	}
	return grown, nil
}

// Store implements Body.
func (b *GPT) Store() *blocks.Store { return b.Model.Store }

// Width implements Body.
func (b *GPT) Width() int { return b.Model.Config.NEmbd }

// Template implements Body: [s] a $ b [e], the feature at [e], symmetric
// pairs in both orders, n_positions tokens at most.
func (b *GPT) Template() Template {
	return Template{Begin: []int{b.Start}, Sep: []int{b.Delim}, End: []int{b.Extract},
		Pool: PoolLast, BothOrders: true, MaxLen: b.Model.Config.NPositions}
}

// Head implements Body with the layouts of HuggingFace's
// OpenAIGPTForSequenceClassification ("score", no bias) and, for
// multiple choice, OpenAIGPTDoubleHeadsModel's summary
// ("multiple_choice_head.summary", with bias).
func (b *GPT) Head(k Kind) HeadLayout {
	if k == MultipleChoice {
		return HeadLayout{Prefix: "multiple_choice_head.summary", Bias: true}
	}
	return HeadLayout{Prefix: "score"}
}

// Features implements Body. Inputs: "ids" (tensor.Int [n·T]), "extract"
// (tensor.Int [n], the flat position r·T + Pool of each sequence's [e])
// and, with aux, "lm_targets" ([n·T], the next token or IgnoreIndex).
//
//	h_l = GPT(ids)                    [n, T, d]
//	feature_r = h_l[r, Pool_r]        gathered from [n·T, d]
//	L₁ = CE(h_l·W_eᵀ, lm_targets)
func (b *GPT) Features(g *blocks.Graph, n, steps int, aux bool) (BodyGraph, error) {
	var bg BodyGraph
	m := b.Model
	err := blocks.Build(func() error {
		ids := blocks.Must(g.Input("ids", tensor.Shape{n * steps}, tensor.Int))
		extract := blocks.Must(g.Input("extract", tensor.Shape{n}, tensor.Int))
		bg.Inputs = map[string]*G.Node{"ids": ids, "extract": extract}
		pos := blocks.Must(g.Fixed("positions", tensor.New(tensor.WithShape(n*steps), tensor.WithBacking(blocks.PositionIDs(n, steps, 0)))))
		mask := blocks.Must(g.Fixed("causal_mask", blocks.Must(blocks.AttentionMask(m.Store.Dtype(), n, steps, steps, nil, true))))
		h, _ := blocks.Must2(m.Hidden(g, ids, pos, mask, n, steps, nil))
		return g.Block("extract", func() error {
			bg.Features = blocks.Must(ops.Rows(h, extract, tensor.Shape{n, m.Config.NEmbd})) // h_l at each [e]
			if !aux {
				return nil
			}
			targets := blocks.Must(g.Input("lm_targets", tensor.Shape{n * steps}))
			bg.Inputs["lm_targets"] = targets
			logits := blocks.Must(m.Logits(g, h))
			flatLogits := blocks.Must(G.Reshape(logits, tensor.Shape{n * steps, m.Config.VocabSize}))
			bg.Aux = blocks.Must(ops.CrossEntropy(flatLogits, targets, IgnoreIndex, 0))
			return nil
		})
	})
	return bg, err
}

// Feed implements Body: each sequence padded with Pad to steps tokens,
// its [e] position, and with aux its next-token targets.
func (b *GPT) Feed(seqs []Sequence, n, steps int, aux bool) (map[string]G.Value, error) {
	if len(seqs) > n {
		return nil, errors.Errorf("tasks: %d sequences for %d rows", len(seqs), n)
	}
	ids := make([]int, n*steps)
	extract := make([]int, n)
	var targets []float64
	if aux {
		targets = make([]float64, n*steps)
		for i := range targets {
			targets[i] = IgnoreIndex
		}
	}
	for i := range ids {
		ids[i] = b.Pad
	}
	for r := range n {
		extract[r] = r * steps
		if r >= len(seqs) || len(seqs[r].IDs) == 0 {
			continue
		}
		s := seqs[r]
		if len(s.IDs) > steps || s.Pool < 0 || s.Pool >= len(s.IDs) {
			return nil, errors.Errorf("tasks: sequence %d has %d tokens and its feature at %d, for rows of %d", r, len(s.IDs), s.Pool, steps)
		}
		copy(ids[r*steps:], s.IDs)
		extract[r] = r*steps + s.Pool
		for t := 0; aux && t+1 < len(s.IDs); t++ {
			targets[r*steps+t] = float64(s.IDs[t+1])
		}
	}
	it, err := blocks.IDs(ids, b.Model.Config.VocabSize)
	if err != nil {
		return nil, errors.Wrap(err, "tasks")
	}
	vals := map[string]G.Value{"ids": it, "extract": tensor.New(tensor.WithShape(n), tensor.WithBacking(extract))}
	if aux {
		vals["lm_targets"] = denseOf(b.Model.Store.Dtype(), targets)
	}
	return vals, nil
}
