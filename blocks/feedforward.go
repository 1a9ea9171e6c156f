package blocks

import (
	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"

	"github.com/seq2gpt/seq2gpt/ops"
)

// Activation is the nonlinearity of a FeedForward block.
type Activation int

const (
	ReLU Activation = iota
	// GELU is the tanh approximation GPT-1 used (HF "gelu_new").
	GELU
	// GELUExact is x·Φ(x) with erf (HF "gelu", nn.GELU()).
	GELUExact
	// SiLU is x·σ(x) (Swish with β = 1; HF "silu" and "swish",
	// nn.SiLU()).
	SiLU
)

func (a Activation) String() string {
	switch a {
	case GELU:
		return "gelu_new"
	case GELUExact:
		return "gelu"
	case SiLU:
		return "silu"
	}
	return "relu"
}

// FeedForwardConfig configures the position-wise feed-forward network.
type FeedForwardConfig struct {
	DModel, DFF int
	Activation  Activation
	Dropout     float64
	// Names of the two Linear layers; default "linear1", "linear2" as in
	// nn.TransformerEncoderLayer.
	Names [2]string
	// InOut stores the weights [in, out] (HuggingFace's Conv1D).
	InOut bool
	// WeightInit and BiasInit override the Linear defaults.
	WeightInit, BiasInit Init
}

// FeedForward is the position-wise feed-forward network of "Attention is
// all you need" (§3.3), applied to each position alike:
//
//	FFN(x) = W₂ · dropout(act(W₁ x + b₁)) + b₂
//
// with W₁ [d_ff, d_model] and W₂ [d_model, d_ff]. Dropout sits where
// nn.TransformerEncoderLayer puts it.
type FeedForward struct {
	Prefix     string
	W1, W2     *Linear
	Activation Activation
	Dropout    float64
}

// NewFeedForward adds the two Linear layers under prefix.
func NewFeedForward(s *Store, prefix string, cfg FeedForwardConfig) (*FeedForward, error) {
	if err := positive("FeedForward d_model and d_ff", cfg.DModel, cfg.DFF); err != nil {
		return nil, errors.Wrapf(err, "blocks: FeedForward %q", prefix)
	}
	if err := checkDropout(cfg.Dropout); err != nil {
		return nil, errors.Wrapf(err, "blocks: FeedForward %q", prefix)
	}
	if cfg.Activation < ReLU || cfg.Activation > SiLU {
		return nil, errors.Errorf("blocks: FeedForward %q: unknown activation %d", prefix, cfg.Activation)
	}
	names := cfg.Names
	if names[0] == "" {
		names = [2]string{"linear1", "linear2"}
	}
	w1, err := NewLinear(s, join(prefix, names[0]), LinearConfig{In: cfg.DModel, Out: cfg.DFF, InOut: cfg.InOut, WeightInit: cfg.WeightInit, BiasInit: cfg.BiasInit})
	if err != nil {
		return nil, err
	}
	w2, err := NewLinear(s, join(prefix, names[1]), LinearConfig{In: cfg.DFF, Out: cfg.DModel, InOut: cfg.InOut, WeightInit: cfg.WeightInit, BiasInit: cfg.BiasInit})
	if err != nil {
		return nil, err
	}
	return &FeedForward{Prefix: prefix, W1: w1, W2: w2, Activation: cfg.Activation, Dropout: cfg.Dropout}, nil
}

// Forward applies the network to x [..., d_model].
func (f *FeedForward) Forward(g *Graph, x *G.Node) (y *G.Node, err error) {
	err = g.Block(name(f.Prefix, "ffn"), func() error {
		h := Must(f.W1.Forward(g, x))
		switch f.Activation {
		case ReLU:
			h = Must(ops.ReLU(h))
		case GELU:
			h = Must(ops.GELU(h, ops.GELUTanh))
		case GELUExact:
			h = Must(ops.GELU(h, ops.GELUErf))
		case SiLU:
			h = Must(G.HadamardProd(h, Must(G.Sigmoid(h))))
		}
		y = Must(f.W2.Forward(g, Must(g.ApplyDropout(h, f.Dropout))))
		return nil
	})
	return y, err
}
