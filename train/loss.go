package train

import (
	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"
)

// MSELoss is the mean squared error over all elements,
//
//	L = (1/n) Σᵢ (predᵢ − targetᵢ)²
//
// as torch.nn.functional.mse_loss with reduction "mean": the loss of
// regression heads. pred and target must have the same shape and type.
//
// It is composed of stock ops (Sub, Square, Mean), whose forward and
// gradients are exact (GORGONIA-NOTES); no Reshape is involved, so the
// in-place Reshape bug on input nodes cannot reach the target.
func MSELoss(pred, target *G.Node) (*G.Node, error) {
	if pred == nil || target == nil {
		return nil, errors.New("train: MSELoss needs a prediction and a target")
	}
	if !pred.Shape().Eq(target.Shape()) || pred.Dtype() != target.Dtype() {
		return nil, errors.Errorf("train: MSELoss: prediction %q is %v %v, target %q is %v %v",
			pred.Name(), pred.Shape(), pred.Dtype(), target.Name(), target.Shape(), target.Dtype())
	}
	diff, err := G.Sub(pred, target)
	if err != nil {
		return nil, errors.Wrap(err, "train: MSELoss")
	}
	sq, err := G.Square(diff)
	if err != nil {
		return nil, errors.Wrap(err, "train: MSELoss")
	}
	loss, err := G.Mean(sq)
	return loss, errors.Wrap(err, "train: MSELoss")
}
