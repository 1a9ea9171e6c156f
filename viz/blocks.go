package viz

import (
	"bytes"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	G "gorgonia.org/gorgonia"
)

// The block view. A container is a group that holds repeated layers, or is
// one: a group whose last segment is an index ("h.0"), or an ancestor of
// one ("h", "encoder.layers"). Every other group is a block, drawn as one
// box with the groups nested in it (h.0.attn holds h.0.attn.sdpa); nodes
// that sit in a container itself (a layer's residual additions) are drawn
// on their own, and those of them that only pass one tensor on (a dropout,
// a reshape) are folded into their edge.
//
// The picture is laid out here rather than by dot's ranking, whose
// crossing minimisation does not keep repeated layers in order: each
// repeated layer is a column read from top to bottom, the blocks before the
// first layer and after the last are columns of their own, and the columns
// stand left to right in rows, as many to a row as makes the picture
// nearest a 16:9 screen. The file asks Graphviz for its neato engine with
// every node pinned (layout=neato, pos="x,y!"), which only routes the
// edges, so "dot -Tpng" on it draws this same picture.

func containers(groups map[*G.Node]string) map[string]bool {
	c := map[string]bool{"": true}
	for _, grp := range groups {
		segs := strings.Split(grp, ".")
		for i := len(segs) - 1; i >= 0; i-- {
			if isIndex(segs[i]) {
				for j := 0; j <= i; j++ {
					c[strings.Join(segs[:j+1], ".")] = true
				}
				break
			}
		}
	}
	return c
}

func isIndex(seg string) bool {
	_, err := strconv.Atoi(seg)
	return err == nil
}

// boxOf is the block a group belongs to (its shortest prefix that is not a
// container) and the container it sits in; box is "" for a group that is a
// container itself.
func boxOf(grp string, c map[string]bool) (box, parent string) {
	if grp == "" {
		return "", ""
	}
	segs := strings.Split(grp, ".")
	for i := range segs {
		p := strings.Join(segs[:i+1], ".")
		if !c[p] {
			return p, strings.Join(segs[:i], ".")
		}
		parent = p
	}
	return "", grp
}

// item is one thing the block view draws: a block, a graph input, or a
// node of a container (a residual addition).
type item struct {
	id     string // dot node name
	label  string
	column string // the repeated layer it belongs to ("": none)
	kind   int
	params int
	order  int64 // the smallest node ID in it: the drawing order

	depth  int     // its row in its column
	x, y   float64 // its centre, in points from the top left
	width  float64 // in points
	height float64
}

const (
	kindBlock = iota
	kindInput
	kindGlue
)

// edge is one arrow of the block view: the tensor src flows from one item
// into another.
type edge struct {
	from, to *item
	src      *G.Node
	weight   bool // src is a parameter another block uses (a tied weight)
}

// blockView is the block picture: its items and the edges between them.
type blockView struct {
	items []*item // in drawing order
	edges []edge
}

func (gr *graphInfo) blockView() blockView {
	cont := containers(gr.groups)
	items := map[string]*item{}
	rep := map[*G.Node]*item{} // what each node is drawn as
	add := func(n *G.Node, id, label, column string, kind int) *item {
		it, ok := items[id]
		if !ok {
			it = &item{id: id, label: label, column: column, kind: kind, order: n.ID()}
			items[id] = it
		}
		it.order = min(it.order, n.ID())
		rep[n] = it
		return it
	}
	for _, n := range gr.nodes {
		switch box, parent := boxOf(gr.groups[n], cont); {
		case gr.isInput(n):
			add(n, "in_"+sanitize(n.Name()), n.Name(), "", kindInput)
		case box != "":
			it := add(n, "b_"+sanitize(box), strings.TrimPrefix(box, parent+"."), columnOf(parent), kindBlock)
			if gr.params[n] != "" {
				it.params += n.Shape().TotalSize()
			}
		case len(gr.inputs[n.ID()]) == 1:
			// folded into its edge
		default:
			add(n, fmt.Sprintf("g%d", n.ID()), opLabel(n), columnOf(parent), kindGlue)
		}
	}
	// source follows folded nodes back to the item that made the value and
	// the node that carries it out of that item.
	var source func(n *G.Node) (*item, *G.Node)
	source = func(n *G.Node) (*item, *G.Node) {
		if it, ok := rep[n]; ok {
			return it, n
		}
		if in := gr.inputs[n.ID()]; len(in) == 1 {
			return source(in[0])
		}
		return nil, nil
	}
	var v blockView
	seen := map[[2]*item]map[*G.Node]bool{}
	for _, n := range gr.nodes {
		to, ok := rep[n]
		if !ok {
			continue
		}
		for _, in := range gr.inputs[n.ID()] {
			from, src := source(in)
			if from == nil || from == to {
				continue
			}
			k := [2]*item{from, to}
			if seen[k] == nil {
				seen[k] = map[*G.Node]bool{}
			}
			if !seen[k][src] {
				seen[k][src] = true
				v.edges = append(v.edges, edge{from: from, to: to, src: src, weight: gr.params[src] != ""})
			}
		}
	}
	// An input that several blocks read (a causal mask read by every
	// layer) is drawn beside each of them rather than as one node with
	// arrows across the whole picture.
	consumers := map[*item][]*item{}
	for _, e := range v.edges {
		if e.from.kind == kindInput {
			consumers[e.from] = append(consumers[e.from], e.to)
		}
	}
	for i, e := range v.edges {
		if cs := consumers[e.from]; len(cs) > 1 {
			in := e.from
			cp := &item{id: fmt.Sprintf("%s_%d", in.id, slices.Index(cs, e.to)), label: in.label, kind: kindInput,
				order: e.to.order, column: e.to.column}
			items[cp.id] = cp
			v.edges[i].from = cp
			delete(items, in.id)
		}
	}
	for _, it := range items {
		v.items = append(v.items, it)
	}
	// Map order is random: the ID breaks ties (an input's copy has the
	// order of the block it feeds).
	sort.Slice(v.items, func(i, j int) bool {
		a, b := v.items[i], v.items[j]
		return a.order < b.order || a.order == b.order && a.id < b.id
	})
	return v
}

// columnOf is the repeated layer a container is or lies in ("" for none).
func columnOf(container string) string {
	for c := container; c != ""; c = parentOf(c) {
		if isIndex(c[strings.LastIndexByte(c, '.')+1:]) {
			return c
		}
	}
	return ""
}

func parentOf(name string) string {
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name[:i]
	}
	return ""
}

// Sizes, in points (1/72 inch), of the layout.
const (
	charWidth = 6.6 // Helvetica at 11 points, a little wide for safety
	lineH     = 13.5
	padX      = 14
	padY      = 10
	glueSize  = 16 // a "+" circle
	gapX      = 40 // between boxes side by side and between columns
	gapY      = 16 // between rows of a column
	headerH   = 20 // a column's title
	rowGap    = 36 // between rows of columns
)

// section is one column of the picture: a repeated layer, or a run of
// items outside any (the embeddings, the head and the loss).
type section struct {
	name          string // the layer ("" outside one)
	items         []*item
	width, height float64
	x, y          float64 // top left
}

func (gr *graphInfo) blocksDot() string {
	v := gr.blockView()
	for _, it := range v.items {
		it.width, it.height = itemSize(it)
	}
	sections := sectionsOf(v)
	placeSections(sections)

	var b bytes.Buffer
	b.WriteString("digraph model {\n")
	b.WriteString("\tlayout=neato; splines=true; overlap=true; notranslate=true; inputscale=72;\n")
	b.WriteString("\tnode [shape=box, style=\"rounded,filled\", fillcolor=\"#e8f0fe\", fontname=\"Helvetica\", fontsize=11, fixedsize=true];\n")
	b.WriteString("\tedge [fontname=\"Helvetica\", fontsize=8, color=\"#555555\", fontcolor=\"#333333\", arrowsize=0.6];\n")
	b.WriteString("\tgraph [fontname=\"Helvetica\", fontsize=11, color=\"#aaaaaa\"];\n")
	total := 0.0
	for _, s := range sections {
		total = math.Max(total, s.y+s.height)
	}
	pos := func(x, y float64) string { return fmt.Sprintf("pos=\"%.0f,%.0f!\"", x, total-y) }
	seq := 0
	for _, s := range sections {
		ind := "\t"
		if s.name != "" {
			seq++
			fmt.Fprintf(&b, "\tsubgraph cluster_%d {\n", seq)
			ind = "\t\t"
			fmt.Fprintf(&b, "%stitle_%d [label=%s, shape=plaintext, style=\"\", width=%.2f, height=%.2f, %s];\n", ind, seq,
				quote(s.name), s.width/72, headerH/72.0, pos(s.x+s.width/2, s.y+headerH/2))
		}
		for _, it := range s.items {
			fmt.Fprintf(&b, "%s%s [%s, width=%.2f, height=%.2f, %s];\n", ind, it.id, itemAttrs(it), it.width/72, it.height/72, pos(it.x, it.y))
		}
		if s.name != "" {
			b.WriteString("\t}\n")
		}
	}
	// A tensor's shape is written where it changes (a shape that only
	// passes through blocks, the d_model stream, is written once, not on
	// every arrow), each tensor's once, and one shape once into each item.
	labelled := map[*G.Node]bool{}
	into := map[string]bool{} // "item shape": one label per shape into an item
	inShapes := map[*item]map[string]bool{}
	for _, e := range v.edges {
		if inShapes[e.to] == nil {
			inShapes[e.to] = map[string]bool{}
		}
		inShapes[e.to][shapeLabel(e.src)] = true
	}
	for _, e := range v.edges {
		var attrs []string
		shape := shapeLabel(e.src)
		switch {
		case e.weight:
			attrs = append(attrs, "label="+quote(gr.params[e.src]+"\n"+shape), "style=dashed")
		case !labelled[e.src] && !inShapes[e.from][shape] && !into[e.to.id+" "+shape]:
			labelled[e.src], into[e.to.id+" "+shape] = true, true
			attrs = append(attrs, "label="+quote(shape))
		}
		fmt.Fprintf(&b, "\t%s -> %s", e.from.id, e.to.id)
		if len(attrs) > 0 {
			fmt.Fprintf(&b, " [%s]", strings.Join(attrs, ", "))
		}
		b.WriteString(";\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// sectionsOf cuts the items, in drawing order, into columns: one per
// repeated layer, one per run of items between layers; and gives each item
// its row, the longest path to it from the column's own items.
func sectionsOf(v blockView) []*section {
	var out []*section
	byName := map[string]*section{}
	var run *section
	for _, it := range v.items {
		if it.column != "" {
			s, ok := byName[it.column]
			if !ok {
				s = &section{name: it.column}
				byName[it.column] = s
				out = append(out, s)
			}
			s.items = append(s.items, it)
			run = nil
			continue
		}
		if run == nil {
			run = &section{}
			out = append(out, run)
		}
		run.items = append(run.items, it)
	}
	// The items a graph input feeds sit in its column; the input itself
	// too (it has no rank of its own there).
	in := map[*item][]*item{}
	for _, e := range v.edges {
		in[e.to] = append(in[e.to], e.from)
	}
	for _, s := range out {
		members := map[*item]bool{}
		for _, it := range s.items {
			members[it] = true
		}
		// Rows: the longest path to each item from the column's own items
		// (drawing order is a topological order) …
		for _, it := range s.items {
			for _, f := range in[it] {
				if members[f] && f.kind != kindInput && f.order < it.order {
					it.depth = max(it.depth, f.depth+1)
				}
			}
		}
		// … and the graph inputs a column reads get a row of their own just
		// above the first item they feed, pushing the rest down.
		feeds := map[int][]*item{} // row → the inputs that feed it first
		for _, it := range s.items {
			if it.kind != kindInput {
				continue
			}
			d := math.MaxInt
			for _, e := range v.edges {
				if e.from == it && members[e.to] {
					d = min(d, e.to.depth)
				}
			}
			if d != math.MaxInt {
				feeds[d] = append(feeds[d], it)
			}
		}
		rows := make([]int, 0, len(feeds))
		for d := range feeds {
			rows = append(rows, d)
		}
		sort.Sort(sort.Reverse(sort.IntSlice(rows)))
		for _, d := range rows {
			for _, it := range s.items {
				if it.depth >= d && (it.kind != kindInput || !slices.Contains(feeds[d], it)) {
					it.depth++
				}
			}
			for _, it := range feeds[d] {
				it.depth = d
			}
		}
		layoutSection(s)
	}
	return out
}

// layoutSection places a column's items in rows by depth, side by side
// within a row, relative to the column's top left.
func layoutSection(s *section) {
	rows := map[int][]*item{}
	maxDepth := 0
	for _, it := range s.items {
		rows[it.depth] = append(rows[it.depth], it)
		maxDepth = max(maxDepth, it.depth)
	}
	cellW := 0.0
	widest := 1
	for _, it := range s.items {
		cellW = math.Max(cellW, it.width)
	}
	rowH := make([]float64, maxDepth+1)
	for d := 0; d <= maxDepth; d++ {
		widest = max(widest, len(rows[d]))
		for _, it := range rows[d] {
			rowH[d] = math.Max(rowH[d], it.height)
		}
	}
	s.width = float64(widest)*cellW + float64(widest-1)*gapX
	y := 0.0
	if s.name != "" {
		y = headerH + gapY/2
	}
	for d := 0; d <= maxDepth; d++ {
		r := rows[d]
		rowW := float64(len(r))*cellW + float64(len(r)-1)*gapX
		for i, it := range r {
			it.x = (s.width-rowW)/2 + float64(i)*(cellW+gapX) + cellW/2
			it.y = y + rowH[d]/2
		}
		if rowH[d] > 0 {
			y += rowH[d] + gapY
		}
	}
	s.height = y - gapY
}

// placeSections puts the columns left to right in rows, as many to a row
// as brings the whole picture nearest 16:9, and makes item positions
// absolute.
func placeSections(ss []*section) {
	best, bestK := math.Inf(1), len(ss)
	for k := 1; k <= len(ss); k++ {
		w, h := arrange(ss, k, false)
		if d := math.Abs(math.Log(w / h / (16.0 / 9))); d < best-1e-9 {
			best, bestK = d, k
		}
	}
	arrange(ss, bestK, true)
}

// arrange lays out the sections k to a row and returns the picture's size;
// with set it records the positions.
func arrange(ss []*section, k int, set bool) (w, h float64) {
	x, y, rowH := 0.0, 0.0, 0.0
	for i, s := range ss {
		if i > 0 && i%k == 0 {
			x, y = 0, y+rowH+rowGap
			rowH = 0
		}
		if set {
			s.x, s.y = x, y
			for _, it := range s.items {
				it.x += x
				it.y += y
			}
		}
		x += s.width + gapX
		w = math.Max(w, x-gapX)
		rowH = math.Max(rowH, s.height)
	}
	return w, y + rowH
}

// itemSize is an item's box, from its label.
func itemSize(it *item) (w, h float64) {
	if it.kind == kindGlue && it.label == "+" {
		return glueSize, glueSize
	}
	lines := strings.Split(itemLabel(it), "\n")
	n := 0
	for _, l := range lines {
		n = max(n, len([]rune(l)))
	}
	return float64(n)*charWidth + padX, float64(len(lines))*lineH + padY
}

func itemLabel(it *item) string {
	if it.kind == kindBlock && it.params > 0 {
		return it.label + "\n" + countLabel(it.params)
	}
	return it.label
}

func itemAttrs(it *item) string {
	switch it.kind {
	case kindInput:
		return fmt.Sprintf("label=%s, shape=plaintext, style=\"\"", quote(it.label))
	case kindGlue:
		if it.label == "+" {
			return "label=\"+\", shape=circle, fillcolor=white"
		}
		return fmt.Sprintf("label=%s, fillcolor=white", quote(it.label))
	}
	return "label=" + quote(itemLabel(it))
}

// countLabel says how many weights a block has: "2.36M weights".
func countLabel(n int) string {
	switch {
	case n >= 1_000_000:
		return fmt.Sprintf("%.2fM weights", float64(n)/1e6)
	case n >= 1000:
		return fmt.Sprintf("%.1fk weights", float64(n)/1e3)
	}
	return fmt.Sprintf("%d weights", n)
}

// shapeLabel is a node's shape as "1×512×768".
func shapeLabel(n *G.Node) string {
	if n.IsScalar() {
		return "scalar"
	}
	s := n.Shape()
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = strconv.Itoa(d)
	}
	return strings.Join(parts, "×")
}

var idRe = regexp.MustCompile(`[^A-Za-z0-9_]`)

func sanitize(s string) string { return idRe.ReplaceAllString(s, "_") }
