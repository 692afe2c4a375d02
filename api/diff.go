package api

import "time"

// GraphDiff is what changed between two graphs.
type GraphDiff struct {
	At           time.Time `json:"at"`
	AddedNodes   []Node    `json:"added_nodes"`
	UpdatedNodes []Node    `json:"updated_nodes"`
	RemovedNodes []string  `json:"removed_nodes"`
	AddedEdges   []Edge    `json:"added_edges"`
	UpdatedEdges []Edge    `json:"updated_edges"`
	RemovedEdges []string  `json:"removed_edges"`
}

// diffGraphs says what turns a into b.
func diffGraphs(a, b *Graph) *GraphDiff {
	d := &GraphDiff{At: b.At, AddedNodes: []Node{}, UpdatedNodes: []Node{}, RemovedNodes: []string{},
		AddedEdges: []Edge{}, UpdatedEdges: []Edge{}, RemovedEdges: []string{}}
	d.AddedNodes, d.UpdatedNodes, d.RemovedNodes = diff(a.Nodes, b.Nodes, func(n Node) string { return n.ID })
	d.AddedEdges, d.UpdatedEdges, d.RemovedEdges = diff(a.Edges, b.Edges, func(e Edge) string { return e.ID })
	return d
}

func diff[T comparable](a, b []T, id func(T) string) (added, updated []T, removed []string) {
	added, updated, removed = []T{}, []T{}, []string{}
	old := make(map[string]T, len(a))
	for _, x := range a {
		old[id(x)] = x
	}
	for _, y := range b {
		x, ok := old[id(y)]
		switch {
		case !ok:
			added = append(added, y)
		case x != y:
			updated = append(updated, y)
		}
		delete(old, id(y))
	}
	for _, x := range a {
		if _, gone := old[id(x)]; gone {
			removed = append(removed, id(x))
		}
	}
	return added, updated, removed
}
