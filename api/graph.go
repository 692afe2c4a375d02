package api

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"

	"github.com/icptrack/icptrack/flow"
)

// Node is a process on the graph.
type Node struct {
	ID          string  `json:"id"`
	PID         uint32  `json:"pid"`
	Comm        string  `json:"comm"`
	Exe         string  `json:"exe"`
	Container   string  `json:"container"`
	OpsPerSec   float64 `json:"ops_per_sec"`
	BytesPerSec float64 `json:"bytes_per_sec"`
	Errors      int64   `json:"errors"`
}

// Edge is a channel between two processes, in one direction: from the
// sender (Source) to the receiver (Target).
type Edge struct {
	ID          string  `json:"id"`
	Channel     string  `json:"channel"`
	Source      string  `json:"source"`
	Target      string  `json:"target"`
	Mechanism   string  `json:"mechanism"`
	Endpoint    string  `json:"endpoint"`
	OpsPerSec   float64 `json:"ops_per_sec"`
	BytesPerSec float64 `json:"bytes_per_sec"`
	P50NS       int64   `json:"p50_ns"`
	P99NS       int64   `json:"p99_ns"`
	Errors      int64   `json:"errors"`
}

// Graph is who talked to whom over a window ending at At.
type Graph struct {
	WindowNS int64     `json:"window_ns"`
	At       time.Time `json:"at"`
	Nodes    []Node    `json:"nodes"`
	Edges    []Edge    `json:"edges"`
}

func nodeID(pid uint32) string { return "p:" + strconv.FormatUint(uint64(pid), 10) }

// edgeKey is one channel in one direction.
type edgeKey struct {
	channel  string
	from, to uint32
}

func (k edgeKey) id() string { return fmt.Sprintf("%s|%d>%d", k.channel, k.from, k.to) }

// counts are one second's operations of a node or an edge. An edge counts
// its sends and its receives apart: a write and the read that takes its
// bytes are one transfer, counted once (the busier end's figures).
type counts struct {
	sec                  int64
	sendOps, recvOps     int64
	sendBytes, recvBytes int64
	errors               int64
}

// sketchEvery is the width of a latency sketch's bucket: merging a
// sketch per second per edge would cost too much for a large graph, so
// percentiles cover the window rounded out to 20 seconds (BenchmarkGraph).
const sketchEvery = 20

type latency struct {
	sec    int64 // a multiple of sketchEvery
	sketch *ddsketch.DDSketch
}

type nodeState struct {
	node    Node
	seconds []counts
}

type edgeState struct {
	key       edgeKey
	id        string
	mechanism string
	endpoint  string
	seconds   []counts
	latencies []latency
}

// graphBuilder sums operations into per-second counts by process and by
// channel direction, and gives the graph of any window it still holds.
// It is not safe for concurrent use.
type graphBuilder struct {
	nodes map[uint32]*nodeState
	edges map[edgeKey]*edgeState
}

func newGraphBuilder() *graphBuilder {
	return &graphBuilder{nodes: map[uint32]*nodeState{}, edges: map[edgeKey]*edgeState{}}
}

// bucket returns the counts of second sec, appending it when new. Late
// operations (older than the last bucket) join the last bucket: the
// pipeline's order is nearly the operations' order.
func bucket(s *[]counts, sec int64) *counts {
	if n := len(*s); n > 0 && (*s)[n-1].sec >= sec {
		return &(*s)[n-1]
	}
	*s = append(*s, counts{sec: sec})
	return &(*s)[len(*s)-1]
}

// direction says who sent and who received: sender first. ok is false
// for operations that move nothing between processes (open, close).
func direction(op *flow.Operation) (from, to uint32, send, ok bool) {
	switch op.Op {
	case flow.Send, flow.Wake:
		return op.PID, op.Peer.PID, true, true
	case flow.Receive, flow.Wait:
		return op.Peer.PID, op.PID, false, true
	}
	return 0, 0, false, false
}

func (g *graphBuilder) node(pid uint32, comm string) *nodeState {
	n := g.nodes[pid]
	if n == nil {
		n = &nodeState{node: Node{ID: nodeID(pid), PID: pid, Comm: comm}}
		if pid == 0 {
			n.node.Comm = "?"
		}
		g.nodes[pid] = n
	}
	return n
}

func (g *graphBuilder) add(op *flow.Operation) {
	sec := op.Time.Unix()
	n := g.node(op.PID, op.Comm)
	n.node.Comm, n.node.Exe, n.node.Container = op.Comm, op.Exe, op.ContainerID
	c := bucket(&n.seconds, sec)
	c.sendOps += op.Ops()
	c.sendBytes += op.Bytes
	if op.Error != "" {
		c.errors++
	}
	from, to, send, ok := direction(op)
	if !ok || op.Channel == "" {
		return
	}
	if op.Peer.PID != 0 {
		g.node(op.Peer.PID, op.Peer.Comm)
	} else {
		g.node(0, "?")
	}
	k := edgeKey{channel: op.Channel, from: from, to: to}
	e := g.edges[k]
	if e == nil {
		e = &edgeState{key: k, id: k.id(), mechanism: op.Mechanism.String(), endpoint: op.Endpoint}
		g.edges[k] = e
	}
	c = bucket(&e.seconds, sec)
	if send {
		c.sendOps += op.Ops()
		c.sendBytes += op.Bytes
	} else {
		c.recvOps += op.Ops()
		c.recvBytes += op.Bytes
	}
	if op.Error != "" {
		c.errors++
	}
	lsec := sec - sec%sketchEvery
	if n := len(e.latencies); n == 0 || e.latencies[n-1].sec < lsec {
		sk, _ := ddsketch.LogCollapsingLowestDenseDDSketch(0.01, 2048)
		e.latencies = append(e.latencies, latency{sec: lsec, sketch: sk})
	}
	per := op.Duration
	if op.Count > 1 && op.Busy > 0 {
		per = op.Busy / time.Duration(op.Count)
	}
	if per > 0 {
		_ = e.latencies[len(e.latencies)-1].sketch.AddWithCount(float64(per), float64(op.Ops()))
	}
}

// prune forgets what is older than second sec, and the nodes and edges
// left with nothing.
func (g *graphBuilder) prune(sec int64) {
	for k, e := range g.edges {
		e.seconds = dropBefore(e.seconds, sec)
		i := 0
		for i < len(e.latencies) && e.latencies[i].sec+sketchEvery <= sec {
			i++
		}
		e.latencies = e.latencies[i:]
		if len(e.seconds) == 0 {
			delete(g.edges, k)
		}
	}
	ends := map[uint32]bool{}
	for k := range g.edges {
		ends[k.from], ends[k.to] = true, true
	}
	for pid, n := range g.nodes {
		n.seconds = dropBefore(n.seconds, sec)
		if len(n.seconds) == 0 && !ends[pid] {
			delete(g.nodes, pid)
		}
	}
}

func dropBefore(s []counts, sec int64) []counts {
	i := 0
	for i < len(s) && s[i].sec < sec {
		i++
	}
	if i == len(s) {
		return nil
	}
	return s[i:]
}

// sum adds up the counts of seconds in [from, to).
func sum(s []counts, from, to int64) (c counts) {
	for i := len(s) - 1; i >= 0 && s[i].sec >= from; i-- {
		if s[i].sec < to {
			c.sendOps += s[i].sendOps
			c.recvOps += s[i].recvOps
			c.sendBytes += s[i].sendBytes
			c.recvBytes += s[i].recvBytes
			c.errors += s[i].errors
		}
	}
	return c
}

// graph is the window of length d ending at at: rates are per second of
// the window; nodes are the processes that made an operation in it, and
// the other ends of its edges.
func (g *graphBuilder) graph(at time.Time, d time.Duration) *Graph {
	to := at.Unix() + 1
	from := to - int64((d+time.Second-1)/time.Second)
	secs := float64(to - from)
	out := &Graph{WindowNS: int64(d), At: at.UTC(), Nodes: []Node{}, Edges: []Edge{}}
	seen := map[uint32]bool{}
	lat := newLatencyMerger()
	for _, e := range g.edges {
		c := sum(e.seconds, from, to)
		ops, bytes := max(c.sendOps, c.recvOps), max(c.sendBytes, c.recvBytes)
		if ops == 0 {
			continue
		}
		edge := Edge{ID: e.id, Channel: e.key.channel, Source: nodeID(e.key.from), Target: nodeID(e.key.to),
			Mechanism: e.mechanism, Endpoint: e.endpoint, OpsPerSec: float64(ops) / secs,
			BytesPerSec: float64(bytes) / secs, Errors: c.errors}
		lat.reset()
		for _, l := range e.latencies {
			if l.sec+sketchEvery > from && l.sec < to {
				lat.add(l.sketch)
			}
		}
		edge.P50NS, edge.P99NS = lat.quantile(0.5), lat.quantile(0.99)
		out.Edges = append(out.Edges, edge)
		seen[e.key.from], seen[e.key.to] = true, true
	}
	for pid, n := range g.nodes {
		c := sum(n.seconds, from, to)
		if c.sendOps == 0 && !seen[pid] {
			continue
		}
		node := n.node
		node.OpsPerSec, node.BytesPerSec, node.Errors = float64(c.sendOps)/secs, float64(c.sendBytes)/secs, c.errors
		out.Nodes = append(out.Nodes, node)
		delete(seen, pid)
	}
	for pid := range seen {
		out.Nodes = append(out.Nodes, Node{ID: nodeID(pid), PID: pid, Comm: "?"})
	}
	slices.SortFunc(out.Nodes, func(a, b Node) int { return cmp.Compare(a.PID, b.PID) })
	slices.SortFunc(out.Edges, func(a, b Edge) int { return cmp.Compare(a.ID, b.ID) })
	return out
}
