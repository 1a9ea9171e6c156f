package datasets

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tiktoken-go/tokenizer/codec"
)

func sotuText(b *testing.B) string {
	docs, err := SOTU()
	require.NoError(b, err)
	var sb strings.Builder
	for _, d := range docs {
		sb.WriteString(d.Text)
		sb.WriteString("\n\n")
	}
	return sb.String()
}

// BenchmarkBPEEncode measures GPT-2 encoding throughput on 1 MB of State of
// the Union text with the word cache warm, as when encoding a large corpus.
func BenchmarkBPEEncode(b *testing.B) {
	tok := loadGPT2ForTest(b)
	text := sotuText(b)[:1<<20]
	tok.Encode(text)
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tok.Encode(text)
	}
}

// BenchmarkBPEEncodeNoCache measures the merge algorithm itself: the word
// cache is cleared before every pass.
func BenchmarkBPEEncodeNoCache(b *testing.B) {
	tok, err := GPT2()
	require.NoError(b, err)
	text := sotuText(b)[:1<<20]
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tok.mu.Lock()
		clear(tok.cache)
		tok.mu.Unlock()
		tok.Encode(text)
	}
}

// BenchmarkBPETrain4000 trains 4,000 merges, counting words included, on
// the first 1 MB and on the whole of the State of the Union corpus
// (10.8 MB); time that grows about linearly with size shows training is not
// quadratic in the corpus.
func BenchmarkBPETrain4000(b *testing.B) {
	text := sotuText(b)
	for _, size := range []struct {
		name string
		n    int
	}{{"1MB", 1 << 20}, {"10.8MB", len(text)}} {
		b.Run(size.name, func(b *testing.B) {
			t := text[:size.n]
			b.SetBytes(int64(len(t)))
			for i := 0; i < b.N; i++ {
				tok, err := TrainBPE([]string{t}, BPEConfig{Merges: 4000})
				require.NoError(b, err)
				require.Equal(b, 4000, tok.NumMerges())
			}
		})
	}
}

// BenchmarkBPETrain4000MergesOnly separates the merge loop from word
// counting: the trainer is filled once, outside the timer.
func BenchmarkBPETrain4000MergesOnly(b *testing.B) {
	text := sotuText(b)
	tr, err := NewBPETrainer(BPEConfig{Merges: 4000})
	require.NoError(b, err)
	tr.Add(text)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tok, err := tr.Train()
		require.NoError(b, err)
		require.Equal(b, 4000, tok.NumMerges())
	}
}

// BenchmarkTiktokenEncode is the reference point: the same text through
// github.com/tiktoken-go/tokenizer (the test oracle), which has no cache.
func BenchmarkTiktokenEncode(b *testing.B) {
	oracle := codec.NewR50kBase()
	text := sotuText(b)[:1<<20]
	_, _, err := oracle.Encode(text)
	require.NoError(b, err)
	b.SetBytes(int64(len(text)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, _, _ = oracle.Encode(text)
	}
}
