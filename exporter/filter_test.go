package exporter

import (
	"bufio"
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/icptrack/icptrack/filter"
	"github.com/icptrack/icptrack/flow"
)

// The filter runs after correlation: a receive it keeps links to the
// write it delivered, and names its writer, though the write is left out.
func TestFilterKeepsLinksToOperationsItLeavesOut(t *testing.T) {
	f, err := filter.Parse(`op == receive`)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	p := NewPipeline(Outputs{EventLog: &log, Filter: f})
	now := time.Now()
	for _, e := range []flow.Event{
		{PID: 10, TID: 10, Comm: "w", Mechanism: flow.Pipe, Op: flow.Send, Ino: 7, Dev: 1, Offset: 0, Result: 10, FD: -1},
		{PID: 20, TID: 20, Comm: "r", Mechanism: flow.Pipe, Op: flow.Receive, Ino: 7, Dev: 1, Offset: 0, Result: 10, FD: -1},
	} {
		e.Start, e.End = now, now
		p.Event(&e)
	}
	if err := p.Finish(); err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	sc := bufio.NewScanner(&log)
	for sc.Scan() {
		var row map[string]any
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, row)
	}
	if len(rows) != 1 || rows[0]["op"] != "receive" {
		t.Fatalf("event log %v, want the receive alone", rows)
	}
	if rows[0]["peer_comm"] != "w" || rows[0]["peer_pid"] != float64(10) {
		t.Errorf("receive's peer = %v %v, want w 10", rows[0]["peer_comm"], rows[0]["peer_pid"])
	}
	if links, _ := rows[0]["links"].([]any); len(links) != 1 {
		t.Errorf("receive's links = %v, want the write", rows[0]["links"])
	}
	if p.Filtered() != 1 {
		t.Errorf("Filtered() = %d, want 1", p.Filtered())
	}
}
