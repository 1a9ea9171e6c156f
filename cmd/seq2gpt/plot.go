package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"github.com/pkg/errors"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/seq2gpt/seq2gpt/internal/atomicfile"
	"github.com/seq2gpt/seq2gpt/train"
)

// HistoryFile is the loss history a checkpoint of lm train carries, so that
// the loss curve of a resumed run shows the whole run.
const HistoryFile = "history.json"

// lossHistory is a run's losses: the training loss of every step from
// First+1 on (First > 0 only for a run resumed from a checkpoint written
// before checkpoints carried their history) and every validation.
type lossHistory struct {
	First int         `json:"first_step"`
	Train []float64   `json:"train_loss"`
	Evals []evalPoint `json:"evals"`
	// Title names the curve's plot ("GPT language model" when empty); it
	// is not saved.
	Title string `json:"-"`
}

type evalPoint struct {
	Step int     `json:"step"`
	Loss float64 `json:"loss"`
}

func (h *lossHistory) step(s train.StepInfo) {
	// A step the history has already (it cannot happen in one Run) would
	// shift every later step: keep the list aligned to step numbers.
	if n := s.Step - h.First - 1; n < len(h.Train) {
		h.Train = h.Train[:max(0, n)]
	}
	h.Train = append(h.Train, s.Loss)
}

func (h *lossHistory) eval(e train.EvalInfo) {
	h.Evals = append(h.Evals, evalPoint{Step: e.Step, Loss: e.Metrics["loss"]})
}

// save writes the history into a checkpoint being assembled.
func (h *lossHistory) save(dir string) error {
	b, err := json.Marshal(h)
	if err != nil {
		return errors.Wrap(err, "loss history")
	}
	return atomicfile.WriteFile(filepath.Join(dir, HistoryFile), b)
}

// readHistory reads a checkpoint's history up to its step; a checkpoint
// without one (older) gives an empty history starting at step.
func readHistory(dir string, step int) (*lossHistory, error) {
	b, err := os.ReadFile(filepath.Join(dir, HistoryFile))
	if os.IsNotExist(err) {
		return &lossHistory{First: step}, nil
	}
	if err != nil {
		return nil, errors.Wrap(err, "loss history")
	}
	var h lossHistory
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, errors.Wrapf(err, "%s", filepath.Join(dir, HistoryFile))
	}
	// The checkpoint is at step: nothing after it counts.
	if n := step - h.First; n >= 0 && n < len(h.Train) {
		h.Train = h.Train[:n]
	}
	evals := h.Evals[:0]
	for _, e := range h.Evals {
		if e.Step <= step {
			evals = append(evals, e)
		}
	}
	h.Evals = evals
	return &h, nil
}

// resumeTraining continues a run from its last checkpoint (at last, in
// the run directory dir): the trainer's and the data's state and the loss
// history up to it. It says on w where the run resumed.
func resumeTraining(w io.Writer, tr *train.Trainer, data train.Data, dir, last string) (int, *lossHistory, error) {
	done, err := train.Resume(tr, data, dir)
	if err != nil {
		return 0, nil, err
	}
	hist, err := readHistory(last, done)
	if err != nil {
		return 0, nil, err
	}
	fmt.Fprintf(w, "resumed at step %d from %s\n", done, last)
	return done, hist, nil
}

// lossPlot draws the training loss of every step and the validation loss
// of every evaluation.
func lossPlot(h *lossHistory) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = h.Title
	if h.Title == "" {
		p.Title.Text = "GPT language model"
	}
	p.X.Label.Text = "step"
	p.Y.Label.Text = "loss (nats/token)"
	pts := make(plotter.XYs, 0, len(h.Train))
	for i, l := range h.Train {
		if !math.IsNaN(l) && !math.IsInf(l, 0) {
			pts = append(pts, plotter.XY{X: float64(h.First + i + 1), Y: l})
		}
	}
	last := 0.0
	if len(pts) > 0 {
		line, err := plotter.NewLine(pts)
		if err != nil {
			return nil, errors.Wrap(err, "loss curve")
		}
		p.Add(line)
		p.Legend.Add("train", line)
		last = pts[len(pts)-1].X
	}
	if len(h.Evals) > 0 {
		vp := make(plotter.XYs, 0, len(h.Evals))
		for _, e := range h.Evals {
			if !math.IsNaN(e.Loss) && !math.IsInf(e.Loss, 0) {
				vp = append(vp, plotter.XY{X: float64(e.Step), Y: e.Loss})
			}
		}
		if len(vp) > 0 {
			l, s, err := plotter.NewLinePoints(vp)
			if err != nil {
				return nil, errors.Wrap(err, "loss curve")
			}
			l.Color, s.Color = color.RGBA{R: 200, A: 255}, color.RGBA{R: 200, A: 255}
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(2)}
			s.Radius = vg.Points(3)
			p.Add(l, s)
			p.Legend.Add("validation", l, s)
			last = max(last, vp[len(vp)-1].X)
		}
	}
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	p.Legend.XOffs = -vg.Points(6)
	p.Legend.YOffs = -vg.Points(4)
	// Room right of the last step, so its marker is whole, and a ticker
	// with a readable number of round values on each axis.
	if last > 0 {
		p.X.Min = 0
		p.X.Max = last * 1.03
	}
	p.X.Tick.Marker = niceTicks{n: 8}
	p.Y.Tick.Marker = niceTicks{n: 8}
	return p, nil
}

// niceTicks labels about n round values (1, 2 or 5 × 10^k apart) between
// min and max, with an unlabelled tick between each.
type niceTicks struct{ n int }

func (t niceTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(hi > lo) || math.IsInf(hi-lo, 0) {
		return []plot.Tick{{Value: lo, Label: strconv.FormatFloat(lo, 'g', 4, 64)}}
	}
	step := niceStep((hi - lo) / float64(t.n))
	prec := max(0, -int(math.Floor(math.Log10(step)+1e-9)))
	var ticks []plot.Tick
	for k := math.Ceil(lo / step * 2); k*step/2 <= hi; k++ {
		v := k * step / 2
		if math.Mod(k, 2) == 0 {
			ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', prec, 64)})
		} else {
			ticks = append(ticks, plot.Tick{Value: v})
		}
	}
	return ticks
}

// niceStep is the smallest of 1, 2, 5 × 10^k at least x.
func niceStep(x float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= x*(1-1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// lossCurve writes the plot of h as a PNG, atomically, with a margin on
// every side.
func lossCurve(path string, h *lossHistory) error {
	p, err := lossPlot(h)
	if err != nil {
		return err
	}
	const w, ht = 8 * vg.Inch, 5 * vg.Inch
	c := vgimg.New(w, ht)
	dc := draw.New(c)
	m := vg.Points(8)
	p.Draw(draw.Crop(dc, m, -m, m, -m))
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(&buf); err != nil {
		return errors.Wrap(err, "loss curve")
	}
	return atomicfile.WriteFile(path, buf.Bytes())
}
