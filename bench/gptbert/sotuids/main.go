// Command sotuids writes the embedded State of the Union text as token ids
// (little-endian int32) with a tokenizer directory's byte-level BPE, split
// as seq2gpt lm train and mlm train split it (every tenth address, evenly
// spread, held out), for torch_mlm.py: the same text and tokens as the Go
// pre-training runs.
//
// usage: go run ./bench/gptbert/sotuids TOKENIZER_DIR OUT_PREFIX
//
// writes OUT_PREFIX-train.i32 and OUT_PREFIX-valid.i32.
package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/seq2gpt/seq2gpt/datasets"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: sotuids TOKENIZER_DIR OUT_PREFIX")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "sotuids:", err)
		os.Exit(1)
	}
}

func run(dir, prefix string) error {
	docs, err := datasets.SOTU()
	if err != nil {
		return err
	}
	tok, err := datasets.LoadGPT2Files(filepath.Join(dir, "vocab.json"), filepath.Join(dir, "merges.txt"))
	if err != nil {
		return err
	}
	// cmd/seq2gpt's text.go: each address and a newline; address i held
	// out when ⌊(i+1)/10⌋ > ⌊i/10⌋.
	var train, valid strings.Builder
	for i, d := range docs {
		if (i+1)/10 > i/10 {
			valid.WriteString(d.Text + "\n")
		} else {
			train.WriteString(d.Text + "\n")
		}
	}
	for _, part := range []struct{ name, text string }{{"train", train.String()}, {"valid", valid.String()}} {
		f, err := os.Create(prefix + "-" + part.name + ".i32")
		if err != nil {
			return err
		}
		w := bufio.NewWriter(f)
		ids := tok.Encode(part.text)
		for _, id := range ids {
			if err := binary.Write(w, binary.LittleEndian, int32(id)); err != nil {
				return err
			}
		}
		if err := w.Flush(); err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		fmt.Printf("%s: %d tokens\n", f.Name(), len(ids))
	}
	return nil
}
