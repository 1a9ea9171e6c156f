package datasets

import (
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEmbeddedChecksums(t *testing.T) {
	var files []string
	require.NoError(t, fs.WalkDir(data, "data", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, strings.TrimPrefix(path, "data/"))
		}
		return err
	}))
	assert.Len(t, files, len(corpusChecksums), "every embedded file has a checksum and vice versa")
	var total int64
	for _, f := range files {
		b, err := fs.ReadFile(data, "data/"+f)
		require.NoError(t, err)
		want, ok := corpusChecksums[f]
		require.True(t, ok, "no checksum for %s", f)
		assert.Equal(t, want, fmt.Sprintf("%x", sha256.Sum256(b)), "%s differs from what the prepare program produced", f)
		total += int64(len(b))
	}
	assert.Less(t, total, int64(15<<20), "embedded corpora must stay under 15 MB")
}

func TestCorporaListing(t *testing.T) {
	list := Corpora()
	require.Len(t, list, 6)
	var files int
	var listed int64
	for _, c := range list {
		assert.NotEmpty(t, c.Name)
		assert.NotEmpty(t, c.Description)
		assert.NotEmpty(t, c.License)
		assert.NotEmpty(t, c.Source)
		assert.NotEmpty(t, c.Splits)
		assert.Equal(t, c.Constructed, strings.Contains(c.Name, "constructed"), c.Name)
		assert.Equal(t, c.Constructed, strings.HasPrefix(c.Description, "CONSTRUCTED"), c.Name)
		for _, s := range c.Splits {
			assert.Positive(t, s.Bytes, "%s/%s", c.Name, s.Name)
			assert.Positive(t, s.Items, "%s/%s", c.Name, s.Name)
			_, ok := corpusChecksums[s.File]
			assert.True(t, ok, s.File)
			files++
		}
		listed += c.Size()
		got, err := Corpus(c.Name)
		require.NoError(t, err)
		assert.Equal(t, c, got)
	}
	assert.Equal(t, len(corpusChecksums), files, "every embedded file is listed")
	assert.Less(t, listed, int64(15<<20))
	_, err := Corpus("nope")
	assert.ErrorContains(t, err, "no embedded corpus")
	_, err = OpenCorpus("sotu", "test")
	assert.ErrorContains(t, err, "no split")
}

func items(t *testing.T, name, split string) int {
	c, err := Corpus(name)
	require.NoError(t, err)
	s, err := c.Split(split)
	require.NoError(t, err)
	return s.Items
}

func TestEmbeddedTranslation(t *testing.T) {
	seen := map[Pair]string{}
	for _, split := range []string{"train", "valid", "test"} {
		pairs, err := LibreOfficeEnDe(split)
		require.NoError(t, err)
		assert.Len(t, pairs, items(t, "libreoffice-en-de", split))
		for _, p := range pairs {
			n := len(strings.Fields(p.Source))
			require.True(t, n >= 3 && n <= 20, p.Source)
			require.NotEqual(t, p.Source, p.Target)
			if other, dup := seen[p]; dup {
				t.Fatalf("pair %v in both %s and %s", p, other, split)
			}
			seen[p] = split
		}
	}
}

func TestEmbeddedSentiment(t *testing.T) {
	exs, err := Sentiment()
	require.NoError(t, err)
	require.Len(t, exs, items(t, "sentiment-uci", "train"))
	counts := map[int]int{}
	sources := map[string]int{}
	for _, e := range exs {
		counts[e.Label]++
		sources[strings.Split(e.ID, ":")[0]]++
	}
	assert.Equal(t, map[int]int{0: 1500, 1: 1500}, counts)
	assert.Equal(t, map[string]int{"amazon": 1000, "imdb": 1000, "yelp": 1000}, sources)
}

func TestEmbeddedSOTU(t *testing.T) {
	docs, err := SOTU()
	require.NoError(t, err)
	require.Len(t, docs, items(t, "sotu", "train"))
	assert.Equal(t, 1790, docs[0].Year)
	assert.Equal(t, "George Washington", docs[0].President)
	total := 0
	for i, d := range docs {
		total += len(d.Text)
		if i > 0 {
			require.GreaterOrEqual(t, d.Year, docs[i-1].Year)
		}
	}
	assert.Greater(t, total, 10<<20-1<<19, "about 10 MB of text")
}

func TestEmbeddedParaphrase(t *testing.T) {
	for _, split := range []string{"train", "valid", "test"} {
		exs, err := ParaphraseConstructed(split)
		require.NoError(t, err)
		require.Len(t, exs, items(t, "paraphrase-kjv-web-constructed", split))
		labels := map[int]int{}
		for _, e := range exs {
			labels[e.Label]++
		}
		assert.Greater(t, labels[0], len(exs)/3, split)
		assert.Greater(t, labels[1], len(exs)/3, split)
	}
	exs, err := ParaphraseConstructed("train")
	require.NoError(t, err)
	// IDs name the verses in MRPC's "#1 ID" column.
	assert.Contains(t, exs[0].ID, "KJV:")
}

func TestEmbeddedCloze(t *testing.T) {
	for _, split := range []string{"train", "valid", "test"} {
		items2, err := WordNetClozeConstructed(split)
		require.NoError(t, err)
		require.Len(t, items2, items(t, "wordnet-cloze-constructed", split))
		pos := make([]int, 4)
		for _, it := range items2 {
			require.Len(t, it.Choices, 4)
			require.Contains(t, it.Context, "___")
			pos[it.Label]++
		}
		for _, n := range pos {
			assert.Greater(t, n, len(items2)/6, "answer positions are balanced")
		}
	}
}

func TestOpenCorpusRaw(t *testing.T) {
	rc, err := OpenCorpus("gpt2-vocab", "merges")
	require.NoError(t, err)
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	assert.True(t, strings.HasPrefix(string(b), "#version: 0.2\n"))
}
