package datasets

import (
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tiktoken-go/tokenizer/codec"
)

// TestLoadGPT2RefusesTruncatedMerges: a vocab.bpe that stops early (or is
// empty) leaves entries of encoder.json that no merge produces; they once
// became raw "special" tokens and " the" encoded as 4 ids instead of 1.
// Now the load fails naming the first such entry; special tokens in
// GPT-2's <|…|> form (and HF's <…>, […]) are still read as special.
func TestLoadGPT2RefusesTruncatedMerges(t *testing.T) {
	enc := readEmbedded(t, "gpt2/encoder.json.gz")
	voc := readEmbedded(t, "gpt2/vocab.bpe.gz")
	lines := strings.SplitAfter(voc, "\n")
	for _, c := range []struct {
		name, vocab, want string
	}{
		{"empty", "", `entry "Ġt" (id 256) is neither a byte nor produced by a merge in vocab.bpe`},
		{"version line only", lines[0], `entry "Ġt" (id 256) is neither a byte nor produced by a merge in vocab.bpe`},
		{"first 1000 merges", strings.Join(lines[:1001], ""), `entry "Ġlot" (id 1256) is neither a byte nor produced by a merge in vocab.bpe`},
		{"last merge missing", strings.Join(lines[:len(lines)-2], ""), `(id 50255) is neither a byte nor produced by a merge in vocab.bpe`},
	} {
		_, err := LoadGPT2(strings.NewReader(enc), strings.NewReader(c.vocab))
		assert.ErrorContains(t, err, c.want, c.name)
		assert.ErrorContains(t, err, "a truncated vocab.bpe, or one of another vocabulary?", c.name)
	}
	tok, err := LoadGPT2(strings.NewReader(enc), strings.NewReader(voc))
	require.NoError(t, err)
	assert.Equal(t, []int{262}, tok.Encode(" the"))
	id, ok := tok.SpecialID(EOSToken)
	assert.True(t, ok)
	assert.Equal(t, 50256, id)

	// Special names in other conventions load as special; a bare word
	// cannot be told from a lost merge, so AddSpecial refuses it for a BPE
	// (its saved files could not be read back).
	small, err := TrainBPE([]string{trainText}, BPEConfig{Merges: 20, Specials: []string{"<pad>", "[CLS]", EOSToken}})
	require.NoError(t, err)
	var e, v strings.Builder
	require.NoError(t, small.SaveGPT2(&e, &v))
	back, err := LoadGPT2(strings.NewReader(e.String()), strings.NewReader(v.String()))
	require.NoError(t, err)
	for _, s := range []string{"<pad>", "[CLS]", EOSToken} {
		_, ok := back.SpecialID(s)
		assert.True(t, ok, s)
	}
	_, err = small.AddSpecial("SEPARATOR")
	assert.ErrorContains(t, err, `special token "SEPARATOR": a BPE saved in GPT-2's format keeps special tokens as <…> or […] names`)
}

// longLine is n bytes of letters without whitespace: one pre-token.
func longLine(n int) string {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = "etaoinshrdlucmfwyp"[r.IntN(18)]
	}
	return string(b)
}

// TestBPELongPretokensStayLinear: a line without whitespace is one
// pre-token; merging it whole allocated about 120 bytes per byte (a 10 MB
// line 0.9 GB at its peak). Pieces are cut at MaxPieceBytes, so a 4 MB
// line allocates its ids (8 bytes each, grown once) and a bounded
// workspace, and shorter text tokenizes exactly as before (as tiktoken,
// below the bound).
func TestBPELongPretokensStayLinear(t *testing.T) {
	tok := loadGPT2ForTest(t)
	const n = 4 << 20
	line := longLine(n)
	tok.Encode(line[:1000]) // warm the merge tables' lazy state, if any
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ids := tok.Encode(line)
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("%d bytes, %d ids: %.1f bytes allocated per input byte", n, len(ids), float64(alloc)/n)
	// The ids themselves (8 bytes each, with room to grow) and a workspace
	// bounded by MaxPieceBytes: nothing in proportion to the pre-token.
	assert.Less(t, float64(alloc), 2*8*float64(len(ids))+(1<<20), "allocation: the ids and a bounded workspace")
	back, err := tok.Decode(ids)
	require.NoError(t, err)
	assert.True(t, back == line, "round trip")

	// Below the bound, exactly tiktoken's ids.
	oracle := codec.NewR50kBase()
	for _, s := range []string{line[:MaxPieceBytes], " " + line[:MaxPieceBytes-1], strings.Repeat(" ", MaxPieceBytes-1) + "x"} {
		want, _, err := oracle.Encode(s)
		require.NoError(t, err)
		got := tok.Encode(s)
		require.Len(t, got, len(want))
		for i := range want {
			require.Equal(t, int(want[i]), got[i])
		}
	}
}

// TestBPETrainingCutsPiecesAsEncodeDoes: the trainer counts the pieces
// Encode merges, a long pre-token cut at MaxPieceBytes (it counted one
// 12 KB word).
func TestBPETrainingCutsPiecesAsEncodeDoes(t *testing.T) {
	tr, err := NewBPETrainer(BPEConfig{Merges: 10})
	require.NoError(t, err)
	tr.Add(longLine(3*MaxPieceBytes + 5))
	assert.Equal(t, 4, tr.Words())
	for p := range tr.counts {
		assert.LessOrEqual(t, len(p), MaxPieceBytes)
	}
}
