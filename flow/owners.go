package flow

import (
	"time"
)

// A socket end is owned by the process that last used it. Knowing who owns
// the far end names the peer of a send before any receive has happened,
// and the sender of a receive whose send icptrack did not see.

// endKey identifies a socket: unix sockets by their opaque id, TCP and UDP
// by address in their network namespace.
type endKey struct {
	unix bool
	ns   uint32
	sock uint64
	addr addr
}

type owner struct {
	Peer
	at time.Time
}

// ends returns the event's own socket and the one at the other end; ok is
// false for pipes and FIFOs, which have no ends to tell apart.
func ends(ev *Event) (self, far endKey, ok bool) {
	switch ev.Mechanism {
	case UnixStream, UnixDgram, UnixSeqpacket:
		return endKey{unix: true, sock: ev.Sock}, endKey{unix: true, sock: ev.PeerSock}, ev.Sock != 0
	case TCP, UDP:
		return endKey{ns: ev.Dev, addr: addrOf(ev.Local)}, endKey{ns: ev.Dev, addr: addrOf(ev.Remote)}, ev.Local.IsValid()
	}
	return endKey{}, endKey{}, false
}

// noteOwner records who used the event's socket and returns the owner of
// the far end, if known.
func (c *Correlator) noteOwner(ev *Event, now time.Time) (far Peer, known bool) {
	self, farKey, ok := ends(ev)
	if !ok {
		return Peer{}, false
	}
	// Refreshed only when it changed or has aged: most operations are
	// their socket's owner's again.
	me := Peer{PID: ev.PID, Comm: ev.Comm}
	if o, ok := c.owners[self]; !ok || o.Peer != me || now.Sub(o.at) > min(ownerRefresh, c.opts.Idle/4) {
		c.owners[self] = owner{Peer: me, at: now}
	}
	if farKey.sock == 0 && farKey.addr == (addr{}) {
		return Peer{}, false
	}
	o, known := c.owners[farKey]
	return o.Peer, known
}

// ownerRefresh is how stale an owner's time may get before it is
// renewed; far below Idle, after which owners are forgotten.
const ownerRefresh = 10 * time.Second

func (c *Correlator) sweepOwners(cutoff time.Time) {
	for k, o := range c.owners {
		if o.at.Before(cutoff) {
			delete(c.owners, k)
		}
	}
}
