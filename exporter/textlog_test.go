package exporter

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/icptrack/icptrack/flow"
)

func TestTextLineIsOneAlignedLine(t *testing.T) {
	time.Local = time.UTC
	op := fullOperation()
	op.Comm = "cli\nent\x1b[31m"
	var plain, coloured bytes.Buffer
	for _, c := range []struct {
		buf    *bytes.Buffer
		colour bool
	}{{&plain, false}, {&coloured, true}} {
		w, err := NewWriter(Text, c.buf, WriterOptions{Colour: c.colour})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(op)
		w.Write(&flow.Operation{ID: 2, Time: op.Time, PID: 5, TID: 5, Comm: "srv", Mechanism: flow.Pipe, Op: flow.Send,
			Syscall: "write", Endpoint: "pipe:[7]", Bytes: 12345, QueueDepth: -1})
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.Split(strings.TrimSuffix(plain.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(lines), plain.String())
	}
	for _, want := range []string{"05:00:00.123456 cli\\x0aent\\x1b[31m[10/11]", "unix_stream", "receive", "recvmsg",
		"/run/x.sock", "64B ← server[20]", "1.5µs EAGAIN blocked ×4", "SIGUSR1", "depth=3", "links=2"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("line %q lacks %q", lines[0], want)
		}
	}
	if strings.Contains(plain.String(), "\x1b") {
		t.Errorf("colour without a terminal: %q", plain.String())
	}
	// The columns line up: with names that fit, each starts at the same
	// place (in characters: the arrow is one), coloured or not.
	op.Comm = "client"
	for _, colour := range []bool{false, true} {
		var buf bytes.Buffer
		w, _ := NewWriter(Text, &buf, WriterOptions{Colour: colour})
		w.Write(op)
		w.Write(&flow.Operation{ID: 2, Time: op.Time, PID: 5, TID: 5, Comm: "srv", Mechanism: flow.Pipe, Op: flow.Send,
			Syscall: "write", Endpoint: "pipe:[7]", Bytes: 12345, QueueDepth: -1})
		_ = w.Flush()
		l := strings.Split(buf.String(), "\n")
		col := func(line, s string) int { return visibleWidth([]byte(line[:strings.Index(line, s)])) }
		for _, pair := range [][2]string{{"unix_stream", "pipe"}, {"receive", "send"}, {"recvmsg", "write"},
			{"/run/x.sock", "pipe:[7]"}, {"64B", "12345B"}, {"1.5µs", "0s"}} {
			if a, b := col(l[0], pair[0]), col(l[1], pair[1]); a+len(pair[0]) != b+len(pair[1]) && a != b {
				t.Errorf("colour %v: %q at %d, %q at %d:\n%s", colour, pair[0], a, pair[1], b, buf.String())
			}
		}
	}
	if !strings.Contains(coloured.String(), ansiCyan+"receive"+ansiReset) || !strings.Contains(coloured.String(), ansiGreen+"send"+ansiReset) {
		t.Errorf("no colour on a terminal: %q", coloured.String())
	}
}

func TestParseFormat(t *testing.T) {
	for _, f := range Formats {
		if got, err := ParseFormat(string(f)); got != f || err != nil {
			t.Errorf("ParseFormat(%q) = %q, %v", f, got, err)
		}
	}
	if got, _ := ParseFormat(""); got != JSONL {
		t.Errorf("default %q", got)
	}
	if _, err := ParseFormat("xml"); err == nil || !strings.Contains(err.Error(), "otlp-proto") {
		t.Errorf("ParseFormat(xml) = %v", err)
	}
}
