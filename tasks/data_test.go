package tasks

import (
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seq2gpt/seq2gpt/gpt"
	"github.com/seq2gpt/seq2gpt/train"
)

// lengthExamples are n examples of 1 to 30 words.
func lengthExamples(n int) []Example {
	words := strings.Fields(corpus)
	exs := make([]Example, n)
	for i := range exs {
		k := 1 + (i*7)%30
		var b strings.Builder
		for j := range k {
			b.WriteString(words[(i+j)%len(words)] + " ")
		}
		exs[i] = Example{ID: itoa(i), Text: b.String(), Label: i % 2}
	}
	return exs
}

// TestDataEpochs: every epoch shows each example once, in batches of the
// configured size padded to a bucket; after the epochs Next says io.EOF;
// a restored position gives the same batches as going on.
func TestDataEpochs(t *testing.T) {
	tok := wordTokenizer(t)
	cfg := tinyConfig(tok.VocabSize())
	cfg.NPositions = 40
	gm, err := gpt.New(cfg, 1)
	require.NoError(t, err)
	body, err := NewGPT(gm, tok, 1)
	require.NoError(t, err)
	m, err := New(body, Task{Name: "c", Kind: Classification, Labels: []string{"0", "1"}}, DefaultConfig())
	require.NoError(t, err)
	in := encode(t, m.Task, body, tok, lengthExamples(50)...)
	d, err := m.NewData(in, DataConfig{Batch: 8, Epochs: 2, Seed: 3})
	require.NoError(t, err)
	assert.Equal(t, []int{16, 32, 40}, DefaultBuckets(40).Edges())
	assert.Equal(t, 2*d.StepsPerEpoch(), d.Steps())

	var saved []byte
	var after []train.Batch
	seen := map[int]int{}
	for s := range d.Steps() {
		bs, err := d.Next()
		require.NoError(t, err)
		require.Len(t, bs, 1)
		b := bs[0]
		assert.Equal(t, 8, b.Key.Batch)
		assert.Contains(t, []int{16, 32, 40}, b.Key.Len)
		if s < d.StepsPerEpoch() {
			labels := b.Inputs["labels"].Data().([]float32)
			for _, l := range labels {
				if l != IgnoreIndex {
					seen[int(l)]++
				}
			}
		}
		if s == 3 {
			pos, err := d.Position()
			require.NoError(t, err)
			saved = pos
		}
		if s > 3 {
			after = append(after, b)
		}
	}
	assert.Equal(t, map[int]int{0: 25, 1: 25}, seen, "one epoch is every example once")
	_, err = d.Next()
	assert.Equal(t, io.EOF, err)

	require.NoError(t, d.Restore(saved))
	for i := range after {
		bs, err := d.Next()
		require.NoError(t, err)
		assert.Equal(t, after[i].Key, bs[0].Key)
		assert.Equal(t, after[i].Inputs["ids"].Data(), bs[0].Inputs["ids"].Data(), "batch %d after the restore", i)
	}
}

// sentimentSplit is the first n and the next k of the embedded sentiment
// train split.
func sentimentSplit(t *testing.T, n, k int) ([]Example, []Example) {
	t.Helper()
	task, err := Lookup("sentiment")
	require.NoError(t, err)
	exs, err := task.Load("", "train")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(exs), n+k)
	return exs[:n], exs[n : n+k]
}

func joinText(exs []Example) string {
	var b strings.Builder
	for _, e := range exs {
		b.WriteString(e.Text + "\n")
	}
	return b.String()
}

func mean(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x / float64(len(v))
	}
	return s
}
