package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// shellWords splits a command line as a shell would for the README's
// simple lines: spaces separate, double quotes group, "#" starts a
// comment, "<" a redirection (dropped with its file).
func shellWords(line string) []string {
	var words []string
	var cur strings.Builder
	inQuote, have := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '"':
			inQuote, have = !inQuote, true
		case c == ' ' && !inQuote:
			if have {
				words = append(words, cur.String())
				cur.Reset()
				have = false
			}
		case c == '#' && !inQuote && !have:
			i = len(line)
		default:
			cur.WriteByte(c)
			have = true
		}
	}
	if have {
		words = append(words, cur.String())
	}
	for i, w := range words {
		if w == "<" {
			return append(words[:i:i], words[min(i+2, len(words)):]...)
		}
	}
	return words
}

// TestREADMECommandsRun: every seq2gpt command the README shows names a
// subcommand and flags that exist and files that exist (it once named a
// some.txt that did not), and appears among its subcommand's --help
// examples as written.
func TestREADMECommandsRun(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		_, rest, ok := strings.Cut(line, "go run ./cmd/seq2gpt ")
		_, tagged, openblas := strings.Cut(line, "go run -tags openblas ./cmd/seq2gpt ")
		if openblas {
			rest = tagged // another build of the same command: no example of its own
		} else if !ok {
			continue
		}
		n++
		args := shellWords(rest)
		cmd, flags, err := newRoot().Find(args)
		require.NoError(t, err, line)
		require.NoError(t, cmd.ParseFlags(flags), line)
		for _, name := range []string{"data", "valid", "config", "tokenizer"} {
			if f := cmd.Flags().Lookup(name); f != nil && f.Changed {
				assert.FileExists(t, filepath.Join("..", "..", f.Value.String()), "%s: --%s", line, name)
			}
		}
		if cmd.Example == "" || cmd.Name() == "bleu" || openblas {
			continue
		}
		example := "seq2gpt " + strings.Join(strings.Fields(strings.SplitN(rest, "#", 2)[0]), " ")
		var lines []string
		for _, l := range strings.Split(cmd.Example, "\n") {
			lines = append(lines, strings.Join(strings.Fields(strings.SplitN(l, "#", 2)[0]), " "))
		}
		assert.Contains(t, lines, example, "README's %q among %q's examples", example, cmd.CommandPath())
	}
	assert.GreaterOrEqual(t, n, 8, "the README's commands were found")
}
