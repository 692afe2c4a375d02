package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/icptrack/icptrack/capture"
	"github.com/icptrack/icptrack/exporter"
	"github.com/icptrack/icptrack/flow"
)

// odd are the operations whose fields are hardest to store: every kind
// of absence, the kernel as a peer, ids and pids at the top of their
// range, bytes that are not UTF-8, NUL, an empty captured payload.
func odd(t0 time.Time) []*flow.Operation {
	return []*flow.Operation{
		{ID: 0xffffffffffffffff, Time: t0, Duration: 1500, PID: 4294967295, TID: 11, PPID: 1, Comm: "cli\"ent,\n\xff\xfe",
			Mechanism: flow.UnixStream, Op: flow.Receive, Syscall: "recvmsg", Channel: "unix:a-b", Endpoint: "@abs\x00tract",
			Bytes: 64, Peer: flow.Peer{PID: 20, Comm: "server"}, Links: []flow.OpID{1, 0xffffffffffffffff}, Error: "EAGAIN",
			Blocked: true, Payload: []byte("hi\x00,\"\n"), PayloadCaptured: true, PayloadTruncated: true, ContainerID: "abc",
			Exe: "/usr/bin/client", Cmdline: "client --fast \"x\"", CgroupID: 0x7000000000000005, QueueDepth: -1, Count: 4, Busy: 1200},
		{ID: 1, Time: t0.Add(time.Second), PID: 20, TID: 20, PPID: 1, Comm: "server", Mechanism: flow.Pipe, Op: flow.Send,
			Syscall: "write", Channel: "pipe:7", Endpoint: "pipe:[7]", Bytes: 5, QueueDepth: -1, Payload: []byte{}, PayloadCaptured: true},
		{ID: 2, Time: t0.Add(2 * time.Second), PID: 30, TID: 31, PPID: 20, Comm: "worker", Mechanism: flow.POSIXMQ, Op: flow.Send,
			Syscall: "mq_timedsend", Channel: "mq:/orders", Endpoint: "/orders", Bytes: 12, QueueDepth: 0,
			MessageType: 5, HasMessageType: true, Peer: flow.Peer{PID: 20, Comm: "server"}},
		{ID: 3, Time: t0.Add(3 * time.Second), PID: 30, TID: 30, PPID: 20, Comm: "worker", Mechanism: flow.SysVMQ, Op: flow.Receive,
			Syscall: "msgrcv", Endpoint: "msqid 9", QueueDepth: 0, MessageType: -2, HasMessageType: true, Error: "ENOMSG"},
		{ID: 4, Time: t0.Add(4 * time.Second), PID: 40, TID: 40, Comm: "sh", Mechanism: flow.SysVShm, Op: flow.Attach,
			Syscall: "shmat", Channel: "shm:1", Endpoint: "key 0x1", QueueDepth: -1, Peers: []uint32{20, 30, 4294967295}},
		{ID: 5, Time: t0.Add(5*time.Second + 999), PID: 40, TID: 40, Comm: "sh", Mechanism: flow.Signal, Op: flow.Receive,
			Signal: "SIGTERM", Peer: flow.Kernel, QueueDepth: -1},
		{ID: 6, Time: t0.Add(6 * time.Second), PID: 40, TID: 41, Comm: "sh", Mechanism: flow.Signal, Op: flow.Send,
			Syscall: "kill", Signal: "SIGUSR1", Peer: flow.Peer{PID: 20, Comm: "server"}, QueueDepth: -1, Duration: -5},
		{ID: 7, Time: time.Date(1969, 7, 20, 20, 17, 40, 1, time.UTC), PID: 10, TID: 10, Comm: "", Mechanism: flow.TCP, Op: flow.Open,
			Syscall: "connect", Endpoint: "127.0.0.1:80", QueueDepth: -1, Error: "ECONNREFUSED"},
	}
}

// expected is what each column must hold for op, written out here field
// by field rather than taken from the sink's own column list.
func expected(op *flow.Operation) map[string]any {
	str := func(s string) any {
		if s == "" {
			return nil
		}
		return stored(s)
	}
	w := map[string]any{
		"unix_ns": op.Time.UnixNano(), "time_ns": int16(op.Time.Nanosecond() % 1000), "id": int64(op.ID),
		"duration_ns": int64(op.Duration), "pid": int64(op.PID), "tid": int64(op.TID), "ppid": int64(op.PPID),
		"comm": stored(op.Comm), "exe": str(op.Exe), "cmdline": str(op.Cmdline),
		"mechanism": op.Mechanism.String(), "op": op.Op.String(), "syscall": str(op.Syscall), "channel": str(op.Channel),
		"endpoint": str(op.Endpoint), "bytes": op.Bytes, "count": int64(1), "busy_ns": nil,
		"peer_pid": nil, "peer_comm": nil, "peers": nil, "signal": str(op.Signal), "queue_depth": nil, "message_type": nil,
		"links": nil, "error": str(op.Error), "blocked": op.Blocked, "payload": nil, "payload_truncated": nil,
		"container_id": str(op.ContainerID), "cgroup_id": nil,
	}
	if op.Count > 1 {
		w["count"], w["busy_ns"] = int64(op.Count), int64(op.Busy)
	}
	if op.Peer.PID != 0 || op.Peer.Comm == "kernel" {
		w["peer_pid"], w["peer_comm"] = int64(op.Peer.PID), op.Peer.Comm
	}
	if op.Peers != nil {
		var ps []any
		for _, p := range op.Peers {
			ps = append(ps, int64(p))
		}
		w["peers"] = ps
	}
	if op.Links != nil {
		var ls []any
		for _, l := range op.Links {
			ls = append(ls, int64(l))
		}
		w["links"] = ls
	}
	if op.QueueDepth >= 0 {
		w["queue_depth"] = op.QueueDepth
	}
	if op.HasMessageType {
		w["message_type"] = op.MessageType
	}
	if op.PayloadCaptured {
		w["payload"], w["payload_truncated"] = append([]byte{}, op.Payload...), op.PayloadTruncated
	}
	if op.CgroupID != 0 {
		w["cgroup_id"] = int64(op.CgroupID)
	}
	return w
}

// stored is s as a text column holds it: each byte that is not UTF-8,
// and NUL, as U+FFFD. (The test's strings hold no multi-byte character,
// so every byte above 0x7f is a stray one.)
func stored(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0 || s[i] >= 0x80 {
			b.WriteString("\uFFFD")
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Every field of every operation, over every mechanism and operation
// type, is in its own typed column and reads back as it was written; and
// every field the event log has is a column.
func TestEveryFieldRoundTrips(t *testing.T) {
	c := startCluster(t)
	t0 := time.Date(2026, 11, 26, 5, 0, 0, 123456789, time.UTC)
	ops := append(odd(t0), generated(300, t0.Add(time.Minute))...)
	s := open(t, Config{URL: c.URL("postgres", "postgres"), BatchSize: 64})
	for _, op := range ops {
		s.Add(op)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Written != uint64(len(ops)) || st.Dropped != 0 || st.Lagging != 0 {
		t.Fatalf("stats %+v, want %d written and nothing dropped or lagging", st, len(ops))
	}

	conn := dial(t, c)
	rows, err := conn.Query(context.Background(),
		"SELECT *, (extract(epoch FROM time) * 1000000)::bigint * 1000 + time_ns AS unix_ns FROM icptrack_operations")
	if err != nil {
		t.Fatal(err)
	}
	byID := map[int64]*flow.Operation{}
	for _, op := range ops {
		byID[int64(op.ID)] = op
	}
	var names []string
	for _, f := range rows.FieldDescriptions() {
		names = append(names, f.Name)
	}
	seen := 0
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]any{}
		for i, n := range names {
			got[n] = vals[i]
		}
		op := byID[got["id"].(int64)]
		if op == nil {
			t.Fatalf("a row with id %v that was not written", got["id"])
		}
		seen++
		want := expected(op)
		for _, n := range names {
			if n == "time" {
				continue // checked with time_ns, as unix_ns
			}
			w, ok := want[n]
			if !ok {
				t.Fatalf("column %s is not checked by this test", n)
			}
			if !reflect.DeepEqual(got[n], w) {
				t.Errorf("operation %s (%s %s): %s = %#v, want %#v", op.ID, op.Mechanism, op.Op, n, got[n], w)
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if seen != len(ops) {
		t.Fatalf("%d rows, want %d", seen, len(ops))
	}

	// Every event-log field is a column (time is time and time_ns).
	cols := map[string]bool{}
	for _, n := range names {
		cols[n] = true
	}
	for _, op := range ops {
		var fields map[string]any
		if err := json.Unmarshal(exporter.AppendJSON(nil, op), &fields); err != nil {
			t.Fatal(err)
		}
		for f := range fields {
			if !cols[f] {
				t.Errorf("the event log's field %s has no column", f)
			}
		}
	}

	// Read back, the rows are the operations the event log gives back.
	var log bytes.Buffer
	w := exporter.NewEventLog(&log)
	for _, op := range ops {
		w.Write(op)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	fromLog := readCapture(t, &log)
	for _, op := range fromLog {
		// The event log keeps NUL; a text column cannot.
		op.Comm = strings.ReplaceAll(op.Comm, "\x00", "\uFFFD")
		op.Endpoint = strings.ReplaceAll(op.Endpoint, "\x00", "\uFFFD")
	}
	fromDB, err := ReadOperations(context.Background(), conn, DefaultTablePrefix, "")
	if err != nil {
		t.Fatal(err)
	}
	sortByID(fromLog)
	sortByID(fromDB)
	if len(fromDB) != len(fromLog) {
		t.Fatalf("read %d operations back, the event log has %d", len(fromDB), len(fromLog))
	}
	for i := range fromLog {
		if !reflect.DeepEqual(fromDB[i], fromLog[i]) {
			t.Errorf("read back:\n%+v\nthe event log gives:\n%+v", fromDB[i], fromLog[i])
		}
	}
}

func readCapture(t *testing.T, r io.Reader) []*flow.Operation {
	t.Helper()
	cr, err := capture.Open(r)
	if err != nil {
		t.Fatal(err)
	}
	var ops []*flow.Operation
	for {
		op, err := cr.Next()
		if errors.Is(err, io.EOF) {
			return ops
		}
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, op)
	}
}

func sortByID(ops []*flow.Operation) {
	sort.Slice(ops, func(i, j int) bool { return ops[i].ID < ops[j].ID })
}
