package ui

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/icptrack/icptrack/exporter"
	"github.com/icptrack/icptrack/filter"
	"github.com/icptrack/icptrack/flow"
)

// fixtureAPI serves the routes of the API (api/openapi.json) that the page uses,
// from operations it generates as the demo would make them (client and
// server over a unix socket both ways, server to worker over a pipe,
// worker to server over a POSIX queue, and a UDP send to nobody known).
//
// It is a test fixture for the page, which has to be developed and tested
// before the api package's server exists: it answers in the contract's
// JSON and SSE shapes, uses the real filter package (so a filter removes
// what it should and a mistake comes back with its line and column) and
// the real event log writer for the operations. It is not a stand-in the
// tests could use instead of the real server: once that is on main, the
// same checks run against `icptrack run --api ADDR -- demo-client` (see
// the note in browser_test.go).
type fixtureAPI struct {
	token string // when set, /api/ answers 401 without "Bearer <token>"
	tick  time.Duration

	mu    sync.Mutex
	ops   []*flow.Operation // the last maxOps, oldest first
	next  time.Time         // when the next round of operations happens
	extra int               // more processes, each writing to the server over a pipe
	seq   uint64
}

const maxOps = 50000

type process struct {
	pid       uint32
	comm, exe string
}

var (
	client = process{4101, "demo-client", "/usr/local/bin/demo-client"}
	server = process{4102, "demo-server", "/usr/local/bin/demo-server"}
	worker = process{4103, "demo-worker", "/usr/local/bin/demo-worker"}
)

// route is one direction of one channel: who sends, who receives, how.
type route struct {
	from, to          process
	mech              flow.Mechanism
	channel, endpoint string
	send, receive     string // the syscalls
	bytes             int64
	unknownReceiver   bool
}

func (f *fixtureAPI) routes() []route {
	rs := []route{
		{client, server, flow.UnixStream, "unix:9001", "/tmp/demo.sock", "write", "read", 64, false},
		{server, client, flow.UnixStream, "unix:9001", "/tmp/demo.sock", "write", "read", 128, false},
		{server, worker, flow.Pipe, "pipe:9002", "pipe:[9002]", "write", "read", 64, false},
		{worker, server, flow.POSIXMQ, "posix_mq:9003", "/demo-answers", "mq_timedsend", "mq_timedreceive", 96, false},
		{client, process{}, flow.UDP, "udp:9004", "127.0.0.1:40000->127.0.0.1:9", "sendto", "", 32, true},
	}
	for i := range f.extra {
		p := process{uint32(5000 + i), fmt.Sprintf("load-%d", i), "/usr/local/bin/load"}
		rs = append(rs, route{p, server, flow.Pipe, fmt.Sprintf("pipe:%d", 10000+i), fmt.Sprintf("pipe:[%d]", 10000+i), "write", "read", int64(8 * (i + 1)), false})
	}
	return rs
}

// generate makes the operations up to now: every 20ms, one send and one
// receive on each route, with a failing send now and then.
func (f *fixtureAPI) generate(now time.Time) {
	if f.next.IsZero() {
		f.next = now.Add(-10 * time.Second)
	}
	for ; f.next.Before(now); f.next = f.next.Add(20 * time.Millisecond) {
		for i, r := range f.routes() {
			f.seq++
			send := &flow.Operation{
				ID: flow.OpID(f.seq<<8 | 1), Time: f.next, Duration: time.Duration(2000+int(f.seq%7)*1000+i*500) * time.Nanosecond,
				PID: r.from.pid, TID: r.from.pid, Comm: r.from.comm, Exe: r.from.exe,
				Mechanism: r.mech, Op: flow.Send, Syscall: r.send, Channel: r.channel, Endpoint: r.endpoint,
				Bytes: r.bytes, QueueDepth: -1,
			}
			if !r.unknownReceiver {
				send.Peer = flow.Peer{PID: r.to.pid, Comm: r.to.comm}
			}
			// Nobody listens at the UDP port: one send in ten is refused.
			if r.unknownReceiver && f.seq%10 == 0 {
				send.Error, send.Bytes = "ECONNREFUSED", 0
			}
			f.ops = append(f.ops, send)
			if r.unknownReceiver {
				continue
			}
			f.ops = append(f.ops, &flow.Operation{
				ID: flow.OpID(f.seq<<8 | 2), Time: f.next.Add(time.Microsecond), Duration: time.Duration(1500+int(f.seq%5)*800) * time.Nanosecond,
				PID: r.to.pid, TID: r.to.pid, Comm: r.to.comm, Exe: r.to.exe,
				Mechanism: r.mech, Op: flow.Receive, Syscall: r.receive, Channel: r.channel, Endpoint: r.endpoint,
				Bytes: send.Bytes, Peer: flow.Peer{PID: r.from.pid, Comm: r.from.comm}, Links: []flow.OpID{send.ID}, QueueDepth: -1,
			})
		}
	}
	if len(f.ops) > maxOps {
		f.ops = slices.Delete(f.ops, 0, len(f.ops)-maxOps)
	}
}

// The contract's shapes.
type node struct {
	ID          string  `json:"id"`
	PID         uint32  `json:"pid"`
	Comm        string  `json:"comm"`
	Exe         string  `json:"exe"`
	Container   string  `json:"container"`
	OpsPerSec   float64 `json:"ops_per_sec"`
	BytesPerSec float64 `json:"bytes_per_sec"`
	Errors      int     `json:"errors"`
}

type edge struct {
	ID          string  `json:"id"`
	Source      string  `json:"source"`
	Target      string  `json:"target"`
	Mechanism   string  `json:"mechanism"`
	Endpoint    string  `json:"endpoint"`
	OpsPerSec   float64 `json:"ops_per_sec"`
	BytesPerSec float64 `json:"bytes_per_sec"`
	P50         int64   `json:"p50_ns"`
	P99         int64   `json:"p99_ns"`
	Errors      int     `json:"errors"`
}

type graph struct {
	WindowNS int64  `json:"window_ns"`
	At       string `json:"at"`
	Nodes    []node `json:"nodes"`
	Edges    []edge `json:"edges"`
}

func pnode(pid uint32) string { return "p:" + strconv.FormatUint(uint64(pid), 10) }

// edgeEnds says which direction of its channel an operation belongs to.
func edgeEnds(op *flow.Operation) (sender, receiver uint32) {
	if op.Op == flow.Receive {
		return op.Peer.PID, op.PID
	}
	return op.PID, op.Peer.PID
}

func edgeID(op *flow.Operation) string {
	s, r := edgeEnds(op)
	return fmt.Sprintf("%s|%d>%d", op.Channel, s, r)
}

// graph aggregates the operations in the window that match flt.
func (f *fixtureAPI) graph(now time.Time, window time.Duration, flt *filter.Filter) graph {
	f.generate(now)
	secs := window.Seconds()
	nodes := map[uint32]*node{}
	edges := map[string]*edge{}
	durations := map[string][]int64{}
	for _, op := range f.ops {
		if op.Time.Before(now.Add(-window)) || (flt != nil && !flt.Match(op)) {
			continue
		}
		n := nodes[op.PID]
		if n == nil {
			n = &node{ID: pnode(op.PID), PID: op.PID, Comm: op.Comm, Exe: op.Exe}
			nodes[op.PID] = n
		}
		n.OpsPerSec += 1 / secs
		n.BytesPerSec += float64(op.Bytes) / secs
		id := edgeID(op)
		e := edges[id]
		if e == nil {
			s, r := edgeEnds(op)
			e = &edge{ID: id, Source: pnode(s), Target: pnode(r), Mechanism: op.Mechanism.String(), Endpoint: op.Endpoint}
			edges[id] = e
		}
		e.OpsPerSec += 1 / secs
		if op.Op == flow.Send {
			e.BytesPerSec += float64(op.Bytes) / secs
		}
		if op.Error != "" {
			n.Errors++
			e.Errors++
		}
		durations[id] = append(durations[id], op.Duration.Nanoseconds())
	}
	g := graph{WindowNS: window.Nanoseconds(), At: now.UTC().Format(time.RFC3339Nano), Nodes: []node{}, Edges: []edge{}}
	for id, e := range edges {
		d := durations[id]
		slices.Sort(d)
		e.P50, e.P99 = d[len(d)*50/100], d[len(d)*99/100]
		for _, end := range []string{e.Source, e.Target} {
			pid, _ := strconv.ParseUint(strings.TrimPrefix(end, "p:"), 10, 32)
			if nodes[uint32(pid)] == nil {
				nodes[uint32(pid)] = &node{ID: end, PID: uint32(pid), Comm: "?"}
			}
		}
		g.Edges = append(g.Edges, *e)
	}
	for _, n := range nodes {
		g.Nodes = append(g.Nodes, *n)
	}
	sort.Slice(g.Nodes, func(i, j int) bool { return g.Nodes[i].PID < g.Nodes[j].PID })
	sort.Slice(g.Edges, func(i, j int) bool { return g.Edges[i].ID < g.Edges[j].ID })
	return g
}

type diff struct {
	At           string   `json:"at"`
	AddedNodes   []node   `json:"added_nodes"`
	UpdatedNodes []node   `json:"updated_nodes"`
	RemovedNodes []string `json:"removed_nodes"`
	AddedEdges   []edge   `json:"added_edges"`
	UpdatedEdges []edge   `json:"updated_edges"`
	RemovedEdges []string `json:"removed_edges"`
}

func diffOf(old, cur graph) diff {
	d := diff{At: cur.At, AddedNodes: []node{}, UpdatedNodes: []node{}, RemovedNodes: []string{}, AddedEdges: []edge{}, UpdatedEdges: []edge{}, RemovedEdges: []string{}}
	on := map[string]node{}
	for _, n := range old.Nodes {
		on[n.ID] = n
	}
	for _, n := range cur.Nodes {
		if o, ok := on[n.ID]; !ok {
			d.AddedNodes = append(d.AddedNodes, n)
		} else if o != n {
			d.UpdatedNodes = append(d.UpdatedNodes, n)
		}
		delete(on, n.ID)
	}
	for id := range on {
		d.RemovedNodes = append(d.RemovedNodes, id)
	}
	oe := map[string]edge{}
	for _, e := range old.Edges {
		oe[e.ID] = e
	}
	for _, e := range cur.Edges {
		if o, ok := oe[e.ID]; !ok {
			d.AddedEdges = append(d.AddedEdges, e)
		} else if !reflect.DeepEqual(o, e) {
			d.UpdatedEdges = append(d.UpdatedEdges, e)
		}
		delete(oe, e.ID)
	}
	for id := range oe {
		d.RemovedEdges = append(d.RemovedEdges, id)
	}
	return d
}

// opsJSON is the operations as the event log writes them, one object each.
func opsJSON(ops []*flow.Operation) []json.RawMessage {
	var buf bytes.Buffer
	log := exporter.NewEventLog(&buf)
	for _, op := range ops {
		log.Write(op)
	}
	if err := log.Flush(); err != nil {
		panic(err)
	}
	out := []json.RawMessage{}
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		out = append(out, json.RawMessage(slices.Clone(sc.Bytes())))
	}
	return out
}

// last is the newest 100 operations that keep says to, oldest first.
func (f *fixtureAPI) last(keep func(*flow.Operation) bool) []*flow.Operation {
	f.generate(time.Now())
	var out []*flow.Operation
	for i := len(f.ops) - 1; i >= 0 && len(out) < 100; i-- {
		if keep(f.ops[i]) {
			out = append(out, f.ops[i])
		}
	}
	slices.Reverse(out)
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// query reads window and filter as the contract says, answering 400 with
// the parameter (and the filter's line and column) when one is wrong.
func query(w http.ResponseWriter, r *http.Request) (time.Duration, *filter.Filter, bool) {
	window := time.Minute
	if s := r.URL.Query().Get("window"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			writeJSON(w, 400, map[string]any{"error": fmt.Sprintf("window %q is not a duration such as 1m", s), "parameter": "window"})
			return 0, nil, false
		}
		window = d
	}
	expr := r.URL.Query().Get("filter")
	if expr == "" {
		return window, nil, true
	}
	flt, err := filter.Parse(expr)
	var fe *filter.Error
	if errors.As(err, &fe) {
		writeJSON(w, 400, map[string]any{"error": fe.Error(), "parameter": "filter", "line": fe.Line, "column": fe.Col})
		return 0, nil, false
	} else if err != nil {
		writeJSON(w, 400, map[string]any{"error": err.Error(), "parameter": "filter"})
		return 0, nil, false
	}
	return window, flt, true
}

func (f *fixtureAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.URL.Path, "/api/") {
		Handler().ServeHTTP(w, r)
		return
	}
	if f.token != "" && r.Header.Get("Authorization") != "Bearer "+f.token {
		w.Header().Set("WWW-Authenticate", `Bearer realm="icptrack", Basic realm="icptrack"`)
		writeJSON(w, 401, map[string]any{"error": "a credential is needed: send Authorization: Bearer TOKEN"})
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/graph", f.serveGraph)
	mux.HandleFunc("GET /api/v1/graph/stream", f.serveGraphStream)
	mux.HandleFunc("GET /api/v1/channels/{id}", f.serveChannel)
	mux.HandleFunc("GET /api/v1/processes/{pid}", f.serveProcess)
	mux.ServeHTTP(w, r)
}

func (f *fixtureAPI) serveGraph(w http.ResponseWriter, r *http.Request) {
	window, flt, ok := query(w, r)
	if !ok {
		return
	}
	f.mu.Lock()
	g := f.graph(time.Now(), window, flt)
	f.mu.Unlock()
	writeJSON(w, 200, g)
}

func (f *fixtureAPI) serveGraphStream(w http.ResponseWriter, r *http.Request) {
	window, flt, ok := query(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	flush := w.(http.Flusher).Flush
	send := func(event string, v any) error {
		data, _ := json.Marshal(v)
		_, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, data)
		flush()
		return err
	}
	f.mu.Lock()
	g := f.graph(time.Now(), window, flt)
	f.mu.Unlock()
	_, _ = fmt.Fprint(w, ": keepalive\n\n")
	if send("snapshot", g) != nil {
		return
	}
	tick := f.tick
	if tick == 0 {
		tick = time.Second
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
		}
		f.mu.Lock()
		cur := f.graph(time.Now(), window, flt)
		f.mu.Unlock()
		if send("diff", diffOf(g, cur)) != nil {
			return
		}
		g = cur
	}
}

func (f *fixtureAPI) serveChannel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	f.mu.Lock()
	defer f.mu.Unlock()
	ops := f.last(func(op *flow.Operation) bool { return op.Channel == id })
	if len(ops) == 0 {
		writeJSON(w, 404, map[string]any{"error": fmt.Sprintf("no channel %q in the window", id)})
		return
	}
	g := f.graph(time.Now(), time.Minute, nil)
	var summary edge
	var ends []node
	for _, e := range g.Edges {
		if strings.HasPrefix(e.ID, id+"|") {
			summary = e
			for _, n := range g.Nodes {
				if n.ID == e.Source || n.ID == e.Target {
					ends = append(ends, n)
				}
			}
			break
		}
	}
	writeJSON(w, 200, map[string]any{"channel": map[string]any{"id": id, "mechanism": summary.Mechanism, "endpoint": summary.Endpoint, "ops_per_sec": summary.OpsPerSec, "bytes_per_sec": summary.BytesPerSec, "p50_ns": summary.P50, "p99_ns": summary.P99, "errors": summary.Errors, "ends": ends}, "operations": opsJSON(ops)})
}

func (f *fixtureAPI) serveProcess(w http.ResponseWriter, r *http.Request) {
	pid, err := strconv.ParseUint(r.PathValue("pid"), 10, 32)
	if err != nil {
		writeJSON(w, 400, map[string]any{"error": "pid must be a number", "parameter": "pid"})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	g := f.graph(time.Now(), time.Minute, nil)
	for _, n := range g.Nodes {
		if n.PID != uint32(pid) {
			continue
		}
		var edges []edge
		for _, e := range g.Edges {
			if e.Source == n.ID || e.Target == n.ID {
				edges = append(edges, e)
			}
		}
		ops := f.last(func(op *flow.Operation) bool { return op.PID == uint32(pid) })
		writeJSON(w, 200, map[string]any{"process": n, "edges": edges, "operations": opsJSON(ops)})
		return
	}
	writeJSON(w, 404, map[string]any{"error": fmt.Sprintf("no process %d in the window", pid)})
}
