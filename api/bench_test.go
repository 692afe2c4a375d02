package api

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/url"
	"runtime"
	"testing"
	"time"

	"github.com/icptrack/icptrack/flow"
	"github.com/icptrack/icptrack/store"
)

// BenchmarkOperations10M: a page of /api/v1/operations over the store
// benchmarks' ten million operations, for a pid alive about 1% of the
// run and a time range around it (target: under 1s).
func BenchmarkOperations10M(b *testing.B) {
	bs, err := store.OpenBenchStore(10_000_000, b.Logf)
	if err != nil {
		b.Fatal(err)
	}
	r, err := store.OpenReader(bs.Dir, bs.Keyring)
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(Options{Store: r, StoreDir: bs.Dir})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	span := time.Duration(bs.N) * 10 * time.Microsecond
	var mid flow.Operation
	store.BenchOps(4, bs.N, bs.Base)(bs.N/2, &mid)
	from, to := bs.Base.Add(span/2-span/200), bs.Base.Add(span/2+span/200)
	q := url.Values{"filter": {fmt.Sprintf("pid == %d", mid.PID)}, "from": {from.Format(time.RFC3339Nano)},
		"to": {to.Format(time.RFC3339Nano)}, "limit": {"1000"}}
	target := "/api/v1/operations?" + q.Encode()
	var w *httptest.ResponseRecorder
	for b.Loop() {
		w = httptest.NewRecorder()
		s.Handler().ServeHTTP(w, httptest.NewRequest("GET", target, nil))
		if w.Code != 200 {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
	var p struct{ Operations []json.RawMessage }
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		b.Fatal(err)
	}
	n := len(p.Operations)
	if n == 0 {
		b.Fatal("the page is empty: the benchmark asks for nothing")
	}
	b.ReportMetric(float64(n), "operations")
}

// BenchmarkGraph: /api/v1/graph over a minute of 1,000 processes
// talking over 10,000 channels (target: under 100ms).
func BenchmarkGraph(b *testing.B) {
	const procs, channels, seconds = 1000, 10_000, 60
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	s, err := New(Options{Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	// Each channel joins two processes and carries a write and its read
	// every second; fed to the aggregator's graph as its goroutine would.
	s.graph.mu.Lock()
	var op flow.Operation
	for sec := range seconds {
		t := now.Add(time.Duration(sec-seconds+1) * time.Second)
		for c := range channels {
			from, to := uint32(1000+c%procs), uint32(1000+(c*7+1)%procs)
			op = flow.Operation{Time: t, Duration: time.Duration(1000 + c%5000), PID: from, Comm: "p", Op: flow.Send,
				Mechanism: flow.UnixStream, Channel: fmt.Sprintf("unix:%d", c), Bytes: int64(c % 4096), Peer: flow.Peer{PID: to}}
			s.graph.g.add(&op)
			op.PID, op.Peer.PID, op.Op = to, from, flow.Receive
			s.graph.g.add(&op)
		}
	}
	s.graph.mu.Unlock()
	runtime.GC() // the setup's garbage is not the graph's cost
	var w *httptest.ResponseRecorder
	for b.Loop() {
		w = httptest.NewRecorder()
		s.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/api/v1/graph?window=1m", nil))
		if w.Code != 200 {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
	var g Graph
	if err := json.Unmarshal(w.Body.Bytes(), &g); err != nil {
		b.Fatal(err)
	}
	if len(g.Nodes) != procs || len(g.Edges) != channels {
		b.Fatalf("%d nodes and %d edges, want %d and %d", len(g.Nodes), len(g.Edges), procs, channels)
	}
}

// BenchmarkSinkAdd is what the server costs the pipeline per operation:
// the copy for the window, the offer to the graph, and to one stream
// client that reads (none, for "idle").
func BenchmarkSinkAdd(b *testing.B) {
	ops := testOps(4096)
	for _, clients := range []int{0, 1} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			s, err := New(Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			for range clients {
				sub := &subscriber{queue: make(chan *flow.Operation, StreamQueue)}
				s.streams.join(sub)
				go func() {
					for range sub.queue {
					}
				}()
			}
			for i := 0; b.Loop(); i++ {
				s.Add(ops[i%len(ops)])
			}
			b.StopTimer()
			for _, sub := range *s.streams.subs.Load() {
				close(sub.queue)
			}
		})
	}
}
