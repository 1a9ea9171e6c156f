package blocks

import (
	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/ops"
)

// DefaultLayerNormEps is nn.LayerNorm's ε.
const DefaultLayerNormEps = 1e-5

// LayerNorm is nn.LayerNorm over the last axis (Ba, Kiros & Hinton 2016):
//
//	y = γ ⊙ (x − μ) / √(σ² + ε) + β
//
// with the biased variance σ², gain γ ("weight", ones) and bias β ("bias",
// zeros) of shape [d].
type LayerNorm struct {
	Prefix string
	D      int
	Eps    float64
}

// NewLayerNorm adds a LayerNorm over d features; eps 0 means 1e-5.
func NewLayerNorm(s *Store, prefix string, d int, eps float64) (*LayerNorm, error) {
	if err := positive("LayerNorm size", d); err != nil {
		return nil, errors.Wrapf(err, "blocks: LayerNorm %q", prefix)
	}
	if eps < 0 {
		return nil, errors.Errorf("blocks: LayerNorm %q: eps %v is negative", prefix, eps)
	}
	if eps == 0 {
		eps = DefaultLayerNormEps
	}
	if _, err := s.Add(join(prefix, "weight"), tensor.Shape{d}, Ones()); err != nil {
		return nil, err
	}
	if _, err := s.Add(join(prefix, "bias"), tensor.Shape{d}, Zeros()); err != nil {
		return nil, err
	}
	return &LayerNorm{Prefix: prefix, D: d, Eps: eps}, nil
}

// Forward normalises x [..., d].
func (l *LayerNorm) Forward(g *Graph, x *G.Node) (y *G.Node, err error) {
	err = g.Block(name(l.Prefix, "layernorm"), func() error {
		if x.Dims() == 0 || x.Shape()[x.Dims()-1] != l.D {
			return badShape("LayerNorm input", x.Shape(), "...", l.D)
		}
		y = Must(ops.LayerNorm(x, g.param(l.Prefix, "weight"), g.param(l.Prefix, "bias"), l.Eps))
		return nil
	})
	return y, err
}
