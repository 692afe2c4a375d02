package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/icptrack/icptrack/capture"
	"github.com/icptrack/icptrack/flow"
	"github.com/icptrack/icptrack/internal/ipcload"
)

// How close a re-enactment's timing must be to the capture's: from its
// first matched operation to the end of its last, within a quarter of
// the capture's, divided by the speed (README: "icptrack replay").
const makespanTolerance = 0.25

// A traced workload, re-enacted while icptrack traces the re-enactment:
// the same pairs of processes (by name) talk over the same mechanisms,
// with the same number of operations and bytes each way (and the same
// bytes, when the capture has them), and the re-enactment takes as long
// as the capture, divided by the speed.
func TestReenactmentMatchesTheCapture(t *testing.T) {
	needsBPF(t)
	for _, tc := range []struct {
		name     string
		workload func(t *testing.T) *exec.Cmd
		speed    float64
		payload  bool
	}{
		{"demo", demoWorkload, 1, true},
		{"demo at speed 2", demoWorkload, 2, false},
		{"eight mechanisms", mixWorkload, 1, false},
		{"shared memory", shmWorkload, 1, false},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "-"), func(t *testing.T) {
			dir := t.TempDir()
			original, again := filepath.Join(dir, "original.jsonl"), filepath.Join(dir, "again.jsonl")
			capture := []string{binary, "run", "--events", original}
			if tc.payload {
				capture = append(capture, "--payload", "64")
			}
			w := tc.workload(t)
			w.Args = append(append(capture, "--"), w.Args...)
			w.Path = binary
			if r := runCmd(t, w); r.code != 0 {
				t.Fatalf("tracing the workload: exit %d: %s", r.code, r.stderr)
			}
			r := run(t, "run", "--events", again, "--payload", "64", "--", binary, "replay", "--reenact", "--speed", fmt.Sprint(tc.speed), original)
			if r.code != 0 || !strings.Contains(r.stdout, "re-enacted in") {
				t.Fatalf("re-enacting: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
			}
			t.Logf("replay's report:\n%s", r.stdout)

			before, after := captureOps(t, original), captureOps(t, again)
			names := processNames(before)
			want, wantSpan := talk(before, names)
			got, gotSpan := talk(after, names)
			if len(want) < 4 {
				t.Fatalf("the workload's capture has only %d kinds of talk: %v", len(want), want)
			}
			if !maps.Equal(got, want) {
				t.Errorf("operations and bytes per pair and mechanism differ:\n%s", diffTalk(want, got))
			}
			if tc.payload {
				if want, got := sentBytes(before, names), sentBytes(after, names); !slices.Equal(got, want) || len(want) == 0 {
					t.Errorf("the bytes sent differ:\ncapture:\n  %s\nre-enactment:\n  %s", strings.Join(want, "\n  "), strings.Join(got, "\n  "))
				}
			}
			ratio := float64(gotSpan) / (float64(wantSpan) / tc.speed)
			t.Logf("the capture took %s, the re-enactment %s at speed %g: %.2f of the expected", wantSpan, gotSpan, tc.speed, ratio)
			if ratio < 1-makespanTolerance || ratio > 1+makespanTolerance {
				t.Errorf("the re-enactment took %s; the capture took %s, so %s at speed %g, ±%.0f%%",
					gotSpan, wantSpan, time.Duration(float64(wantSpan)/tc.speed), tc.speed, 100*makespanTolerance)
			}
		})
	}
}

// demoWorkload is the demo's six requests, 50ms apart.
func demoWorkload(t *testing.T) *exec.Cmd {
	return exec.Command(demoClient(t), "--requests", "6", "--interval", "50ms")
}

// mixWorkload is ipcload's mix: a parent and a child over pipe, FIFO,
// unix seqpacket and datagram sockets, TCP, UDP, a SysV queue and
// signals, run as this test binary under their own names.
func mixWorkload(t *testing.T) *exec.Cmd {
	dir := t.TempDir()
	selfAs(t, dir, "mix-parent", "mix-child")
	cmd := exec.Command(filepath.Join(dir, "mix-parent"), "8", "30ms")
	cmd.Env = append(os.Environ(), ipcload.Env+"=mix")
	return cmd
}

// shmWorkload is ipcload's shared-memory workloads one after the other:
// a SysV segment and a POSIX one, each with a waker and a waiter that
// take turns over a futex word, then a memfd with a parent and child.
func shmWorkload(t *testing.T) *exec.Cmd {
	dir := t.TempDir()
	selfAs(t, dir, "shm-waker", "shm-waiter", "memfd-parent")
	pair := func(mode, name string) string {
		return fmt.Sprintf("%[1]s=%[2]s %[3]s/shm-waker %[4]s 8192 waker 4 & sleep 0.05; %[1]s=%[2]s %[3]s/shm-waiter %[4]s 8192 waiter 4; wait; ",
			ipcload.Env, mode, dir, name)
	}
	script := pair("shm-sysv", strconv.Itoa(0x5eed0000+os.Getpid()%0xffff)) + pair("shm-posix", fmt.Sprintf("/icptrack-replay-test-%d", os.Getpid())) +
		fmt.Sprintf("%s=memfd %s/memfd-parent 4096 4", ipcload.Env, dir)
	return exec.Command("sh", "-c", script)
}

func captureOps(t *testing.T, path string) []*flow.Operation {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := capture.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	var ops []*flow.Operation
	for {
		op, err := r.Next()
		if errors.Is(err, io.EOF) {
			return ops
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		ops = append(ops, op)
	}
}

// processNames are the names of the processes that made operations.
func processNames(ops []*flow.Operation) map[string]bool {
	names := map[string]bool{}
	for _, op := range ops {
		if op.PID != 0 {
			names[op.Comm] = true
		}
	}
	return names
}

// talkKey is one way one process talked to another over one mechanism.
type talkKey struct {
	from, to string
	mech     flow.Mechanism
	op       flow.OpType
}

type talkCount struct{ ops, bytes int64 }

// talk tallies what one process gave another and the other took, by
// process name: sends and receives, wakes and waits, that the taking end
// linked to the giving one, between two processes of names. That is what
// a re-enactment must repeat. span is from the first one's start to the
// last one's end.
func talk(ops []*flow.Operation, names map[string]bool) (map[talkKey]talkCount, time.Duration) {
	type taker struct {
		comm string
		pid  uint32
	}
	takerOf := map[flow.OpID]taker{}
	for _, op := range ops {
		if (op.Op == flow.Receive || op.Op == flow.Wait) && op.Error == "" {
			for _, id := range op.Links {
				takerOf[id] = taker{op.Comm, op.PID}
			}
		}
	}
	out := map[talkKey]talkCount{}
	var first, last time.Time
	for _, op := range ops {
		var k talkKey
		var other uint32
		switch {
		case op.Error != "" || op.PID == 0:
			continue
		case (op.Op == flow.Send || op.Op == flow.Wake) && takerOf[op.ID].pid != 0:
			k, other = talkKey{op.Comm, takerOf[op.ID].comm, op.Mechanism, op.Op}, takerOf[op.ID].pid
		case (op.Op == flow.Receive || op.Op == flow.Wait) && len(op.Links) > 0:
			k, other = talkKey{op.Peer.Comm, op.Comm, op.Mechanism, op.Op}, op.Peer.PID
		default:
			continue
		}
		// A process signalling itself is not talk between two.
		if other == op.PID || !names[k.from] || !names[k.to] {
			continue
		}
		c := out[k]
		c.ops += op.Ops()
		c.bytes += op.Bytes
		out[k] = c
		if first.IsZero() || op.Time.Before(first) {
			first = op.Time
		}
		if e := op.Time.Add(op.Duration); e.After(last) {
			last = e
		}
	}
	return out, last.Sub(first)
}

// sentBytes are the captured bytes of each send a receive took, by
// process name and mechanism, sorted.
func sentBytes(ops []*flow.Operation, names map[string]bool) []string {
	taken := map[flow.OpID]bool{}
	for _, op := range ops {
		if op.Op == flow.Receive {
			for _, id := range op.Links {
				taken[id] = true
			}
		}
	}
	var out []string
	for _, op := range ops {
		if op.Op == flow.Send && op.Bytes > 0 && op.PayloadCaptured && names[op.Comm] && taken[op.ID] {
			out = append(out, fmt.Sprintf("%s %s %q", op.Comm, op.Mechanism, op.Payload))
		}
	}
	slices.Sort(out)
	return out
}

func diffTalk(want, got map[talkKey]talkCount) string {
	keys := slices.Collect(maps.Keys(want))
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b talkKey) int {
		return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
	})
	var b strings.Builder
	for _, k := range keys {
		mark := " "
		if want[k] != got[k] {
			mark = "!"
		}
		fmt.Fprintf(&b, "%s %s %s → %s %s: capture %d ops %dB, re-enactment %d ops %dB\n", mark, k.mech, k.from, k.to, k.op,
			want[k].ops, want[k].bytes, got[k].ops, got[k].bytes)
	}
	return b.String()
}

// Usage mistakes are one line and exit 2.
func TestReplayUsageMistakes(t *testing.T) {
	capture := captureFile(t, "jsonl", someOps())
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"replay", capture}, []string{"--otlp-endpoint", "--reenact"}},
		{[]string{"replay", "--reenact", "--otlp-endpoint", "http://127.0.0.1:4318", capture}, []string{"choose one"}},
		{[]string{"replay", "--reenact", "--shift-to-now", capture}, []string{"--shift-to-now", "--otlp-endpoint"}},
		{[]string{"replay", "--reenact", "--speed", "0", capture}, []string{"--speed", "positive"}},
		{[]string{"replay", "--otlp-endpoint", "http://127.0.0.1:4318", "--speed", "2", capture}, []string{"--speed", "--reenact"}},
		{[]string{"replay", "--reenact", "--filter", "bytes >", capture}, []string{"--filter"}},
		{[]string{"replay", "--otlp-endpoint", "ftp://x", capture}, []string{"--otlp-endpoint"}},
	} {
		t.Run(strings.Join(tc.args[1:len(tc.args)-1], " "), func(t *testing.T) {
			r := run(t, tc.args...)
			if tc.args[len(tc.args)-2] == "bytes >" {
				// The caret line follows the message.
				if r.code != exitUsage || !strings.HasPrefix(r.stderr, "icptrack: --filter") {
					t.Errorf("exit %d, stderr %q", r.code, r.stderr)
				}
				return
			}
			oneLineError(t, r, exitUsage, tc.want...)
		})
	}
}

// A capture with nothing to re-enact says why, and fails.
func TestReenactNothing(t *testing.T) {
	ops := someOps()
	r := run(t, "replay", "--reenact", captureFile(t, "jsonl", ops))
	if r.code != exitFailure || !strings.Contains(r.stderr, "nothing in the capture can be re-enacted") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	var calls int64
	for _, op := range ops {
		calls += op.Ops()
	}
	if !strings.Contains(r.stdout, "not re-enacted: "+strconv.FormatInt(calls, 10)+" operations") {
		t.Errorf("the report does not list the %d operations left out:\n%s", calls, r.stdout)
	}
}
