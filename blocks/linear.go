package blocks

import (
	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/ops"
)

// LinearConfig configures a Linear block.
type LinearConfig struct {
	In, Out int
	NoBias  bool
	// InOut stores the weight [in, out] and computes y = x·W + b, as
	// HuggingFace's Conv1D does in GPT checkpoints.
	InOut bool
	// WeightInit and BiasInit default to nn.Linear's
	// U(-1/√in, 1/√in); GPT-1 uses Normal(0, 0.02) and zeros.
	WeightInit, BiasInit Init
}

// Linear is nn.Linear: y = x·Wᵀ + b, with weight W [out, in] and bias b [out]
// (state-dict names "<prefix>.weight", "<prefix>.bias"), on x [..., in].
type Linear struct {
	Prefix  string
	In, Out int
	Bias    bool
	InOut   bool
}

// NewLinear adds a Linear block's parameters to s under prefix.
func NewLinear(s *Store, prefix string, cfg LinearConfig) (*Linear, error) {
	if err := positive("Linear in/out", cfg.In, cfg.Out); err != nil {
		return nil, errors.Wrapf(err, "blocks: Linear %q", prefix)
	}
	wi, bi := cfg.WeightInit, cfg.BiasInit
	if wi == nil {
		wi = FanInUniform(cfg.In)
	}
	if bi == nil {
		bi = FanInUniform(cfg.In)
	}
	shape := tensor.Shape{cfg.Out, cfg.In}
	if cfg.InOut {
		shape = tensor.Shape{cfg.In, cfg.Out}
	}
	if _, err := s.Add(join(prefix, "weight"), shape, wi); err != nil {
		return nil, err
	}
	if !cfg.NoBias {
		if _, err := s.Add(join(prefix, "bias"), tensor.Shape{cfg.Out}, bi); err != nil {
			return nil, err
		}
	}
	return &Linear{Prefix: prefix, In: cfg.In, Out: cfg.Out, Bias: !cfg.NoBias, InOut: cfg.InOut}, nil
}

// Forward adds y = x·Wᵀ + b to g, for x [..., in].
func (l *Linear) Forward(g *Graph, x *G.Node) (y *G.Node, err error) {
	err = g.Block(name(l.Prefix, "linear"), func() error {
		if x.Dims() == 0 || x.Shape()[x.Dims()-1] != l.In {
			return badShape("Linear input", x.Shape(), "...", l.In)
		}
		w := g.param(l.Prefix, "weight")
		var b *G.Node
		if l.Bias {
			b = g.param(l.Prefix, "bias")
		}
		if l.InOut {
			y = Must(ops.Conv1D(x, w, b))
		} else {
			y = Must(ops.Linear(x, w, b))
		}
		return nil
	})
	return y, err
}
