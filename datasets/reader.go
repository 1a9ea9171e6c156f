package datasets

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/pkg/errors"
)

// ParseError reports malformed input: the file (or the name the caller gave
// a reader), the 1-based line, and what was expected there. Line is 0 when
// the problem concerns the whole file (it is empty, or two files disagree).
type ParseError struct {
	File string
	Line int
	Msg  string
}

func (e *ParseError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("datasets: %s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("datasets: %s:%d: %s", e.File, e.Line, e.Msg)
}

func parseErr(file string, line int, format string, args ...any) error {
	return &ParseError{File: file, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// lineReader yields the lines of a text file, checking UTF-8 and counting
// lines for error messages. It accepts "\n" and "\r\n" endings and lines of
// any length.
type lineReader struct {
	r    *bufio.Reader
	name string
	line int
	any  bool
}

func newLineReader(r io.Reader, name string) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 1<<16), name: name}
}

// next returns the next line without its ending; ok is false at the end.
func (lr *lineReader) next() (line string, ok bool, err error) {
	s, err := lr.r.ReadString('\n')
	if err != nil && err != io.EOF {
		return "", false, errors.Wrapf(err, "datasets: reading %s", lr.name)
	}
	if s == "" && err == io.EOF {
		if !lr.any {
			return "", false, parseErr(lr.name, 0, "empty file")
		}
		return "", false, nil
	}
	lr.any = true
	lr.line++
	s = strings.TrimSuffix(s, "\n")
	s = strings.TrimSuffix(s, "\r")
	if lr.line == 1 {
		s = strings.TrimPrefix(s, "\uFEFF") // byte-order mark
	}
	if !utf8.ValidString(s) {
		return "", false, parseErr(lr.name, lr.line, "invalid UTF-8 at byte %d", invalidAt(s))
	}
	return s, true, nil
}

func invalidAt(s string) int {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return -1
}

// openFile opens path for a loader; the returned name is used in errors.
func openFile(path string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, errors.Wrap(err, "datasets")
	}
	return f, nil
}

// columns splits a TSV line and checks the column count.
func (lr *lineReader) columns(line string, want int, what string) ([]string, error) {
	cols := strings.Split(line, "\t")
	if len(cols) != want {
		return nil, parseErr(lr.name, lr.line, "expected %d tab-separated columns (%s), got %d", want, what, len(cols))
	}
	return cols, nil
}

func (lr *lineReader) nonEmpty(s, what string) error {
	if strings.TrimSpace(s) == "" {
		return parseErr(lr.name, lr.line, "empty %s", what)
	}
	return nil
}
