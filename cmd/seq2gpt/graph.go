package main

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/pkg/errors"
	"github.com/spf13/cobra"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/gpt"
	"github.com/seq2gpt/seq2gpt/internal/atomicfile"
	"github.com/seq2gpt/seq2gpt/train"
	"github.com/seq2gpt/seq2gpt/viz"
)

func newGraphCmd() *cobra.Command {
	var preset, config, mode, format, out, detail string
	var batch, steps int
	c := &cobra.Command{
		Use:   "graph",
		Short: "Draw a model's graph as Graphviz dot, SVG or PNG",
		Long: `Build a GPT's training graph (with its loss) or inference graph for a batch
and window size and draw it: by default one box per block (the embeddings,
each layer's attention, FFN and LayerNorms, the head, the loss) with the
tensor shapes on the edges and the layers side by side; with --detail ops
every op, inside a box for each block. The output is the same from run to
run. SVG and PNG need Graphviz's dot (apt-get install graphviz).`,
		Example: `  seq2gpt graph --preset paper --out gpt1.png
  seq2gpt graph --preset tiny --detail ops --mode eval --out tiny.svg`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := NewFlagChecks(cmd.Flags())
			c.Check("batch", AtLeast(1))
			c.Check("steps", AtLeast(0))
			checkPreset(c, cmd.Flags())
			if err := c.Err(); err != nil {
				return err
			}
			cfg, err := gpt.Preset(preset)
			if err != nil {
				return err
			}
			if config != "" {
				if cfg, err = gpt.ReadConfig(config); err != nil {
					return err
				}
			}
			modes := map[string]blocks.Mode{"train": blocks.Train, "eval": blocks.Eval}
			md, ok := modes[mode]
			if !ok {
				return errors.Errorf("--mode %q: want train or eval", mode)
			}
			d, err := viz.ParseDetail(detail)
			if err != nil {
				return errors.Errorf("--detail %q: want blocks or ops", detail)
			}
			if steps > cfg.NPositions {
				return &FlagError{Flag: "steps", Value: strconv.Itoa(steps),
					Want: fmt.Sprintf("an integer in [0, %d] (0: n_positions %d)", cfg.NPositions, cfg.NPositions)}
			}
			if steps == 0 {
				steps = cfg.NPositions
			}
			m, err := gpt.New(cfg, 1)
			if err != nil {
				return err
			}
			// The graph as the model builds it for this shape: no
			// gradients, nothing compiled.
			g := blocks.NewGraph(m.Store, md, 0)
			if _, err := (gpt.LM{Model: m}).Build(g, train.Key{Mode: md, Batch: batch, Len: steps}); err != nil {
				return err
			}
			dot, err := viz.Dot(g, d)
			if err != nil {
				return err
			}
			if format == "" {
				format = strings.TrimPrefix(filepath.Ext(out), ".")
			}
			data := []byte(dot)
			switch format {
			case "", "dot", "gv":
			default:
				if data, err = viz.Render(dot, format); err != nil {
					return err
				}
			}
			if out == "" || out == "-" {
				_, err = cmd.OutOrStdout().Write(data)
				return err
			}
			return atomicfile.WriteFile(out, data)
		},
	}
	fl := c.Flags()
	fl.StringVar(&preset, "preset", "tiny", "model size: tiny, small, medium or paper")
	fl.StringVar(&config, "config", "", "a model directory's config.json directory instead of a preset")
	fl.StringVar(&mode, "mode", "train", "train (with loss and dropout) or eval")
	fl.StringVar(&detail, "detail", "blocks", "blocks (one box per block) or ops (every op)")
	fl.IntVar(&batch, "batch", 1, "batch size of the graph")
	fl.IntVar(&steps, "steps", 0, "window length (default n_positions)")
	fl.StringVar(&format, "format", "", "dot, svg or png (default: from --out's extension, else dot)")
	fl.StringVar(&out, "out", "", "output file (default: standard output)")
	return c
}
