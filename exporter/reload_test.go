package exporter

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/icptrack/icptrack/filter"
	"github.com/icptrack/icptrack/flow"
)

// keepSink keeps what it is given, and counts for itself, writing the
// last few only when flushed (as a queued sink would).
type keepSink struct {
	name    string
	mu      sync.Mutex
	ids     []flow.OpID
	pending []flow.OpID
	closed  bool
}

func (s *keepSink) Name() string { return s.name }
func (s *keepSink) Add(op *flow.Operation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending = append(s.pending, op.ID)
	if len(s.pending) == 8 {
		s.ids, s.pending = append(s.ids, s.pending...), nil
	}
}
func (s *keepSink) Tick(time.Time) {}
func (s *keepSink) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids, s.pending = append(s.ids, s.pending...), nil
	return nil
}
func (s *keepSink) Close() error { s.mu.Lock(); s.closed = true; s.mu.Unlock(); return nil }
func (s *keepSink) Stats() SinkStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return SinkStats{Written: uint64(len(s.ids)), Lagging: uint64(len(s.pending))}
}

func reloadOps(from, n int) []*flow.Operation {
	ops := make([]*flow.Operation, n)
	for i := range ops {
		id := from + i
		ops[i] = &flow.Operation{ID: flow.OpID(id), Time: time.Unix(1_800_000_000, int64(id)).UTC(), PID: uint32(100 + id%2), Comm: "w",
			Mechanism: flow.Pipe, Op: flow.Send, Syscall: "write", Channel: "pipe:1", Bytes: int64(id), QueueDepth: -1}
	}
	return ops
}

// A reload between two operations sends each to the old outputs or the
// new, never both and never neither; the old ones are flushed and closed
// off the pipeline's goroutine; the counts go on from where they were.
func TestReloadLosesAndRepeatsNothing(t *testing.T) {
	var log1, log2 bytes.Buffer
	w1, _ := NewWriter(JSONL, &log1, WriterOptions{})
	w2, _ := NewWriter(JSONL, &log2, WriterOptions{})
	old := &keepSink{name: "store"}
	p := NewPipeline(Outputs{Events: w1, Sinks: []Sink{old}})
	for _, op := range reloadOps(1, 100) {
		p.operation(op)
	}

	closed2 := 0
	next := &keepSink{name: "store"}
	added := &keepSink{name: "syslog"}
	f, err := filter.Parse("pid == 100")
	if err != nil {
		t.Fatal(err)
	}
	retired := p.Reload(Reload{Filter: f, Events: EventLogSink(w2, func() error { closed2++; return nil }),
		Sinks: map[string]Sink{"store": next, "syslog": added}})
	if len(retired) != 2 {
		t.Fatalf("%d sinks retired, want the event log and the store", len(retired))
	}
	var failures []string
	p.Retire(retired, func(name string, err error) { failures = append(failures, fmt.Sprint(name, err)) })
	for _, op := range reloadOps(101, 100) {
		p.operation(op)
	}
	if err := p.Finish(); err != nil || len(failures) > 0 {
		t.Fatalf("finish: %v, retiring: %v", err, failures)
	}

	if n := strings.Count(log1.String(), "\n"); n != 100 {
		t.Errorf("the first event log has %d lines, want the 100 before the reload", n)
	}
	if n := strings.Count(log2.String(), "\n"); n != 50 || closed2 != 1 {
		t.Errorf("the second has %d lines and was closed %d times, want the 50 of pid 100 after it, closed once", n, closed2)
	}
	if !old.closed || len(old.ids) != 100 || len(next.ids) != 50 || len(added.ids) != 50 {
		t.Errorf("old store closed %v with %d, new %d, syslog %d: want 100, 50, 50", old.closed, len(old.ids), len(next.ids), len(added.ids))
	}
	for _, s := range p.SinkStats() {
		if s.Name == "store" && s.Written != 150 {
			t.Errorf("store written %d across the reload, want 150", s.Written)
		}
		if s.Name == "events" && s.Written != 150 {
			t.Errorf("event log written %d across the reload, want 150", s.Written)
		}
	}
}

func TestReloadRemovesASinkAndTheEventLog(t *testing.T) {
	var log bytes.Buffer
	w, _ := NewWriter(JSONL, &log, WriterOptions{})
	s := &keepSink{name: "syslog"}
	p := NewPipeline(Outputs{Events: w, Sinks: []Sink{s}})
	p.operation(reloadOps(1, 1)[0])
	p.Retire(p.Reload(Reload{Remove: []string{"syslog", "events"}}), nil)
	p.operation(reloadOps(2, 1)[0])
	if err := p.Finish(); err != nil {
		t.Fatal(err)
	}
	if !s.closed || len(s.ids) != 1 || len(p.SinkStats()) != 0 || strings.Count(log.String(), "\n") != 1 {
		t.Errorf("removed sink closed %v with %d, %d sinks left, event log %q", s.closed, len(s.ids), len(p.SinkStats()), log.String())
	}
}

func TestReloadChangesTheSampling(t *testing.T) {
	spans := NewSpans(DefaultSpanOptions(), func(ptrace.Traces) {})
	p := NewPipeline(Outputs{Spans: spans})
	if got := spans.Probability(); got != 1 {
		t.Fatalf("probability %v before, want 1", got)
	}
	p.Reload(Reload{Sampling: &Sampling{Ratio: 0.25}})
	if got := spans.Probability(); got != 0.25 || spans.cap != nil {
		t.Errorf("after reloading a ratio of 0.25 and no cap: probability %v, cap %v", got, spans.cap)
	}
	p.Reload(Reload{Sampling: &Sampling{Ratio: 1, MaxSpansPerSecond: 100}})
	if got := spans.Probability(); got != 1 || spans.cap == nil {
		t.Errorf("after reloading every trace, 100 spans/s: probability %v, cap %v", got, spans.cap)
	}
}

// orderSink records when it is closed, among the others.
type orderSink struct {
	keepSink
	closes *[]string
}

func (s *orderSink) Close() error { *s.closes = append(*s.closes, s.name); return s.keepSink.Close() }

// A sink a reload adds goes after the others, unless First names it: a
// store added by a reload must close before syslog, as one the pipeline
// started with does.
func TestReloadAddsASinkFirstWhenAsked(t *testing.T) {
	var closes []string
	sys := &orderSink{keepSink{name: "syslog"}, &closes}
	p := NewPipeline(Outputs{Sinks: []Sink{sys}})
	st := &orderSink{keepSink{name: "store"}, &closes}
	db := &orderSink{keepSink{name: "postgres"}, &closes}
	p.Retire(p.Reload(Reload{Sinks: map[string]Sink{"store": st, "postgres": db}, First: []string{"store"}}), nil)
	if err := p.Finish(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(closes, " "); got != "store syslog postgres" {
		t.Errorf("closed in the order %q, want store syslog postgres", got)
	}
}
