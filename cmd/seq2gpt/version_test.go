package main

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/seq2gpt/seq2gpt/ops"
)

func TestVersion(t *testing.T) {
	stdout, err := run(t, "version")
	require.NoError(t, err)
	assert.Regexp(t, `^seq2gpt \S+.*\n`, stdout)
	assert.Contains(t, stdout, "go: "+runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH+"\n")
	assert.Contains(t, stdout, fmt.Sprintf("blas: %s\n", ops.BLASKernel()))
	assert.Regexp(t, `\ncpu: \d+ cores; features: \S+`, stdout)
	if runtime.GOARCH == "amd64" {
		assert.Contains(t, stdout, " sse2", "every amd64 CPU has SSE2")
	}
}
