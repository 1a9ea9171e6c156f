package main

import (
	"bytes"
	"image/color"
	"math"

	"github.com/pkg/errors"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/seq2gpt/seq2gpt/internal/atomicfile"
)

// alignment is the α matrix of one translation: Z[i][j] is how much
// target token i attended to source token j. The same picture serves any
// attention map: src are then the keys (columns) and tgt the queries
// (rows).
type alignment struct {
	src, tgt []string
	alpha    [][]float32
	// xName and yName name the axes ("source" and "translation" when
	// empty).
	xName, yName string
}

// Dims, Z, X and Y make an alignment a plotter.GridXYZ: columns are the
// source tokens, rows the target tokens, the first at the top.
func (a alignment) Dims() (c, r int)   { return len(a.src), len(a.tgt) }
func (a alignment) Z(c, r int) float64 { return float64(a.alpha[r][c]) }
func (a alignment) X(c int) float64    { return float64(c) }
func (a alignment) Y(r int) float64    { return float64(len(a.tgt) - 1 - r) }

// grays is a black (α = 0) to white (α = 1) palette, as Bahdanau et al.
// draw their alignments.
type grays struct{}

func (grays) Colors() []color.Color {
	cs := make([]color.Color, 256)
	for i := range cs {
		cs[i] = color.Gray{Y: uint8(i)}
	}
	return cs
}

// check says whether α has a row for each target token and a weight for
// each source token.
func (a alignment) check() error {
	if len(a.src) == 0 || len(a.tgt) == 0 || len(a.alpha) != len(a.tgt) {
		return errors.Errorf("attention picture: %d source and %d target tokens with %d rows of α", len(a.src), len(a.tgt), len(a.alpha))
	}
	for i, row := range a.alpha {
		if len(row) != len(a.src) {
			return errors.Errorf("attention picture: row %d of α has %d weights for %d source tokens", i, len(row), len(a.src))
		}
	}
	return nil
}

// alignmentCell is the side of one token's cell in the pictures.
var alignmentCell = vg.Points(22)

// size is the picture of a: a cell per token and room for the labels.
func (a alignment) size() (w, h vg.Length) {
	return vg.Length(len(a.src))*alignmentCell + vg.Inch*1.6, vg.Length(len(a.tgt))*alignmentCell + vg.Inch*1.8
}

// plot is a as a heat map titled title: the source tokens are its
// columns, labelled below, and the translation's tokens its rows, the
// first at the top.
func (a alignment) plot(title string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text, p.Y.Label.Text = a.xName, a.yName
	if a.xName == "" {
		p.X.Label.Text = "source"
	}
	if a.yName == "" {
		p.Y.Label.Text = "translation"
	}
	h := plotter.NewHeatMap(a, grays{})
	h.Min, h.Max = 0, 1
	h.Rasterized = true // one image: no seams between the cells
	p.Add(h)
	xt := make([]plot.Tick, len(a.src))
	for c, s := range a.src {
		xt[c] = plot.Tick{Value: float64(c), Label: s}
	}
	yt := make([]plot.Tick, len(a.tgt))
	for r, s := range a.tgt {
		yt[r] = plot.Tick{Value: a.Y(r), Label: s}
	}
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.ConstantTicks(xt), plot.ConstantTicks(yt)
	p.X.Tick.Label.Rotation = math.Pi / 2
	p.X.Tick.Label.XAlign, p.X.Tick.Label.YAlign = draw.XRight, draw.YCenter
	p.X.Min, p.X.Max = -0.5, float64(len(a.src))-0.5
	p.Y.Min, p.Y.Max = -0.5, float64(len(a.tgt))-0.5
	return p
}

// drawAttention writes the alignment as a PNG heat map to path
// (atomically): the source tokens are its columns, labelled below, and the
// translation's tokens its rows, the first at the top.
func drawAttention(path, title string, a alignment) error {
	if err := a.check(); err != nil {
		return err
	}
	w, h := a.size()
	wt, err := a.plot(title).WriterTo(w, h, "png")
	if err != nil {
		return errors.Wrap(err, "attention picture")
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return errors.Wrap(err, "attention picture")
	}
	return atomicfile.WriteFile(path, buf.Bytes())
}

// drawAttentionGrid writes rows of alignments of one sentence pair (a
// model's layers × heads), each titled, as one PNG under title to path
// (atomically). Every panel is the size drawAttention gives the first.
func drawAttentionGrid(path, title string, panels [][]alignment, titles [][]string) error {
	if len(panels) == 0 || len(panels[0]) == 0 {
		return errors.New("attention picture: no panels")
	}
	plots := make([][]*plot.Plot, len(panels))
	for r, row := range panels {
		if len(row) != len(panels[0]) {
			return errors.Errorf("attention picture: row %d has %d panels, row 0 %d", r, len(row), len(panels[0]))
		}
		for c, a := range row {
			if err := a.check(); err != nil {
				return err
			}
			plots[r] = append(plots[r], a.plot(titles[r][c]))
		}
	}
	w, h := panels[0][0].size()
	b, err := drawTiles(plots, ".png", title, w, h)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, b)
}
