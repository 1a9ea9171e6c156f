package main

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/pkg/errors"
	"github.com/spf13/cobra"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/gpt"
	"github.com/seq2gpt/seq2gpt/train"
)

func newGraphCmd() *cobra.Command {
	var preset, config, mode, format, out string
	var batch, steps int
	c := &cobra.Command{
		Use:   "graph",
		Short: "Draw a model's graph as Graphviz dot, SVG or PNG",
		Long: `Build a GPT's training graph (with its loss) or inference graph for a batch
and window size and draw it with one box per block (h.0.attn, h.0.mlp, ...).
SVG and PNG need Graphviz's dot (apt-get install graphviz).`,
		Example: `  seq2gpt graph --preset tiny --out tiny.dot
  seq2gpt graph --preset tiny --mode eval --out tiny.svg`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
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
			if steps <= 0 {
				steps = cfg.NPositions
			}
			m, err := gpt.New(cfg, 1)
			if err != nil {
				return err
			}
			opt, err := train.NewSGD(train.SGDConfig{})
			if err != nil {
				return err
			}
			tr, err := train.New(gpt.LM{Model: m}, train.Config{Optimizer: opt, Schedule: train.Constant(0)})
			if err != nil {
				return err
			}
			defer tr.Close()
			dot, err := tr.Dot(train.Key{Mode: md, Batch: batch, Len: steps})
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
				if data, err = train.Render(dot, format); err != nil {
					return err
				}
			}
			if out == "" || out == "-" {
				_, err = cmd.OutOrStdout().Write(data)
				return err
			}
			return os.WriteFile(out, data, 0o644)
		},
	}
	fl := c.Flags()
	fl.StringVar(&preset, "preset", "tiny", "model size: tiny, small, medium or paper")
	fl.StringVar(&config, "config", "", "a model directory's config.json directory instead of a preset")
	fl.StringVar(&mode, "mode", "train", "train (with loss and dropout) or eval")
	fl.IntVar(&batch, "batch", 1, "batch size of the graph")
	fl.IntVar(&steps, "steps", 0, "window length (default n_positions)")
	fl.StringVar(&format, "format", "", "dot, svg or png (default: from --out's extension, else dot)")
	fl.StringVar(&out, "out", "", "output file (default: standard output)")
	return c
}
