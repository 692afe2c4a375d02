package api

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/icptrack/icptrack/flow"
)

// clock is a test's time, safe to read from the server's goroutines.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock    { c := &clock{}; c.set(t); return c }
func (c *clock) now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func (c *clock) add(d time.Duration) { c.ns.Add(int64(d)) }

// wantEdge is an edge as its operations say it should be, worked out the
// plain way: every operation looked at, durations sorted.
type wantEdge struct {
	sendOps, recvOps, sendBytes, recvBytes, errors int64
	durations                                      []float64
}

func wantEdges(ops []*flow.Operation, keep func(*flow.Operation) bool) map[string]*wantEdge {
	out := map[string]*wantEdge{}
	for _, op := range ops {
		if keep != nil && !keep(op) {
			continue
		}
		from, to := op.PID, op.Peer.PID
		if op.Op == flow.Receive {
			from, to = to, from
		}
		id := fmt.Sprintf("%s|%d>%d", op.Channel, from, to)
		e := out[id]
		if e == nil {
			e = &wantEdge{}
			out[id] = e
		}
		if op.Op == flow.Send {
			e.sendOps++
			e.sendBytes += op.Bytes
		} else {
			e.recvOps++
			e.recvBytes += op.Bytes
		}
		if op.Error != "" {
			e.errors++
		}
		e.durations = append(e.durations, float64(op.Duration))
	}
	return out
}

// near reports whether got is a quantile q of sorted within DDSketch's
// 1% (and a rank either side).
func near(got int64, sorted []float64, q float64) bool {
	i := int(q * float64(len(sorted)-1))
	lo, hi := sorted[max(i-1, 0)], sorted[min(i+1, len(sorted)-1)]
	return float64(got) >= lo*0.98 && float64(got) <= hi*1.02
}

func checkGraph(t *testing.T, g *Graph, ops []*flow.Operation, keep func(*flow.Operation) bool, secs float64) {
	t.Helper()
	wants := wantEdges(ops, keep)
	if len(g.Edges) != len(wants) {
		t.Fatalf("%d edges, want %d: %+v", len(g.Edges), len(wants), g.Edges)
	}
	nodes := map[string]bool{}
	for _, n := range g.Nodes {
		nodes[n.ID] = true
	}
	for _, e := range g.Edges {
		w := wants[e.ID]
		if w == nil {
			t.Fatalf("edge %s is not one of the operations'", e.ID)
		}
		if !nodes[e.Source] || !nodes[e.Target] {
			t.Errorf("edge %s: its ends are not both nodes", e.ID)
		}
		slices.Sort(w.durations)
		if e.OpsPerSec != float64(max(w.sendOps, w.recvOps))/secs || e.BytesPerSec != float64(max(w.sendBytes, w.recvBytes))/secs ||
			e.Errors != w.errors || !near(e.P50NS, w.durations, 0.5) || !near(e.P99NS, w.durations, 0.99) {
			t.Errorf("edge %s: %+v, want %d/%d ops, %d/%d bytes over %gs, %d errors, p50 %g p99 %g", e.ID, e,
				w.sendOps, w.recvOps, w.sendBytes, w.recvBytes, secs, w.errors,
				w.durations[len(w.durations)/2], w.durations[int(0.99*float64(len(w.durations)-1))])
		}
	}
}

func getGraph(t *testing.T, s *Server, q url.Values) *Graph {
	t.Helper()
	code, body := get(t, s.Handler(), "/api/v1/graph?"+q.Encode(), "read")
	if code != 200 {
		t.Fatalf("GET /api/v1/graph?%s: %d %s", q.Encode(), code, body)
	}
	var g Graph
	if err := json.Unmarshal(body, &g); err != nil {
		t.Fatal(err)
	}
	return &g
}

func TestGraphEdgesGoFromSenderToReceiverWithTheirRatesAndLatency(t *testing.T) {
	ops := testOps(3000)
	c := newClock(ops[len(ops)-1].Time)
	s := newTestServer(t, Options{Now: c.now})
	for _, op := range ops {
		s.Add(op)
	}
	s.graph.sync()
	g := getGraph(t, s, url.Values{"window": {"1m"}})
	if g.WindowNS != int64(time.Minute) || len(g.Nodes) != 20 {
		t.Fatalf("window %d, %d nodes, want 1m and 20", g.WindowNS, len(g.Nodes))
	}
	checkGraph(t, g, ops, nil, 60)
	if g.Edges[0].ID != "pipe:500|100>101" || g.Edges[0].Source != "p:100" || g.Edges[0].Mechanism != "pipe" {
		t.Errorf("first edge %+v, want pipe:500 from p:100 to p:101", g.Edges[0])
	}

	// The filtered graph is worked out from the operations themselves.
	g = getGraph(t, s, url.Values{"window": {"1m"}, "filter": {"mechanism == unix_stream and bytes > 50"}})
	checkGraph(t, g, ops, func(op *flow.Operation) bool { return op.Mechanism == flow.UnixStream && op.Bytes > 50 }, 60)

	// Two minutes on, nothing is left in the graph of the last minute;
	// past the 15 minutes the aggregator keeps (GraphWindow), it forgets
	// it all within its next prune (every second).
	c.add(2 * time.Minute)
	if g := getGraph(t, s, nil); len(g.Nodes)+len(g.Edges) != 0 {
		t.Errorf("two minutes on, %d nodes and %d edges are left", len(g.Nodes), len(g.Edges))
	}
	if g := getGraph(t, s, url.Values{"window": {"15m"}}); len(g.Edges) != 10 {
		t.Errorf("two minutes on, the graph of 15 minutes has %d edges, want 10", len(g.Edges))
	}
	c.add(15 * time.Minute)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		s.graph.mu.Lock()
		n := len(s.graph.g.nodes) + len(s.graph.g.edges)
		s.graph.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("17 minutes on, the aggregator still holds %d nodes and edges", n)
		}
	}
}

func TestGraphShowsAnUnknownOtherEndAsProcessZero(t *testing.T) {
	c := newClock(testBase)
	s := newTestServer(t, Options{Now: c.now})
	s.Add(&flow.Operation{ID: 1, Time: testBase, PID: 7, Comm: "lonely", Op: flow.Send, Mechanism: flow.Pipe,
		Channel: "pipe:9", Bytes: 5, Duration: 100, QueueDepth: -1})
	s.graph.sync()
	g := getGraph(t, s, nil)
	if len(g.Edges) != 1 || g.Edges[0].Source != "p:7" || g.Edges[0].Target != "p:0" {
		t.Fatalf("edges %+v, want one from p:7 to p:0", g.Edges)
	}
	if len(g.Nodes) != 2 || g.Nodes[0].ID != "p:0" || g.Nodes[0].Comm != "?" {
		t.Errorf("nodes %+v, want p:0 as ? and p:7", g.Nodes)
	}
}

func TestGraphStreamSendsASnapshotThenWhatChanged(t *testing.T) {
	defer func(d time.Duration) { graphEvery = d }(graphEvery)
	graphEvery = 50 * time.Millisecond
	ops := testOps(100)
	c := newClock(ops[len(ops)-1].Time)
	s := newTestServer(t, Options{Now: c.now})
	for _, op := range ops[:50] {
		if op.Mechanism == flow.Pipe {
			s.Add(op)
		}
	}
	s.graph.sync()
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	events := openStream(t, srv, "/api/v1/graph/stream?window=10s")
	ev := <-events
	var snap Graph
	if err := json.Unmarshal([]byte(ev.data), &snap); ev.name != "snapshot" || err != nil || len(snap.Edges) != 5 {
		t.Fatalf("first event %s %s, want a snapshot of 5 edges", ev.name, ev.data)
	}
	for _, op := range ops[50:] {
		if op.Mechanism == flow.UnixStream {
			s.Add(op)
		}
	}
	s.graph.sync()
	added := map[string]bool{}
	for deadline := time.After(5 * time.Second); len(added) < 5; {
		select {
		case ev := <-events:
			var d GraphDiff
			if err := json.Unmarshal([]byte(ev.data), &d); ev.name != "diff" || err != nil {
				t.Fatalf("event %s %s, want a diff", ev.name, ev.data)
			}
			for _, e := range d.AddedEdges {
				if e.Mechanism != "unix_stream" {
					t.Errorf("added edge %+v, want only the unix sockets", e)
				}
				added[e.ID] = true
			}
			if len(d.RemovedEdges) > 0 {
				t.Errorf("removed %v before its time", d.RemovedEdges)
			}
		case <-deadline:
			t.Fatalf("diffs added %d edges of 5", len(added))
		}
	}
	// Past the window, all of them go.
	c.add(time.Minute)
	removed := 0
	for deadline := time.After(5 * time.Second); removed < 10; {
		select {
		case ev := <-events:
			var d GraphDiff
			_ = json.Unmarshal([]byte(ev.data), &d)
			removed += len(d.RemovedEdges)
		case <-deadline:
			t.Fatalf("diffs removed %d edges of 10", removed)
		}
	}
}

func TestChannelAndProcessPagesListTheirLastOperations(t *testing.T) {
	ops := testOps(3000)
	c := newClock(ops[len(ops)-1].Time)
	s := newTestServer(t, Options{Now: c.now})
	for _, op := range ops {
		s.Add(op)
	}
	s.graph.sync()
	code, body := get(t, s.Handler(), "/api/v1/channels/"+url.PathEscape("pipe:502"), "read")
	var ch channelBody
	if err := json.Unmarshal(body, &ch); err != nil || code != 200 {
		t.Fatalf("channel: %d %s", code, body)
	}
	wantOps := want(ops, `channel == "pipe:502"`, time.Time{}, time.Time{}, false)
	wantOps = wantOps[len(wantOps)-recentOps:]
	if len(ch.Edges) != 1 || ch.Edges[0].ID != "pipe:502|104>105" || len(ch.Channel.Ends) != 2 || ch.Channel.Mechanism != "pipe" {
		t.Errorf("channel pipe:502: %+v %+v, want one edge from 104 to 105", ch.Channel, ch.Edges)
	}
	sameLines(t, "the channel's operations", rawLines(ch.Operations), wantOps)

	code, body = get(t, s.Handler(), "/api/v1/processes/105", "read:payload")
	var p processBody
	if err := json.Unmarshal(body, &p); err != nil || code != 200 {
		t.Fatalf("process: %d %s", code, body)
	}
	wantOps = want(ops, "pid == 105", time.Time{}, time.Time{}, true)
	wantOps = wantOps[len(wantOps)-recentOps:]
	if p.Process.Comm != "r2" || len(p.Edges) != 1 || p.Edges[0].Target != "p:105" || math.Abs(p.Process.OpsPerSec-150.0/60) > 1e-9 {
		t.Errorf("process 105: %+v %+v", p.Process, p.Edges)
	}
	sameLines(t, "the process's operations", rawLines(p.Operations), wantOps)

	for _, path := range []string{"/api/v1/channels/nope", "/api/v1/processes/99999"} {
		if code, body := get(t, s.Handler(), path, "read"); code != 404 {
			t.Errorf("%s: %d %s, want 404", path, code, body)
		}
	}
	if code, body := get(t, s.Handler(), "/api/v1/processes/x1", "read"); code != 400 {
		t.Errorf("a pid not a number: %d %s, want 400", code, body)
	}
}

func rawLines(ops []json.RawMessage) []string {
	var out []string
	for _, op := range ops {
		out = append(out, string(op))
	}
	return out
}

// serve's graph comes from the store, at the time asked for.
func TestGraphFromAStoreAtATime(t *testing.T) {
	ops := testOps(3000)
	dir := writeStore(t, ops)
	r := openStore(t, dir)
	s := newTestServer(t, Options{Store: r, StoreDir: dir})
	at := ops[len(ops)-1].Time
	g := getGraph(t, s, url.Values{"window": {"1m"}, "at": {at.Format(time.RFC3339Nano)}})
	checkGraph(t, g, ops, nil, 60)
	code, body := get(t, s.Handler(), "/api/v1/channels/unix:501?window=1m&at="+url.QueryEscape(at.Format(time.RFC3339Nano)), "read")
	if code != 200 {
		t.Fatalf("a channel from the store: %d %s", code, body)
	}
}
