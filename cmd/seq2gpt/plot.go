package main

import (
	"bytes"
	"image/color"
	"math"

	"github.com/pkg/errors"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/seq2gpt/seq2gpt/internal/atomicfile"
	"github.com/seq2gpt/seq2gpt/train"
)

// lossCurve draws the training loss of every step and the validation loss
// of every evaluation as a PNG, written atomically to path.
func lossCurve(path string, trainLoss []float64, firstStep int, evals []train.EvalInfo) error {
	p := plot.New()
	p.Title.Text = "GPT language model"
	p.X.Label.Text = "step"
	p.Y.Label.Text = "loss (nats/token)"
	pts := make(plotter.XYs, 0, len(trainLoss))
	for i, l := range trainLoss {
		if !math.IsNaN(l) && !math.IsInf(l, 0) {
			pts = append(pts, plotter.XY{X: float64(firstStep + i + 1), Y: l})
		}
	}
	if len(pts) > 0 {
		line, err := plotter.NewLine(pts)
		if err != nil {
			return errors.Wrap(err, "loss curve")
		}
		p.Add(line)
		p.Legend.Add("train", line)
	}
	if len(evals) > 0 {
		vp := make(plotter.XYs, len(evals))
		for i, e := range evals {
			vp[i] = plotter.XY{X: float64(e.Step), Y: e.Metrics["loss"]}
		}
		l, s, err := plotter.NewLinePoints(vp)
		if err != nil {
			return errors.Wrap(err, "loss curve")
		}
		l.Color, s.Color = color.RGBA{R: 200, A: 255}, color.RGBA{R: 200, A: 255}
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
		p.Add(l, s)
		p.Legend.Add("validation", l, s)
	}
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	wt, err := p.WriterTo(8*vg.Inch, 5*vg.Inch, "png")
	if err != nil {
		return errors.Wrap(err, "loss curve")
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return errors.Wrap(err, "loss curve")
	}
	return atomicfile.WriteFile(path, buf.Bytes())
}
