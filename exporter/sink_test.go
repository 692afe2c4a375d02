package exporter

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/icptrack/icptrack/flow"
)

// keptSink keeps what it is given, as a store or database would, and
// records the drops it is told of.
type keptSink struct {
	name     string
	ops      []*flow.Operation
	ticks    int
	flushed  bool
	closed   bool
	closeErr error
	drops    map[string]uint64
	// stats, when set, make it count for itself.
	stats *SinkStats
}

func (s *keptSink) Name() string           { return s.name }
func (s *keptSink) Add(op *flow.Operation) { s.ops = append(s.ops, op.Clone()) }
func (s *keptSink) Tick(time.Time)         { s.ticks++ }
func (s *keptSink) Flush() error           { s.flushed = true; return nil }
func (s *keptSink) Close() error           { s.closed = true; return s.closeErr }

type countingKeptSink struct{ *keptSink }

func (s countingKeptSink) Stats() SinkStats { return *s.stats }
func (s countingKeptSink) RecordDrops(_ time.Time, reason string, n uint64) {
	if s.drops == nil {
		s.drops = map[string]uint64{}
	}
	s.drops[reason] += n
}

func pipeOps(p *Pipeline, n int) {
	now := time.Now()
	for i := range n {
		for _, e := range []flow.Event{
			{PID: 10, TID: 10, Comm: "w", Mechanism: flow.Pipe, Op: flow.Send, Ino: 7, Dev: 1, Offset: uint64(i), Result: 1, FD: -1},
			{PID: 20, TID: 20, Comm: "r", Mechanism: flow.Pipe, Op: flow.Receive, Ino: 7, Dev: 1, Offset: uint64(i), Result: 1, FD: -1},
		} {
			e.Start, e.End = now, now
			p.Event(&e)
		}
	}
}

// Every sink in the list sees every operation after correlation, the
// ones from Outputs.Sinks are flushed and closed by Finish, and each
// sink's counts come out of SinkStats: counted by the pipeline for a
// sink that does not count, its own for one that does.
func TestEverySinkSeesEveryOperation(t *testing.T) {
	var log bytes.Buffer
	plain := &keptSink{name: "plain"}
	counting := countingKeptSink{&keptSink{name: "counting", stats: &SinkStats{Written: 3, Dropped: 5, Lagging: 2}}}
	p := NewPipeline(Outputs{EventLog: &log, Sinks: []Sink{plain, counting}})
	pipeOps(p, 4)
	p.Drained()
	if err := p.Finish(); err != nil {
		t.Fatal(err)
	}
	if len(plain.ops) != 8 || len(counting.ops) != 8 {
		t.Fatalf("sinks saw %d and %d operations, want 8 each", len(plain.ops), len(counting.ops))
	}
	for i, op := range plain.ops {
		want := []flow.OpType{flow.Send, flow.Receive}[i%2]
		if op.Op != want || op.Op == flow.Receive && (op.Peer.PID != 10 || len(op.Links) != 1) {
			t.Errorf("a sink's operation %d: %+v, want a %v, correlated (peer 10, one link) if a receive", i, op, want)
		}
	}
	if !plain.flushed || !plain.closed || !counting.flushed || !counting.closed || plain.ticks == 0 {
		t.Errorf("plain flushed %v closed %v ticked %d; counting flushed %v closed %v", plain.flushed, plain.closed, plain.ticks, counting.flushed, counting.closed)
	}
	if n := strings.Count(log.String(), "\n"); n != 8 {
		t.Errorf("the event log has %d lines, want 8", n)
	}
	want := map[string]SinkStats{"events": {Written: 8}, "plain": {Written: 8}, "counting": {Written: 3, Dropped: 5, Lagging: 2}}
	got := p.SinkStats()
	if len(got) != len(want) {
		t.Fatalf("SinkStats %+v, want %v", got, want)
	}
	for _, k := range got {
		if k.SinkStats != want[k.Name] {
			t.Errorf("%s: %+v, want %+v", k.Name, k.SinkStats, want[k.Name])
		}
	}
}

// A sink that records drops is told, once per loss and with what is new
// only, what was lost before the pipeline and in the other sinks.
func TestDropsReachTheSinksThatRecordThem(t *testing.T) {
	lost := map[string]uint64{"ring_buffer": 7}
	other := countingKeptSink{&keptSink{name: "syslog", stats: &SinkStats{Dropped: 2}}}
	store := countingKeptSink{&keptSink{name: "store", stats: &SinkStats{}}}
	p := NewPipeline(Outputs{Sinks: []Sink{other, store}, Losses: func() map[string]uint64 { return lost }})
	pipeOps(p, 1)
	p.recordDrops(time.Now())
	lost["ring_buffer"] = 10
	other.stats.Dropped = 2 // nothing new
	p.recordDrops(time.Now())
	if err := p.Finish(); err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{"ring_buffer": 10, "syslog": 2}
	if len(store.drops) != len(want) || store.drops["ring_buffer"] != 10 || store.drops["syslog"] != 2 {
		t.Errorf("the store recorded %v, want %v", store.drops, want)
	}
}

// A sink that fails to close is named in Finish's error; the others are
// still closed.
func TestFinishNamesTheSinkThatFailed(t *testing.T) {
	bad := &keptSink{name: "postgres", closeErr: errors.New("connection reset")}
	good := &keptSink{name: "store"}
	p := NewPipeline(Outputs{Sinks: []Sink{bad, good}})
	err := p.Finish()
	if err == nil || !strings.Contains(err.Error(), "postgres: connection reset") || !good.closed {
		t.Errorf("Finish: %v (store closed %v), want the postgres sink named", err, good.closed)
	}
}
