package train

import (
	"bytes"
	"image/png"
	"os/exec"
	"strings"
	"testing"

	"github.com/awalterschulze/gographviz"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

func parseDot(t *testing.T, src string) *gographviz.Graph {
	t.Helper()
	ast, err := gographviz.ParseString(src)
	require.NoError(t, err, src)
	gv := gographviz.NewGraph()
	require.NoError(t, gographviz.Analyse(ast, gv))
	return gv
}

// clusterOf maps each node to the label of the innermost cluster holding it.
func clusterOf(gv *gographviz.Graph) map[string]string {
	labels := map[string]string{}
	for name, sg := range gv.SubGraphs.SubGraphs {
		labels[name] = strings.Trim(sg.Attrs["label"], `"`)
	}
	out := map[string]string{}
	for parent, kids := range gv.Relations.ParentToChildren {
		if parent == gv.Name {
			continue
		}
		for kid := range kids {
			if _, isCluster := labels[kid]; !isCluster {
				out[kid] = labels[parent]
			}
		}
	}
	return out
}

func TestDotGroupsFollowBlocks(t *testing.T) {
	m := newTinyLM(t, tensor.Float32, 1, tinyConfig{Vocab: 8, Dim: 4, Dropout: 0.1})
	tr, err := New(m, Config{Optimizer: newAdamW(t), Schedule: Constant(1)})
	require.NoError(t, err)
	defer tr.Close()
	key := Key{Batch: 2, Len: 3}
	src, err := tr.Dot(key)
	require.NoError(t, err)
	again, err := tr.Dot(key)
	require.NoError(t, err)
	assert.Equal(t, src, again, "deterministic")

	gv := parseDot(t, src)
	g, err := tr.Graph(key)
	require.NoError(t, err)
	p, err := tr.program(key)
	require.NoError(t, err)
	forward := p.forward
	in := clusterOf(gv)
	assert.Len(t, gv.Nodes.Nodes, forward, "one dot node per forward node, no gradients")
	assert.Less(t, forward, len(g.G.AllNodes()))

	byLabel := map[string]string{}
	linears := map[string]int{} // box → Linear ops in it
	for _, n := range gv.Nodes.Nodes {
		lbl := strings.SplitN(strings.Trim(n.Attrs["label"], `"`), `\n`, 2)[0]
		byLabel[lbl] = n.Name
		if lbl == "Linear{bias}" {
			linears[in[n.Name]]++
		}
	}
	// Parameters sit in their block's box, inputs in their own.
	for param, box := range map[string]string{
		"wte.weight":         "wte",
		"mlp.linear1.weight": "mlp.linear1",
		"mlp.linear2.bias":   "mlp.linear2",
		"lm_head.weight":     "lm_head",
		"ids":                "inputs",
		"targets":            "inputs",
	} {
		id, ok := byLabel[param]
		require.True(t, ok, "no node labelled %s in\n%s", param, src)
		assert.Equal(t, box, in[id], param)
	}
	// The fused ops are labelled by op and sit in their blocks.
	assert.Equal(t, map[string]int{"mlp.linear1": 1, "mlp.linear2": 1, "lm_head": 1}, linears)
	assert.Contains(t, src, `label="mlp"`, "nested: mlp holds mlp.linear1 and mlp.linear2")
	assert.Contains(t, src, "CrossEntropy{ignore=-100,eps=0}")
	// Edges follow the data: ids feeds the embedding's gather.
	edges := 0
	for _, e := range gv.Edges.Edges {
		if e.Src == byLabel["ids"] {
			edges++
		}
	}
	assert.Equal(t, 1, edges)
	assert.NotEmpty(t, gv.Edges.Edges)

	// The whole training graph, gradients included, also draws.
	full, err := Dot(g)
	require.NoError(t, err)
	assert.Len(t, parseDot(t, full).Nodes.Nodes, len(g.G.AllNodes()))
}

// TestRenderWithoutDot: with no dot on PATH, Render says how to install it.
func TestRenderWithoutDot(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := Render("digraph g { a -> b; }", "svg")
	assert.EqualError(t, err, "train: Graphviz's dot is not installed (apt-get install graphviz)")
}

// TestRenderSVGAndPNG renders a model's picture for real.
func TestRenderSVGAndPNG(t *testing.T) {
	if _, err := exec.LookPath("dot"); err != nil {
		t.Skip("skipped: Graphviz's dot is not on PATH (apt-get install graphviz); TestRenderWithoutDot covers its absence")
	}
	m := newTinyLM(t, tensor.Float32, 1, tinyConfig{Vocab: 8, Dim: 4})
	tr, err := New(m, Config{Optimizer: newAdamW(t), Schedule: Constant(1)})
	require.NoError(t, err)
	defer tr.Close()
	src, err := tr.Dot(Key{Batch: 2, Len: 3})
	require.NoError(t, err)

	svg, err := Render(src, "svg")
	require.NoError(t, err)
	assert.Contains(t, string(svg), "<svg")
	for _, label := range []string{"mlp.linear1", "lm_head.weight", "wte"} {
		assert.Contains(t, string(svg), label, "the block boxes and labels are drawn")
	}

	pic, err := Render(src, "png")
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(pic, []byte("\x89PNG\r\n\x1a\n")), "PNG signature")
	img, err := png.Decode(bytes.NewReader(pic))
	require.NoError(t, err)
	assert.Greater(t, img.Bounds().Dx(), 50)
	assert.Greater(t, img.Bounds().Dy(), 50)

	_, err = Render(src, "-o/tmp/x")
	assert.ErrorContains(t, err, "bad output format")
	_, err = Render("digraph {", "svg")
	assert.ErrorContains(t, err, "dot -Tsvg")
	_, err = Render(src, "nosuchformat")
	assert.ErrorContains(t, err, "dot -Tnosuchformat")
}
