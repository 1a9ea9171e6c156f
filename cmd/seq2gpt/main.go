// Command seq2gpt trains and runs seq2gpt's models from the command line.
//
//	seq2gpt lm train     train a GPT language model (embedded State of the Union text by default)
//	seq2gpt lm generate  continue a prompt from a checkpoint (ours or a HuggingFace openai-gpt directory)
//	seq2gpt lm eval      loss and perplexity of a checkpoint on a text file
//	seq2gpt lm attention a model's attention weights for a prompt, as heatmaps
//	seq2gpt mlm train    pre-train a BERT masked language model
//	seq2gpt mlm eval     masked-LM loss and accuracy of a BERT checkpoint
//	seq2gpt mlm fill     fill in the [MASK]s of a text with a BERT checkpoint
//	seq2gpt translate train      train a translation model: LSTM encoder–decoder, fixed context or attention (embedded en–de corpus by default)
//	seq2gpt translate eval       BLEU and chrF of a translation model on a test set
//	seq2gpt translate translate  translate sentences from stdin or a file; beam search, n-best, attention pictures
//	seq2gpt finetune     fine-tune a pre-trained GPT on a task (GLUE, the embedded sets, multiple choice); eval, predict
//	seq2gpt graph        a model's training or inference graph as Graphviz dot, SVG or PNG
//	seq2gpt bleu         BLEU and chrF of a system's output, as sacreBLEU computes them
//	seq2gpt version      the version, Go, BLAS and CPU features of this build
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
		Short: "GPT-1 language models: train, generate, evaluate, draw attention",
	}
	lm.AddCommand(newTrainCmd(), newGenerateCmd(), newEvalCmd(), newAttentionCmd())
	root.AddCommand(lm, newMLMCmd(), newTranslateCmd(), newGraphCmd())
	root.AddCommand(newBLEUCmd())
	root.AddCommand(newFinetuneCmd())
	root.AddCommand(newVersionCmd())
	return root
}
