package probes

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/icptrack/icptrack/flow"
)

// Coalescing must not change what icptrack says about a channel: the same
// workload traced with and without it gives the same operation counts,
// byte totals, peers and links, seen per channel. Only the number of
// records differs.

// coalesceWindow is long enough that a run is cut only by its thread
// doing something else (or by the scheduler putting it to sleep).
const coalesceWindow = time.Second

// streamRun is one traced run of a workload over a byte stream.
type streamRun struct {
	ops            []*flow.Operation
	writer, reader int
}

// channelView is what a run says about its one channel, independent of
// how its operations were grouped into records.
type channelView struct {
	sendOps, recvOps     int64 // operations, counted through Count
	sendBytes, recvBytes int64
	eofs                 int      // receives of end of file
	unlinked             int      // receives that moved bytes and link nothing
	ends                 []string // the roles at either end: making operations or named as their peer
	recvPeers            []string // the roles named as peer of a receive
	edges                []string // sender -> receiver roles, through links
	records              int
	coalesced            int // records that stand for more than one operation
}

func (r streamRun) view(t *testing.T, mech flow.Mechanism) channelView {
	t.Helper()
	role := func(pid uint32) string {
		switch int(pid) {
		case r.writer:
			return "writer"
		case r.reader:
			return "reader"
		case 0:
			return "unknown"
		}
		return fmt.Sprintf("other(%d)", pid)
	}
	var v channelView
	sends := map[flow.OpID]*flow.Operation{}
	channel := ""
	for _, op := range append(byPID(r.ops, r.writer), byPID(r.ops, r.reader)...) {
		if op.Mechanism != mech {
			t.Errorf("unexpected operation: %s", describe([]*flow.Operation{op}))
			continue
		}
		if channel == "" {
			channel = op.Channel
		} else if op.Channel != channel {
			t.Errorf("two channels: %s and %s", channel, op.Channel)
		}
		for _, pid := range []uint32{op.PID, op.Peer.PID} {
			if pid != 0 && !slices.Contains(v.ends, role(pid)) {
				v.ends = append(v.ends, role(pid))
			}
		}
		v.records++
		if op.Ops() > 1 {
			v.coalesced++
		}
		switch op.Op {
		case flow.Send:
			v.sendOps += op.Ops()
			v.sendBytes += op.Bytes
			sends[op.ID] = op
		case flow.Receive:
			v.recvOps += op.Ops()
			v.recvBytes += op.Bytes
			if op.Bytes == 0 {
				v.eofs++
			}
			if !slices.Contains(v.recvPeers, role(op.Peer.PID)) {
				v.recvPeers = append(v.recvPeers, role(op.Peer.PID))
			}
		}
	}
	for _, op := range byPID(r.ops, r.reader) {
		if op.Op != flow.Receive || op.Bytes == 0 {
			continue
		}
		if len(op.Links) == 0 {
			v.unlinked++
		}
		var covered int64
		for _, id := range op.Links {
			s, ok := sends[id]
			if !ok {
				t.Errorf("receive %s links %s, which is no send on its channel", describe([]*flow.Operation{op}), id)
				continue
			}
			covered += s.Bytes
			if e := role(s.PID) + "->" + role(op.PID); !slices.Contains(v.edges, e) {
				v.edges = append(v.edges, e)
			}
		}
		if covered < op.Bytes {
			t.Errorf("receive of %d bytes links sends of %d bytes in all", op.Bytes, covered)
		}
	}
	slices.Sort(v.ends)
	slices.Sort(v.recvPeers)
	slices.Sort(v.edges)
	return v
}

// compareCoalesced traces the workload twice, without and with
// coalescing, and checks that the channel looks the same. It returns the
// coalesced run's view.
func compareCoalesced(t *testing.T, mech flow.Mechanism, workload func(t *testing.T, cfg Config) streamRun) channelView {
	t.Helper()
	cfg := DefaultConfig()
	plain := workload(t, cfg).view(t, mech)
	cfg.Coalesce = coalesceWindow
	coal := workload(t, cfg).view(t, mech)
	t.Logf("one record per operation: %+v", plain)
	t.Logf("coalesced:                %+v", coal)

	want := int64(msgCount)
	if plain.sendOps != want || coal.sendOps != want || plain.sendBytes != want*msgSize || coal.sendBytes != want*msgSize {
		t.Errorf("sends: %d ops, %d bytes plain; %d ops, %d bytes coalesced; want %d ops, %d bytes",
			plain.sendOps, plain.sendBytes, coal.sendOps, coal.sendBytes, want, want*msgSize)
	}
	if coal.recvOps != plain.recvOps || coal.recvBytes != plain.recvBytes || coal.recvBytes != want*msgSize ||
		coal.eofs != 1 || plain.eofs != 1 {
		t.Errorf("receives: %d ops, %d bytes, %d EOF plain; %d ops, %d bytes, %d EOF coalesced; want %d bytes and one EOF",
			plain.recvOps, plain.recvBytes, plain.eofs, coal.recvOps, coal.recvBytes, coal.eofs, want*msgSize)
	}
	if coal.unlinked != 0 || plain.unlinked != 0 {
		t.Errorf("receives that link no send: %d plain, %d coalesced", plain.unlinked, coal.unlinked)
	}
	if !slices.Equal(coal.recvPeers, plain.recvPeers) || !slices.Equal(coal.recvPeers, []string{"unknown", "writer"}) &&
		!slices.Equal(coal.recvPeers, []string{"writer"}) {
		t.Errorf("receives name peers %v plain, %v coalesced; want the writer", plain.recvPeers, coal.recvPeers)
	}
	// A send names its reader only if the reader was seen first, which
	// is timing, not coalescing: the channel's ends are what must agree.
	if !slices.Equal(coal.ends, plain.ends) || !slices.Equal(coal.ends, []string{"reader", "writer"}) {
		t.Errorf("the channel's ends are %v plain, %v coalesced; want the reader and the writer", plain.ends, coal.ends)
	}
	if !slices.Equal(coal.edges, plain.edges) || !slices.Equal(coal.edges, []string{"writer->reader"}) {
		t.Errorf("links join %v plain, %v coalesced; want writer->reader", plain.edges, coal.edges)
	}
	if plain.coalesced != 0 {
		t.Errorf("%d records of several operations without coalescing", plain.coalesced)
	}
	if coal.coalesced == 0 || coal.records >= plain.records {
		t.Errorf("coalescing made %d records (%d of several operations) for the %d of one per operation",
			coal.records, coal.coalesced, plain.records)
	}
	return coal
}

// Each workload writes everything before the reader starts, so that the
// writer's run is cut only by what it does, and the reader's by reading
// to the end. The TCP test is named TestLoopbackTCP… so that the kernel
// matrix skips it where loopback TCP cannot be seen (arm64's 6.1).

func TestCoalescePipe(t *testing.T) {
	compareCoalesced(t, flow.Pipe, func(t *testing.T, cfg Config) streamRun {
		c := startCapture(t, cfg)
		r, w := pipe(t)
		wc := spawn(t, "write", []*os.File{w}, "3", strconv.Itoa(msgCount), strconv.Itoa(msgSize), "write", os.DevNull)
		w.Close()
		wait(t, wc)
		rc := spawn(t, "read", []*os.File{r}, "3", strconv.Itoa(msgSize), "read")
		r.Close()
		wait(t, rc)
		return streamRun{ops: c.stop(t), writer: wc.Process.Pid, reader: rc.Process.Pid}
	})
}

func TestCoalesceUnixStream(t *testing.T) {
	compareCoalesced(t, flow.UnixStream, func(t *testing.T, cfg Config) streamRun {
		c := startCapture(t, cfg)
		a, b := socketpair(t, unix.SOCK_STREAM)
		wc := spawn(t, "write", []*os.File{a}, "3", strconv.Itoa(msgCount), strconv.Itoa(msgSize), "write")
		a.Close()
		wait(t, wc)
		rc := spawn(t, "read", []*os.File{b}, "3", strconv.Itoa(msgSize), "read")
		b.Close()
		wait(t, rc)
		return streamRun{ops: c.stop(t), writer: wc.Process.Pid, reader: rc.Process.Pid}
	})
}

func TestLoopbackTCPCoalesced(t *testing.T) {
	compareCoalesced(t, flow.TCP, func(t *testing.T, cfg Config) streamRun {
		srv, addr := listenInet(t, false, true)
		c := startCapture(t, cfg)
		wc := spawn(t, "connect", nil, strconv.Itoa(int(addr.Port())), "tcp", strconv.Itoa(msgCount), strconv.Itoa(msgSize), "write")
		wait(t, wc)
		rc := spawn(t, "accept", []*os.File{srv}, "3", strconv.Itoa(msgSize), "read")
		srv.Close()
		wait(t, rc)
		return streamRun{ops: c.stop(t), writer: wc.Process.Pid, reader: rc.Process.Pid}
	})
}

// Writer and reader at once: runs are cut by the scheduler and by the
// pipe filling, and the channel still looks the same.
func TestCoalesceConcurrentPipe(t *testing.T) {
	compareCoalesced(t, flow.Pipe, func(t *testing.T, cfg Config) streamRun {
		ops, w, r := pipeTransfer(t, cfg, "write", "read")
		return streamRun{ops: ops, writer: w, reader: r}
	})
}

// A thread that wrote a burst and then went to sleep has sent its run:
// tracing can stop while it sleeps, and nothing is held back.
func TestCoalescedRunIsSentWhenItsThreadSleeps(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Coalesce = coalesceWindow
	c := startCapture(t, cfg)
	out, in := pipe(t)     // the burst goes here...
	wake, never := pipe(t) // ...then the writer waits here for nothing
	wc := spawn(t, "burst", []*os.File{in, wake}, "3", strconv.Itoa(msgCount), strconv.Itoa(msgSize), "4")
	closeAll(in, wake)
	t.Cleanup(func() { closeAll(never); wc.Wait(); closeAll(out) })
	deadline := time.Now().Add(5 * time.Second)
	for {
		// Once the burst is in the pipe, the writer is on its way to sleep.
		n, err := unix.IoctlGetInt(int(out.Fd()), unix.TIOCINQ)
		if err != nil {
			t.Fatal(err)
		}
		if n == msgCount*msgSize {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the writer wrote %d bytes of %d", n, msgCount*msgSize)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	ops := withOp(byPID(c.stop(t), wc.Process.Pid), flow.Send)
	var n, bytes int64
	for _, op := range ops {
		n += op.Ops()
		bytes += op.Bytes
	}
	if n != msgCount || bytes != msgCount*msgSize || len(ops) >= msgCount {
		t.Fatalf("the writer's sends: %d records of %d operations and %d bytes; want %d coalesced operations of %d bytes: %s",
			len(ops), n, bytes, msgCount, msgCount*msgSize, describe(ops))
	}
	st, err := c.tr.Stats()
	if err != nil || st.Held != 0 {
		t.Errorf("stats %+v (%v): want nothing held", st, err)
	}
}
