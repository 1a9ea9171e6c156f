package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGraphBlocksAndOps(t *testing.T) {
	stdout, err := run(t, "graph", "--preset", "tiny", "--steps", "4")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(stdout, "digraph"), stdout[:min(40, len(stdout))])
	for _, node := range []string{"b_tokens_embed", "b_positions_embed", "b_h_0_attn", "b_h_0_ln_1", "b_h_0_mlp", "b_h_0_ln_2",
		"b_h_1_attn", "b_h_1_mlp", "b_lm_head", "b_loss", `label="h.1"`, `label="1×4×256"`} {
		assert.Contains(t, stdout, node)
	}
	assert.NotContains(t, stdout, "sdpa", "one box per block: the attention's inner blocks are inside it")
	again, err := run(t, "graph", "--preset", "tiny", "--steps", "4")
	require.NoError(t, err)
	assert.Equal(t, stdout, again, "the same bytes from a second build")

	ops, err := run(t, "graph", "--preset", "tiny", "--steps", "4", "--detail", "ops")
	require.NoError(t, err)
	for _, block := range []string{"h.0.attn", "h.0.attn.sdpa", "h.1.attn.sdpa", "h.1.mlp", "h.0.ln_1", "lm_head", "loss", "Dropout{p=0.1}"} {
		assert.Contains(t, ops, block)
	}
	for _, noise := range []string{"0x", "+ false", "×××", "id="} {
		assert.NotContains(t, ops, noise)
	}
	_, err = run(t, "graph", "--detail", "all")
	assert.ErrorContains(t, err, `--detail "all": want blocks or ops`)
}

// TestGraphIsTheSameEveryRun: two processes draw the same bytes (other
// addresses, other map orders).
func TestGraphIsTheSameEveryRun(t *testing.T) {
	var outs []string
	for i := 0; i < 2; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestChildProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), childArgsEnv+"="+strings.Join([]string{"graph", "--preset", "tiny"}, "\x1f"))
		out, err := cmd.Output()
		require.NoError(t, err)
		outs = append(outs, string(out))
	}
	require.True(t, strings.HasPrefix(outs[0], "digraph"))
	assert.Equal(t, outs[0], outs[1])
}

// TestGraphOfTwelveLayersFitsOneScreen: the block view of a model with the
// paper's twelve layers (narrow, so the test stays small) is laid out
// within 1920×1080 pixels at Graphviz's 96 dpi.
func TestGraphOfTwelveLayersFitsOneScreen(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"),
		[]byte(`{"vocab_size": 40478, "n_positions": 512, "n_embd": 24, "n_layer": 12, "n_head": 12, "afn": "gelu"}`), 0o644))
	stdout, err := run(t, "graph", "--config", dir)
	require.NoError(t, err)
	var maxX, maxY float64
	for _, m := range regexp.MustCompile(`pos="(\d+),(\d+)!"`).FindAllStringSubmatch(stdout, -1) {
		x, _ := strconv.ParseFloat(m[1], 64)
		y, _ := strconv.ParseFloat(m[2], 64)
		maxX, maxY = max(maxX, x), max(maxY, y)
	}
	require.Positive(t, maxX)
	// Points to pixels: 96/72; a margin for the outermost boxes.
	assert.Less(t, (maxX+100)*96/72, 1920.0)
	assert.Less(t, (maxY+50)*96/72, 1080.0)
	for i := 0; i < 12; i++ {
		assert.Contains(t, stdout, "b_h_"+strconv.Itoa(i)+"_attn")
	}
}

// TestGraphStepsWithinPositions: a window longer than the position table
// is a flag error naming both numbers.
func TestGraphStepsWithinPositions(t *testing.T) {
	_, err := run(t, "graph", "--preset", "tiny", "--steps", "1000")
	assert.EqualError(t, err, "--steps 1000: want an integer in [0, 32] (0: n_positions 32)")
	_, err = run(t, "graph", "--preset", "tiny", "--steps", "32")
	assert.NoError(t, err)
}
