package syslog

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/icptrack/icptrack/flow"
)

func failedOp(pid uint32, comm, endpoint string) *flow.Operation {
	return &flow.Operation{
		ID: flow.OpID(0x6d2bdcefbdf7416d), Time: time.Date(2026, 12, 5, 10, 0, 0, 123456789, time.UTC),
		Duration: 3100 * time.Nanosecond, PID: pid, TID: pid, Comm: comm,
		Mechanism: flow.Pipe, Op: flow.Send, Syscall: "write", Channel: "pipe:5678", Endpoint: endpoint,
		Peer: flow.Peer{PID: pid + 1, Comm: "reader"}, Error: "EPIPE", QueueDepth: -1,
	}
}

func TestEncodesAnOperationAsRFC5424(t *testing.T) {
	e := encoder{facility: 3, hostname: "host1"}
	m := operationMessage(failedOp(1234, "writer", "pipe:[5678]"))
	got, truncated := e.encode(nil, &m)
	want := `<28>1 2026-12-05T10:00:00.123456Z host1 icptrack 1234 send ` +
		`[ipc@32473 id="6d2bdcefbdf7416d" mechanism="pipe" op="send" syscall="write" channel="pipe:5678" endpoint="pipe:[5678\]" ` +
		`bytes="0" comm="writer" peer_pid="1235" peer_comm="reader" error="EPIPE" duration_ns="3100"] ` +
		`writer[1234] pipe send write pipe:[5678] 0B → reader[1235] 3.1µs EPIPE`
	if string(got) != want || truncated {
		t.Errorf("encoded\n%s\nwant\n%s (truncated %v)", got, want, truncated)
	}
}

func TestEscapesWhatRFC5424AndALineNeed(t *testing.T) {
	e := encoder{facility: 3, hostname: "h"}
	m := message{severity: sevInfo, msgID: "x", sdID: "ipc",
		params: []param{{"v", "a]b\"c\\d\ne\xff→"}}, text: "a]b\"c\\d\ne\xff→\x7f"}
	got, _ := e.encode(nil, &m)
	want := `<30>1 - h icptrack - x [ipc@32473 v="a\]b\"c\\d\\x0ae\\xff→"] a]b"c\d\x0ae\xff→\x7f`
	if string(got) != want {
		t.Errorf("encoded\n%s\nwant\n%s", got, want)
	}
	if !utf8.Valid(got) {
		t.Error("the message is not valid UTF-8")
	}
}

func TestCutsADatagramToFitAndStaysValid(t *testing.T) {
	e := encoder{facility: 3, hostname: "h", maxDatagram: DefaultMaxDatagram}
	long := strings.Repeat("é]", 3000) // 2 bytes + 2 escaped: cuts land inside runes and escapes
	for _, tc := range []struct {
		name string
		op   *flow.Operation
	}{
		{"long endpoint", failedOp(1, "w", "/run/"+long)},
		{"long comm and endpoint", failedOp(1, long, long)},
	} {
		m := operationMessage(tc.op)
		got, truncated := e.encode(nil, &m)
		if !truncated || len(got) > DefaultMaxDatagram {
			t.Errorf("%s: %d bytes, truncated %v; want at most %d, truncated", tc.name, len(got), truncated, DefaultMaxDatagram)
		}
		if !utf8.Valid(got) {
			t.Errorf("%s: cut inside a character", tc.name)
		}
		// Every field is still there, capped, in a closed SD-ELEMENT.
		s := string(got)
		for _, f := range []string{`id="6d2bdcefbdf7416d"`, `error="EPIPE"`, `duration_ns="3100"`, `…"`, `"] `} {
			if !strings.Contains(s, f) {
				t.Errorf("%s: %q lost from %s", tc.name, f, s)
			}
		}
	}
	short := operationMessage(failedOp(1, "w", "pipe:[1]"))
	if got, truncated := e.encode(nil, &short); truncated || !strings.HasSuffix(string(got), "EPIPE") {
		t.Errorf("a short message was cut: %s", got)
	}
}

func TestParsesURLs(t *testing.T) {
	for in, want := range map[string]Target{
		"unix:///dev/log":         {Transport: Unix, Address: "/dev/log"},
		"udp://127.0.0.1:514":     {Transport: UDP, Address: "127.0.0.1:514", Host: "127.0.0.1"},
		"tcp://[::1]:514":         {Transport: TCP, Address: "[::1]:514", Host: "::1"},
		"tls://logs.example:6514": {Transport: TLS, Address: "logs.example:6514", Host: "logs.example"},
	} {
		got, err := ParseURL(in)
		if err != nil || got != want {
			t.Errorf("ParseURL(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for in, says := range map[string]string{
		"/dev/log":            "unix:///dev/log",
		"unix://dev/log":      "three slashes",
		"http://host:514":     `transport "http"`,
		"tcp://host":          "needs a host and a port",
		"tcp://:514":          "needs a host and a port",
		"tls://host:99999":    "no valid port",
		"udp://host:514/x":    "is not udp://host:port",
		"tcp://user@host:514": "is not tcp://host:port",
	} {
		if _, err := ParseURL(in); err == nil || !strings.Contains(err.Error(), says) {
			t.Errorf("ParseURL(%q): %v, want an error saying %q", in, err, says)
		}
	}
}

func TestFacilities(t *testing.T) {
	if c, err := ParseFacility("local7"); c != 23 || err != nil {
		t.Errorf("local7 = %d, %v", c, err)
	}
	if _, err := ParseFacility("kern"); err == nil || !strings.Contains(err.Error(), "daemon") {
		t.Errorf("kern: %v, want refused with the list", err)
	}
}

func TestRateLimitBurstsThenRefills(t *testing.T) {
	now := time.Now()
	l := newLimiter(10, now)
	n := 0
	for range 100 {
		if l.allow(now) {
			n++
		}
	}
	if n != 10 {
		t.Errorf("%d passed at once, want a burst of 10", n)
	}
	if !l.allow(now.Add(100*time.Millisecond)) || l.allow(now.Add(100*time.Millisecond)) {
		t.Error("a tenth of a second should refill one token, and only one")
	}
}
