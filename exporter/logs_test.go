package exporter

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/icptrack/icptrack/flow"
	"github.com/icptrack/icptrack/semconv"
)

// A log record carries exactly the event log's fields, under the same
// names and with the same values.
func TestLogRecordHasTheEventLogFields(t *testing.T) {
	var got []plog.Logs
	l := NewLogs(LogOptions{Resource: ResourceOptions{HostName: "h"}}, func(ld plog.Logs) { got = append(got, ld) })
	op := fullOperation()
	l.Add(op)
	l.Flush()
	if len(got) != 1 || got[0].LogRecordCount() != 1 {
		t.Fatalf("want one batch with one record, got %d batches", len(got))
	}
	rl := got[0].ResourceLogs().At(0)
	if v, _ := rl.Resource().Attributes().Get(semconv.AttrServiceName); v.Str() != "client" {
		t.Errorf("resource service.name = %q", v.Str())
	}
	r := rl.ScopeLogs().At(0).LogRecords().At(0)
	if r.Timestamp().AsTime() != op.Time || r.SpanID() != spanID(op.ID) || r.EventName() != "ipc.receive" {
		t.Errorf("timestamp %v span %v event %q", r.Timestamp().AsTime(), r.SpanID(), r.EventName())
	}
	if want := "recvmsg /run/x.sock 64 bytes from server[20]: EAGAIN"; r.Body().Str() != want {
		t.Errorf("body %q, want %q", r.Body().Str(), want)
	}

	var fields map[string]any
	if err := json.Unmarshal(AppendJSON(nil, op), &fields); err != nil {
		t.Fatal(err)
	}
	delete(fields, "time") // the record's timestamp
	attrs := r.Attributes().AsRaw()
	if len(attrs) != len(fields) {
		t.Errorf("%d attributes, %d event-log fields", len(attrs), len(fields))
	}
	for k, want := range fields {
		if fmt.Sprint(normalise(attrs[k])) != fmt.Sprint(want) {
			t.Errorf("%s = %v, event log has %v", k, attrs[k], want)
		}
	}
}

// normalise turns pdata's raw values into what encoding/json decodes.
func normalise(v any) any {
	switch x := v.(type) {
	case int64:
		return float64(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalise(e)
		}
		return out
	}
	return v
}

// Spans and log records show payload only for operations that captured
// one (probes sets PayloadCaptured on sends and receives that moved data):
// a signal has no payload attributes at all, a send whose bytes could not
// be read has an empty one.
func TestPayloadOnlyWhereCaptured(t *testing.T) {
	a := process(10, "alpha")
	kill := op(a, flow.Signal, flow.Send, "kill", "signal:10:20:15", "SIGTERM", 0)
	kill.Signal = "SIGTERM"
	empty := op(a, flow.UnixStream, flow.Send, "sendmsg", "unix:1-2", "/run/x.sock", 64)
	empty.PayloadCaptured = true

	c := newSpanCollector(t, nil)
	kid, eid := c.add(kill), c.add(empty)
	spans := c.all()
	var logs []plog.Logs
	l := NewLogs(LogOptions{}, func(ld plog.Logs) { logs = append(logs, ld) })
	l.Add(&kill)
	l.Add(&empty)
	l.Flush()
	records := logs[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords()

	for _, tc := range []struct {
		name          string
		span          ptrace.Span
		log           plog.LogRecord
		size, payload string
	}{
		{"signal", spans[kid].span, records.At(0), "<absent>", "<absent>"},
		{"send of unread bytes", spans[eid].span, records.At(1), "0", ""},
	} {
		if got := str(t, tc.span.Attributes(), semconv.AttrIPCPayloadCapturedSize); got != tc.size || tc.span.Events().Len() != 0 {
			t.Errorf("%s: span %s = %s with %d events, want %s and none", tc.name, semconv.AttrIPCPayloadCapturedSize, got, tc.span.Events().Len(), tc.size)
		}
		if got := str(t, tc.log.Attributes(), "payload"); got != tc.payload {
			t.Errorf("%s: log record payload = %q, want %q", tc.name, got, tc.payload)
		}
		_, spanTrunc := tc.span.Attributes().Get(semconv.AttrIPCPayloadTruncated)
		_, logTrunc := tc.log.Attributes().Get("payload_truncated")
		if want := tc.size != "<absent>"; spanTrunc != want || logTrunc != want {
			t.Errorf("%s: truncated on span %v, on log record %v, want %v", tc.name, spanTrunc, logTrunc, want)
		}
	}
}

func TestLogsBatch(t *testing.T) {
	var got []plog.Logs
	l := NewLogs(LogOptions{BatchSize: 2, BatchTimeout: time.Second}, func(ld plog.Logs) { got = append(got, ld) })
	a, b := process(10, "a"), process(20, "b")
	for _, o := range []flow.Operation{
		op(a, flow.Pipe, flow.Send, "write", "pipe:1", "pipe:[1]", 1),
		op(b, flow.Pipe, flow.Receive, "read", "pipe:1", "pipe:[1]", 1),
		op(a, flow.Pipe, flow.Send, "write", "pipe:1", "pipe:[1]", 1),
	} {
		o.QueueDepth = -1
		l.Add(&o)
	}
	if len(got) != 1 || got[0].ResourceLogs().Len() != 2 {
		t.Fatalf("after 3 records with batches of 2: %d batches", len(got))
	}
	l.Tick(time.Now().Add(2 * time.Second))
	if len(got) != 2 || got[1].LogRecordCount() != 1 {
		t.Fatal("the batch older than its timeout did not go out")
	}
}

// InOrder keeps the operations' order and shares a Resource only between
// neighbours of one process.
func TestLogsInOrder(t *testing.T) {
	var got plog.Logs
	l := NewLogs(LogOptions{BatchSize: 100, InOrder: true}, func(ld plog.Logs) { got = ld })
	for i, pid := range []uint32{1, 1, 2, 1} {
		l.Add(&flow.Operation{ID: flow.OpID(i + 1), PID: pid, Comm: "p", Mechanism: flow.Pipe, Op: flow.Send, QueueDepth: -1})
	}
	l.Flush()
	rls := got.ResourceLogs()
	var counts []int
	var ids []string
	for i := 0; i < rls.Len(); i++ {
		recs := rls.At(i).ScopeLogs().At(0).LogRecords()
		counts = append(counts, recs.Len())
		for j := 0; j < recs.Len(); j++ {
			v, _ := recs.At(j).Attributes().Get("id")
			ids = append(ids, v.Str())
		}
	}
	if fmt.Sprint(counts) != "[2 1 1]" || fmt.Sprint(ids) != "[0000000000000001 0000000000000002 0000000000000003 0000000000000004]" {
		t.Errorf("records per resource %v, ids %v", counts, ids)
	}
}
