package exporter

import (
	"strings"
	"testing"
	"time"

	"github.com/icptrack/icptrack/flow"
)

func TestSummaryPlacesSendsUnderTheReceiverLearnedLater(t *testing.T) {
	s := NewSummary()
	at := time.Unix(100, 0)
	send := &flow.Operation{ID: 1, Time: at, Duration: time.Microsecond, PID: 1, Comm: "writer",
		Mechanism: flow.Pipe, Op: flow.Send, Channel: "pipe:7", Bytes: 10}
	recv := &flow.Operation{ID: 2, Time: at, Duration: 3 * time.Microsecond, PID: 2, Comm: "reader",
		Mechanism: flow.Pipe, Op: flow.Receive, Channel: "pipe:7", Bytes: 10, Peer: flow.Peer{PID: 1, Comm: "writer"}, Links: []flow.OpID{1}}
	failed := &flow.Operation{ID: 3, Time: at, PID: 1, Comm: "writer", Mechanism: flow.Pipe, Op: flow.Send,
		Channel: "pipe:7", Error: "EPIPE", Peer: flow.Peer{PID: 2, Comm: "reader"}}
	for _, op := range []*flow.Operation{send, recv, failed} {
		s.Add(op)
	}
	var b strings.Builder
	if err := s.Print(&b, Losses{Dropped: 0}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var rows []string
	for _, l := range lines {
		if strings.HasPrefix(l, "pipe") {
			rows = append(rows, strings.Join(strings.Fields(l), " "))
		}
	}
	want := "pipe writer[1] reader[2] 3 10B 10B"
	if len(rows) != 1 || !strings.HasPrefix(rows[0], want) || !strings.HasSuffix(rows[0], " 1") {
		t.Errorf("rows %q, want one row starting %q with 1 error\n%s", rows, want, out)
	}
	if !strings.Contains(out, "0 events dropped") {
		t.Errorf("no drop count in\n%s", out)
	}
}

func TestSummaryWarnsAboutDrops(t *testing.T) {
	var b strings.Builder
	if err := NewSummary().Print(&b, Losses{Dropped: 5}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "5 events dropped") || !strings.Contains(b.String(), "--ring-buffer") {
		t.Errorf("drop warning missing or without advice:\n%s", b.String())
	}
}

// Signals take no time of their own (the kernel reports their start as
// their end): their rows show no durations rather than a made-up 1ns, as
// does any row none of whose durations was measured.
func TestSummaryShowsNoDurationWhereNoneWasMeasured(t *testing.T) {
	s := NewSummary()
	at := time.Unix(100, 0)
	sender, target := flow.Peer{PID: 1, Comm: "sender"}, flow.Peer{PID: 2, Comm: "target"}
	for _, op := range []*flow.Operation{
		{ID: 1, Time: at, StartUnknown: true, PID: 1, Comm: "sender", Mechanism: flow.Signal, Op: flow.Send,
			Channel: "signal:1:2:10", Peer: target},
		{ID: 2, Time: at, StartUnknown: true, PID: 2, Comm: "target", Mechanism: flow.Signal, Op: flow.Receive,
			Channel: "signal:1:2:10", Peer: sender, Links: []flow.OpID{1}},
		{ID: 3, Time: at, Duration: 2 * time.Microsecond, PID: 1, Comm: "sender", Mechanism: flow.Pipe, Op: flow.Send,
			Channel: "pipe:7", Bytes: 4, Peer: target},
		// Without syscall hooks a socket call's start is unknown; one
		// that blocked has its wait measured.
		{ID: 4, Time: at, StartUnknown: true, PID: 1, Comm: "sender", Mechanism: flow.UnixStream, Op: flow.Send,
			Channel: "unix:1-2", Bytes: 4, Peer: target},
		{ID: 5, Time: at, StartUnknown: true, PID: 1, Comm: "sender", Mechanism: flow.UnixDgram, Op: flow.Send,
			Channel: "unix:3-4", Bytes: 4, Peer: target},
		{ID: 6, Time: at, StartUnknown: true, Blocked: true, Duration: 5 * time.Microsecond, PID: 1, Comm: "sender",
			Mechanism: flow.UnixDgram, Op: flow.Send, Channel: "unix:3-4", Bytes: 4, Peer: target},
	} {
		s.Add(op)
	}
	var b strings.Builder
	if err := s.Print(&b, Losses{}); err != nil {
		t.Fatal(err)
	}
	durations := map[string]string{} // mechanism -> "P50 P99"
	for _, l := range strings.Split(b.String(), "\n") {
		if f := strings.Fields(l); len(f) == 9 && f[0] != "MECHANISM" {
			durations[f[0]] = f[6] + " " + f[7]
		}
	}
	for mech, measured := range map[string]bool{"signal": false, "unix_stream": false, "pipe": true, "unix_dgram": true} {
		got, ok := durations[mech]
		if !ok || (got == "— —") == measured {
			t.Errorf("%s: P50 P99 %q, want %s\n%s", mech, got, map[bool]string{true: "durations", false: "— —"}[measured], b.String())
		}
	}
}

func TestSummaryCountsCoalescedOperations(t *testing.T) {
	s := NewSummary()
	a := process(10, "alpha")
	run := op(a, flow.Pipe, flow.Send, "write", "pipe:7", "pipe:[7]", 640)
	run.Count, run.Busy = 10, 30*time.Microsecond
	s.Add(&run)
	if n := s.Operations(); n != 10 {
		t.Errorf("%d operations, want the run's 10", n)
	}
}
