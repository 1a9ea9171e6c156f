package main

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/pkg/errors"
	"github.com/spf13/cobra"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette/brewer"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/datasets"
	"github.com/seq2gpt/seq2gpt/gpt"
	"github.com/seq2gpt/seq2gpt/internal/atomicfile"
	"github.com/seq2gpt/seq2gpt/train"
)

func newAttentionCmd() *cobra.Command {
	var model, prompt, out string
	var layers, heads []int
	c := &cobra.Command{
		Use:   "attention",
		Short: "Draw a GPT's attention weights for a prompt as heatmaps",
		Long: `Run the prompt through the model and draw each layer's and head's
attention weights α_ij = softmax_j(q_i·k_j/√d_k) as a heatmap: the tokens the
model attends from (queries) down the side, the tokens it attends to (keys)
along the bottom, one panel per layer (rows) and head (columns), every panel
on the same scale from 0 (white) to 1 (dark blue). The weights are the model's own, read from
its compiled graph; a position sees only itself and those before it, so the
upper triangle is empty. The format follows --out's extension (png, svg or
pdf). The model directory needs its tokenizer files.`,
		Example: `  seq2gpt lm attention --model runs/tiny/best --prompt "The Congress shall" --out att.png
  seq2gpt lm attention --model runs/small/best --prompt "We the people" --layers 0,3 --heads 1 --out att.svg`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, tok, err := loadModelAndTokenizer(model, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			ch := NewFlagChecks(cmd.Flags())
			ch.Check("layers", Below(m.Config.NLayer))
			ch.Check("heads", Below(m.Config.NHead))
			if err := ch.Err(); err != nil {
				return err
			}
			ids := tok.Encode(prompt)
			switch {
			case len(ids) == 0:
				return errors.New("--prompt encodes to no tokens")
			case len(ids) > m.Config.NPositions:
				return errors.Errorf("--prompt is %d tokens, more than the model's n_positions %d", len(ids), m.Config.NPositions)
			}
			alpha, err := attentionWeights(m, ids)
			if err != nil {
				return err
			}
			labels, err := tokenLabels(tok, ids)
			if err != nil {
				return err
			}
			if len(layers) == 0 {
				layers = upTo(m.Config.NLayer)
			}
			if len(heads) == 0 {
				heads = upTo(m.Config.NHead)
			}
			plots, _ := attentionPlots(alpha, labels, layers, heads)
			side := attentionSide(len(ids))
			b, err := drawTiles(plots, filepath.Ext(out), "", side, side)
			if err != nil {
				return err
			}
			if err := atomicfile.WriteFile(out, b); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d layers × %d heads over %d tokens\n", out, len(layers), len(heads), len(ids))
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVar(&model, "model", "", "checkpoint directory (required)")
	fl.StringVar(&prompt, "prompt", "", "the text whose attention is drawn (required)")
	fl.StringVar(&out, "out", "attention.png", "output file: .png, .svg or .pdf")
	fl.IntSliceVar(&layers, "layers", nil, "layers to draw (default: all)")
	fl.IntSliceVar(&heads, "heads", nil, "heads to draw (default: all)")
	_ = c.MarkFlagRequired("model")
	_ = c.MarkFlagRequired("prompt")
	return c
}

func upTo(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// attentionWeights runs ids through the model's attention program
// (gpt.KindAttention) and returns α[layer][head][i][j], the weight query
// position i gives key position j.
func attentionWeights(m *gpt.Model, ids []int) ([][][][]float64, error) {
	T := len(ids)
	p, err := train.Compile(gpt.LM{Model: m}, train.Key{Mode: blocks.Eval, Kind: gpt.KindAttention, Batch: 1, Len: T}, 0)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	it, err := blocks.IDs(ids, m.Config.VocabSize)
	if err != nil {
		return nil, err
	}
	if err := p.Let("ids", it); err != nil {
		return nil, err
	}
	if err := p.Run(); err != nil {
		return nil, err
	}
	alpha := make([][][][]float64, m.Config.NLayer)
	for l := range alpha {
		v, err := p.Output("attention." + strconv.Itoa(l))
		if err != nil {
			return nil, err
		}
		d, ok := v.(*tensor.Dense)
		if !ok {
			return nil, errors.Errorf("attention.%d is a %T, not a tensor", l, v)
		}
		w, err := blocks.Float64s(d)
		if err != nil {
			return nil, err
		}
		if len(w) != m.Config.NHead*T*T {
			return nil, errors.Errorf("attention.%d has %d weights, want %d heads × %d × %d", l, len(w), m.Config.NHead, T, T)
		}
		alpha[l] = make([][][]float64, m.Config.NHead)
		for h := range alpha[l] {
			alpha[l][h] = make([][]float64, T)
			for i := range alpha[l][h] {
				alpha[l][h][i] = w[(h*T+i)*T : (h*T+i+1)*T]
			}
		}
	}
	return alpha, nil
}

// tokenLabels are the tokens as text for the axes: a leading space shown
// as "·", control characters escaped, long tokens shortened.
func tokenLabels(tok *datasets.BPE, ids []int) ([]string, error) {
	labels := make([]string, len(ids))
	for i, id := range ids {
		s, err := tok.Decode([]int{id})
		if err != nil {
			return nil, err
		}
		if !utf8.ValidString(s) {
			s = fmt.Sprintf("%q", s) // part of a character: its bytes
		}
		s = strings.NewReplacer(" ", "·", "\n", `\n`, "\t", `\t`, "\r", `\r`).Replace(s)
		if r := []rune(s); len(r) > 12 {
			s = string(r[:11]) + "…"
		}
		labels[i] = s
	}
	return labels, nil
}

// attentionGrid is one head's weights as a heatmap's grid: column c is key
// position c, row r query position r (drawn top to bottom).
type attentionGrid struct{ w [][]float64 }

func (g attentionGrid) Dims() (c, r int)   { return len(g.w), len(g.w) }
func (g attentionGrid) Z(c, r int) float64 { return g.w[r][c] }
func (g attentionGrid) X(c int) float64    { return float64(c) }
func (g attentionGrid) Y(r int) float64    { return -float64(r) }

// attentionPlots makes a heatmap of each chosen layer (row) and head
// (column), all on the scale [0, 1], and returns them with the grids they
// draw.
func attentionPlots(alpha [][][][]float64, labels []string, layers, heads []int) ([][]*plot.Plot, [][]attentionGrid) {
	pal, _ := brewer.GetPalette(brewer.TypeSequential, "Blues", 9) // a palette brewer has
	plots := make([][]*plot.Plot, len(layers))
	grids := make([][]attentionGrid, len(layers))
	var xt, yt []plot.Tick
	for i, l := range labels {
		xt = append(xt, plot.Tick{Value: float64(i), Label: l})
		yt = append(yt, plot.Tick{Value: -float64(i), Label: l})
	}
	for r, l := range layers {
		for _, h := range heads {
			g := attentionGrid{alpha[l][h]}
			hm := plotter.NewHeatMap(g, pal)
			// No attention at all (the masked future) is white.
			hm.Min, hm.Max, hm.Underflow = 1e-6, 1, color.White
			p := plot.New()
			p.Title.Text = fmt.Sprintf("layer %d, head %d", l, h)
			p.Add(hm)
			p.X.Tick.Marker = plot.ConstantTicks(xt)
			p.Y.Tick.Marker = plot.ConstantTicks(yt)
			p.X.Tick.Label.Rotation = math.Pi / 2
			p.X.Tick.Label.XAlign, p.X.Tick.Label.YAlign = text.XRight, text.YCenter
			p.X.Padding, p.Y.Padding = 0, 0
			if r == len(layers)-1 {
				p.X.Label.Text = "attends to"
			}
			if h == heads[0] {
				p.Y.Label.Text = "from"
			}
			plots[r] = append(plots[r], p)
			grids[r] = append(grids[r], g)
		}
	}
	return plots, grids
}

// attentionSide is the side of one square panel of lm attention: growing
// with the tokens, within [2.6, 7] inches.
func attentionSide(tokens int) vg.Length {
	return vg.Length(math.Max(2.6, math.Min(7, 1.3+0.2*float64(tokens)))) * vg.Inch
}

// titleBand is the height of a picture's title above its panels.
var titleBand = vg.Points(28)

// drawTiles lays the plots out in their rows and columns, each panel w × h,
// under title (none when empty), and encodes the picture in the format of
// ext.
func drawTiles(plots [][]*plot.Plot, ext, title string, w, h vg.Length) ([]byte, error) {
	format := strings.TrimPrefix(strings.ToLower(ext), ".")
	switch format {
	case "png", "svg", "pdf":
	default:
		return nil, &FlagError{Flag: "out", Value: "*" + ext, Want: "a .png, .svg or .pdf file"}
	}
	rows, cols := len(plots), len(plots[0])
	top := vg.Length(0)
	if title != "" {
		top = titleBand
	}
	c, err := draw.NewFormattedCanvas(w*vg.Length(cols), h*vg.Length(rows)+top, format)
	if err != nil {
		return nil, errors.Wrap(err, "attention picture")
	}
	dc := draw.New(c)
	if title != "" {
		sty := plot.New().Title.TextStyle
		sty.XAlign, sty.YAlign = text.XCenter, text.YCenter
		dc.FillText(sty, vg.Point{X: dc.Center().X, Y: dc.Max.Y - top/2}, title)
	}
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Points(6), PadY: vg.Points(6),
		PadTop: vg.Points(6) + top, PadBottom: vg.Points(6), PadLeft: vg.Points(6), PadRight: vg.Points(10)}
	canvases := plot.Align(plots, tiles, dc)
	for r := range plots {
		for k, p := range plots[r] {
			p.Draw(canvases[r][k])
		}
	}
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return nil, errors.Wrap(err, "attention picture")
	}
	return buf.Bytes(), nil
}
