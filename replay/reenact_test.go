package replay

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/icptrack/icptrack/flow"
)

// The stand-ins of these tests are the test binary, run again.
func TestMain(m *testing.M) {
	StandInMain()
	os.Exit(m.Run())
}

// A generated capture over every mechanism the stand-ins know is
// re-enacted call for call and byte for byte, with no step failing, in
// about the capture's time; this needs no BPF, only processes.
func TestReenactDoesEveryStepOfAGeneratedCapture(t *testing.T) {
	c := &capture{t0: time.Now()}
	const a, b = 10, 20
	// A write larger than a pipe holds, read in one call, as a pipe made
	// larger with F_SETPIPE_SZ allows: the stand-in reads what fits.
	big := c.op(a, flow.Pipe, flow.Send, "p", 200_000)
	c.op(b, flow.Pipe, flow.Receive, "p", 200_000, from(a, big))
	c.op(b, flow.Pipe, flow.Receive, "p", 0)
	// Coalesced writes on a unix stream, read in one call, then the end.
	run := c.op(a, flow.UnixStream, flow.Send, "u", 300, func(op *flow.Operation) { op.Count, op.Duration = 3, 2*time.Millisecond })
	c.op(b, flow.UnixStream, flow.Receive, "u", 300, from(a, run))
	c.op(b, flow.UnixStream, flow.Receive, "u", 0)
	for i := range 3 {
		d := c.op(a, flow.UDP, flow.Send, "d", int64(10+i))
		c.op(b, flow.UDP, flow.Receive, "d", int64(10+i), from(a, d))
		s := c.op(b, flow.UnixSeqpacket, flow.Send, "s", 7)
		c.op(a, flow.UnixSeqpacket, flow.Receive, "s", 7, from(b, s))
		f := c.op(b, flow.FIFO, flow.Send, "f", 5)
		c.op(a, flow.FIFO, flow.Receive, "f", 5, from(b, f))
		g := c.op(a, flow.UnixDgram, flow.Send, "g", 0)
		c.op(b, flow.UnixDgram, flow.Receive, "g", 0, from(a, g))
		tc := c.op(b, flow.TCP, flow.Send, "t", 1000)
		c.op(a, flow.TCP, flow.Receive, "t", 1000, from(b, tc))
	}
	c.op(a, flow.POSIXMQ, flow.Create, "q", 0)
	c.op(b, flow.POSIXMQ, flow.Open, "q", 0)
	for prio := range int64(3) {
		m := c.op(a, flow.POSIXMQ, flow.Send, "q", 30+prio, func(op *flow.Operation) { op.MessageType, op.HasMessageType = prio, true })
		c.op(b, flow.POSIXMQ, flow.Receive, "q", 30+prio, from(a, m), func(op *flow.Operation) { op.MessageType, op.HasMessageType = prio, true })
	}
	c.op(a, flow.POSIXMQ, flow.Unlink, "q", 0)
	m := c.op(b, flow.SysVMQ, flow.Send, "v", 12, func(op *flow.Operation) { op.MessageType, op.HasMessageType = 4, true })
	c.op(a, flow.SysVMQ, flow.Receive, "v", 12, from(b, m), func(op *flow.Operation) { op.MessageType, op.HasMessageType = 4, true })
	at := func(op *flow.Operation) { op.Endpoint = "memfd:x+0x8" }
	c.op(a, flow.Memfd, flow.Create, "m", 0)
	c.op(a, flow.Memfd, flow.Attach, "m", 4096)
	c.op(b, flow.Memfd, flow.Attach, "m", 4096)
	w := c.op(a, flow.Memfd, flow.Wake, "m", 0, at)
	c.op(b, flow.Memfd, flow.Wait, "m", 0, at, from(a, w))
	c.op(b, flow.Memfd, flow.Detach, "m", 4096)
	k := c.op(a, flow.Signal, flow.Send, "sig", 0, signalled("SIGUSR2", b))
	c.op(b, flow.Signal, flow.Receive, "sig", 0, from(a, k), signalled("SIGUSR2", 0))
	// The waits and reads are at the writers' times: the stand-ins wait
	// for their other ends as the capture's processes did.
	for _, op := range c.ops {
		if op.Op == flow.Receive || op.Op == flow.Wait {
			op.Time = op.Time.Add(-500 * time.Microsecond)
		}
	}

	p := NewPlan(c.ops)
	if len(p.Skipped) > 0 {
		var b strings.Builder
		PrintSkipped(&b, p.Skipped)
		t.Fatalf("the plan leaves out what a stand-in can do:\n%s", b.String())
	}
	res, err := Reenact(context.Background(), p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Failures {
		t.Errorf("%s[%d] capture id %s: %s", f.Comm, f.PID, f.Op, f.Err)
	}
	want := map[[2]int][2]int64{}
	for _, op := range c.ops {
		act := map[flow.OpType]Action{flow.Send: Send, flow.Receive: Receive, flow.Create: Create, flow.Open: Open,
			flow.Unlink: Unlink, flow.Attach: Attach, flow.Detach: Detach, flow.Wake: Wake, flow.Wait: Wait}[op.Op]
		switch {
		case op.Mechanism == flow.Signal && op.Op == flow.Send:
			act = Kill
		case op.Mechanism == flow.Signal:
			continue // taken by the handler, counted in Signals
		case op.Op == flow.Receive && op.Bytes == 0 && (op.Mechanism.Stream()):
			act = EndOfFile
		}
		k := [2]int{int(op.Mechanism), int(act)}
		w := want[k]
		w[0] += op.Ops()
		if act == Send || act == Receive || act == Attach || act == Detach {
			w[1] += op.Bytes
		}
		want[k] = w
	}
	got := map[[2]int][2]int64{}
	for _, d := range res.Done {
		got[[2]int{int(d.Mech), int(d.Action)}] = [2]int64{d.Calls, d.Bytes}
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s %s: %d calls, %d bytes; the capture's %d and %d", flow.Mechanism(k[0]), Action(k[1]), got[k][0], got[k][1], w[0], w[1])
		}
	}
	if res.Signals != 1 || res.Deliveries != 1 {
		t.Errorf("%d signals handled of %d delivered, want 1 of 1", res.Signals, res.Deliveries)
	}
	if res.Took < p.Duration*3/4 || res.Took > p.Duration*2+50*time.Millisecond {
		t.Errorf("re-enacted in %s, the capture took %s", res.Took, p.Duration)
	}
}

// A stand-in that is still waiting to make its step well after the
// plan's end is stopped, and the result says what it was stuck in; the
// one waiting for it gave up with a failure that says how far it got.
func TestReenactStopsAStuckStandIn(t *testing.T) {
	c := &capture{t0: time.Now()}
	s := c.op(10, flow.UnixStream, flow.Send, "u", 5)
	c.op(20, flow.UnixStream, flow.Receive, "u", 5, from(10, s))
	p := NewPlan(c.ops)
	// The read's bytes come an hour late.
	for _, si := range p.StandIns {
		if si.PID == 10 {
			si.Threads[0].Steps[0].At = time.Hour
		}
	}
	res, err := Reenact(context.Background(), p, Options{Grace: time.Second})
	if err == nil || !strings.Contains(err.Error(), "did not finish") {
		t.Fatalf("error %v, want one that says the stand-ins did not finish", err)
	}
	if res == nil || len(res.Stalled) != 1 || !strings.Contains(res.Stalled[0], "client[10] thread 10 step 1 (send") {
		t.Fatalf("result %+v: want the client, stuck before its send, named", res)
	}
	if len(res.Failures) != 1 || !strings.Contains(res.Failures[0].Err, "receive: timed out with 0 of 5 bytes there") {
		t.Errorf("failures %+v: want the server's receive, timed out", res.Failures)
	}
}
