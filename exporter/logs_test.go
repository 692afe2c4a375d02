package exporter

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

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
