package flow

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

// harness feeds synthetic events to a correlator with a fake clock and
// collects what it emits.
type harness struct {
	t   *testing.T
	now time.Time
	c   *Correlator
	out []*Operation
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, now: time.Unix(1700000000, 0)}
	h.c = New(func(op *Operation) { h.out = append(h.out, op.Clone()) }, Options{Hold: 100 * time.Millisecond, Now: func() time.Time { return h.now }, Seed: 1})
	return h
}

func (h *harness) add(ev Event) *Operation {
	h.t.Helper()
	if ev.Start.IsZero() {
		ev.Start = h.now
		ev.End = h.now.Add(time.Microsecond)
	}
	n := len(h.out)
	h.c.Add(&ev)
	// An event's own operation leaves first; held receives it released
	// follow it.
	if len(h.out) > n {
		return h.out[n]
	}
	return nil
}

func (h *harness) advance(d time.Duration) {
	h.now = h.now.Add(d)
	h.c.Tick()
}

func (h *harness) byPID(pid uint32) []*Operation {
	var ops []*Operation
	for _, op := range h.out {
		if op.PID == pid {
			ops = append(ops, op)
		}
	}
	return ops
}

const (
	writer = 100
	reader = 200
)

func pipeWrite(off, n uint64) Event {
	return Event{PID: writer, TID: writer, Comm: "writer", Mechanism: Pipe, Op: Send, Syscall: "write", Ino: 7, Dev: 13, Offset: off, Result: int64(n)}
}

func pipeRead(off, n uint64) Event {
	return Event{PID: reader, TID: reader, Comm: "reader", Mechanism: Pipe, Op: Receive, Syscall: "read", Ino: 7, Dev: 13, Offset: off, Result: int64(n)}
}

func linksOf(op *Operation) []OpID { return op.Links }

func TestPipeReceiveLinksToItsWrites(t *testing.T) {
	h := newHarness(t)
	w := h.add(pipeWrite(0, 64))
	r := h.add(pipeRead(0, 64))
	if r == nil {
		t.Fatal("receive covered by a seen write was not emitted at once")
	}
	if !slices.Equal(r.Links, []OpID{w.ID}) || r.Peer != (Peer{writer, "writer"}) {
		t.Errorf("receive links %v peer %+v, want [%s] and the writer", r.Links, r.Peer, w.ID)
	}
	if r.Channel != w.Channel || r.Channel != "pipe:7" || r.Endpoint != "pipe:[7]" {
		t.Errorf("channel %q/%q endpoint %q, want pipe:7 on both and pipe:[7]", w.Channel, r.Channel, r.Endpoint)
	}
}

func TestOneReadCoversManyWrites(t *testing.T) {
	h := newHarness(t)
	var ids []OpID
	for i := uint64(0); i < 4; i++ {
		ids = append(ids, h.add(pipeWrite(i*10, 10)).ID)
	}
	r := h.add(pipeRead(0, 40))
	if !slices.Equal(linksOf(r), ids) {
		t.Errorf("links %v, want all four writes %v", r.Links, ids)
	}
}

func TestPartialReadsShareOneWrite(t *testing.T) {
	h := newHarness(t)
	w := h.add(pipeWrite(0, 100))
	a := h.add(pipeRead(0, 30))
	b := h.add(pipeRead(30, 70))
	for _, r := range []*Operation{a, b} {
		if !slices.Equal(r.Links, []OpID{w.ID}) {
			t.Errorf("partial read links %v, want the one write %s", r.Links, w.ID)
		}
	}
	// Both reads consumed the write: a third read of new bytes must not
	// link to it.
	w2 := h.add(pipeWrite(100, 10))
	c := h.add(pipeRead(100, 10))
	if !slices.Equal(c.Links, []OpID{w2.ID}) {
		t.Errorf("next read links %v, want only %s", c.Links, w2.ID)
	}
}

func TestReadArrivingBeforeItsWriteWaitsForIt(t *testing.T) {
	h := newHarness(t)
	if r := h.add(pipeRead(0, 64)); r != nil {
		t.Fatalf("receive emitted before its write's record arrived: %+v", r)
	}
	w := h.add(pipeWrite(0, 64))
	ops := h.byPID(reader)
	if len(ops) != 1 || !slices.Equal(ops[0].Links, []OpID{w.ID}) {
		t.Fatalf("after the write arrived, reader has %d operations, links %v; want one linked to %s", len(ops), linksOf(ops[0]), w.ID)
	}
}

func TestHeldReceiveIsReleasedAfterTheHold(t *testing.T) {
	h := newHarness(t)
	h.add(pipeRead(0, 64)) // its writer is not traced
	h.advance(50 * time.Millisecond)
	if len(h.out) != 0 {
		t.Fatal("released before the hold expired")
	}
	h.advance(60 * time.Millisecond)
	if len(h.out) != 1 || len(h.out[0].Links) != 0 {
		t.Fatalf("want the receive released without links, got %d operations", len(h.out))
	}
	if s := h.c.Stats(); s.Unlinked != 1 {
		t.Errorf("unlinked = %d, want 1", s.Unlinked)
	}
}

// A receive whose write was lost (the ring buffer dropped it) holds its
// thread for the whole hold. Past MaxQueued waiting operations it goes
// early, so memory stays bounded however fast the thread runs.
func TestQueuedOperationsAreBounded(t *testing.T) {
	h := newHarness(t)
	h.c.opts.MaxQueued = 8
	h.add(pipeRead(0, 64)) // its write never arrives
	// the reader goes on writing to another pipe behind it
	fwd := func(i uint64) Event {
		return Event{PID: reader, TID: reader, Comm: "reader", Mechanism: Pipe, Op: Send, Syscall: "write", Ino: 8, Dev: 13, Offset: i * 5, Result: 5}
	}
	for i := range uint64(7) {
		h.add(fwd(i))
	}
	if len(h.out) != 0 || h.c.queued != 8 {
		t.Fatalf("%d out and %d queued at the bound, want 0 and 8", len(h.out), h.c.queued)
	}
	h.add(fwd(7))
	if h.c.queued != 0 || len(h.out) != 9 {
		t.Fatalf("past the bound: %d queued, %d out; want 0 and 9", h.c.queued, len(h.out))
	}
	if h.out[0].Op != Receive || len(h.out[0].Links) != 0 {
		t.Errorf("first out %s with links %v, want the held receive, unlinked", h.out[0].Op, h.out[0].Links)
	}
	s := h.c.Stats()
	if s.EarlyReleases != 1 || s.Unlinked != 1 {
		t.Errorf("early releases %d, unlinked %d; want 1 and 1", s.EarlyReleases, s.Unlinked)
	}
	// The hold's deadline passing later changes nothing.
	h.advance(time.Second)
	if len(h.out) != 9 {
		t.Errorf("%d operations after the hold, want still 9", len(h.out))
	}
}

func TestThreadOrderIsKeptBehindAHeldReceive(t *testing.T) {
	h := newHarness(t)
	h.add(pipeRead(0, 64))
	// The reader then writes elsewhere; that send must wait behind its
	// receive so that per-thread order holds in the output.
	fwd := Event{PID: reader, TID: reader, Comm: "reader", Mechanism: Pipe, Op: Send, Ino: 8, Dev: 13, Result: 5}
	if op := h.add(fwd); op != nil {
		t.Fatal("send emitted ahead of the same thread's held receive")
	}
	h.add(pipeWrite(0, 64))
	ops := h.byPID(reader)
	if len(ops) != 2 || ops[0].Op != Receive || ops[1].Op != Send {
		t.Fatalf("reader's operations %v, want receive then send", ops)
	}
}

// A send that waits behind its thread's held receive may already have been
// read by another process: that receive must still leave after the send,
// so that every consumer meets a send before the receive that names it.
func TestReceiveLeavesAfterTheQueuedSendItLinks(t *testing.T) {
	h := newHarness(t)
	h.add(pipeRead(0, 64)) // held: its write's record is late
	fwd := Event{PID: reader, TID: reader, Comm: "reader", Mechanism: Pipe, Op: Send, Syscall: "write", Ino: 8, Dev: 13, Result: 5}
	h.add(fwd) // queued behind the held read
	next := Event{PID: 300, TID: 300, Comm: "next", Mechanism: Pipe, Op: Receive, Syscall: "read", Ino: 8, Dev: 13, Result: 5}
	if op := h.add(next); op != nil {
		t.Fatalf("receive of a queued send emitted before it: %+v", op)
	}
	h.add(pipeWrite(0, 64))
	if len(h.out) != 4 {
		t.Fatalf("%d operations out, want 4", len(h.out))
	}
	pos := map[OpID]int{}
	for i, op := range h.out {
		pos[op.ID] = i
		for _, l := range op.Links {
			if p, ok := pos[l]; !ok || p > i {
				t.Errorf("operation %d (%s %s) links %s, which had not left before it", i, op.Comm, op.Op, l)
			}
		}
	}
	last := h.out[3]
	if last.PID != 300 || len(last.Links) != 1 || last.Links[0] != h.out[2].ID {
		t.Errorf("last out %s/%s links %v, want pid 300's read linked to the forwarded write", last.Comm, last.Op, last.Links)
	}
}

// A link the correlator got wrong must not hold a thread forever.
func TestReceiveWaitingOnAQueuedSendIsReleasedAfterTheHold(t *testing.T) {
	h := newHarness(t)
	h.add(pipeRead(0, 64)) // its writer is never seen
	fwd := Event{PID: reader, TID: reader, Comm: "reader", Mechanism: Pipe, Op: Send, Syscall: "write", Ino: 8, Dev: 13, Result: 5}
	h.add(fwd)
	h.add(Event{PID: 300, TID: 300, Comm: "next", Mechanism: Pipe, Op: Receive, Syscall: "read", Ino: 8, Dev: 13, Result: 5})
	h.advance(110 * time.Millisecond)
	if len(h.out) != 3 || h.out[2].PID != 300 {
		t.Fatalf("after the hold, %d operations out, want all 3 with pid 300's last", len(h.out))
	}
}

func TestManyReadersSplitTheStream(t *testing.T) {
	h := newHarness(t)
	w1 := h.add(pipeWrite(0, 10))
	w2 := h.add(pipeWrite(10, 10))
	r2 := pipeRead(10, 10)
	r2.PID, r2.TID = 300, 300
	b := h.add(r2) // the second reader's record arrives first
	a := h.add(pipeRead(0, 10))
	if !slices.Equal(a.Links, []OpID{w1.ID}) || !slices.Equal(b.Links, []OpID{w2.ID}) {
		t.Errorf("reader links %v and %v, want [%s] and [%s]", a.Links, b.Links, w1.ID, w2.ID)
	}
}

func TestPeekDoesNotConsume(t *testing.T) {
	h := newHarness(t)
	w := h.add(pipeWrite(0, 10))
	peek := pipeRead(0, 10)
	peek.Peek = true
	p := h.add(peek)
	r := h.add(pipeRead(0, 10))
	if !slices.Equal(p.Links, []OpID{w.ID}) || !slices.Equal(r.Links, []OpID{w.ID}) {
		t.Errorf("peek links %v, read links %v, want both [%s]", p.Links, r.Links, w.ID)
	}
}

func TestSendNamesTheLastReader(t *testing.T) {
	h := newHarness(t)
	h.add(pipeWrite(0, 10))
	h.add(pipeRead(0, 10))
	w := h.add(pipeWrite(10, 10))
	if w.Peer != (Peer{reader, "reader"}) {
		t.Errorf("send's peer %+v, want the reader", w.Peer)
	}
}

func tcp(op OpType, pid uint32, local, remote string, off uint32, n int64) Event {
	return Event{PID: pid, TID: pid, Comm: "p", Mechanism: TCP, Op: op, Dev: 1,
		Local: netip.MustParseAddrPort(local), Remote: netip.MustParseAddrPort(remote), Offset: uint64(off), Result: n}
}

func TestTCPMatchesAcrossSequenceWrap(t *testing.T) {
	h := newHarness(t)
	start := uint32(0xffffffc0) // 64 bytes before the 32-bit sequence wraps
	w1 := h.add(tcp(Send, writer, "127.0.0.1:40000", "127.0.0.1:5000", start, 64))
	w2 := h.add(tcp(Send, writer, "127.0.0.1:40000", "127.0.0.1:5000", start+64, 64))
	r := h.add(tcp(Receive, reader, "127.0.0.1:5000", "127.0.0.1:40000", start, 128))
	if !slices.Equal(r.Links, []OpID{w1.ID, w2.ID}) {
		t.Errorf("links %v, want both writes across the wrap", r.Links)
	}
	if r.Channel != w1.Channel || r.Endpoint != "127.0.0.1:5000->127.0.0.1:40000" || w1.Endpoint != "127.0.0.1:40000->127.0.0.1:5000" {
		t.Errorf("channels %q %q, endpoints %q %q", w1.Channel, r.Channel, w1.Endpoint, r.Endpoint)
	}
	// The reply goes the other way: a separate direction of the same channel.
	back := h.add(tcp(Send, reader, "127.0.0.1:5000", "127.0.0.1:40000", 1000, 10))
	if back.Channel != w1.Channel || back.Peer.PID != writer {
		t.Errorf("reply channel %q peer %d, want %q and the writer (owner of the far socket)", back.Channel, back.Peer.PID, w1.Channel)
	}
}

func dgram(op OpType, pid uint32, sock, peer uint64, seq uint64) Event {
	return Event{PID: pid, TID: pid, Comm: "p", Mechanism: UnixDgram, Op: op, Sock: sock, PeerSock: peer,
		HasReceiver: op == Send, Seq: true, Offset: seq, Result: 32}
}

func TestDatagramReceiveMatchesItsSendBySequence(t *testing.T) {
	h := newHarness(t)
	const server = 0xabc
	s0 := h.add(dgram(Send, writer, 1, server, 0))
	s1 := h.add(dgram(Send, 300, 2, server, 1)) // another client, same server
	r1 := h.add(dgram(Receive, reader, server, 0, 1))
	r0 := h.add(dgram(Receive, reader, server, 0, 0))
	if !slices.Equal(r0.Links, []OpID{s0.ID}) || r0.Peer.PID != writer {
		t.Errorf("receive 0 links %v peer %d, want %s from %d", r0.Links, r0.Peer.PID, s0.ID, writer)
	}
	if !slices.Equal(r1.Links, []OpID{s1.ID}) || r1.Peer.PID != 300 {
		t.Errorf("receive 1 links %v peer %d, want %s from 300", r1.Links, r1.Peer.PID, s1.ID)
	}
	if s0.Channel != r0.Channel || s1.Channel != r0.Channel {
		t.Errorf("channels %q %q %q, want the server socket's for all", s0.Channel, s1.Channel, r0.Channel)
	}
}

func TestDatagramReceiveBeforeItsSendWaits(t *testing.T) {
	h := newHarness(t)
	if op := h.add(dgram(Receive, reader, 9, 0, 0)); op != nil {
		t.Fatal("datagram receive emitted before its send arrived")
	}
	s := h.add(dgram(Send, writer, 1, 9, 0))
	ops := h.byPID(reader)
	if len(ops) != 1 || !slices.Equal(ops[0].Links, []OpID{s.ID}) {
		t.Fatalf("reader operations %d, want one linked to %s", len(ops), s.ID)
	}
}

func TestUDPOnWildcardWithoutLoopbackSendIsNotReported(t *testing.T) {
	h := newHarness(t)
	recv := Event{PID: reader, TID: reader, Mechanism: UDP, Op: Receive, Dev: 1, Sock: 5, Seq: true,
		Local: netip.MustParseAddrPort("0.0.0.0:53"), Result: 40}
	h.add(recv)
	h.advance(time.Second)
	if len(h.out) != 0 {
		t.Fatalf("a wildcard UDP receive no loopback send explains was reported: %+v", h.out[0])
	}
	if h.c.Stats().UnattributedUDP != 1 {
		t.Errorf("unattributed = %d, want 1", h.c.Stats().UnattributedUDP)
	}
}

func TestIDsAreUniqueAndNonZero(t *testing.T) {
	s := idSource{seed: 42}
	seen := make(map[OpID]bool)
	for i := 0; i < 100000; i++ {
		id := s.next()
		if id == 0 || seen[id] {
			t.Fatalf("id %d repeated or zero after %d", id, i)
		}
		seen[id] = true
	}
}

func udpSendEv(connected bool, local string, n int64) Event {
	ev := Event{PID: writer, TID: writer, Comm: "writer", Mechanism: UDP, Op: Send, Dev: 1, Sock: 11, Seq: true,
		Local: netip.MustParseAddrPort(local), Result: n}
	if connected {
		ev.Remote = netip.MustParseAddrPort("127.0.0.1:9000")
	} else {
		ev.Unsure = true
	}
	return ev
}

func udpRecvEv(seq uint64) Event {
	return Event{PID: reader, TID: reader, Comm: "reader", Mechanism: UDP, Op: Receive, Dev: 1, Sock: 99, Seq: true,
		Local: netip.MustParseAddrPort("127.0.0.1:9000"), Offset: seq, Result: 8}
}

func udpDeliveryEv(from string, seq uint64) Event {
	return Event{Mechanism: UDP, Op: Delivery, Dev: 1, PeerSock: 99, Offset: seq, Seq: true,
		Remote: netip.MustParseAddrPort(from), Local: netip.MustParseAddrPort("127.0.0.1:9000")}
}

// When the kernel defers a loopback UDP delivery, the send and a separate
// delivery event are paired by the sender's port, in either order.
func TestUDPSendPairsWithADeferredDelivery(t *testing.T) {
	for _, deliveryFirst := range []bool{false, true} {
		h := newHarness(t)
		if deliveryFirst {
			h.add(udpDeliveryEv("127.0.0.1:5555", 0))
		}
		h.add(udpSendEv(false, "0.0.0.0:5555", 8))
		if !deliveryFirst {
			if len(h.out) != 0 {
				t.Fatal("an unconnected send was reported before anything showed it was loopback")
			}
			h.add(udpDeliveryEv("127.0.0.1:5555", 0))
		}
		h.add(udpRecvEv(0))
		sends, recvs := h.byPID(writer), h.byPID(reader)
		if len(sends) != 1 || len(recvs) != 1 {
			t.Fatalf("deliveryFirst=%v: %d sends %d receives, want 1 and 1", deliveryFirst, len(sends), len(recvs))
		}
		if !slices.Equal(recvs[0].Links, []OpID{sends[0].ID}) || sends[0].Channel != recvs[0].Channel || sends[0].Channel == "" {
			t.Errorf("deliveryFirst=%v: receive links %v channel %q, send %s channel %q", deliveryFirst, recvs[0].Links, recvs[0].Channel, sends[0].ID, sends[0].Channel)
		}
		if sends[0].Endpoint != "0.0.0.0:5555->127.0.0.1:9000" {
			t.Errorf("send endpoint %q", sends[0].Endpoint)
		}
	}
}

func TestUnconnectedUDPSendNobodyClaimsIsDropped(t *testing.T) {
	h := newHarness(t)
	h.add(udpSendEv(false, "0.0.0.0:5555", 8)) // to a remote host, say
	h.advance(time.Second)
	if len(h.out) != 0 {
		t.Fatalf("reported a UDP send not shown to be loopback: %+v", h.out[0])
	}
	if h.c.Stats().UnattributedUDP != 1 {
		t.Errorf("unattributed = %d, want 1", h.c.Stats().UnattributedUDP)
	}
}

// shmid 0 is a segment like any other (the first one after boot): its
// removal is on the segment's channel, not taken for a file's unlink.
func TestSysVShmidZeroUnlinkIsOnItsSegment(t *testing.T) {
	h := newHarness(t)
	seg := IPC{ID: 0, Namespace: 4026531839, Key: 0x5b01, Size: 4096}
	create := h.add(Event{PID: writer, TID: writer, Comm: "waker", Mechanism: SysVShm, Op: Create, Syscall: "shmget", Result: 0, IPC: seg})
	unlink := h.add(Event{PID: writer, TID: writer, Comm: "waker", Mechanism: SysVShm, Op: Unlink, Syscall: "shmctl", IPC: IPC{ID: 0, Namespace: 4026531839}})
	if create == nil || unlink == nil {
		t.Fatalf("create %v, unlink %v: want both emitted", create, unlink)
	}
	if unlink.Channel != create.Channel {
		t.Errorf("unlink on channel %q, want the segment's %q", unlink.Channel, create.Channel)
	}
}
