// Command seq2gpt trains and runs seq2gpt's models from the command line.
//
//	seq2gpt lm train     train a GPT language model (embedded State of the Union text by default)
//	seq2gpt lm generate  continue a prompt from a checkpoint (ours or a HuggingFace openai-gpt directory)
//	seq2gpt lm eval      loss and perplexity of a checkpoint on a text file
//	seq2gpt finetune     fine-tune a pre-trained GPT on a task (GLUE, the embedded sets, multiple choice); eval, predict
//	seq2gpt graph        a model's training or inference graph as Graphviz dot, SVG or PNG
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "seq2gpt:", err)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "seq2gpt",
		Short:         "Sequence models from Seq2Seq to GPT, as compiled Gorgonia graphs",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	lm := &cobra.Command{
		Use:   "lm",
		Short: "GPT-1 language models: train, generate, evaluate",
	}
	lm.AddCommand(newTrainCmd(), newGenerateCmd(), newEvalCmd())
	root.AddCommand(lm, newGraphCmd())
	root.AddCommand(newBLEUCmd())
	root.AddCommand(newFinetuneCmd())
	return root
}
