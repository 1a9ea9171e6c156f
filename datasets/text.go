package datasets

import (
	"io"
	"strings"
)

// ReadText reads plain UTF-8 text for language modelling. Line endings are
// normalised to "\n"; invalid UTF-8 or an empty (or all-blank) input is an
// error naming the line.
func ReadText(r io.Reader, name string) (string, error) {
	lr := newLineReader(r, name)
	var b strings.Builder
	for {
		line, ok, err := lr.next()
		if err != nil {
			return "", err
		}
		if !ok {
			break
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	if strings.TrimSpace(b.String()) == "" {
		return "", parseErr(name, 0, "no text, only whitespace")
	}
	return b.String(), nil
}

// LoadText reads a plain-text file (see ReadText).
func LoadText(path string) (string, error) {
	f, err := openFile(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return ReadText(f, path)
}
