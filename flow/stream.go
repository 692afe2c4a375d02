package flow

import (
	"sort"
	"time"
)

// Byte streams (pipes, FIFOs, unix stream sockets, TCP): the kernel numbers
// every byte written to a direction of a channel, and a read of bytes
// [a, b) delivered the writes whose ranges overlap [a, b).

// streamKey names one direction of a stream channel.
type streamKey struct {
	mech Mechanism
	dev  uint32 // pipe/FIFO device, TCP netns
	ino  uint64 // pipe inode, or the receiving unix socket (Event.Sock)
	from addr
	to   addr
}

func streamKeyOf(ev *Event) (streamKey, bool) {
	k := streamKey{mech: ev.Mechanism}
	switch ev.Mechanism {
	case Pipe, FIFO:
		k.dev, k.ino = ev.Dev, ev.Ino
	case UnixStream:
		k.ino = ev.Sock
		if ev.Op == Send {
			k.ino = ev.PeerSock
		}
	case TCP:
		k.dev = ev.Dev
		k.from, k.to = addrOf(ev.Local), addrOf(ev.Remote)
		if ev.Op == Receive {
			k.from, k.to = k.to, k.from
		}
		return k, ev.Local.IsValid() && ev.Remote.IsValid()
	}
	return k, k.ino != 0
}

// pendingSend is a send whose bytes no receive has consumed yet.
type pendingSend struct {
	id         OpID
	start, end uint64
	left       int64 // bytes not yet consumed
	from       Peer
	at         int64 // when it arrived, unix ns
}

// stream is one direction of a stream channel.
type stream struct {
	channel  string
	endpoint [opTypeEnd]string
	pathed   [opTypeEnd]bool // endpoint was made with the kernel's path
	// sends[head:] are the sends not fully consumed yet, by start offset.
	// Receives consume them nearly always from the front, so head moves
	// and the slice is compacted only now and then.
	sends   []pendingSend
	head    int
	maxEnd  uint64 // highest byte offset any send reached
	held    []*heldReceive
	reader  Peer // last process that read
	writer  Peer // the one process that writes, while there is only one
	writers int  // distinct writing processes seen, up to 2
	active  time.Time
	// 32-bit TCP sequence numbers are widened against base.
	wide     bool
	base     uint64
	haveBase bool
}

func (c *Correlator) stream(k streamKey, ev *Event) *stream {
	st := c.recentStream(k)
	if st == nil {
		st = c.streams[k]
	}
	if st == nil {
		st = &stream{wide: ev.Mechanism == TCP}
		switch ev.Mechanism {
		case Pipe:
			st.channel = pipeChannel(ev.Ino)
		case FIFO:
			st.channel = fifoChannel(ev.Dev, ev.Ino)
		case UnixStream:
			st.channel = unixChannel(ev.Sock, ev.PeerSock)
		case TCP:
			st.channel = inetChannel(TCP, ev.Dev, ev.Local, ev.Remote)
		}
		c.streams[k] = st
	}
	c.rememberStream(k, st)
	// The path can reach userspace after the first operations.
	if st.endpoint[ev.Op] == "" || (ev.Path != "" && !st.pathed[ev.Op]) {
		st.endpoint[ev.Op] = streamEndpoint(ev)
		st.pathed[ev.Op] = ev.Path != ""
	}
	return st
}

func streamEndpoint(ev *Event) string {
	switch ev.Mechanism {
	case Pipe:
		return pipeEndpoint(ev.Ino)
	case FIFO:
		return fifoEndpoint(ev.Path, ev.Dev, ev.Ino)
	case UnixStream:
		return unixEndpoint(ev.Path, ev.Ino)
	default:
		return inetEndpoint(ev.Local, ev.Remote)
	}
}

// offset widens a 32-bit TCP sequence number to a 64-bit offset that keeps
// counting across wrap-around.
func (st *stream) offset(off uint64) uint64 {
	if !st.wide {
		return off
	}
	off32 := uint32(off)
	if !st.haveBase {
		st.base, st.haveBase = uint64(off32), true
		return st.base
	}
	w := uint64(int64(st.base) + int64(int32(off32-uint32(st.base))))
	if w > st.base {
		st.base = w
	}
	return w
}

func (c *Correlator) addStream(ev *Event, op *Operation, now time.Time) {
	k, ok := streamKeyOf(ev)
	if !ok {
		op.Endpoint = streamEndpoint(ev)
		c.output(op, true)
		return
	}
	st := c.stream(k, ev)
	st.active = now
	op.Channel = st.channel
	op.Endpoint = st.endpoint[ev.Op]
	me := Peer{PID: ev.PID, Comm: ev.Comm}
	far, farKnown := c.noteOwner(ev, now)
	n := ev.Bytes()

	if ev.Op == Send {
		st.noteWriter(me)
		op.Peer = st.reader
		if farKnown {
			op.Peer = far
		}
		if n > 0 {
			start := st.offset(ev.Offset)
			st.add(pendingSend{id: op.ID, start: start, end: start + uint64(n), left: n, from: me, at: now.UnixNano()})
			c.stats.EvictedSends += uint64(st.trim(c.opts.MaxPendingSends))
		}
		c.output(op, true)
		c.releaseStream(st)
		return
	}

	st.reader = me
	if farKnown {
		st.noteFarWriter(far)
	}
	if n == 0 {
		c.output(op, true)
		return
	}
	a := st.offset(ev.Offset)
	b := a + uint64(n)
	if st.maxEnd >= b {
		st.deliver(op, a, b, ev.Peek, &c.stats)
		c.output(op, true)
		return
	}
	h := &heldReceive{st: st, a: a, b: b, peek: ev.Peek}
	h.qo = c.output(op, false)
	st.held = append(st.held, h)
	c.hold(h, now)
}

// releaseStream delivers the held receives that the sends seen so far cover.
func (c *Correlator) releaseStream(st *stream) {
	for i := 0; i < len(st.held); {
		h := st.held[i]
		if st.maxEnd < h.b {
			i++
			continue
		}
		h.done = true
		st.held = append(st.held[:i], st.held[i+1:]...)
		st.deliver(h.qo.op, h.a, h.b, h.peek, &c.stats)
		c.ready(h.qo)
	}
}

// noteFarWriter learns the writer from the far end of a socket, for a
// receive whose sends icptrack missed.
func (st *stream) noteFarWriter(p Peer) {
	if st.writers == 0 {
		st.writer, st.writers = p, 1
	}
}

func (st *stream) noteWriter(p Peer) {
	switch {
	case st.writers == 0:
		st.writer, st.writers = p, 1
	case st.writers == 1 && st.writer.PID != p.PID:
		st.writers = 2
	}
	if st.writers == 1 {
		st.writer = p
	}
}

// add inserts a send by offset; sends nearly always arrive in order.
func (st *stream) add(s pendingSend) {
	if s.end > st.maxEnd {
		st.maxEnd = s.end
	}
	n := len(st.sends)
	if n == st.head || st.sends[n-1].start <= s.start {
		st.sends = append(st.sends, s)
		return
	}
	live := st.sends[st.head:]
	i := st.head + sort.Search(len(live), func(i int) bool { return live[i].start > s.start })
	st.sends = append(st.sends, pendingSend{})
	copy(st.sends[i+1:], st.sends[i:])
	st.sends[i] = s
}

// pending is the number of sends not yet consumed from the front.
func (st *stream) pending() int { return len(st.sends) - st.head }

// deliver links a receive of bytes [a, b) to the sends that wrote them and
// names as peer the process that wrote most of them.
func (st *stream) deliver(op *Operation, a, b uint64, peek bool, stats *Stats) {
	live := st.sends[st.head:]
	i := st.head + sort.Search(len(live), func(i int) bool { return live[i].end > a })
	var best Peer
	var bestBytes int64
	type share struct {
		pid   uint32
		bytes int64
	}
	var shares [4]share
	nshares := 0
	consumed := false
	for ; i < len(st.sends) && st.sends[i].start < b; i++ {
		s := &st.sends[i]
		if s.left <= 0 {
			continue // consumed by an earlier receive
		}
		ov := int64(min(s.end, b) - max(s.start, a))
		op.Links = append(op.Links, s.id)
		if !peek {
			s.left -= ov
			consumed = consumed || s.left <= 0
		}
		// Most receives have one or two writers; more are rare enough
		// that counting only the first four is fine.
		j := 0
		for ; j < nshares && shares[j].pid != s.from.PID; j++ {
		}
		if j == nshares && nshares < len(shares) {
			shares[j] = share{pid: s.from.PID}
			nshares++
		}
		if j < nshares {
			shares[j].bytes += ov
			if shares[j].bytes > bestBytes {
				best, bestBytes = s.from, shares[j].bytes
			}
		}
	}
	if consumed {
		st.compact()
	}
	if len(op.Links) == 0 {
		stats.Unlinked++
		if st.writers == 1 {
			op.Peer = st.writer
		}
		return
	}
	stats.Linked++
	op.Peer = best
}

// compact moves head past consumed sends at the front, and now and then
// drops the consumed prefix (and any consumed out of order) from memory.
func (st *stream) compact() {
	for st.head < len(st.sends) && st.sends[st.head].left <= 0 {
		st.head++
	}
	if st.head == len(st.sends) {
		clear(st.sends)
		st.sends, st.head = st.sends[:0], 0
		return
	}
	if st.head < 1024 || st.head < len(st.sends)/2 {
		return
	}
	kept := st.sends[:0]
	for _, s := range st.sends[st.head:] {
		if s.left > 0 {
			kept = append(kept, s)
		}
	}
	clear(st.sends[len(kept):])
	st.sends, st.head = kept, 0
}

// trim forgets the oldest sends beyond max, returning how many.
func (st *stream) trim(max int) int {
	n := st.pending() - max
	if n <= 0 {
		return 0
	}
	for i := st.head; i < st.head+n; i++ {
		st.sends[i].left = 0
	}
	st.compact()
	return n
}

// forgetBefore forgets sends that arrived before cutoff.
func (st *stream) forgetBefore(cutoff time.Time) int {
	n := 0
	for i := st.head; i < len(st.sends); i++ {
		if s := &st.sends[i]; s.left > 0 && s.at < cutoff.UnixNano() {
			s.left = 0
			n++
		}
	}
	if n > 0 {
		st.compact()
	}
	return n
}

func (st *stream) unhold(h *heldReceive) {
	for i, x := range st.held {
		if x == h {
			st.held = append(st.held[:i], st.held[i+1:]...)
			return
		}
	}
}

// A ping-pong goes back and forth over two directions of one channel, a
// stream over one: the correlator remembers the last two it looked up,
// so that most operations skip hashing a streamKey.
type recentStreams struct {
	keys [2]streamKey
	sts  [2]*stream
	next int
}

func (c *Correlator) recentStream(k streamKey) *stream {
	r := &c.recent
	for i := range r.sts {
		if r.sts[i] != nil && r.keys[i] == k {
			return r.sts[i]
		}
	}
	return nil
}

func (c *Correlator) rememberStream(k streamKey, st *stream) {
	r := &c.recent
	for i := range r.sts {
		if r.sts[i] == st {
			return
		}
	}
	r.keys[r.next], r.sts[r.next] = k, st
	r.next = (r.next + 1) % len(r.sts)
}
