package viz

import (
	"bytes"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/awalterschulze/gographviz"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/seq2gpt/seq2gpt/blocks"
	"github.com/seq2gpt/seq2gpt/ops"
)

// layered builds the test model, shaped like a Transformer: an embedding,
// two repeated layers (a LayerNorm, a gate by an input both layers read, as
// a causal mask is, an FFN with dropout and a residual addition each, in
// groups "layers.0" and "layers.1"), a head and a loss, for a batch of 2
// rows of 3 tokens.
func layered(t testing.TB) *blocks.Graph {
	t.Helper()
	s, err := blocks.NewStore(tensor.Float32, 1)
	require.NoError(t, err)
	emb, err := blocks.NewEmbedding(s, "emb", 10, 4, blocks.Normal(0, 1))
	require.NoError(t, err)
	type layer struct {
		norm *blocks.LayerNorm
		ffn  *blocks.FeedForward
	}
	var layers []layer
	for i := 0; i < 2; i++ {
		norm, err := blocks.NewLayerNorm(s, fmt.Sprintf("layers.%d.norm", i), 4, 1e-5)
		require.NoError(t, err)
		ffn, err := blocks.NewFeedForward(s, fmt.Sprintf("layers.%d.ffn", i), blocks.FeedForwardConfig{
			DModel: 4, DFF: 8, Activation: blocks.ReLU, Dropout: 0.1})
		require.NoError(t, err)
		layers = append(layers, layer{norm, ffn})
	}
	head, err := blocks.NewLinear(s, "head", blocks.LinearConfig{In: 4, Out: 10})
	require.NoError(t, err)

	g := blocks.NewGraph(s, blocks.Train, 1)
	ids, err := g.Input("ids", tensor.Shape{6}, tensor.Int)
	require.NoError(t, err)
	targets, err := g.Input("targets", tensor.Shape{6})
	require.NoError(t, err)
	gate, err := g.Input("gate", tensor.Shape{2, 3, 4})
	require.NoError(t, err)
	x, err := emb.Forward(g, ids, 2, 3)
	require.NoError(t, err)
	for i, l := range layers {
		require.NoError(t, g.Block(fmt.Sprintf("layers.%d", i), func() error {
			n, err := l.norm.Forward(g, x)
			if err != nil {
				return err
			}
			if err := g.Block(fmt.Sprintf("layers.%d.gate", i), func() error {
				n, err = G.HadamardProd(n, gate)
				return err
			}); err != nil {
				return err
			}
			f, err := l.ffn.Forward(g, n)
			if err != nil {
				return err
			}
			if f, err = g.ApplyDropout(f, 0.1); err != nil {
				return err
			}
			x, err = G.Add(x, f)
			return err
		}))
	}
	logits, err := head.Forward(g, x)
	require.NoError(t, err)
	require.NoError(t, g.Block("loss", func() error {
		flat, err := G.Reshape(logits, tensor.Shape{6, 10})
		if err != nil {
			return err
		}
		_, err = ops.CrossEntropy(flat, targets, -100, 0)
		return err
	}))
	return g
}

func parseDot(t *testing.T, src string) *gographviz.Graph {
	t.Helper()
	ast, err := gographviz.ParseString(src)
	require.NoError(t, err, src)
	gv := gographviz.NewGraph()
	require.NoError(t, gographviz.Analyse(ast, gv))
	return gv
}

func unquote(s string) string { return strings.ReplaceAll(strings.Trim(s, `"`), `\n`, "\n") }

// pos reads a pinned node position "x,y!".
func pos(t *testing.T, n *gographviz.Node) (x, y float64) {
	t.Helper()
	m := regexp.MustCompile(`^"(-?[\d.]+),(-?[\d.]+)!"$`).FindStringSubmatch(n.Attrs["pos"])
	require.NotNil(t, m, "node %s is pinned: %v", n.Name, n.Attrs)
	x, _ = strconv.ParseFloat(m[1], 64)
	y, _ = strconv.ParseFloat(m[2], 64)
	return x, y
}

// TestBlockView: one node per block with its weight count, the residual
// addition of each layer on its own, the dropout folded into its edge,
// shapes where they change, each layer a column of its own in order, read
// from top to bottom.
func TestBlockView(t *testing.T) {
	src, err := Dot(layered(t), Blocks)
	require.NoError(t, err)
	gv := parseDot(t, src)
	labels := map[string]string{}
	for _, n := range gv.Nodes.Nodes {
		if !strings.HasPrefix(n.Name, "title_") {
			labels[n.Name] = unquote(n.Attrs["label"])
		}
	}
	var adds []string
	for name, l := range labels {
		if l == "+" {
			adds = append(adds, name)
		}
	}
	require.Len(t, adds, 2, "one residual addition per layer: %v", labels)
	delete(labels, adds[0])
	delete(labels, adds[1])
	assert.Equal(t, map[string]string{
		"in_ids":          "ids",
		"in_targets":      "targets",
		"b_emb":           "emb\n40 weights",
		"b_layers_0_norm": "norm\n8 weights",
		"b_layers_0_gate": "gate",
		"b_layers_1_gate": "gate",
		"in_gate_0":       "gate",
		"in_gate_1":       "gate",
		"b_layers_0_ffn":  "ffn\n76 weights",
		"b_layers_1_norm": "norm\n8 weights",
		"b_layers_1_ffn":  "ffn\n76 weights",
		"b_head":          "head\n50 weights",
		"b_loss":          "loss",
	}, labels)

	type arrow struct{ from, to, label string }
	var arrows []arrow
	for _, e := range gv.Edges.Edges {
		arrows = append(arrows, arrow{e.Src, e.Dst, unquote(e.Attrs["label"])})
	}
	add0, add1 := adds[0], adds[1]
	if add0 > add1 { // g<id>: the first layer's has the smaller ID
		xa, _ := strconv.Atoi(add0[1:])
		xb, _ := strconv.Atoi(add1[1:])
		if xa > xb {
			add0, add1 = add1, add0
		}
	}
	for _, a := range []arrow{
		{"in_ids", "b_emb", "6"},
		{"b_emb", "b_layers_0_norm", "2×3×4"},
		{"b_emb", add0, ""}, // the residual path
		{"b_layers_0_norm", "b_layers_0_gate", ""},
		{"in_gate_0", "b_layers_0_gate", "2×3×4"}, // the shared input, beside each reader
		{"in_gate_1", "b_layers_1_gate", ""},
		{"b_layers_0_gate", "b_layers_0_ffn", ""},
		{"b_layers_0_ffn", add0, ""}, // through the folded dropout
		{add0, "b_layers_1_norm", ""},
		{add1, "b_head", ""},
		{"b_head", "b_loss", "2×3×10"},
		{"in_targets", "b_loss", "6"},
	} {
		assert.Contains(t, arrows, a)
	}
	// 16: no arrow between the two ffn blocks (with Gorgonia's Rectify its
	// zero constant, shared by both, drew one labelled "scalar").
	assert.Len(t, arrows, 16)

	// Layout: layers.0 is a column left of layers.1, each read downwards
	// (neato's y grows upwards), the head's column after both (or wrapped
	// to the next row).
	at := func(name string) (float64, float64) { return pos(t, gv.Nodes.Lookup[name]) }
	x0, yNorm0 := at("b_layers_0_norm")
	xf0, yFFN0 := at("b_layers_0_ffn")
	xa0, yAdd0 := at(add0)
	x1, _ := at("b_layers_1_norm")
	xh, yh := at("b_head")
	_, yLast := at(add1)
	assert.Equal(t, x0, xf0)
	assert.Equal(t, x0, xa0)
	assert.Greater(t, yNorm0, yFFN0)
	assert.Greater(t, yFFN0, yAdd0)
	assert.Greater(t, x1, x0)
	assert.True(t, xh > x1 || yh < yLast, "the head comes after the layers: right of them or on a row below")
	var titles []string
	for _, sg := range gv.SubGraphs.SubGraphs {
		for kid := range gv.Relations.ParentToChildren[sg.Name] {
			if strings.HasPrefix(kid, "title_") {
				titles = append(titles, unquote(gv.Nodes.Lookup[kid].Attrs["label"]))
			}
		}
	}
	assert.ElementsMatch(t, []string{"layers.0", "layers.1"}, titles, "a box per layer")
}

// TestOpsView: every op in a box per block, nested by name, with labels a
// reader can use: no pointers, no Gorgonia flags.
func TestOpsView(t *testing.T) {
	g := layered(t)
	src, err := Dot(g, Ops)
	require.NoError(t, err)
	gv := parseDot(t, src)
	assert.Len(t, gv.Nodes.Nodes, len(g.G.AllNodes()), "one dot node per graph node")
	labels := map[string]string{}
	for name, sg := range gv.SubGraphs.SubGraphs {
		labels[name] = unquote(sg.Attrs["label"])
	}
	boxOf := map[string]string{}
	for parent, kids := range gv.Relations.ParentToChildren {
		if parent == gv.Name {
			continue
		}
		for kid := range kids {
			if _, isCluster := labels[kid]; !isCluster {
				boxOf[kid] = labels[parent]
			}
		}
	}
	byLabel := map[string]string{}
	var ops []string
	for _, n := range gv.Nodes.Nodes {
		l := strings.SplitN(unquote(n.Attrs["label"]), "\n", 2)[0]
		byLabel[l] = n.Name
		ops = append(ops, l)
	}
	for param, box := range map[string]string{
		"emb.weight":                  "emb",
		"layers.0.ffn.linear1.weight": "layers.0.ffn.linear1",
		"layers.1.norm.bias":          "layers.1.norm",
		"head.weight":                 "head",
		"ids":                         "inputs",
		"gate":                        "inputs",
		"targets":                     "inputs",
	} {
		id, ok := byLabel[param]
		require.True(t, ok, "no node labelled %s in\n%s", param, src)
		assert.Equal(t, box, boxOf[id], param)
	}
	assert.Contains(t, src, `label="layers.0.ffn"`, "nested: layers.0.ffn holds its linears")
	assert.Contains(t, ops, "Dropout{p=0.1}")
	assert.Contains(t, ops, "+")
	assert.Contains(t, ops, "CrossEntropy{ignore=-100,eps=0}")
	assert.NotContains(t, src, "0x", "no pointers")
	assert.NotContains(t, src, " false")
	assert.NotContains(t, src, "id=")
}

func TestOpLabels(t *testing.T) {
	g := G.NewGraph()
	a := G.NewMatrix(g, tensor.Float64, G.WithShape(2, 3), G.WithName("a"))
	b := G.NewMatrix(g, tensor.Float64, G.WithShape(3, 2), G.WithName("b"))
	m := G.Must(G.Mul(a, b))
	s := G.Must(G.Add(m, m))
	x := G.NewTensor(g, tensor.Float64, 3, G.WithShape(2, 2, 3), G.WithName("x"))
	y := G.NewTensor(g, tensor.Float64, 3, G.WithShape(2, 2, 3), G.WithName("y"))
	bmm := G.Must(G.BatchedMatMul(x, y, false, true))
	sm := G.Must(ops.SoftMax(bmm, nil, 1/3.0))
	for n, want := range map[*G.Node]string{m: "A·B", s: "+", bmm: "A·Bᵀ (batched)", sm: "SoftMax{scale=0.3333,mask=false}"} {
		assert.Equal(t, want, opLabel(n))
	}
}

// printEnv makes the test binary a child that prints both pictures of the
// test model (see TestDotIsTheSameEveryRun).
const printEnv = "SEQ2GPT_VIZ_PRINT"

// TestPrintHelper is the child of TestDotIsTheSameEveryRun; in a normal
// run it returns at once.
func TestPrintHelper(t *testing.T) {
	if os.Getenv(printEnv) == "" {
		return
	}
	for _, d := range []Detail{Blocks, Ops} {
		src, err := Dot(layered(t), d)
		require.NoError(t, err)
		fmt.Print(src)
	}
	os.Exit(0)
}

// TestDotIsTheSameEveryRun: the same model gives the same bytes, built
// twice in this process and in two other processes (other addresses, other
// map orders).
func TestDotIsTheSameEveryRun(t *testing.T) {
	var want bytes.Buffer
	for _, d := range []Detail{Blocks, Ops} {
		a, err := Dot(layered(t), d)
		require.NoError(t, err)
		b, err := Dot(layered(t), d)
		require.NoError(t, err)
		require.Equal(t, a, b, "%v: built twice", d)
		want.WriteString(a)
	}
	for run := 0; run < 2; run++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestPrintHelper$", "-test.count=1")
		cmd.Env = append(os.Environ(), printEnv+"=1")
		out, err := cmd.Output()
		require.NoError(t, err)
		assert.Equal(t, want.String(), string(out), "run %d", run)
	}
}

func TestParseDetail(t *testing.T) {
	for s, want := range map[string]Detail{"blocks": Blocks, "ops": Ops} {
		d, err := ParseDetail(s)
		require.NoError(t, err)
		assert.Equal(t, want, d)
		assert.Equal(t, s, d.String())
	}
	_, err := ParseDetail("all")
	assert.EqualError(t, err, `viz: detail "all": want blocks or ops`)
	_, err = Dot(blocks.NewGraph(nil, blocks.Eval, 0), Blocks)
	assert.ErrorContains(t, err, "the graph is empty")
}

// TestRenderWithoutDot: with no dot on PATH, Render says how to install it.
func TestRenderWithoutDot(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := Render("digraph g { a -> b; }", "svg")
	assert.EqualError(t, err, "viz: Graphviz's dot is not installed (apt-get install graphviz)")
}

// TestRenderSVGAndPNG renders both pictures for real.
func TestRenderSVGAndPNG(t *testing.T) {
	if _, err := exec.LookPath("dot"); err != nil {
		t.Skip("skipped: Graphviz's dot is not on PATH (apt-get install graphviz); TestRenderWithoutDot covers its absence")
	}
	for _, d := range []Detail{Blocks, Ops} {
		src, err := Dot(layered(t), d)
		require.NoError(t, err)
		svg, err := Render(src, "svg")
		require.NoError(t, err)
		assert.Contains(t, string(svg), "<svg")
		for _, label := range []string{"layers.0", "emb", "head"} {
			assert.Contains(t, string(svg), label, "%v: the boxes and labels are drawn", d)
		}
		pic, err := Render(src, "png")
		require.NoError(t, err)
		img, err := png.Decode(bytes.NewReader(pic))
		require.NoError(t, err)
		assert.Greater(t, img.Bounds().Dx(), 100)
		assert.Greater(t, img.Bounds().Dy(), 100)
	}
	_, err := Render("digraph g { a -> b; }", "-o/tmp/x")
	assert.ErrorContains(t, err, "bad output format")
	_, err = Render("digraph {", "svg")
	assert.ErrorContains(t, err, "dot -Tsvg")
	_, err = Render("digraph g { a -> b; }", "nosuchformat")
	assert.ErrorContains(t, err, "dot -Tnosuchformat")
}
