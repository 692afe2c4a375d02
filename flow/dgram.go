package flow

import (
	"net/netip"
	"time"
)

// Datagrams (unix dgram and seqpacket, UDP): the kernel numbers the
// datagrams queued on each receiving socket as the sender queues them, and
// each receive takes the next number. A receive delivered the one send that
// carries its number.

// boxKey names a receiving socket.
type boxKey struct {
	mech Mechanism
	ino  uint64
}

type datagramSend struct {
	id      OpID
	from    Peer
	channel string
	local   netip.AddrPort // UDP: the sender's address
	at      time.Time
}

// mailbox is a receiving socket: the sends queued on it that no receive has
// taken yet, and the receives waiting for their send's record.
type mailbox struct {
	sends  map[uint64]datagramSend
	order  []uint64 // sequence numbers of sends, oldest first
	held   map[uint64]*heldReceive
	reader Peer
	active time.Time
}

// datagramReceive is what delivering a receive needs from its event.
type datagramReceive struct {
	mech           Mechanism
	ino            uint64
	sock, peerSock uint64
	dev            uint32
	local, remote  netip.AddrPort
	path           string
	seq            uint64
	peek           bool
}

func (c *Correlator) box(k boxKey, now time.Time) *mailbox {
	b := c.boxes[k]
	if b == nil {
		b = &mailbox{sends: make(map[uint64]datagramSend), held: make(map[uint64]*heldReceive)}
		c.boxes[k] = b
	}
	b.active = now
	return b
}

func (c *Correlator) addDatagram(ev *Event, op *Operation, now time.Time) {
	me := Peer{PID: ev.PID, Comm: ev.Comm}
	far, farKnown := c.noteOwner(ev, now)
	if ev.Op == Send {
		op.Channel, op.Endpoint = datagramSendChannel(ev)
		if farKnown {
			op.Peer = far
		}
		switch {
		case ev.Result < 0 && ev.Unsure:
			c.stats.UnattributedUDP++ // failed, to who knows where
		case ev.Result < 0:
			c.output(op, true)
		case !ev.HasReceiver && ev.Mechanism == UDP:
			c.udpWithoutReceiver(ev, op, now)
		case !ev.HasReceiver:
			c.output(op, true)
		default:
			box := c.box(boxKey{ev.Mechanism, ev.PeerSock}, now)
			if box.reader.PID != 0 {
				op.Peer = box.reader
			}
			c.output(op, true)
			c.sent(box, ev.Offset, datagramSend{id: op.ID, from: me, channel: op.Channel, local: ev.Local, at: now})
		}
		return
	}

	box := c.box(boxKey{ev.Mechanism, ev.Sock}, now)
	box.reader = me
	r := datagramReceive{
		mech: ev.Mechanism, ino: ev.Ino, sock: ev.Sock, peerSock: ev.PeerSock, dev: ev.Dev,
		local: ev.Local, remote: ev.Remote, path: ev.Path, seq: ev.Offset, peek: ev.Peek,
	}
	_, sent := box.sends[r.seq]
	// A failed receive took nothing; a peek takes nothing either, so it
	// does not wait for a send that may never come.
	if ev.Result < 0 || sent || ev.Peek {
		if ev.Result < 0 {
			r.seq = ^uint64(0)
		}
		if c.deliverDatagram(box, op, &r, nil) {
			c.output(op, true)
		}
		return
	}
	h := &heldReceive{box: box, seq: r.seq, ev: r}
	h.qo = c.output(op, false)
	box.held[r.seq] = h
	c.hold(h, now)
}

// sent records a datagram queued on box with sequence seq, and delivers
// the receive that was waiting for it.
func (c *Correlator) sent(box *mailbox, seq uint64, s datagramSend) {
	c.stats.EvictedSends += uint64(box.add(seq, s, c.opts.MaxPendingSends))
	if h := box.held[seq]; h != nil {
		delete(box.held, seq)
		h.done = true
		c.deliverDatagram(box, h.qo.op, &h.ev, &s)
		c.ready(h.qo)
	}
}

// deliverDatagram links a receive to its send (s, or the one with its
// sequence number) and fills in the channel. It returns false when the
// receive is not to be reported: UDP on a wildcard socket that no loopback
// send explains.
func (c *Correlator) deliverDatagram(box *mailbox, op *Operation, r *datagramReceive, s *datagramSend) bool {
	if s == nil {
		if found, ok := box.sends[r.seq]; ok {
			s = &found
		}
	}
	if s != nil {
		if !r.peek {
			box.remove(r.seq)
		}
		op.Links = append(op.Links, s.id)
		op.Peer = s.from
		c.stats.Linked++
	} else {
		if r.mech == UDP && r.local.Addr().IsUnspecified() && !r.remote.IsValid() {
			c.stats.UnattributedUDP++
			return false
		}
		if op.Bytes > 0 {
			c.stats.Unlinked++
		}
	}
	op.Channel, op.Endpoint = r.channel(s)
	return true
}

func datagramSendChannel(ev *Event) (channel, endpoint string) {
	switch ev.Mechanism {
	case UnixDgram:
		to := ev.Sock
		if ev.HasReceiver {
			to = ev.PeerSock
		}
		return unixChannel(to, 0), unixEndpoint(ev.Path, ev.Ino)
	case UnixSeqpacket:
		return unixChannel(ev.Sock, ev.PeerSock), unixEndpoint(ev.Path, ev.Ino)
	default:
		return inetChannel(ev.Mechanism, ev.Dev, ev.Local, ev.Remote), inetEndpoint(ev.Local, ev.Remote)
	}
}

func (r *datagramReceive) channel(s *datagramSend) (channel, endpoint string) {
	switch r.mech {
	case UnixDgram:
		return unixChannel(r.sock, 0), unixEndpoint(r.path, r.ino)
	case UnixSeqpacket:
		return unixChannel(r.sock, r.peerSock), unixEndpoint(r.path, r.ino)
	}
	remote := r.remote
	if s != nil {
		if !remote.IsValid() {
			remote = s.local
		}
		return s.channel, inetEndpoint(r.local, remote)
	}
	return inetChannel(UDP, r.dev, r.local, remote), inetEndpoint(r.local, remote)
}

// add remembers a send by sequence number, forgetting the oldest beyond
// max; it returns how many were forgotten.
func (b *mailbox) add(seq uint64, s datagramSend, max int) int {
	b.sends[seq] = s
	b.order = append(b.order, seq)
	n := 0
	for len(b.sends) > max && len(b.order) > 0 {
		old := b.order[0]
		b.order = b.order[1:]
		if _, ok := b.sends[old]; ok {
			delete(b.sends, old)
			n++
		}
	}
	if len(b.order) > 2*max {
		b.compactOrder()
	}
	return n
}

func (b *mailbox) remove(seq uint64) {
	delete(b.sends, seq)
	// Receives take sends in order, so order's head is usually the one
	// just taken; the rest is cleaned up by compactOrder.
	for len(b.order) > 0 {
		if _, ok := b.sends[b.order[0]]; ok {
			break
		}
		b.order = b.order[1:]
	}
}

func (b *mailbox) compactOrder() {
	kept := make([]uint64, 0, len(b.sends))
	for _, seq := range b.order {
		if _, ok := b.sends[seq]; ok {
			kept = append(kept, seq)
		}
	}
	b.order = kept
}

// forgetBefore forgets sends that arrived before cutoff.
func (b *mailbox) forgetBefore(cutoff time.Time) int {
	n := 0
	for len(b.order) > 0 {
		seq := b.order[0]
		s, ok := b.sends[seq]
		if ok && !s.at.Before(cutoff) {
			break
		}
		b.order = b.order[1:]
		if ok {
			delete(b.sends, seq)
			n++
		}
	}
	return n
}
