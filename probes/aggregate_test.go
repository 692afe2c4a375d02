package probes

import (
	"context"
	"os"
	"strconv"
	"testing"

	"github.com/icptrack/icptrack/flow"
)

// aggCapture reads metrics mode's counts after every drain.
type aggCapture struct {
	tr     *Tracer
	t      *testing.T
	events int
	// last holds each (pid, mechanism, op, errno)'s latest cumulative
	// counts, including the last report of processes that exited.
	last  map[aggID]flow.Aggregate
	final map[uint32]bool
}

type aggID struct {
	pid   uint32
	mech  flow.Mechanism
	op    flow.OpType
	errno string
}

func (c *aggCapture) Event(ev *flow.Event) {
	if ev.Op != flow.Exited {
		c.events++
	}
}

func (c *aggCapture) Drained() {
	if err := c.tr.Aggregates(func(a *flow.Aggregate) {
		c.last[aggID{a.PID, a.Mechanism, a.Op, a.Errno}] = *a
		if a.Final {
			c.final[a.PID] = true
		}
	}); err != nil {
		c.t.Error(err)
	}
}

// In metrics mode the kernel counts a pipe transfer's writes and reads,
// their bytes and durations, and sends no event for them.
func TestMetricsModeCountsInTheKernel(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Mechanisms = flow.SetOf(flow.Pipe)
	cfg.MetricsOnly = true
	c := &aggCapture{tr: openTracer(t, cfg), t: t, last: map[aggID]flow.Aggregate{}, final: map[uint32]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.tr.Run(ctx, c) }()

	r, w := pipe(t)
	wc := spawn(t, "write", []*os.File{w}, "3", strconv.Itoa(msgCount), strconv.Itoa(msgSize), "write")
	rc := spawn(t, "read", []*os.File{r}, "3", strconv.Itoa(msgSize), "read")
	closeAll(r, w)
	wait(t, wc, rc)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	c.Drained() // the counts of what exited during the last drain

	if c.events != 0 {
		t.Errorf("%d operation events in metrics mode, want none", c.events)
	}
	writer, reader := uint32(wc.Process.Pid), uint32(rc.Process.Pid)
	sends := c.last[aggID{writer, flow.Pipe, flow.Send, ""}]
	if sends.Count != msgCount || sends.Bytes != msgCount*msgSize {
		t.Errorf("writer's sends: %d operations, %d bytes; want %d and %d", sends.Count, sends.Bytes, msgCount, msgCount*msgSize)
	}
	recvs := c.last[aggID{reader, flow.Pipe, flow.Receive, ""}]
	if recvs.Bytes != msgCount*msgSize || recvs.Count < msgCount {
		t.Errorf("reader's receives: %d operations, %d bytes; want at least %d and exactly %d bytes", recvs.Count, recvs.Bytes, msgCount, msgCount*msgSize)
	}
	for _, a := range []flow.Aggregate{sends, recvs} {
		var n uint64
		for _, h := range a.Hist {
			n += h
		}
		if n != a.Count {
			t.Errorf("pid %d %s: histogram holds %d durations, %d operations", a.PID, a.Op, n, a.Count)
		}
		if a.Comm == "" || a.Process.Exe == "" {
			t.Errorf("pid %d is not named: comm %q exe %q", a.PID, a.Comm, a.Process.Exe)
		}
	}
	if !c.final[writer] || !c.final[reader] {
		t.Errorf("exited processes not reported as final: %v", c.final)
	}
	st, err := c.tr.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Dropped != 0 || st.Captured < sends.Count+recvs.Count {
		t.Errorf("stats %+v: want nothing dropped and at least the %d operations counted", st, sends.Count+recvs.Count)
	}
}
