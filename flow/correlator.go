package flow

import (
	"math/rand/v2"
	"time"
)

// Options tune a Correlator.
type Options struct {
	// Hold is how long a receive waits for records of the sends it
	// delivered. They can arrive after it: each CPU's records reach the ring
	// buffer when that CPU finishes its syscall.
	Hold time.Duration
	// MaxPendingSends bounds the sends per channel that no receive has
	// delivered yet; the oldest are forgotten first.
	MaxPendingSends int
	// Idle is how long a channel with nothing pending is remembered.
	Idle time.Duration
	// MaxQueued bounds the operations waiting behind held receives. A
	// receive whose sends the ring buffer dropped waits the whole hold,
	// and every later operation of its thread waits behind it: at
	// hundreds of thousands of operations a second that is a lot of
	// memory. Past the bound, held receives go early, oldest first, with
	// the sends seen so far.
	MaxQueued int
	// Now is the clock for holds; time.Now when nil.
	Now func() time.Time
	// Seed makes operation ids; random when 0.
	Seed uint64
}

// DefaultOptions are the options icptrack runs with.
func DefaultOptions() Options {
	return Options{Hold: 250 * time.Millisecond, MaxPendingSends: 65536, Idle: 5 * time.Minute, MaxQueued: 16384}
}

// Stats counts what the correlator did.
type Stats struct {
	Operations uint64 // operations emitted
	Linked     uint64 // receives linked to the sends they delivered
	Unlinked   uint64 // receives of bytes whose sends were not seen
	// EvictedSends are sends forgotten before a receive delivered them: the
	// channel had too many pending, or they were older than Idle.
	EvictedSends uint64
	// UnattributedUDP are UDP receives on a wildcard-bound socket that no
	// loopback send explains; they may have come from the network and are
	// not reported.
	UnattributedUDP uint64
	// DeferredUDP are loopback UDP datagrams whose delivery the kernel
	// deferred to another task, paired with their sends afterwards.
	DeferredUDP uint64
	// NotShared are shared mappings and process-shared futexes outside
	// what icptrack reports as shared memory (a tmpfs file outside
	// /dev/shm, a futex in no segment seen).
	NotShared uint64
	// EarlyReleases are held receives let go before their hold ran out,
	// because MaxQueued operations waited behind them.
	EarlyReleases uint64
}

// Correlator matches receives to the sends they delivered. It is not safe
// for concurrent use: one goroutine feeds it events in ring-buffer order.
type Correlator struct {
	opts    Options
	emit    func(*Operation)
	ids     idSource
	streams map[streamKey]*stream
	recent  recentStreams
	boxes   map[boxKey]*mailbox
	// held receives, oldest first (their deadlines are in the same order).
	held []*heldReceive
	// threads whose output waits behind a held receive: each thread's
	// operations leave in the order it made them.
	threads    map[uint32][]*queuedOp
	owners     map[endKey]owner
	udp        udpPairing
	queues     map[queueKey]*queue
	segments   map[segmentKey]*segment
	mappings   map[uint32][]mapping // by pid
	wakes      map[futexKey]futexWake
	futexHeld  map[futexKey][]*heldReceive
	signals    map[signalKey][]sentSignal
	signalHeld map[signalKey][]*heldReceive
	comms      map[uint32]string
	// Sends waiting in their thread's queue, and the receives of other
	// threads that delivered them: a receive leaves after the sends it
	// links, so every consumer sees a send before anything that names it.
	queuedSends map[OpID]*queuedOp
	dependents  map[OpID][]*queuedOp
	// receives waiting on queued sends, checked on Tick so that no
	// mismatch can hold them forever.
	depWaiters []*queuedOp
	// threads whose queue may drain now that a send left; drained once
	// the current drain finishes.
	unblocked  []uint32
	draining   bool
	shmNames   map[string]segmentKey
	queueNames map[string]queueKey
	lastSweep  time.Time
	stats      Stats
	// queued counts the operations in threads.
	queued int
	// free holds emitted operations for reuse: at hundreds of thousands
	// of operations a second, allocating each is most of the garbage.
	free []*Operation
}

type queuedOp struct {
	op    *Operation
	ready bool
	// deps are the linked sends still queued in other threads.
	deps  int
	since time.Time
}

// New returns a correlator that passes each finished operation to emit.
// The operation is reused once emit returns: emit must copy what it keeps.
func New(emit func(*Operation), opts Options) *Correlator {
	d := DefaultOptions()
	if opts.Hold <= 0 {
		opts.Hold = d.Hold
	}
	if opts.MaxPendingSends <= 0 {
		opts.MaxPendingSends = d.MaxPendingSends
	}
	if opts.Idle <= 0 {
		opts.Idle = d.Idle
	}
	if opts.MaxQueued <= 0 {
		opts.MaxQueued = d.MaxQueued
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Seed == 0 {
		opts.Seed = rand.Uint64()
	}
	return &Correlator{
		opts:        opts,
		emit:        emit,
		ids:         idSource{seed: opts.Seed},
		streams:     make(map[streamKey]*stream),
		boxes:       make(map[boxKey]*mailbox),
		threads:     make(map[uint32][]*queuedOp),
		owners:      make(map[endKey]owner),
		udp:         newUDPPairing(),
		queues:      make(map[queueKey]*queue),
		segments:    make(map[segmentKey]*segment),
		mappings:    make(map[uint32][]mapping),
		wakes:       make(map[futexKey]futexWake),
		futexHeld:   make(map[futexKey][]*heldReceive),
		signals:     make(map[signalKey][]sentSignal),
		signalHeld:  make(map[signalKey][]*heldReceive),
		comms:       make(map[uint32]string),
		queuedSends: make(map[OpID]*queuedOp),
		dependents:  make(map[OpID][]*queuedOp),
		shmNames:    make(map[string]segmentKey),
		queueNames:  make(map[string]queueKey),
	}
}

// Stats returns the counters so far.
func (c *Correlator) Stats() Stats { return c.stats }

// Add takes one event from the kernel.
func (c *Correlator) Add(ev *Event) {
	// The event's end is "now" closely enough for holds and idleness, and
	// reading the clock for every event would cost more than matching it.
	now := ev.End
	if now.IsZero() {
		now = c.opts.Now()
	}
	switch ev.Op {
	case Delivery:
		c.addDelivery(ev, now)
		return
	case Exited:
		c.exited(ev.PID)
		delete(c.comms, ev.PID)
		return
	}
	if ev.PID != 0 && c.comms[ev.PID] != ev.Comm {
		c.comms[ev.PID] = ev.Comm
	}
	op := c.newOperation(ev)
	switch ev.Mechanism {
	case Pipe, FIFO, UnixStream, TCP:
		c.addStream(ev, op, now)
	case UnixDgram, UnixSeqpacket, UDP:
		c.addDatagram(ev, op, now)
	case POSIXMQ, SysVMQ:
		c.addQueue(ev, op, now)
	case SysVShm, POSIXShm, Memfd:
		c.addShm(ev, op, now)
	case Signal:
		c.addSignal(ev, op, now)
	default:
		c.output(op, true)
	}
	if c.queued > c.opts.MaxQueued {
		c.relieve()
	}
}

// relieve lets held receives go early, oldest first, until no more than
// MaxQueued operations wait; then receives waiting on queued sends.
func (c *Correlator) relieve() {
	for c.queued > c.opts.MaxQueued && len(c.held) > 0 {
		h := c.held[0]
		c.held[0] = nil
		c.held = c.held[1:]
		if !h.done {
			c.stats.EarlyReleases++
			c.expire(h)
		}
	}
	if c.queued > c.opts.MaxQueued && len(c.depWaiters) > 0 {
		c.releaseWaiters(c.opts.Now(), true)
	}
}

// Tick releases receives whose hold has expired, with whatever sends were
// seen, and forgets idle channels. Call it on a timer.
func (c *Correlator) Tick() {
	now := c.opts.Now()
	for len(c.held) > 0 && !c.held[0].deadline.After(now) {
		h := c.held[0]
		c.held[0] = nil
		c.held = c.held[1:]
		if !h.done {
			c.expire(h)
		}
	}
	if len(c.depWaiters) > 0 {
		c.releaseWaiters(now, false)
	}
	c.expireUDP(now, false)
	if now.Sub(c.lastSweep) >= c.opts.Hold {
		c.sweep(now)
		c.lastSweep = now
	}
}

// Flush releases every held receive; call it once capture has stopped and
// the ring buffer is drained.
func (c *Correlator) Flush() {
	c.expireUDP(c.opts.Now(), true)
	for _, h := range c.held {
		if !h.done {
			c.expire(h)
		}
	}
	c.held = nil
	c.releaseWaiters(c.opts.Now(), true)
}

func (c *Correlator) newOperation(ev *Event) *Operation {
	var op *Operation
	var links []OpID
	var peers []uint32
	if n := len(c.free); n > 0 {
		op, c.free = c.free[n-1], c.free[:n-1]
		links, peers = op.Links[:0], op.Peers[:0]
	} else {
		op = new(Operation)
	}
	*op = Operation{
		ID:               c.ids.next(),
		Time:             ev.Start,
		Duration:         ev.End.Sub(ev.Start),
		Count:            ev.Count,
		Busy:             ev.Busy,
		StartUnknown:     ev.StartUnknown,
		PID:              ev.PID,
		TID:              ev.TID,
		PPID:             ev.PPID,
		Comm:             ev.Comm,
		Mechanism:        ev.Mechanism,
		Op:               ev.Op,
		Syscall:          ev.Syscall,
		Bytes:            ev.Bytes(),
		Local:            ev.Local,
		Remote:           ev.Remote,
		Error:            ev.Error,
		Blocked:          ev.Blocked,
		Payload:          ev.Payload,
		PayloadCaptured:  ev.PayloadCaptured,
		PayloadTruncated: ev.PayloadTruncated,
		Links:            links,
		Peers:            peers,
		QueueDepth:       -1,
		Exe:              ev.Process.Exe,
		Cmdline:          ev.Process.Cmdline,
		CgroupID:         ev.Process.CgroupID,
		ContainerID:      ev.Process.ContainerID,
	}
	if ev.Op != Send && ev.Op != Receive {
		op.Bytes = 0 // the call returned a descriptor, an address, a count
	}
	return op
}

// send emits op and keeps it for reuse.
func (c *Correlator) send(op *Operation) {
	c.stats.Operations++
	c.emit(op)
	if op.Op == Send && len(c.dependents) > 0 {
		c.releaseDependents(op.ID)
	}
	if len(c.free) < 4096 {
		op.Payload = nil
		op.Peers = op.Peers[:0]
		c.free = append(c.free, op)
	}
}

// output sends op on, or queues it behind an earlier operation of the same
// thread that is still waiting for its sends. A ready receive also waits
// for the sends it links that are still queued themselves.
func (c *Correlator) output(op *Operation, ready bool) *queuedOp {
	var q []*queuedOp
	waiting := false
	if len(c.threads) > 0 {
		q, waiting = c.threads[op.TID]
	}
	if !waiting && ready && (op.Op != Receive || len(c.queuedSends) == 0 || !c.linksQueued(op)) {
		c.send(op)
		return nil
	}
	qo := &queuedOp{op: op}
	c.threads[op.TID] = append(q, qo)
	c.queued++
	if op.Op == Send {
		c.queuedSends[op.ID] = qo
	}
	if ready {
		c.markReady(qo)
		c.drain(op.TID)
	}
	return qo
}

func (c *Correlator) linksQueued(op *Operation) bool {
	for _, id := range op.Links {
		if _, ok := c.queuedSends[id]; ok {
			return true
		}
	}
	return false
}

// markReady records that qo has all its sends, and which of them it must
// still wait for.
func (c *Correlator) markReady(qo *queuedOp) {
	qo.ready = true
	if qo.op.Op != Receive || len(c.queuedSends) == 0 {
		return
	}
	for _, id := range qo.op.Links {
		if _, ok := c.queuedSends[id]; ok {
			qo.deps++
			c.dependents[id] = append(c.dependents[id], qo)
		}
	}
	if qo.deps > 0 {
		qo.since = c.opts.Now()
		c.depWaiters = append(c.depWaiters, qo)
	}
}

// ready marks a queued operation finished and lets its thread's queue
// drain up to the next one still waiting.
func (c *Correlator) ready(qo *queuedOp) {
	c.markReady(qo)
	c.drain(qo.op.TID)
}

// drain sends a thread's queued operations up to the first that still
// waits, then the queues that the sends it made unblocked.
func (c *Correlator) drain(tid uint32) {
	if c.draining {
		c.unblocked = append(c.unblocked, tid)
		return
	}
	c.draining = true
	c.drainOne(tid)
	for len(c.unblocked) > 0 {
		t := c.unblocked[len(c.unblocked)-1]
		c.unblocked = c.unblocked[:len(c.unblocked)-1]
		c.drainOne(t)
	}
	c.draining = false
}

func (c *Correlator) drainOne(tid uint32) {
	q, ok := c.threads[tid]
	if !ok {
		return
	}
	i := 0
	for ; i < len(q) && q[i].ready && q[i].deps == 0; i++ {
		if q[i].op.Op == Send {
			delete(c.queuedSends, q[i].op.ID)
		}
		c.send(q[i].op)
	}
	c.queued -= i
	if i == len(q) {
		delete(c.threads, tid)
		return
	}
	c.threads[tid] = q[i:]
}

// releaseDependents releases the receives that waited for send id.
func (c *Correlator) releaseDependents(id OpID) {
	ds, ok := c.dependents[id]
	if !ok {
		return
	}
	delete(c.dependents, id)
	for _, qo := range ds {
		if qo.deps > 0 {
			qo.deps--
			if qo.deps == 0 {
				c.drain(qo.op.TID)
			}
		}
	}
}

// releaseWaiters lets receives that waited on queued sends for longer
// than the hold (or all of them, at the end) go regardless: matching is
// inexact where several writers race, and a wrong link must not hold a
// thread forever.
func (c *Correlator) releaseWaiters(now time.Time, all bool) {
	keep := c.depWaiters[:0]
	var release []*queuedOp
	for _, qo := range c.depWaiters {
		switch {
		case qo.deps == 0:
		case all || now.Sub(qo.since) >= c.opts.Hold:
			qo.deps = 0
			release = append(release, qo)
		default:
			keep = append(keep, qo)
		}
	}
	clear(c.depWaiters[len(keep):])
	c.depWaiters = keep
	for _, qo := range release {
		c.drain(qo.op.TID)
	}
	if len(c.depWaiters) == 0 && len(c.threads) == 0 {
		clear(c.dependents)
		clear(c.queuedSends)
	}
}

// heldReceive is a receive waiting for the records of its sends.
type heldReceive struct {
	qo       *queuedOp
	deadline time.Time
	done     bool
	// stream receives
	st   *stream
	a, b uint64
	peek bool
	// datagram receives
	box *mailbox
	seq uint64
	ev  datagramReceive
	// queue receives
	queue  *queue
	qtype  int64
	qguess bool
	// futex waits
	futex futexKey
	since time.Time
	// signal receives
	signal signalKey
}

func (c *Correlator) hold(h *heldReceive, now time.Time) {
	h.deadline = now.Add(c.opts.Hold)
	c.held = append(c.held, h)
}

// expire releases a held receive that waited long enough.
func (c *Correlator) expire(h *heldReceive) {
	h.done = true
	switch {
	case h.queue != nil:
		h.queue.unhold(h)
		// A guessed priority that no send ever matched was wrong (a
		// higher one came in between): take the oldest waiting instead.
		if !h.qguess || !h.queue.take(h.qo.op, -1, true, &c.stats) {
			c.stats.Unlinked++
		}
		c.ready(h.qo)
		return
	case h.futex.seg != nil:
		unholdFrom(c.futexHeld, h.futex, h)
		c.ready(h.qo)
		return
	case h.signal != (signalKey{}):
		unholdFrom(c.signalHeld, h.signal, h)
		c.stats.Unlinked++
		c.ready(h.qo)
		return
	}
	if h.st != nil {
		h.st.unhold(h)
		h.st.deliver(h.qo.op, h.a, h.b, h.peek, &c.stats)
		c.ready(h.qo)
		return
	}
	delete(h.box.held, h.seq)
	if !c.deliverDatagram(h.box, h.qo.op, &h.ev, nil) {
		c.drop(h.qo)
		return
	}
	c.ready(h.qo)
}

// drop removes a queued operation that turned out not to be reportable.
func (c *Correlator) drop(qo *queuedOp) {
	q := c.threads[qo.op.TID]
	for i, x := range q {
		if x == qo {
			c.queued--
			copy(q[i:], q[i+1:])
			q[len(q)-1] = nil
			q = q[:len(q)-1]
			break
		}
	}
	if qo.op.Op == Send {
		delete(c.queuedSends, qo.op.ID)
		c.releaseDependents(qo.op.ID)
	}
	if len(q) == 0 {
		delete(c.threads, qo.op.TID)
		return
	}
	c.threads[qo.op.TID] = q
	c.drain(qo.op.TID)
}

// sweep forgets channels idle for longer than Idle and sends that have
// waited that long for a receive.
func (c *Correlator) sweep(now time.Time) {
	cutoff := now.Add(-c.opts.Idle)
	for k, st := range c.streams {
		c.stats.EvictedSends += uint64(st.forgetBefore(cutoff))
		if st.pending() == 0 && len(st.held) == 0 && st.active.Before(cutoff) {
			delete(c.streams, k)
			c.recent = recentStreams{}
		}
	}
	for k, box := range c.boxes {
		c.stats.EvictedSends += uint64(box.forgetBefore(cutoff))
		if len(box.sends) == 0 && len(box.held) == 0 && box.active.Before(cutoff) {
			delete(c.boxes, k)
		}
	}
	c.sweepOwners(cutoff)
	for k, q := range c.queues {
		if len(q.pending) == 0 && len(q.held) == 0 && q.active.Before(cutoff) {
			delete(c.queues, k)
		}
	}
	for k, s := range c.segments {
		if len(s.attached) == 0 && s.active.Before(cutoff) {
			delete(c.segments, k)
		}
	}
}

// idSource makes operation ids: a random seed plus a counter, mixed by
// splitmix64, whose finaliser is a bijection, so ids never repeat within a
// run and look random, as span ids should.
type idSource struct {
	seed, n uint64
}

func (s *idSource) next() OpID {
	for {
		s.n++
		z := s.seed + s.n*0x9e3779b97f4a7c15
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
		if z != 0 {
			return OpID(z)
		}
	}
}

// Backlog adds up, per mechanism, what waits in channels both of whose
// ends icptrack has seen: bytes in streams, messages in datagram sockets
// and queues. (A channel whose reader is not traced would otherwise look
// ever fuller.) It walks every channel: call it now and then, not per
// operation.
func (c *Correlator) Backlog() [MechanismCount]int64 {
	var out [MechanismCount]int64
	for k, st := range c.streams {
		if st.reader.PID == 0 {
			continue
		}
		for _, s := range st.sends[st.head:] {
			out[k.mech] += s.left
		}
	}
	for k, box := range c.boxes {
		if box.reader.PID != 0 {
			out[k.mech] += int64(len(box.sends))
		}
	}
	for k, q := range c.queues {
		if q.reader.PID != 0 || k.mech == POSIXMQ {
			out[k.mech] += q.depth
		}
	}
	return out
}

// Attachments counts, per mechanism, the shared-memory attachments traced
// processes hold now.
func (c *Correlator) Attachments() [MechanismCount]int64 {
	var out [MechanismCount]int64
	for _, ms := range c.mappings {
		for _, m := range ms {
			out[m.seg.mech]++
		}
	}
	return out
}
