package capture

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/icptrack/icptrack/exporter"
	"github.com/icptrack/icptrack/flow"
)

// variedOps covers every field of the event log, and the ways each can be
// absent.
func variedOps() []*flow.Operation {
	t0 := time.Date(2026, 11, 26, 5, 0, 0, 123456789, time.UTC)
	return []*flow.Operation{
		{ID: 0x1234, Time: t0, Duration: 1500, PID: 10, TID: 11, PPID: 1, Comm: "cli\"ent,\n", Mechanism: flow.UnixStream,
			Op: flow.Receive, Syscall: "recvmsg", Channel: "unix:a-b", Endpoint: "/run/x y.sock", Bytes: 64,
			Peer: flow.Peer{PID: 20, Comm: "server"}, Links: []flow.OpID{1, 0xffffffffffffffff}, Error: "EAGAIN", Blocked: true,
			Payload: []byte("hi\x00,\"\n"), PayloadCaptured: true, PayloadTruncated: true, ContainerID: "abc",
			Exe: "/usr/bin/client", Cmdline: "client --fast \"x\"", CgroupID: 77, QueueDepth: -1, Count: 4, Busy: 1200},
		{ID: 1, Time: t0.Add(time.Second), PID: 20, TID: 20, PPID: 1, Comm: "server", Mechanism: flow.Pipe, Op: flow.Send,
			Syscall: "write", Channel: "pipe:7", Endpoint: "pipe:[7]", Bytes: 5, QueueDepth: -1,
			Payload: []byte{}, PayloadCaptured: true},
		{ID: 2, Time: t0.Add(2 * time.Second), PID: 30, TID: 31, PPID: 20, Comm: "worker", Mechanism: flow.POSIXMQ, Op: flow.Send,
			Syscall: "mq_timedsend", Channel: "mq:/orders", Endpoint: "/orders", Bytes: 12, QueueDepth: 3,
			MessageType: 5, HasMessageType: true, Peer: flow.Peer{PID: 20, Comm: "server"}},
		{ID: 3, Time: t0.Add(3 * time.Second), PID: 30, TID: 30, PPID: 20, Comm: "worker", Mechanism: flow.SysVMQ, Op: flow.Receive,
			Syscall: "msgrcv", Endpoint: "msqid 9", Bytes: 0, QueueDepth: 0, MessageType: -2, HasMessageType: true, Error: "ENOMSG"},
		{ID: 4, Time: t0.Add(4 * time.Second), PID: 40, TID: 40, Comm: "sh", Mechanism: flow.SysVShm, Op: flow.Attach,
			Syscall: "shmat", Channel: "shm:1", Endpoint: "key 0x1", QueueDepth: -1, Peers: []uint32{20, 30, 4294967295}},
		{ID: 5, Time: t0.Add(5 * time.Second), PID: 40, TID: 40, Comm: "sh", Mechanism: flow.Signal, Op: flow.Receive,
			Syscall: "", Signal: "SIGTERM", Peer: flow.Kernel, QueueDepth: -1, Duration: 0},
		{ID: 6, Time: t0.Add(6 * time.Second), PID: 40, TID: 41, Comm: "sh", Mechanism: flow.Signal, Op: flow.Send,
			Syscall: "kill", Signal: "SIGUSR1", Peer: flow.Peer{PID: 20, Comm: "server"}, QueueDepth: -1, Duration: -5},
		{ID: 7, Time: t0.Add(7 * time.Second), PID: 10, TID: 10, Comm: "", Mechanism: flow.TCP, Op: flow.Open,
			Syscall: "connect", Endpoint: "127.0.0.1:80", QueueDepth: -1, Error: "ECONNREFUSED"},
	}
}

func jsonl(t testing.TB, ops []*flow.Operation) []byte {
	t.Helper()
	return write(t, exporter.JSONL, ops)
}

func write(t testing.TB, f exporter.Format, ops []*flow.Operation) []byte {
	t.Helper()
	return writeBatched(t, f, ops, 3)
}

func writeBatched(t testing.TB, f exporter.Format, ops []*flow.Operation, batch int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := exporter.NewWriter(f, &buf, exporter.WriterOptions{BatchSize: batch})
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		w.Write(op)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readAll(t testing.TB, b []byte) ([]*flow.Operation, exporter.Format) {
	t.Helper()
	r, err := Open(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	var ops []*flow.Operation
	for {
		op, err := r.Next()
		if err == io.EOF {
			return ops, r.Format()
		}
		if err != nil {
			t.Fatalf("Next after %d operations: %v", len(ops), err)
		}
		ops = append(ops, op)
	}
}

func TestRoundTripIsExact(t *testing.T) {
	orig := jsonl(t, variedOps())
	back, f := readAll(t, orig)
	if f != exporter.JSONL || len(back) != len(variedOps()) {
		t.Fatalf("jsonl read as %s, %d operations", f, len(back))
	}
	if got := jsonl(t, back); !bytes.Equal(got, orig) {
		t.Fatalf("jsonl → jsonl differs:\n%s\nwant\n%s", got, orig)
	}
	// Batches of 3, and one batch of all: there, process 10's last
	// operation follows others' and must stay last.
	for _, c := range []struct {
		format exporter.Format
		batch  int
	}{{exporter.CSV, 0}, {exporter.OTLPJSON, 3}, {exporter.OTLPJSON, 0}, {exporter.OTLPProto, 3}, {exporter.OTLPProto, 0}} {
		format := c.format
		t.Run(fmt.Sprintf("%s/batch%d", format, c.batch), func(t *testing.T) {
			x := writeBatched(t, format, back, c.batch)
			ops, f := readAll(t, x)
			if f != format {
				t.Errorf("detected %s", f)
			}
			if got := jsonl(t, ops); !bytes.Equal(got, orig) {
				t.Errorf("jsonl → %s → jsonl differs:\n%s\nwant\n%s", format, got, orig)
			}
		})
	}
}

// Every OTLP request decodes with pdata's own unmarshalers, in the
// fileexporter's layout, batched (3 per request here) and flushed on close.
func TestOTLPRequestsDecodeWithPdata(t *testing.T) {
	ops := variedOps()
	var n int
	sc := bufio.NewScanner(bytes.NewReader(write(t, exporter.OTLPJSON, ops)))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(sc.Bytes())
		if err != nil {
			t.Fatalf("line %d: %v", n+1, err)
		}
		n += ld.LogRecordCount()
	}
	if n != len(ops) {
		t.Errorf("otlp-json: %d records, want %d", n, len(ops))
	}

	b := write(t, exporter.OTLPProto, ops)
	n = 0
	var requests int
	for len(b) > 0 {
		size := binary.BigEndian.Uint32(b)
		ld, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(b[4 : 4+size])
		if err != nil {
			t.Fatalf("request %d: %v", requests+1, err)
		}
		requests++
		n += ld.LogRecordCount()
		b = b[4+size:]
	}
	if n != len(ops) || requests != 3 {
		t.Errorf("otlp-proto: %d records in %d requests, want %d in 3", n, requests, len(ops))
	}
}

func TestCSVHeaderAndCells(t *testing.T) {
	out := string(write(t, exporter.CSV, variedOps()[:2]))
	lines := strings.SplitN(out, "\n", 2)
	if lines[0] != strings.Join(exporter.CSVColumns, ",") {
		t.Errorf("header %q", lines[0])
	}
	if !strings.Contains(out, `"cli""ent,`+"\n"+`"`) {
		t.Errorf("comm not quoted as RFC 4180 asks:\n%s", out)
	}
	if !strings.Contains(out, ",0000000000000001 ffffffffffffffff,") {
		t.Errorf("links not joined with a space:\n%s", out)
	}
}

func TestTextCannotBeReadBack(t *testing.T) {
	for _, colour := range []bool{false, true} {
		var buf bytes.Buffer
		w, _ := exporter.NewWriter(exporter.Text, &buf, exporter.WriterOptions{Colour: colour})
		w.Write(variedOps()[1])
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(&buf); !errors.Is(err, ErrText) {
			t.Errorf("colour %v: Open(text) = %v, want ErrText", colour, err)
		}
	}
}

func TestBadInputSaysWhereAndWhat(t *testing.T) {
	good := string(jsonl(t, variedOps()[:2]))
	lines := strings.Split(good, "\n")
	for name, tc := range map[string]struct{ in, want string }{
		"bad mechanism": {lines[0] + "\n" + strings.Replace(lines[1], `"pipe"`, `"pipes"`, 1), `line 2: field "mechanism": "pipes" is not a mechanism`},
		"missing op":    {strings.Replace(lines[0], `"op":"receive",`, "", 1), `line 1: field "op" is missing`},
		"bad json":      {lines[0] + "\n{\"id\":", "line 2: not a JSON object"},
		"bad id":        {strings.Replace(lines[0], "0000000000001234", "12", 1), `line 1: field "id": "12" is not an operation id`},
		"csv bad pid": {strings.Join(exporter.CSVColumns, ",") + "\n" + strings.Replace(strings.SplitN(string(write(t, exporter.CSV, variedOps()[1:2])), "\n", 3)[1], ",20,20,", ",x,20,", 1),
			`line 2: field "pid": "x" is not a whole number`},
		"otlp cut":   {string(write(t, exporter.OTLPProto, variedOps())[:30]), "request 1 (byte 0): cut short"},
		"other json": {`{"a":1}`, `neither an event-log line`},
		"not at all": {"hello\n", "not a capture"},
	} {
		r, err := Open(strings.NewReader(tc.in))
		for err == nil {
			_, err = r.Next()
		}
		if err == io.EOF || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, tc.want)
		}
	}
}

func TestEmptyInputIsAnEmptyCapture(t *testing.T) {
	r, err := Open(strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("Next = %v, want io.EOF", err)
	}
}

// FuzzRead: no input makes a reader panic or loop, and whatever it reads
// it writes again as the same event log.
func FuzzRead(f *testing.F) {
	ops := variedOps()
	for _, format := range []exporter.Format{exporter.JSONL, exporter.CSV, exporter.OTLPJSON, exporter.OTLPProto} {
		f.Add(write(f, format, ops))
	}
	f.Add([]byte("12:00:00.000000 x[1] pipe send"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Open(bytes.NewReader(b))
		if err != nil {
			return
		}
		var got []*flow.Operation
		for i := 0; ; i++ {
			op, err := r.Next()
			if err != nil {
				break
			}
			if i > len(b) {
				t.Fatalf("more operations (%d) than bytes", i)
			}
			got = append(got, op)
		}
		// What was read is written and read back the same.
		first := jsonl(t, got)
		again, _ := readAll(t, first)
		if second := jsonl(t, again); !bytes.Equal(first, second) {
			t.Fatalf("rewrite differs:\n%s\n%s", first, second)
		}
	})
}

// The OTLP formats say where each operation was captured (their
// resources' host.name); the others do not.
func TestOTLPCapturesNameTheirHost(t *testing.T) {
	ops := variedOps()
	// Two requests, each with a resource per process.
	b := write(t, exporter.OTLPJSON, ops)
	b = bytes.Replace(b, []byte(`"stringValue":"`+hostname(t)+`"`), []byte(`"stringValue":"box-1"`), 3)
	b = bytes.ReplaceAll(b, []byte(`"stringValue":"`+hostname(t)+`"`), []byte(`"stringValue":"box-2"`))
	for name, in := range map[string][]byte{"otlp-json": b, "otlp-proto": write(t, exporter.OTLPProto, ops)} {
		r, err := Open(bytes.NewReader(in))
		if err != nil {
			t.Fatal(err)
		}
		h, ok := r.(Hosted)
		if !ok {
			t.Fatalf("%s: the reader does not say where operations were captured", name)
		}
		var hosts []string
		for {
			if _, err := r.Next(); err != nil {
				break
			}
			hosts = append(hosts, h.Host())
		}
		want := slices.Repeat([]string{hostname(t)}, len(ops))
		if name == "otlp-json" {
			want = []string{"box-1", "box-1", "box-1", "box-2", "box-2", "box-2", "box-2", "box-2"}
		}
		if !slices.Equal(hosts, want) {
			t.Errorf("%s: hosts %q, want %q", name, hosts, want)
		}
	}
	if _, ok := any(must(Open(bytes.NewReader(jsonl(t, ops))))).(Hosted); ok {
		t.Error("a jsonl capture claims to know its host")
	}
}

func hostname(t *testing.T) string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		t.Skip("this machine has no host name to find in a capture")
	}
	return h
}

func must(r Reader, err error) Reader {
	if err != nil {
		panic(err)
	}
	return r
}
