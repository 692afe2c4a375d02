package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/icptrack/icptrack/exporter"
	"github.com/icptrack/icptrack/flow"
)

// captureFile writes ops to a file in format f.
func captureFile(t *testing.T, f exporter.Format, ops []*flow.Operation) string {
	t.Helper()
	var buf bytes.Buffer
	w, err := exporter.NewWriter(f, &buf, exporter.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		w.Write(op)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "capture."+string(f))
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func someOps() []*flow.Operation {
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 5, time.UTC)
	return []*flow.Operation{
		{ID: 0xabc, Time: t0, Duration: 900, PID: 7, TID: 8, PPID: 1, Comm: "a,\"b\"", Mechanism: flow.UnixStream, Op: flow.Receive,
			Syscall: "read", Channel: "unix:1-2", Endpoint: "fd 3", Bytes: 10, Peer: flow.Peer{PID: 9, Comm: "srv"},
			Links: []flow.OpID{0xa, 0xb}, Payload: []byte("0123456789"), PayloadCaptured: true, QueueDepth: -1, Count: 2, Busy: 400},
		{ID: 0xa, Time: t0.Add(time.Millisecond), PID: 9, TID: 9, Comm: "srv", Mechanism: flow.POSIXMQ, Op: flow.Send,
			Syscall: "mq_timedsend", Endpoint: "/q", Bytes: 4, QueueDepth: 2, MessageType: 1, HasMessageType: true},
		{ID: 0xb, Time: t0.Add(2 * time.Millisecond), PID: 9, TID: 9, Comm: "srv", Mechanism: flow.Signal, Op: flow.Receive,
			Signal: "SIGHUP", Peer: flow.Kernel, QueueDepth: -1, Error: "EINTR"},
		{ID: 0xc, Time: t0.Add(3 * time.Millisecond), PID: 9, TID: 9, Comm: "srv", Mechanism: flow.SysVShm, Op: flow.Attach,
			Syscall: "shmat", QueueDepth: -1, Peers: []uint32{7, 11}, CgroupID: 3, ContainerID: "c1"},
	}
}

// convert takes every readable format to every format, from files and
// from standard input, and back to the same event log.
func TestConvertRoundTrips(t *testing.T) {
	src := captureFile(t, exporter.JSONL, someOps())
	want, _ := os.ReadFile(src)
	for _, f := range []exporter.Format{exporter.JSONL, exporter.CSV, exporter.OTLPJSON, exporter.OTLPProto} {
		r := run(t, "convert", "--to", string(f), src)
		if r.code != 0 {
			t.Fatalf("--to %s: exit %d: %s", f, r.code, r.stderr)
		}
		cmd := exec.Command(binary, "convert", "--to", "jsonl")
		cmd.Stdin = strings.NewReader(r.stdout)
		back := runCmd(t, cmd)
		if back.code != 0 || back.stdout != string(want) {
			t.Errorf("jsonl → %s → jsonl (exit %d, %s):\n%s\nwant\n%s", f, back.code, back.stderr, back.stdout, want)
		}
	}
	// Several files, in several formats, one after the other; - is stdin.
	csv := captureFile(t, exporter.CSV, someOps()[:2])
	proto := captureFile(t, exporter.OTLPProto, someOps()[2:])
	stdin, _ := os.Open(captureFile(t, exporter.OTLPJSON, someOps()[:1]))
	defer stdin.Close()
	cmd := exec.Command(binary, "convert", "--to", "jsonl", csv, proto, "-")
	cmd.Stdin = stdin
	r := runCmd(t, cmd)
	lines := strings.SplitAfter(string(want), "\n")
	if wantAll := string(want) + lines[0]; r.code != 0 || r.stdout != wantAll {
		t.Errorf("csv + otlp-proto + stdin (exit %d, %s):\n%s\nwant\n%s", r.code, r.stderr, r.stdout, wantAll)
	}
	// Text is for people: one line per operation, no colour in a pipe.
	r = run(t, "convert", "--to", "text", src)
	if n := strings.Count(r.stdout, "\n"); r.code != 0 || n != len(someOps()) || strings.Contains(r.stdout, "\x1b") ||
		!strings.Contains(r.stdout, "a,\"b\"[7/8]") || !strings.Contains(r.stdout, "← srv[9]") {
		t.Errorf("text (exit %d, %d lines): %s%s", r.code, n, r.stdout, r.stderr)
	}
}

func TestConvertErrors(t *testing.T) {
	good := captureFile(t, exporter.JSONL, someOps())
	b, _ := os.ReadFile(good)
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	os.WriteFile(bad, bytes.Replace(b, []byte(`"mechanism":"posix_mq"`), []byte(`"mechanism":"carrier_pigeon"`), 1), 0o644)
	text := captureFile(t, exporter.Text, someOps())

	oneLineError(t, run(t, "convert", good), exitUsage, "--to FORMAT")
	oneLineError(t, run(t, "convert", "--to", "yaml", good), exitUsage, `"yaml" is not a format`, "otlp-proto")
	oneLineError(t, run(t, "convert", "--to", "csv", bad), exitFailure, bad+": line 2:", `"carrier_pigeon" is not a mechanism`)
	oneLineError(t, run(t, "convert", "--to", "csv", text), exitFailure, text+":", "cannot be read back")
	oneLineError(t, run(t, "convert", "--to", "csv", filepath.Join(t.TempDir(), "none")), exitFailure, "no such file")
	// What came before the bad line is written.
	if r := run(t, "convert", "--to", "jsonl", bad); !strings.HasPrefix(string(b), r.stdout) || strings.Count(r.stdout, "\n") != 1 {
		t.Errorf("before the bad line: %q", r.stdout)
	}
}

// --format on run: the event log in CSV reads back as the operations.
func TestRunWritesTheEventLogInEachFormat(t *testing.T) {
	oneLineError(t, run(t, "run", "--format", "xml", "--", "true"), exitUsage, "--format", `"xml" is not a format`)
	oneLineError(t, run(t, "run", "--format", "csv", "--", "true"), exitUsage, "--format", "--events PATH")
	needsBPF(t)
	for _, f := range []string{"csv", "otlp-proto", "text"} {
		events := filepath.Join(t.TempDir(), "events."+f)
		r := run(t, "run", "--events", events, "--format", f, "--mechanisms", "pipe", "--", "sh", "-c", "printf hello | cat >/dev/null")
		if r.code != 0 {
			t.Fatalf("%s: exit %d: %s", f, r.code, r.stderr)
		}
		if f == "text" {
			b, _ := os.ReadFile(events)
			if !strings.Contains(string(b), " pipe ") || !strings.Contains(string(b), "5B") {
				t.Errorf("text log lacks the pipe write of 5 bytes:\n%s", b)
			}
			continue
		}
		back := run(t, "convert", "--to", "jsonl", events)
		if back.code != 0 || !strings.Contains(back.stdout, `"mechanism":"pipe","op":"send","syscall":"write"`) ||
			!strings.Contains(back.stdout, `"bytes":5`) {
			t.Errorf("%s log read back (exit %d, %s):\n%s", f, back.code, back.stderr, back.stdout)
		}
	}
}

// icptrack filter, and convert --filter, keep what the expression
// matches, from any format; a bad expression is a usage error with a
// caret under the mistake.
func TestFilterCommand(t *testing.T) {
	ops := someOps()
	csv := captureFile(t, exporter.CSV, ops)
	keep := func(want ...*flow.Operation) string {
		return strings.TrimSpace(string(must(os.ReadFile(captureFile(t, exporter.JSONL, want)))))
	}
	for _, c := range []struct {
		expr string
		want string
	}{
		{"comm == srv", keep(ops[1:]...)},
		{"mechanism == posix_mq or (op == receive and bytes > 5)", keep(ops[0], ops[1])},
		{"peers", keep(ops[3])},
		{"error == EINTR", keep(ops[2])},
		{"pid == 12345", ""},
	} {
		r := run(t, "filter", c.expr, csv)
		if r.code != 0 || strings.TrimSpace(r.stdout) != c.want {
			t.Errorf("filter %q (exit %d, %s):\n%s\nwant\n%s", c.expr, r.code, r.stderr, r.stdout, c.want)
		}
	}
	r := run(t, "convert", "--to", "jsonl", "--filter", "comm == srv", csv)
	if r.code != 0 || strings.TrimSpace(r.stdout) != keep(ops[1:]...) {
		t.Errorf("convert --filter (exit %d, %s): %s", r.code, r.stderr, r.stdout)
	}
	bad := run(t, "filter", "op == recieve", csv)
	if bad.code != exitUsage || !strings.Contains(bad.stderr, "did you mean receive") || !strings.Contains(bad.stderr, "\n        ^") {
		t.Errorf("a misspelt operation: exit %d, %q", bad.code, bad.stderr)
	}
	if r := run(t, "filter"); r.code != exitUsage || !strings.Contains(r.stderr, "needs an expression") {
		t.Errorf("no expression: exit %d, %q", r.code, r.stderr)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
