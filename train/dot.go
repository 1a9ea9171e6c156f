package train

import (
	"bytes"
	"fmt"
	"os/exec"
	"reflect"
	"sort"
	"strings"

	"github.com/pkg/errors"
	G "gorgonia.org/gorgonia"

	"github.com/seq2gpt/seq2gpt/blocks"
)

// Dot draws the graph as Graphviz source with one box (cluster) per block —
// the group name each block gives its nodes — nested by dotted prefix
// ("h" ⊃ "h.0" ⊃ "h.0.attn"), the inputs in a box of their own, and each node
// labelled with its parameter or input name, or its op, and its shape. Edges
// run in the direction data flows. The output is deterministic.
//
// Why not G.ExprGraph.ToDot alone: its HTML-table labels make a model of a
// few hundred nodes unreadable, its order changes from run to run, and
// parsers (gographviz among them) reject its labels.
func Dot(g *blocks.Graph) (string, error) {
	return dotOf(g, g.G.AllNodes())
}

// Dot draws the forward graph of key's training or evaluation program (its
// gradient nodes left out), building it if needed.
func (t *Trainer) Dot(key Key) (string, error) {
	p, err := t.program(key)
	if err != nil {
		return "", err
	}
	return dotOf(p.graph, p.graph.G.AllNodes()[:p.forward])
}

func dotOf(g *blocks.Graph, nodes G.Nodes) (string, error) {
	if len(nodes) == 0 {
		return "", errors.New("train: the graph is empty")
	}
	params := map[*G.Node]string{}
	names, pn := g.Params()
	for i, n := range pn {
		params[n] = names[i]
	}
	in := map[int64]bool{}
	for _, n := range nodes {
		in[n.ID()] = true
	}

	// Cluster tree: a node's group splits on dots into nested boxes.
	root := &cluster{children: map[string]*cluster{}}
	for _, n := range nodes {
		var path []string
		switch grp := groupOf(n); {
		case n.Op() == nil && params[n] == "":
			path = []string{"inputs"}
		case grp != "":
			path = strings.Split(grp, ".")
		}
		c := root
		for i := range path {
			name := strings.Join(path[:i+1], ".")
			next, ok := c.children[name]
			if !ok {
				next = &cluster{name: name, children: map[string]*cluster{}}
				c.children[name] = next
			}
			c = next
		}
		c.nodes = append(c.nodes, n)
	}

	var b bytes.Buffer
	b.WriteString("digraph model {\n\trankdir=BT;\n\tnode [shape=box, style=rounded, fontname=\"Helvetica\", fontsize=10];\n")
	b.WriteString("\tgraph [fontname=\"Helvetica\", fontsize=11, style=rounded];\n")
	seq := 0
	root.write(&b, 1, &seq, func(n *G.Node) string { return label(n, params) })
	for _, n := range nodes {
		kids := g.G.From(n.ID())
		var ids []int64
		for kids.Next() {
			if id := kids.Node().ID(); in[id] {
				ids = append(ids, id)
			}
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		for _, id := range ids {
			fmt.Fprintf(&b, "\tn%d -> n%d;\n", id, n.ID())
		}
	}
	b.WriteString("}\n")
	return b.String(), nil
}

type cluster struct {
	name     string
	nodes    G.Nodes
	children map[string]*cluster
}

func (c *cluster) write(b *bytes.Buffer, depth int, seq *int, label func(*G.Node) string) {
	ind := strings.Repeat("\t", depth)
	if c.name != "" {
		*seq++
		fmt.Fprintf(b, "%ssubgraph cluster_%d {\n%s\tlabel=%s;\n", ind, *seq, ind, quote(c.name))
		ind += "\t"
	}
	for _, n := range c.nodes {
		attrs := ""
		if n.Op() == nil {
			attrs = ", style=\"rounded,filled\", fillcolor=\"#eeeeee\""
		}
		fmt.Fprintf(b, "%sn%d [label=%s%s];\n", ind, n.ID(), quote(label(n)), attrs)
	}
	for _, k := range sortedKeys(c.children) {
		c.children[k].write(b, depth+1, seq, label)
	}
	if c.name != "" {
		fmt.Fprintf(b, "%s}\n", strings.Repeat("\t", depth))
	}
}

func label(n *G.Node, params map[*G.Node]string) string {
	shape := fmt.Sprint(n.Shape())
	if n.IsScalar() {
		shape = "scalar"
	}
	if name, ok := params[n]; ok {
		return name + "\n" + shape
	}
	if n.Op() == nil {
		return n.Name() + "\n" + shape + " " + n.Dtype().String()
	}
	return n.Op().String() + "\n" + shape
}

func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// groupOf is the group name a block gave the node (G.WithGroupName). Gorgonia
// keeps it in an unexported field and exports only the newer, unrelated
// Groups(); reflection reads it (TestDotGroupsFollowBlocks pins this).
func groupOf(n *G.Node) string {
	f := reflect.ValueOf(n).Elem().FieldByName("group")
	if !f.IsValid() || f.Kind() != reflect.String {
		return ""
	}
	return f.String()
}

// Render runs Graphviz's dot on the source, giving format ("svg", "png",
// "pdf", …).
func Render(dot, format string) ([]byte, error) {
	path, err := exec.LookPath("dot")
	if err != nil {
		return nil, errors.New("train: Graphviz's dot is not installed (apt-get install graphviz)")
	}
	if format == "" || strings.ContainsAny(format, " \t\n-") {
		return nil, errors.Errorf("train: bad output format %q", format)
	}
	cmd := exec.Command(path, "-T"+format)
	cmd.Stdin = strings.NewReader(dot)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return nil, errors.Wrapf(err, "train: dot -T%s: %s", format, strings.TrimSpace(stderr.String()))
	}
	return out.Bytes(), nil
}
