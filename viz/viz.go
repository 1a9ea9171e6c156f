// Package viz draws a model's expression graph as Graphviz dot source and
// renders it with Graphviz's dot.
//
// The default picture, Blocks, has one box per block — the groups that
// blocks.Graph.Block gives the nodes it adds (tokens_embed, h.0.attn,
// h.0.mlp, h.0.ln_1, lm_head, loss …) — with the shape of the tensor that
// flows on each edge between them. Repeated layers (groups whose name ends
// in an index: h.0, h.1, … or encoder.layers.3) are drawn as columns side
// by side, each read from top to bottom, so a twelve-layer model fits on
// one screen. Ops draws every op instead, inside nested boxes for its
// blocks. viz knows no particular model: it reads only the graph, the group
// names and the parameter names.
//
// The output is deterministic: the same graph gives the same bytes from run
// to run (nodes are named by group and ID, pointers never appear in labels).
package viz

import (
	"bytes"
	"os/exec"
	"reflect"
	"sort"
	"strings"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"

	"github.com/seq2gpt/seq2gpt/blocks"
)

// Detail says how much of a graph a picture shows.
type Detail int

const (
	// Blocks draws one box per block, with tensor shapes on the edges.
	Blocks Detail = iota
	// Ops draws every op, nested in boxes for the blocks.
	Ops
)

// ParseDetail reads a Detail's name: "blocks" or "ops".
func ParseDetail(s string) (Detail, error) {
	switch s {
	case "blocks":
		return Blocks, nil
	case "ops":
		return Ops, nil
	}
	return 0, errors.Errorf("viz: detail %q: want blocks or ops", s)
}

func (d Detail) String() string {
	if d == Ops {
		return "ops"
	}
	return "blocks"
}

// Dot draws g as Graphviz source at the given detail. Draw a graph as a
// model's Build made it: a graph the Trainer compiled for training also
// holds its gradient nodes, which belong to no block.
//
// Why not G.ExprGraph.ToDot: its HTML-table labels make a model of a few
// hundred nodes unreadable, its order changes from run to run, and parsers
// (gographviz among them) reject its labels.
func Dot(g *blocks.Graph, d Detail) (string, error) {
	nodes := g.G.AllNodes()
	if len(nodes) == 0 {
		return "", errors.New("viz: the graph is empty")
	}
	gr := newGraphInfo(g, nodes)
	if d == Ops {
		return gr.opsDot(), nil
	}
	return gr.blocksDot(), nil
}

// graphInfo is what both pictures read from a graph.
type graphInfo struct {
	g      *blocks.Graph
	nodes  G.Nodes
	params map[*G.Node]string
	inputs map[int64][]*G.Node // node ID → its inputs in the graph, by ID
	groups map[*G.Node]string
}

func newGraphInfo(g *blocks.Graph, nodes G.Nodes) *graphInfo {
	gr := &graphInfo{g: g, nodes: nodes, params: map[*G.Node]string{},
		inputs: map[int64][]*G.Node{}, groups: map[*G.Node]string{}}
	names, pn := g.Params()
	for i, n := range pn {
		gr.params[n] = names[i]
	}
	byID := map[int64]*G.Node{}
	for _, n := range nodes {
		byID[n.ID()] = n
		gr.groups[n] = groupOf(n)
	}
	for _, n := range nodes {
		kids := g.G.From(n.ID())
		var in []*G.Node
		for kids.Next() {
			if k, ok := byID[kids.Node().ID()]; ok {
				in = append(in, k)
			}
		}
		sort.Slice(in, func(i, j int) bool { return in[i].ID() < in[j].ID() })
		gr.inputs[n.ID()] = in
	}
	return gr
}

// isInput tells a graph input (ids, targets, a mask) from parameters and
// ops.
func (gr *graphInfo) isInput(n *G.Node) bool { return n.Op() == nil && gr.params[n] == "" }

// groupOf is the group name a block gave the node (G.WithGroupName). Gorgonia
// keeps it in an unexported field and exports only the newer, unrelated
// Groups(); reflection reads it (TestOpsViewGroupsFollowBlocks pins this).
func groupOf(n *G.Node) string {
	f := reflect.ValueOf(n).Elem().FieldByName("group")
	if !f.IsValid() || f.Kind() != reflect.String {
		return ""
	}
	return f.String()
}

func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// Render runs Graphviz's dot on the source, giving format ("svg", "png",
// "pdf", …).
func Render(dot, format string) ([]byte, error) {
	path, err := exec.LookPath("dot")
	if err != nil {
		return nil, errors.New("viz: Graphviz's dot is not installed (apt-get install graphviz)")
	}
	if format == "" || strings.ContainsAny(format, " \t\n-") {
		return nil, errors.Errorf("viz: bad output format %q", format)
	}
	cmd := exec.Command(path, "-T"+format)
	cmd.Stdin = strings.NewReader(dot)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return nil, errors.Wrapf(err, "viz: dot -T%s: %s", format, strings.TrimSpace(stderr.String()))
	}
	return out.Bytes(), nil
}
