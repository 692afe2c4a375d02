package uitest

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// A Link is a channel the map must show: its mechanism, and the comms of
// the processes that send and receive on it.
type Link struct{ Mechanism, From, To string }

// Demo is what examples/demo makes: client and server over a unix socket
// both ways, the server handing work to the worker over a pipe, and the
// worker answering over a POSIX queue.
var Demo = []Link{
	{"unix_stream", "demo-client", "demo-server"},
	{"unix_stream", "demo-server", "demo-client"},
	{"pipe", "demo-server", "demo-worker"},
	{"posix_mq", "demo-worker", "demo-server"},
}

// hasLinks is a JavaScript expression, true when the channels table has a
// row for each link.
func hasLinks(links []Link) string {
	var want []string
	for _, l := range links {
		want = append(want, fmt.Sprintf("has(%q, %q, %q)", l.Mechanism, l.From, l.To))
	}
	return `(() => {
	const rows = [...document.querySelectorAll("#channels tbody tr[data-id]")].map((r) => [...r.cells].map((c) => c.textContent));
	const has = (m, f, t) => rows.some((r) => r[2] === m && r[0].startsWith(f + " ") && r[1].startsWith(t + " "));
	return ` + strings.Join(want, " && ") + `;
})()`
}

// WaitForLinks waits until the channels table shows every link.
func (p *Page) WaitForLinks(links []Link, timeout time.Duration) {
	p.t.Helper()
	p.WaitFor(fmt.Sprintf("the channels %v", links), hasLinks(links), timeout)
}

// ChannelID is the id of the first channel row with that mechanism from
// and to those comms, or "" when there is none.
func (p *Page) ChannelID(l Link) string {
	for _, r := range p.Channels() {
		if r["mechanism"] == l.Mechanism && strings.HasPrefix(r["from"], l.From+" ") && strings.HasPrefix(r["to"], l.To+" ") {
			return r["id"]
		}
	}
	return ""
}

// CheckMapMatchesTables checks that the map draws the processes and the
// channels the tables list, and nothing else but the "N more" node.
func (p *Page) CheckMapMatchesTables() {
	p.t.Helper()
	drawn := map[string]bool{}
	for _, n := range p.MapNodes() {
		drawn[n.ID] = true
	}
	for _, r := range p.Processes() {
		if !drawn[r["id"]] {
			p.t.Errorf("the table lists process %s %s, the map does not draw it", r["comm"], r["pid"])
		}
		delete(drawn, r["id"])
	}
	delete(drawn, "more")
	for id := range drawn {
		p.t.Errorf("the map draws %s, which the processes table does not list", id)
	}
	edges := map[string]bool{}
	for _, id := range p.MapEdges() {
		edges[id] = true
	}
	for _, r := range p.Channels() {
		if !edges[r["id"]] {
			p.t.Errorf("the table lists channel %s, the map does not draw it", r["id"])
		}
		delete(edges, r["id"])
	}
	for id := range edges {
		p.t.Errorf("the map draws edge %s, which the channels table does not list", id)
	}
}

// Operation is a row of the side panel's operations table.
type Operation struct{ Process, Op, Syscall, Bytes string }

// PanelOperations is the side panel's list of operations.
func (p *Page) PanelOperations() []Operation {
	return Eval[[]Operation](p, `[...document.querySelectorAll("#panel-body table.ops tbody tr")].map((r) => ({ Process: r.cells[1].textContent, Op: r.cells[2].textContent, Syscall: r.cells[3].textContent, Bytes: r.cells[4].textContent }))`)
}

// CheckPanelListsWritesAndReads checks that the side panel, open on the
// pipe l, lists its sender's writes and its receiver's reads, both, and
// nothing else.
func (p *Page) CheckPanelListsWritesAndReads(l Link) {
	p.t.Helper()
	ops := p.PanelOperations()
	var writes, reads int
	for _, op := range ops {
		switch {
		case op.Op == "send" && op.Syscall == "write" && strings.HasPrefix(op.Process, l.From+" "):
			writes++
		case op.Op == "receive" && op.Syscall == "read" && strings.HasPrefix(op.Process, l.To+" "):
			reads++
		default:
			p.t.Errorf("the %s's panel lists an operation of something else: %+v", l.Mechanism, op)
		}
	}
	if writes == 0 || reads == 0 {
		p.t.Errorf("the %s's panel lists %d writes by %s and %d reads by %s, want both: %+v", l.Mechanism, writes, l.From, reads, l.To, ops)
	}
}

// CheckDemoProcesses checks that the map draws a node for each of the
// demo's processes.
func (p *Page) CheckDemoProcesses() {
	p.t.Helper()
	var labels []string
	for _, n := range p.MapNodes() {
		labels = append(labels, n.Label)
	}
	for _, comm := range []string{"demo-client", "demo-server", "demo-worker"} {
		if !slices.ContainsFunc(labels, func(l string) bool { return strings.HasPrefix(l, comm+" ") }) {
			p.t.Errorf("the map has no node for %s: %v", comm, labels)
		}
	}
}
