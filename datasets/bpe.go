package datasets

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/pkg/errors"
)

// byteRunes is GPT-2's bytes_to_unicode table: every byte maps to a printable
// rune, so that a token (a byte string) can be stored as readable text in
// encoder.json and vocab.bpe. Printable Latin-1 bytes map to themselves; the
// rest map to U+0100 onwards in byte order. The order of the table is also the
// order of GPT-2's first 256 ids.
var byteRunes, byteOrder = func() ([256]rune, [256]byte) {
	var tab [256]rune
	var order [256]byte
	printable := func(b int) bool {
		return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
	}
	n, k := 0, 0
	for b := 0; b < 256; b++ {
		if printable(b) {
			tab[b] = rune(b)
			order[k] = byte(b)
			k++
		}
	}
	for b := 0; b < 256; b++ {
		if !printable(b) {
			tab[b] = rune(256 + n)
			n++
			order[k] = byte(b)
			k++
		}
	}
	return tab, order
}()

// runeBytes inverts byteRunes: runeBytes[r] is the byte for rune r, or -1.
var runeBytes = func() [256 + 68]int16 {
	var inv [256 + 68]int16
	for i := range inv {
		inv[i] = -1
	}
	for b, r := range byteRunes {
		inv[r] = int16(b)
	}
	return inv
}()

// runeByte inverts byteRunes; ok is false for runes outside the table.
func runeByte(r rune) (byte, bool) {
	if r < 0 || int(r) >= len(runeBytes) || runeBytes[r] < 0 {
		return 0, false
	}
	return byte(runeBytes[r]), true
}

// bytesToToken renders raw bytes in GPT-2's printable form.
func bytesToToken(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		sb.WriteRune(byteRunes[c])
	}
	return sb.String()
}

// tokenToBytes parses GPT-2's printable form back to raw bytes.
func tokenToBytes(tok string) ([]byte, bool) {
	out := make([]byte, 0, len(tok))
	for _, r := range tok {
		b, ok := runeByte(r)
		if !ok {
			return nil, false
		}
		out = append(out, b)
	}
	return out, true
}

type pair struct{ a, b int32 }

type merge struct {
	rank   int32
	result int32
}

// BPE is a byte-level byte-pair-encoding tokenizer as in GPT-2: text is split
// into words by GPT-2's pre-tokenizer, each word's UTF-8 bytes start as one
// token each, and learned merges join adjacent tokens in the order they were
// learned. Because the base vocabulary is all 256 bytes, there is no unknown
// token and Decode(Encode(s)) == s for every string.
//
// Encode and Decode are safe for concurrent use; AddSpecial changes the
// vocabulary and must not run concurrently with other methods.
type BPE struct {
	specials
	tokens [][]byte // id -> bytes (specials: their name)
	ids    map[string]int
	merges map[pair]merge
	order  []pair // merges in rank order, for saving
	byte0  [256]int32

	mu    sync.Mutex
	cache map[string][]int32
}

const bpeCacheLimit = 1 << 16

func newBPE() *BPE {
	return &BPE{ids: map[string]int{}, merges: map[pair]merge{}, cache: map[string][]int32{}}
}

// VocabSize returns the number of ids, special tokens included.
func (t *BPE) VocabSize() int { return len(t.tokens) }

// NumMerges returns the number of merges.
func (t *BPE) NumMerges() int { return len(t.order) }

// Token returns the bytes of token id as a string (special tokens: their name).
func (t *BPE) Token(id int) (string, bool) {
	if id < 0 || id >= len(t.tokens) {
		return "", false
	}
	return string(t.tokens[id]), true
}

// MaxPieceBytes bounds the pre-tokens BPE merges: a longer one (a line of
// letters or digits without whitespace, a long whitespace run) is cut into
// pieces of at most this many bytes, each at a UTF-8 character boundary,
// and each piece is merged alone. Merging costs memory and time in the
// length of what is merged, so the bound keeps both linear in the text and
// small; GPT-2's vocabulary has no token longer than 128 bytes, and text
// whose pre-tokens are shorter than the bound tokenizes exactly as before.
const MaxPieceBytes = 4096

// cachedPieceBytes bounds the pieces Encode caches: words repeat, long runs
// rarely do (HF tokenizers' BPE cache has the same bound).
const cachedPieceBytes = 256

// Encode returns the ids of text. It never returns a special token's id: the
// literal text "<|endoftext|>" encodes as ordinary bytes.
func (t *BPE) Encode(text string) []int {
	out := make([]int, 0, len(text)/4+1) // English averages about 4 bytes a token
	var s mergeScratch
	done := 0 // bytes of text encoded
	emit := func(piece string) {
		ids := t.encodePiece(piece, &s)
		done += len(piece)
		if len(out)+len(ids) > cap(out) {
			// Grow once to what the rate so far predicts for the whole
			// text (and a tenth more), not by repeated doubling.
			want := int(float64(len(out)+len(ids))*float64(len(text))/float64(done)*1.1) + 16
			out = slices.Grow(out, want-len(out))
		}
		for _, id := range ids {
			out = append(out, int(id))
		}
	}
	pieces(text, emit)
	return out
}

// pieces calls yield with each piece BPE merges alone: GPT-2's pre-tokens,
// those longer than MaxPieceBytes cut at character boundaries. Encoding and
// training cut alike.
func pieces(text string, yield func(piece string)) {
	gpt2Split(text, func(piece string) {
		for len(piece) > MaxPieceBytes {
			cut := MaxPieceBytes
			for cut > 0 && !utf8.RuneStart(piece[cut]) {
				cut--
			}
			if cut == 0 {
				cut = MaxPieceBytes // not UTF-8: any cut keeps the bytes
			}
			yield(piece[:cut])
			piece = piece[cut:]
		}
		yield(piece)
	})
}

// encodePiece returns the ids of one piece. The slice is the cache's or
// the scratch's: read it before the next call.
func (t *BPE) encodePiece(piece string, s *mergeScratch) []int32 {
	if len(piece) == 1 {
		s.out = append(s.out[:0], t.byte0[piece[0]])
		return s.out
	}
	if len(piece) > cachedPieceBytes {
		return t.mergePiece(piece, s)
	}
	t.mu.Lock()
	ids, ok := t.cache[piece]
	t.mu.Unlock()
	if ok {
		return ids
	}
	ids = slices.Clone(t.mergePiece(piece, s))
	t.mu.Lock()
	if len(t.cache) >= bpeCacheLimit {
		clear(t.cache)
	}
	t.cache[piece] = ids
	t.mu.Unlock()
	return ids
}

// mergeScratch is mergePiece's workspace, reused from piece to piece.
type mergeScratch struct {
	ids, next, prev, out []int32
	h                    mergeHeap
}

// mergePiece applies the merges to one pre-tokenized word. It keeps the
// candidate pairs in a heap ordered by (rank, position), so a word of n bytes
// costs O(n log n) rather than the O(n²) of rescanning after every merge.
// The result is s.out, valid until the next call.
func (t *BPE) mergePiece(piece string, s *mergeScratch) []int32 {
	n := len(piece)
	ids := grow(s.ids, n)
	next := grow(s.next, n)
	prev := grow(s.prev, n)
	s.ids, s.next, s.prev = ids, next, prev
	for i := 0; i < n; i++ {
		ids[i] = t.byte0[piece[i]]
		next[i] = int32(i + 1)
		prev[i] = int32(i - 1)
	}
	next[n-1] = -1
	h := s.h[:0]
	for i := 0; i+1 < n; i++ {
		if m, ok := t.merges[pair{ids[i], ids[i+1]}]; ok {
			h = append(h, cand{m.rank, int32(i), ids[i], ids[i+1]})
		}
	}
	h.init()
	for len(h) > 0 {
		c := h.pop()
		i := c.pos
		j := next[i]
		if ids[i] != c.a || j < 0 || ids[j] != c.b {
			continue // stale: one side was merged since the candidate was pushed
		}
		ids[i] = t.merges[pair{c.a, c.b}].result
		ids[j] = -1
		k := next[j]
		next[i] = k
		if k >= 0 {
			prev[k] = i
			if m, ok := t.merges[pair{ids[i], ids[k]}]; ok {
				h.push(cand{m.rank, i, ids[i], ids[k]})
			}
		}
		if p := prev[i]; p >= 0 {
			if m, ok := t.merges[pair{ids[p], ids[i]}]; ok {
				h.push(cand{m.rank, p, ids[p], ids[i]})
			}
		}
	}
	s.h = h
	out := s.out[:0]
	for i := int32(0); i >= 0; i = next[i] {
		out = append(out, ids[i])
	}
	s.out = out
	return out
}

// grow returns b with length n, reallocated only when too small.
func grow(b []int32, n int) []int32 {
	if cap(b) < n {
		return make([]int32, n)
	}
	return b[:n]
}

type cand struct {
	rank, pos int32
	a, b      int32
}

// mergeHeap is a min-heap of candidates by rank, then position (leftmost
// first, as GPT-2 merges all occurrences of a pair left to right).
type mergeHeap []cand

func (h mergeHeap) less(i, j int) bool {
	if h[i].rank != h[j].rank {
		return h[i].rank < h[j].rank
	}
	return h[i].pos < h[j].pos
}

func (h mergeHeap) init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h *mergeHeap) push(c cand) {
	*h = append(*h, c)
	h.up(len(*h) - 1)
}

func (h *mergeHeap) pop() cand {
	old := *h
	c := old[0]
	n := len(old) - 1
	old[0] = old[n]
	*h = old[:n]
	h.down(0)
	return c
}

func (h mergeHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (h mergeHeap) down(i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// Decode returns the text of ids. Ids that end inside a multi-byte character
// give the partial bytes, as GPT-2 does; an id outside the vocabulary is an
// error.
func (t *BPE) Decode(ids []int) (string, error) {
	var b bytes.Buffer
	for i, id := range ids {
		if id < 0 || id >= len(t.tokens) {
			return "", errors.Errorf("datasets: BPE decode: id %d at position %d is outside the vocabulary of %d", id, i, len(t.tokens))
		}
		b.Write(t.tokens[id])
	}
	return b.String(), nil
}

// AddSpecial appends special tokens to the vocabulary (or marks existing
// non-producible entries such as GPT-2's "<|endoftext|>" as special) and
// reports their ids. A special token is written <…> or […] ("<|pad|>",
// "</s>", "[CLS]") unless it holds a character GPT-2's byte table does not
// print (a space, say): SaveGPT2 stores special tokens as entries no merge
// produces, and LoadGPT2 tells them by that shape from entries whose merge
// a truncated vocab.bpe lost.
func (t *BPE) AddSpecial(tokens ...string) ([]SpecialToken, error) {
	for _, s := range tokens {
		if _, mapped := tokenToBytes(s); mapped && !specialShaped(s) {
			if _, ok := t.SpecialID(s); !ok {
				return nil, errors.Errorf("datasets: special token %q: a BPE saved in GPT-2's format keeps special tokens as <…> or […] names", s)
			}
		}
	}
	return t.addSpecials(tokens,
		func(s string) (int, bool) { id, ok := t.ids[s]; return id, ok },
		func(s string) bool {
			ids := t.Encode(s)
			return len(ids) == 1 && string(t.tokens[ids[0]]) == s
		},
		func(s string) int {
			t.tokens = append(t.tokens, []byte(s))
			t.ids[s] = len(t.tokens) - 1
			return len(t.tokens) - 1
		})
}

// newBaseBPE returns a BPE whose vocabulary is the 256 bytes, in GPT-2's order.
func newBaseBPE() *BPE {
	t := newBPE()
	for _, b := range byteOrder {
		t.byte0[b] = int32(len(t.tokens))
		t.ids[string([]byte{b})] = len(t.tokens)
		t.tokens = append(t.tokens, []byte{b})
	}
	return t
}

// addMerge appends the merge a+b and its result as a new token (or the
// existing token with the same bytes).
func (t *BPE) addMerge(a, b int32) int32 {
	tok := append(append([]byte{}, t.tokens[a]...), t.tokens[b]...)
	id, ok := t.ids[string(tok)]
	if !ok {
		id = len(t.tokens)
		t.tokens = append(t.tokens, tok)
		t.ids[string(tok)] = id
	}
	t.merges[pair{a, b}] = merge{rank: int32(len(t.order)), result: int32(id)}
	t.order = append(t.order, pair{a, b})
	return int32(id)
}

// SaveGPT2 writes the vocabulary in GPT-2's format: encoder.json (a JSON
// object from printable token to id, written in id order) and vocab.bpe (a
// version line, then one merge per line). Special tokens are written as
// entries of encoder.json that no merge produces, which is how GPT-2's own
// "<|endoftext|>" is stored; LoadGPT2 restores them as special.
func (t *BPE) SaveGPT2(encoder, vocab io.Writer) error {
	bw := bufio.NewWriter(encoder)
	bw.WriteString("{")
	for id, tok := range t.tokens {
		name := bytesToToken(tok)
		if t.IsSpecial(id) {
			name = string(tok)
		}
		key, err := marshalString(name)
		if err != nil {
			return err
		}
		if id > 0 {
			bw.WriteString(", ")
		}
		fmt.Fprintf(bw, "%s: %d", key, id)
	}
	bw.WriteString("}")
	if err := bw.Flush(); err != nil {
		return errors.Wrap(err, "datasets: writing encoder.json")
	}
	bv := bufio.NewWriter(vocab)
	bv.WriteString("#version: 0.2\n")
	for _, p := range t.order {
		fmt.Fprintf(bv, "%s %s\n", bytesToToken(t.tokens[p.a]), bytesToToken(t.tokens[p.b]))
	}
	return errors.Wrap(bv.Flush(), "datasets: writing vocab.bpe")
}

func marshalString(s string) (string, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return "", errors.Wrap(err, "datasets: encoding token")
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// LoadGPT2Files reads a vocabulary from GPT-2's encoder.json and vocab.bpe.
func LoadGPT2Files(encoderPath, vocabPath string) (*BPE, error) {
	ef, err := os.Open(encoderPath)
	if err != nil {
		return nil, errors.Wrap(err, "datasets")
	}
	defer ef.Close()
	vf, err := os.Open(vocabPath)
	if err != nil {
		return nil, errors.Wrap(err, "datasets")
	}
	defer vf.Close()
	return loadGPT2(ef, vf, encoderPath, vocabPath)
}

// LoadGPT2 reads a vocabulary in GPT-2's format (see SaveGPT2). It checks that
// ids are exactly 0..N-1, that the 256 single bytes are present, that every
// merge's parts and result are in the vocabulary, and that every non-special
// entry is the result of a merge. Entries that no merge produces and that are
// not single bytes are special tokens, as GPT-2's "<|endoftext|>" is.
func LoadGPT2(encoder, vocab io.Reader) (*BPE, error) {
	return loadGPT2(encoder, vocab, "encoder.json", "vocab.bpe")
}

func loadGPT2(encoder, vocab io.Reader, encName, vocName string) (*BPE, error) {
	var raw map[string]int
	dec := json.NewDecoder(encoder)
	if err := dec.Decode(&raw); err != nil {
		return nil, errors.Wrapf(err, "datasets: %s: expected a JSON object from token to id", encName)
	}
	if dec.More() {
		return nil, errors.Errorf("datasets: %s: unexpected data after the JSON object", encName)
	}
	if len(raw) == 0 {
		return nil, errors.Errorf("datasets: %s: empty vocabulary", encName)
	}
	names := make([]string, len(raw))
	seen := make([]bool, len(raw))
	for name, id := range raw {
		if id < 0 || id >= len(raw) {
			return nil, errors.Errorf("datasets: %s: token %q has id %d; ids must be 0..%d", encName, name, id, len(raw)-1)
		}
		if seen[id] {
			return nil, errors.Errorf("datasets: %s: id %d is used twice (%q and %q)", encName, id, names[id], name)
		}
		seen[id] = true
		names[id] = name
	}
	t := newBPE()
	t.tokens = make([][]byte, len(names))
	produced := make([]bool, len(names))
	for id, name := range names {
		b, ok := tokenToBytes(name)
		if !ok {
			b = []byte(name) // not byte-mapped: must be special, checked below
		} else if len(b) == 1 {
			produced[id] = true
			if _, dup := t.ids[string(b)]; !dup {
				t.byte0[b[0]] = int32(id)
			}
		}
		t.tokens[id] = b
		if ok {
			t.ids[string(b)] = id
		}
	}
	for _, b := range byteOrder {
		if _, ok := t.ids[string([]byte{b})]; !ok {
			return nil, errors.Errorf("datasets: %s: byte 0x%02x (%q) is missing; a byte-level vocabulary needs all 256 bytes", encName, b, string(byteRunes[b]))
		}
	}
	sc := bufio.NewScanner(vocab)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimRight(sc.Text(), "\r")
		if (line == 1 && strings.HasPrefix(text, "#")) || text == "" {
			continue
		}
		if !utf8.ValidString(text) {
			return nil, errors.Errorf("datasets: %s:%d: invalid UTF-8", vocName, line)
		}
		parts := strings.Split(text, " ")
		if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
			return nil, errors.Errorf("datasets: %s:%d: expected two tokens separated by one space, got %q", vocName, line, text)
		}
		var ab [2]int32
		for k, p := range parts {
			id, ok := raw[p]
			if !ok || !produced[id] {
				return nil, errors.Errorf("datasets: %s:%d: token %q is not a byte or an earlier merge's result", vocName, line, p)
			}
			ab[k] = int32(id)
		}
		if _, dup := t.merges[pair{ab[0], ab[1]}]; dup {
			return nil, errors.Errorf("datasets: %s:%d: duplicate merge %q", vocName, line, text)
		}
		res, ok := raw[parts[0]+parts[1]]
		if !ok {
			return nil, errors.Errorf("datasets: %s:%d: merge result %q is not in %s", vocName, line, parts[0]+parts[1], encName)
		}
		t.merges[pair{ab[0], ab[1]}] = merge{rank: int32(len(t.order)), result: int32(res)}
		t.order = append(t.order, pair{ab[0], ab[1]})
		produced[res] = true
	}
	if err := sc.Err(); err != nil {
		return nil, errors.Wrapf(err, "datasets: %s:%d", vocName, line+1)
	}
	var unreachable []int
	for id, ok := range produced {
		if !ok {
			unreachable = append(unreachable, id)
		}
	}
	sort.Ints(unreachable)
	for _, id := range unreachable {
		// Entries no merge produces can only be reached by name: special
		// tokens. One that looks like an ordinary token is a merge that
		// vocab.bpe lacks; taken as special, text would encode byte by
		// byte where it should be one token.
		if _, mapped := tokenToBytes(names[id]); mapped && !specialShaped(names[id]) {
			return nil, errors.Errorf("datasets: %s: entry %q (id %d) is neither a byte nor produced by a merge in %s "+
				"(%d merges read): a truncated %s, or one of another vocabulary?", encName, names[id], id, vocName, len(t.order), vocName)
		}
		t.tokens[id] = []byte(names[id])
		t.set(names[id], id)
	}
	return t, nil
}

// specialShaped reports whether name is written as special tokens are:
// GPT-2's "<|endoftext|>", and the <…> and […] of other vocabularies
// ("<pad>", "</s>", "[CLS]"), without whitespace. A saved BPE's special
// tokens must be (see AddSpecial) so that LoadGPT2 can tell them from
// entries whose merge is missing.
func specialShaped(name string) bool {
	if len(name) < 3 || strings.ContainsFunc(name, unicode.IsSpace) {
		return false
	}
	return (name[0] == '<' && name[len(name)-1] == '>') || (name[0] == '[' && name[len(name)-1] == ']')
}
