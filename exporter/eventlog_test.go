package exporter

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/icptrack/icptrack/flow"
)

// The event log's fields are a contract (DESIGN.md): these are all of them.
var contractFields = []string{
	"id", "time", "duration_ns", "pid", "tid", "ppid", "comm", "mechanism", "op", "syscall",
	"channel", "endpoint", "bytes", "peer_pid", "peer_comm", "links", "error", "blocked",
	"payload", "payload_truncated", "container_id",
	// Added with queues, shared memory, signals and the process table.
	"exe", "cmdline", "cgroup_id", "signal", "queue_depth", "peers", "message_type",
	// Added with coalescing.
	"count", "busy_ns",
}

func fullOperation() *flow.Operation {
	return &flow.Operation{
		ID: 0x1234, Time: time.Date(2026, 11, 26, 5, 0, 0, 123456789, time.UTC), Duration: 1500,
		PID: 10, TID: 11, PPID: 1, Comm: "cli\"ent\n", Mechanism: flow.UnixStream, Op: flow.Receive,
		Syscall: "recvmsg", Channel: "unix:a-b", Endpoint: "/run/x.sock", Bytes: 64,
		Peer: flow.Peer{PID: 20, Comm: "server"}, Links: []flow.OpID{1, 2}, Error: "EAGAIN", Blocked: true,
		Payload: []byte("hi\x00"), PayloadCaptured: true, PayloadTruncated: true, ContainerID: "abc",
		Exe: "/usr/bin/client", Cmdline: "client --fast", CgroupID: 77, Signal: "SIGUSR1", QueueDepth: 3,
		Peers: []uint32{20, 30}, MessageType: 5, HasMessageType: true, Count: 4, Busy: 1200,
	}
}

func TestEventLogLineHasExactlyTheContractFields(t *testing.T) {
	var buf bytes.Buffer
	l := NewEventLog(&buf)
	l.Write(fullOperation())
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, buf.String())
	}
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := slices.Clone(contractFields)
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Errorf("fields %v, want %v", keys, want)
	}
	for k, v := range map[string]any{
		"id": "0000000000001234", "time": "2026-11-26T05:00:00.123456789Z", "duration_ns": 1500.0,
		"comm": "cli\"ent\n", "mechanism": "unix_stream", "op": "receive", "peer_pid": 20.0,
		"payload": "aGkA", "blocked": true, "count": 4.0, "busy_ns": 1200.0, "links": []any{"0000000000000001", "0000000000000002"},
	} {
		if g := got[k]; !equalJSON(g, v) {
			t.Errorf("%s = %#v, want %#v", k, g, v)
		}
	}
	if !strings.HasSuffix(buf.String(), "}\n") {
		t.Error("line does not end with a newline")
	}
}

func TestEventLogLeavesOutWhatDoesNotApply(t *testing.T) {
	op := &flow.Operation{ID: 1, Time: time.Unix(0, 0), Mechanism: flow.Pipe, Op: flow.Send, Bytes: 3, QueueDepth: -1}
	line := string(AppendJSON(nil, op))
	for _, absent := range []string{"peer_pid", "links", "error", "payload", "container_id", "exe", "cmdline",
		"cgroup_id", "signal", "queue_depth", "peers", "message_type", "count", "busy_ns"} {
		if strings.Contains(line, `"`+absent+`"`) {
			t.Errorf("%s present in %s", absent, line)
		}
	}
}

func TestEventLogEscapesInvalidUTF8(t *testing.T) {
	op := &flow.Operation{ID: 1, Time: time.Unix(0, 0), Comm: "bad\xff", Endpoint: "tab\tx", Mechanism: flow.Pipe, Op: flow.Send}
	var got map[string]any
	if err := json.Unmarshal(AppendJSON(nil, op), &got); err != nil {
		t.Fatal(err)
	}
	if got["comm"] != "bad\uFFFD" || got["endpoint"] != "tab\tx" {
		t.Errorf("comm %q endpoint %q", got["comm"], got["endpoint"])
	}
}

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func TestTimeFormatMatchesRFC3339Nano(t *testing.T) {
	var e encoder
	for _, ts := range []time.Time{
		time.Date(2026, 11, 26, 5, 0, 0, 0, time.UTC),
		time.Date(2026, 11, 26, 5, 0, 0, 120000000, time.UTC),
		time.Date(2026, 11, 26, 5, 0, 0, 123456789, time.UTC),
		time.Date(2026, 11, 26, 5, 0, 1, 1, time.FixedZone("x", 3600)),
		time.Date(2026, 11, 26, 5, 0, 1, 999999999, time.UTC),
	} {
		if got, want := string(e.appendTime(nil, ts)), ts.UTC().Format(time.RFC3339Nano); got != want {
			t.Errorf("appendTime(%v) = %s, want %s", ts, got, want)
		}
	}
}
