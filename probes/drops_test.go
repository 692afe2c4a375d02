package probes

import (
	"context"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/icptrack/icptrack/flow"
)

type counter struct{ n uint64 }

func (c *counter) Event(ev *flow.Event) {
	if ev.Op != flow.Exited && ev.Op != flow.Delivery {
		c.n++
	}
}
func (c *counter) Drained() {}

// With a one-page ring buffer that nobody reads during the workload, most
// records cannot be stored. Every one of them must be counted: captured
// plus dropped is exactly what the workload did.
func TestFullRingBufferCountsEveryDrop(t *testing.T) {
	cfg := DefaultConfig()
	cfg.RingBufferBytes = os.Getpagesize()
	cfg.Mechanisms = flow.SetOf(flow.Pipe)
	tr := openTracer(t, cfg)

	const count = 500
	r, w := pipe(t)
	wc := spawn(t, "write", []*os.File{w}, "3", strconv.Itoa(count), strconv.Itoa(msgSize), "write")
	rc := spawn(t, "read", []*os.File{r}, "3", strconv.Itoa(msgSize), "read")
	closeAll(r, w)
	wait(t, wc, rc)

	var got counter
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // read what is there, then stop
	if err := tr.Run(ctx, &got); err != nil {
		t.Fatal(err)
	}
	s, err := tr.Stats()
	if err != nil {
		t.Fatal(err)
	}
	const operations = 2*count + 1 // the writes, the reads, the read of end of file
	if s.Captured+s.Dropped != operations {
		t.Errorf("captured %d + dropped %d = %d, want the %d operations performed", s.Captured, s.Dropped, s.Captured+s.Dropped, operations)
	}
	if s.Dropped == 0 {
		t.Errorf("nothing dropped from a one-page ring buffer holding %d records", operations)
	}
	if got.n != s.Captured {
		t.Errorf("the handler got %d records, the tracer read %d", got.n, s.Captured)
	}
}

// Sockets alone need no syscall hooks: then sched_switch tells when an
// operation blocked, and since when.
func TestSocketsWithoutSyscallHooksStillMatchAndTime(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Mechanisms = flow.SetOf(flow.UnixStream)
	if cfg.syscallHooks() {
		t.Fatal("unix sockets alone should not need syscall hooks")
	}
	c := startCapture(t, cfg)
	a, b := socketpair(t, unix.SOCK_STREAM)
	// pong takes its time to reply, so that every ping receive waits, even
	// on a machine slowed down by emulation.
	pc := spawn(t, "ping", []*os.File{a}, "3", "3", "20", strconv.Itoa(msgSize))
	qc := spawn(t, "pong", []*os.File{b}, "3", "3", strconv.Itoa(msgSize), "20ms")
	closeAll(a, b)
	wait(t, pc, qc)
	ops := c.stop(t)

	checkTransfer(t, append(withOp(byPID(ops, pc.Process.Pid), flow.Send), withOp(byPID(ops, qc.Process.Pid), flow.Receive)...),
		transfer{mech: flow.UnixStream, writer: pc.Process.Pid, reader: qc.Process.Pid, count: 20, size: msgSize,
			sendSyscall: "write", recvSyscall: "read", eof: true})
	blocked := 0
	var waits []time.Duration
	for _, op := range withOp(byPID(ops, pc.Process.Pid), flow.Receive) {
		if op.Error == "EINTR" {
			// Go's runtime preempts with SIGURG, which can cut a
			// blocked read short; the workload reads again.
			continue
		}
		if op.Blocked {
			blocked++
			waits = append(waits, op.Duration)
			if op.Duration <= 0 {
				t.Errorf("blocked receive has duration %s, want the time it waited", op.Duration)
			}
		} else if op.Duration != 0 {
			t.Errorf("receive that did not block has duration %s; without an entry hook it is unknown, so 0", op.Duration)
		}
	}
	if blocked != 20 {
		t.Errorf("%d of ping's 20 receives blocked, want all", blocked)
	}
	// pong waits 20ms before each reply; ping may come back to its read
	// late (under emulation, by most of that), but not most of the time.
	slices.Sort(waits)
	if len(waits) > 0 && waits[len(waits)/2] < 10*time.Millisecond {
		t.Errorf("median wait of the blocked receives %s, want most of pong's 20ms", waits[len(waits)/2])
	}
}
