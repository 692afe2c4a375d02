package store

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/icptrack/icptrack/exporter"
	"github.com/icptrack/icptrack/flow"
)

// normal makes two equal operations compare equal with reflect: the
// time's location and an empty payload's nil-ness are not data.
func normal(op *flow.Operation) *flow.Operation {
	c := op.Clone()
	c.Time = c.Time.UTC()
	if len(c.Payload) == 0 {
		c.Payload = nil
	}
	return c
}

func TestOperationRecordsReadBackAsTheEventLogWroteThem(t *testing.T) {
	ops := randomOps(1, 5000, testBase())
	var e encoder
	var body []byte
	for _, op := range ops {
		body = e.appendOp(body, op)
	}
	var d decoder
	d.reset(body)
	for i, want := range ops {
		typ, rec, ok := d.next()
		if !ok || typ != recOperation {
			t.Fatalf("record %d: type %d, ok %v, err %v", i, typ, ok, d.err)
		}
		var got flow.Operation
		if err := d.operation(rec, &got); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if a, b := exporter.AppendJSON(nil, want), exporter.AppendJSON(nil, &got); !bytes.Equal(a, b) {
			t.Fatalf("record %d reads back as\n%s\nwant\n%s", i, b, a)
		}
		if !reflect.DeepEqual(normal(want), normal(&got)) {
			t.Fatalf("record %d reads back as\n%+v\nwant\n%+v", i, normal(&got), normal(want))
		}
	}
	if _, _, ok := d.next(); ok || d.err != nil {
		t.Fatalf("records left over, or an error at the end: %v", d.err)
	}
	jsonSize := 0
	for _, op := range ops {
		jsonSize += len(exporter.AppendJSON(nil, op)) + 1
	}
	t.Logf("%d operations: %d bytes as records, %d as the event log (%.2f)", len(ops), len(body), jsonSize, float64(len(body))/float64(jsonSize))
}

func TestNotesReadBack(t *testing.T) {
	notes := []*Note{
		{Kind: "drops", Time: testBase(), Reason: "ring_buffer", Count: 12345},
		{Kind: "started", Time: testBase(), Version: "v1.2.3", PID: 4242},
		{Kind: "recovered", Time: testBase(), Segment: 7, Offset: 1 << 20, Bytes: 333},
		{Kind: "expired", Time: testBase(), Segment: 1, Last: 4, Bytes: 1 << 30, Reason: "max_size"},
		{Kind: "missing", Time: testBase(), Segment: 9},
	}
	var body []byte
	for _, n := range notes {
		body = appendNote(body, n)
	}
	var d decoder
	d.reset(body)
	for _, want := range notes {
		typ, rec, ok := d.next()
		if !ok {
			t.Fatal(d.err)
		}
		got, err := d.note(typ, rec)
		if err != nil {
			t.Fatal(err)
		}
		got.Time = got.Time.UTC()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("note reads back as %+v, want %+v", got, want)
		}
	}
}
