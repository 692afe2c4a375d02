package exporter

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/icptrack/icptrack/flow"
)

// Two processes that answer each other for ever are one causal chain:
// stitching must still cut it into traces of bounded size, or a trace
// grows without end and no cap can sample it.
func TestCausalStitchingBoundsTraces(t *testing.T) {
	w, r := process(10, "writer"), process(20, "reader")
	sizes := map[[16]byte]int{}
	s := NewSpans(DefaultSpanOptions(), func(td ptrace.Traces) {
		rss := td.ResourceSpans()
		for i := range rss.Len() {
			ss := rss.At(i).ScopeSpans().At(0).Spans()
			for j := range ss.Len() {
				sizes[ss.At(j).TraceID()]++
			}
		}
	})
	var id flow.OpID
	at := time.Unix(1_700_000_000, 0)
	next := func(o flow.Operation, links ...flow.OpID) flow.OpID {
		id++
		at = at.Add(time.Microsecond)
		o.ID, o.Time, o.Links = id, at, links
		s.Add(&o)
		return id
	}
	// The writer sends ten messages per acknowledgement it reads, and
	// the reader acknowledges the first of them: its ack is in the trace
	// of a send older than the writer remembers starting, so the writer
	// goes on in that trace, and so on, round after round.
	const rounds = 2000
	for range rounds {
		var sent []flow.OpID
		for range 10 {
			sent = append(sent, next(op(w, flow.Pipe, flow.Send, "write", "pipe:1", "pipe:[1]", 64)))
		}
		var ack flow.OpID
		for i, m := range sent {
			next(op(r, flow.Pipe, flow.Receive, "read", "pipe:1", "pipe:[1]", 64), m)
			if i == 0 {
				ack = next(op(r, flow.Pipe, flow.Send, "write", "pipe:2", "pipe:[2]", 1))
			}
		}
		next(op(w, flow.Pipe, flow.Receive, "read", "pipe:2", "pipe:[2]", 1), ack)
	}
	s.Flush()
	total, largest := 0, 0
	for _, n := range sizes {
		total += n
		largest = max(largest, n)
	}
	if total != rounds*22 {
		t.Fatalf("%d spans, want %d", total, rounds*22)
	}
	if largest > 2*MaxTraceSpans || len(sizes) < total/(2*MaxTraceSpans) {
		t.Errorf("%d traces, the largest of %d spans: want none past %d", len(sizes), largest, 2*MaxTraceSpans)
	}
}
