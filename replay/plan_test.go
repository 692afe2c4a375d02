package replay

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/icptrack/icptrack/flow"
)

// capture builds a capture op by op, each a millisecond after the last.
type capture struct {
	ops  []*flow.Operation
	next flow.OpID
	t0   time.Time
}

var comms = map[uint32]string{10: "client", 20: "server", 30: "worker", 999: "stranger"}

func (c *capture) op(pid uint32, mech flow.Mechanism, typ flow.OpType, channel string, bytes int64, f ...func(*flow.Operation)) flow.OpID {
	c.next++
	op := &flow.Operation{ID: c.next, Time: c.t0.Add(time.Duration(c.next) * time.Millisecond), Duration: 10 * time.Microsecond,
		PID: pid, TID: pid, Comm: comms[pid], Mechanism: mech, Op: typ, Channel: channel, Endpoint: channel, Bytes: bytes}
	for _, fn := range f {
		fn(op)
	}
	c.ops = append(c.ops, op)
	return op.ID
}

func from(pid uint32, links ...flow.OpID) func(*flow.Operation) {
	return func(op *flow.Operation) { op.Peer = flow.Peer{PID: pid, Comm: comms[pid]}; op.Links = links }
}

func failed(errno string) func(*flow.Operation) { return func(op *flow.Operation) { op.Error = errno } }

func signalled(name string, to uint32) func(*flow.Operation) {
	return func(op *flow.Operation) {
		op.Signal = name
		if op.Op == flow.Send {
			op.Peer = flow.Peer{PID: to, Comm: comms[to]}
			if op.PID == 0 {
				op.Comm = flow.Kernel.Comm
			}
		}
	}
}

// A generated capture of a client, a server and a worker that uses every
// mechanism the plan knows and everything it leaves out: the plan gives
// each process the steps it made, on the right ends, and skips exactly
// what cannot be re-enacted, each for its reason.
func TestPlanGivesEachStandInItsStepsAndSkipsWhatCannotBeReenacted(t *testing.T) {
	c := &capture{t0: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	skip := map[flow.OpID]Reason{}
	const (
		client, server, worker, stranger = 10, 20, 30, 999
	)
	// A request and its answer over a unix stream, a would-block read,
	// and the server's read at the end of the stream.
	req := c.op(client, flow.UnixStream, flow.Send, "u1", 8)
	c.op(server, flow.UnixStream, flow.Receive, "u1", 8, from(client, req))
	ans := c.op(server, flow.UnixStream, flow.Send, "u1", 13, from(client))
	skip[c.op(client, flow.UnixStream, flow.Receive, "u1", 0, failed("EAGAIN"))] = Failed
	c.op(client, flow.UnixStream, flow.Receive, "u1", 13, from(server, ans))
	eof := c.op(server, flow.UnixStream, flow.Receive, "u1", 0)
	// Three writes coalesced into one record, read as one record, then
	// the end of the pipe.
	burst := c.op(server, flow.Pipe, flow.Send, "p1", 24, func(op *flow.Operation) {
		op.Count, op.Duration, op.Payload, op.PayloadCaptured = 3, 300*time.Microsecond, []byte("abc"), true
	})
	c.op(worker, flow.Pipe, flow.Receive, "p1", 24, from(server, burst), func(op *flow.Operation) { op.Count = 3 })
	c.op(worker, flow.Pipe, flow.Receive, "p1", 0)
	// A pipe nobody traced reads, and one nobody traced writes.
	skip[c.op(client, flow.Pipe, flow.Send, "p2", 5)] = Untraced
	skip[c.op(worker, flow.Pipe, flow.Receive, "p3", 10)] = Untraced
	// Bytes written before the capture began, then some written in it;
	// and more written than was read, beyond what a pipe holds.
	skip[c.op(worker, flow.Pipe, flow.Receive, "p4", 10)] = UnknownSender
	w := c.op(server, flow.Pipe, flow.Send, "p4", 4)
	c.op(worker, flow.Pipe, flow.Receive, "p4", 4, from(server, w))
	skip[c.op(server, flow.Pipe, flow.Send, "p4", 64<<10)] = NeverReceived
	// A POSIX queue's life; a SysV queue that existed before.
	c.op(server, flow.POSIXMQ, flow.Create, "q1", 0)
	c.op(worker, flow.POSIXMQ, flow.Open, "q1", 0)
	m := c.op(worker, flow.POSIXMQ, flow.Send, "q1", 13, func(op *flow.Operation) { op.HasMessageType, op.MessageType = true, 5 })
	c.op(server, flow.POSIXMQ, flow.Receive, "q1", 13, from(worker, m))
	c.op(server, flow.POSIXMQ, flow.Unlink, "q1", 0)
	m2 := c.op(client, flow.SysVMQ, flow.Send, "s1", 20)
	c.op(worker, flow.SysVMQ, flow.Receive, "s1", 20, from(client, m2))
	// TCP; UDP to a port nobody traced listens on.
	t1 := c.op(client, flow.TCP, flow.Send, "t1", 100, from(server))
	c.op(server, flow.TCP, flow.Receive, "t1", 100, from(client, t1))
	skip[c.op(client, flow.UDP, flow.Send, "d1", 64)] = Untraced
	// Signals: one the stand-ins can send each other, and those they
	// cannot.
	usr1 := c.op(server, flow.Signal, flow.Send, "sig1", 0, signalled("SIGUSR1", worker))
	c.op(worker, flow.Signal, flow.Receive, "sig1", 0, from(server, usr1), signalled("SIGUSR1", 0))
	skip[c.op(0, flow.Signal, flow.Send, "sig2", 0, signalled("SIGCHLD", server))] = KernelSignal
	skip[c.op(server, flow.Signal, flow.Receive, "sig2", 0, func(op *flow.Operation) { op.Peer = flow.Kernel; op.Signal = "SIGCHLD" })] = KernelSignal
	skip[c.op(client, flow.Signal, flow.Send, "sig3", 0, signalled("SIGURG", client))] = SelfSignal
	skip[c.op(client, flow.Signal, flow.Receive, "sig3", 0, from(client), signalled("SIGURG", 0))] = SelfSignal
	skip[c.op(server, flow.Signal, flow.Send, "sig4", 0, signalled("SIGKILL", worker))] = Uncatchable
	skip[c.op(server, flow.Signal, flow.Send, "sig5", 0, signalled("SIGTERM", stranger))] = Untraced
	// Shared memory that existed before the capture, and its futexes:
	// the second wait was released by the second wake of its word; one
	// woken by nothing traced is left out.
	at := func(off string) func(*flow.Operation) {
		return func(op *flow.Operation) { op.Endpoint = "shmid 7+0x" + off }
	}
	c.op(worker, flow.SysVShm, flow.Attach, "shm1", 4096)
	c.op(server, flow.SysVShm, flow.Wake, "shm1", 0, at("40"))
	c.op(server, flow.SysVShm, flow.Wake, "shm1", 0, at("0"))
	second := c.op(server, flow.SysVShm, flow.Wake, "shm1", 0, at("40"))
	c.op(worker, flow.SysVShm, flow.Wait, "shm1", 0, at("40"), from(server, second))
	skip[c.op(worker, flow.SysVShm, flow.Wait, "shm1", 0, at("40"))] = UnknownSender
	skip[c.op(worker, flow.Memfd, flow.Unlink, "m1", 0)] = Unsupported

	p := NewPlan(c.ops)

	got := map[flow.OpID]Reason{}
	for _, s := range p.Skipped {
		got[s.Op] = s.Reason
	}
	for id, want := range skip {
		if got[id] != want {
			t.Errorf("op %d: skipped for %q, want %q", id, got[id], want)
		}
	}
	for id, r := range got {
		if _, ok := skip[id]; !ok {
			t.Errorf("op %d skipped (%s), want it re-enacted", id, r)
		}
	}

	// Each stand-in's steps, in order, with the channel's mechanism and
	// the end it holds.
	steps := map[string][]string{}
	for _, s := range p.StandIns {
		if len(s.Threads) > 1 {
			t.Errorf("%s has %d threads, want 1 (its one tid)", s.Comm, len(s.Threads))
		}
		for _, th := range s.Threads {
			for _, st := range th.Steps {
				where := "signal " + fmt.Sprint(st.Signal) + " to " + fmt.Sprint(st.Target)
				if st.Channel >= 0 {
					ch := p.Channels[st.Channel]
					where = ch.Mech.String() + " " + ch.ID + " " + roleOf(s, st.Channel)
				}
				if st.Action == Wake || st.Action == Wait {
					where += fmt.Sprintf(" word %#x #%d", st.Offset, st.Seq)
				}
				if st.Awaited {
					where += " awaited"
				}
				steps[s.Comm] = append(steps[s.Comm], fmt.Sprintf("%s %s %dx%dB", st.Action, where, st.Calls, st.Bytes))
			}
		}
	}
	want := map[string][]string{
		"client": {
			"send unix_stream u1 A 1x8B", "receive unix_stream u1 A 1x13B",
			"send sysv_mq s1 queue 1x20B", "send tcp t1 A 1x100B",
		},
		"server": {
			"receive unix_stream u1 B 1x8B", "send unix_stream u1 B 1x13B", "end of file unix_stream u1 B 1x0B",
			"send pipe p1 write 3x24B", "send pipe p4 write 1x4B",
			"create posix_mq q1 queue 1x0B", "receive posix_mq q1 queue 1x13B", "unlink posix_mq q1 queue 1x0B",
			"receive tcp t1 B 1x100B", "signal signal 10 to 30 1x0B",
			"wake sysv_shm shm1 segment word 0x40 #1 1x0B", "wake sysv_shm shm1 segment word 0x0 #1 1x0B",
			"wake sysv_shm shm1 segment word 0x40 #2 awaited 1x0B",
		},
		"worker": {
			"receive pipe p1 read 3x24B", "end of file pipe p1 read 1x0B", "receive pipe p4 read 1x4B",
			"open posix_mq q1 queue 1x0B", "send posix_mq q1 queue 1x13B", "receive sysv_mq s1 queue 1x20B",
			"attach sysv_shm shm1 segment 1x4096B", "wait sysv_shm shm1 segment word 0x40 #2 1x0B",
		},
	}
	if !maps.EqualFunc(steps, want, slices.Equal) {
		t.Errorf("steps:\n%s\nwant\n%s", show(steps), show(want))
	}

	byComm := map[string]*StandIn{}
	for _, s := range p.StandIns {
		byComm[s.Comm] = s
	}
	if len(p.StandIns) != 3 {
		t.Errorf("%d stand-ins, want client, server and worker (not the kernel, not the untraced pid)", len(p.StandIns))
	}
	if w := byComm["worker"]; w == nil || !slices.Equal(w.Signals, []int{10}) || w.Deliveries != 1 {
		t.Errorf("worker handles %v with %d deliveries, want SIGUSR1 (10) once", w.Signals, w.Deliveries)
	}
	// Times are from the first planned step (the request, op 1), and a
	// coalesced record spreads its calls over its duration.
	srv := byComm["server"].Threads[0].Steps
	if srv[0].At != time.Millisecond || srv[3].Spread != 300*time.Microsecond || string(srv[3].Payload) != "abc" {
		t.Errorf("server's first step at %s (want 1ms after the request), burst spread %s payload %q",
			srv[0].At, srv[3].Spread, srv[3].Payload)
	}
	if byComm["client"].Threads[0].Steps[0].At != 0 {
		t.Errorf("the first step is at %s, want 0", byComm["client"].Threads[0].Steps[0].At)
	}
	for _, ch := range p.Channels {
		switch ch.ID {
		case "q1":
			if ch.Existed || ch.MaxMessage != 13 {
				t.Errorf("q1: existed %v, largest message %d; want made by the server, 13 bytes", ch.Existed, ch.MaxMessage)
			}
		case "s1":
			if !ch.Existed || ch.Depth != 1 {
				t.Errorf("s1: existed %v, depth %d; want made before the start, 1 deep", ch.Existed, ch.Depth)
			}
		case "shm1":
			if !ch.Existed || ch.MaxMessage != 4096 {
				t.Errorf("shm1: existed %v, size %d; want made before the start, 4096 bytes", ch.Existed, ch.MaxMessage)
			}
		}
	}
	if want := time.Duration(eof-req)*time.Millisecond + 10*time.Microsecond; p.Duration < want {
		t.Errorf("the plan lasts %s, want at least %s", p.Duration, want)
	}
}

func roleOf(s *StandIn, ch int) string {
	for _, e := range s.Ends {
		if e.Channel == ch {
			return map[Role]string{Write: "write", Read: "read", EndA: "A", EndB: "B", Queue: "queue", Segment: "segment"}[e.Role]
		}
	}
	return "none"
}

func show(m map[string][]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, "  %s:\n    %s\n", k, strings.Join(m[k], "\n    "))
	}
	return b.String()
}

// Two processes at the ends of a connection that nothing tells apart
// (each only read the end of the stream) are still at opposite ends; a
// process that received from itself makes the connection's ends unknown.
func TestConnectionEnds(t *testing.T) {
	c := &capture{t0: time.Now()}
	c.op(10, flow.TCP, flow.Receive, "t", 0)
	c.op(20, flow.TCP, flow.Receive, "t", 0)
	self := c.op(10, flow.UnixStream, flow.Send, "u", 3)
	c.op(10, flow.UnixStream, flow.Receive, "u", 3, from(10, self))
	p := NewPlan(c.ops)
	roles := map[uint32]string{}
	for _, s := range p.StandIns {
		for _, e := range s.Ends {
			roles[s.PID] += roleOf(s, e.Channel)
		}
	}
	if roles[10]+roles[20] != "AB" && roles[10]+roles[20] != "BA" {
		t.Errorf("tcp ends %v, want one process at each", roles)
	}
	for _, s := range p.Skipped {
		if s.Mech == flow.UnixStream && s.Reason != UnknownEnd {
			t.Errorf("unix stream op %d skipped for %q, want %q", s.Op, s.Reason, UnknownEnd)
		}
	}
	if len(p.Skipped) != 2 {
		t.Errorf("%d skipped, want the process's two operations on its own connection", len(p.Skipped))
	}
}

// The report groups what is left out by mechanism, operation and reason,
// with the details and an example to look up.
func TestSkippedReport(t *testing.T) {
	c := &capture{t0: time.Now()}
	for range 3 {
		c.op(10, flow.UnixStream, flow.Receive, "u", 0, failed("EAGAIN"))
	}
	c.op(10, flow.UnixStream, flow.Receive, "u", 0, failed("ECONNRESET"))
	var b strings.Builder
	PrintSkipped(&b, NewPlan(c.ops).Skipped)
	want := "not re-enacted: 4 operations\n" +
		"       4  unix_stream receive (EAGAIN, ECONNRESET) failed in the capture: whether it fails again depends on timing; e.g. id 0000000000000001\n"
	if b.String() != want {
		t.Errorf("report:\n%s\nwant\n%s", b.String(), want)
	}
}
