package main

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFindWord(t *testing.T) {
	assert.Equal(t, 4, findWord("the Whole thing", "whole"))
	assert.Equal(t, -1, findWord("wholesale", "whole"))
	assert.Equal(t, 10, findWord("a wholly, whole", "whole"))
	assert.Equal(t, 2, findWord("a ice cream b", "ice cream"))
}

func TestSplitIsStable(t *testing.T) {
	counts := map[string]int{}
	for i := 0; i < 2000; i++ {
		counts[split(string(rune('a'+i%26))+string(rune(i)))]++
	}
	assert.InDelta(t, 100, counts["test"], 40)
	assert.InDelta(t, 100, counts["valid"], 40)
	assert.Equal(t, split("Gen.1.1"), split("Gen.1.1"))
}

func TestParseRef(t *testing.T) {
	assert.Equal(t, verseRef{"1Chr", 12, 3}, parseRef("1Chr.12.3"))
}

// writeSword writes a one-block zText testament whose slots hold entries.
func writeSword(t *testing.T, dir string, entries []string) {
	var block bytes.Buffer
	var bzv bytes.Buffer
	for _, e := range entries {
		var rec [10]byte
		binary.LittleEndian.PutUint32(rec[0:], 0)
		binary.LittleEndian.PutUint32(rec[4:], uint32(block.Len()))
		binary.LittleEndian.PutUint16(rec[8:], uint16(len(e)))
		bzv.Write(rec[:])
		block.WriteString(e)
	}
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	_, err := zw.Write(block.Bytes())
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	var bzs [12]byte
	binary.LittleEndian.PutUint32(bzs[4:], uint32(z.Len()))
	binary.LittleEndian.PutUint32(bzs[8:], uint32(block.Len()))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ot.bzs"), bzs[:], 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ot.bzv"), bzv.Bytes(), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ot.bzz"), z.Bytes(), 0o644))
}

func TestSwordVerses(t *testing.T) {
	dir := t.TempDir()
	writeSword(t, dir, []string{
		"", `<milestone type="x-importer"/>`,
		`<div osisID="Gen" type="book"/><title>Genesis</title>`,
		`<chapter n="1" osisID="Gen.1" sID="Gen.1"/>`,
		`In the <w lemma="strong:H7225">beginning</w> God<note placement="foot">Heb. Elohim</note> created.`,
		`<title type="psalm">A heading</title>And it was &amp; good ¶ .`,
		`<chapter n="2" osisID="Gen.2" sID="Gen.2"/>`,
		`Thus the heavens were finished.`,
	})
	got := map[string]string{}
	require.NoError(t, swordVerses(dir, "ot", got))
	assert.Equal(t, map[string]string{
		"Gen.1.1": "In the beginning God created.",
		"Gen.1.2": "And it was & good.",
		"Gen.2.1": "Thus the heavens were finished.",
	}, got)
}

func TestLibreOfficeParagraphs(t *testing.T) {
	root := t.TempDir()
	html := `<p id="par_id1" class="paragraph">Choose <span class="menuitem">Edit - Find</span> &amp; go.</p>
<p id="par_id2">Press <span class="switchinline">Cmd</span>.</p>
<h2 id="hd_id3">A<br/>heading</h2>`
	require.NoError(t, os.MkdirAll(filepath.Join(root, "shared"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "shared", "a.html"), []byte(html), 0o644))
	got, err := loParagraphs(root)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{
		"shared/a.html#par_id1": "Choose Edit - Find & go.",
		"shared/a.html#hd_id3":  "A heading",
	}, got)
}

func TestWriterIsDeterministic(t *testing.T) {
	dir := t.TempDir()
	w := &writer{dir: dir}
	require.NoError(t, w.write("x/a.txt.gz", []byte("hello\n")))
	first, err := os.ReadFile(filepath.Join(dir, "x/a.txt.gz"))
	require.NoError(t, err)
	require.NoError(t, w.write("x/a.txt.gz", []byte("hello\n")))
	second, err := os.ReadFile(filepath.Join(dir, "x/a.txt.gz"))
	require.NoError(t, err)
	assert.Equal(t, first, second)
	zr, err := gzip.NewReader(bytes.NewReader(first))
	require.NoError(t, err)
	b, err := io.ReadAll(zr)
	require.NoError(t, err)
	assert.Equal(t, "hello\n", string(b))
	assert.Len(t, w.lines, 2)
}
