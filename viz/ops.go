package viz

import (
	"bytes"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	G "gorgonia.org/gorgonia"
)

func (gr *graphInfo) opsDot() string {
	// Cluster tree: a node's group splits on dots into nested boxes.
	root := &cluster{children: map[string]*cluster{}}
	for _, n := range gr.nodes {
		var path []string
		switch grp := gr.groups[n]; {
		case gr.isInput(n):
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
	root.write(&b, 1, &seq, gr.nodeLabel)
	for _, n := range gr.nodes {
		for _, in := range gr.inputs[n.ID()] {
			fmt.Fprintf(&b, "\tn%d -> n%d;\n", in.ID(), n.ID())
		}
	}
	b.WriteString("}\n")
	return b.String()
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
	keys := make([]string, 0, len(c.children))
	for k := range c.children {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		c.children[k].write(b, depth+1, seq, label)
	}
	if c.name != "" {
		fmt.Fprintf(b, "%s}\n", strings.Repeat("\t", depth))
	}
}

func (gr *graphInfo) nodeLabel(n *G.Node) string {
	shape := fmt.Sprint(n.Shape())
	if n.IsScalar() {
		shape = "scalar"
	}
	if name, ok := gr.params[n]; ok {
		return name + "\n" + shape
	}
	if n.Op() == nil {
		return n.Name() + "\n" + shape + " " + n.Dtype().String()
	}
	return opLabel(n) + "\n" + shape
}

var (
	// A pointer (Dropout's random state) or an internal identity would
	// make the picture change from run to run and says nothing to a reader.
	pointerField = regexp.MustCompile(`,?\b(?:id=\d+|[A-Za-z_]+=0x[0-9a-fA-F]+)`)
	longNumber   = regexp.MustCompile(`\d+\.\d{5,}(?:e[-+]?\d+)?`)
	boolSuffix   = regexp.MustCompile(`^(\S+) (?:true|false)$`)
	// Gorgonia's names for its products.
	products = map[string]string{
		"A × B": "A·B", "A × Bᵀ": "A·Bᵀ", "Aᵀ × B": "Aᵀ·B", "Aᵀ × Bᵀ": "Aᵀ·Bᵀ",
		"A ××× B": "A·B (batched)", "A ××× Bᵀ": "A·Bᵀ (batched)", "Aᵀ ××× B": "Aᵀ·B (batched)", "Aᵀ ××× Bᵀ": "Aᵀ·Bᵀ (batched)",
	}
)

// opLabel is an op's name as a reader wants it: Gorgonia's "+ false" is
// "+", "A ××× Bᵀ" is "A·Bᵀ (batched)", Dropout{p=0.1,id=3,rng=0x…} is
// Dropout{p=0.1}, and long decimals are cut to four significant digits.
func opLabel(n *G.Node) string {
	s := n.Op().String()
	if p, ok := products[s]; ok {
		return p
	}
	s = boolSuffix.ReplaceAllString(s, "$1")
	s = pointerField.ReplaceAllString(s, "")
	s = strings.Replace(s, "{,", "{", 1)
	s = strings.TrimSuffix(s, "{}")
	s = strings.Replace(s, "Op{", "{", 1)
	return longNumber.ReplaceAllStringFunc(s, func(x string) string {
		f, err := strconv.ParseFloat(x, 64)
		if err != nil {
			return x
		}
		return strconv.FormatFloat(f, 'g', 4, 64)
	})
}
