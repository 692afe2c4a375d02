package flow

import (
	"net/netip"
	"time"
)

// UDP sends normally learn their receiving socket and sequence number in
// the kernel, while the sender queues the datagram. When the kernel defers
// that to softirq in another task (ksoftirqd, under load), the send comes
// without them and a Delivery event says, separately, which socket got a
// datagram from which address. Here the two are paired, in order, by the
// sender's port: whichever arrives first waits for the other for the hold.
//
// An unconnected send that no delivery claims was not shown to be
// loopback; it is dropped from the output and counted.

type udpKey struct {
	ns   uint32
	port uint16
}

type udpSend struct {
	key   udpKey
	op    *Operation
	qo    *queuedOp // set while an unsure send waits to be reported
	from  Peer
	local netip.AddrPort
	done  bool
}

type udpDelivery struct {
	key  udpKey
	ev   Event
	done bool
}

type udpWait struct {
	deadline time.Time
	send     *udpSend
	delivery *udpDelivery
}

type udpPairing struct {
	sends      map[udpKey][]*udpSend
	deliveries map[udpKey][]*udpDelivery
	waits      []udpWait // deadline order
}

func newUDPPairing() udpPairing {
	return udpPairing{sends: make(map[udpKey][]*udpSend), deliveries: make(map[udpKey][]*udpDelivery)}
}

// udpWithoutReceiver takes a UDP send that did not learn its receiver.
func (c *Correlator) udpWithoutReceiver(ev *Event, op *Operation, now time.Time) {
	key := udpKey{ev.Dev, ev.Local.Port()}
	s := &udpSend{key: key, op: op, from: Peer{PID: ev.PID, Comm: ev.Comm}, local: ev.Local}
	if d := popUDP(c.udp.deliveries, key, func(d *udpDelivery) bool { return d.done }); d != nil {
		d.done = true
		if ev.Unsure {
			c.claim(s, &d.ev, now, true)
			c.output(op, true)
			return
		}
		c.output(op, true)
		c.claim(s, &d.ev, now, false)
		return
	}
	if ev.Unsure {
		s.qo = c.output(op, false)
	} else {
		c.output(op, true)
	}
	c.udp.sends[key] = append(c.udp.sends[key], s)
	c.udp.waits = append(c.udp.waits, udpWait{deadline: now.Add(c.opts.Hold), send: s})
}

// addDelivery takes the kernel's word that a datagram from ev.Remote was
// queued on socket ev.PeerSock with sequence ev.Offset.
func (c *Correlator) addDelivery(ev *Event, now time.Time) {
	c.stats.DeferredUDP++
	key := udpKey{ev.Dev, ev.Remote.Port()}
	if s := popUDP(c.udp.sends, key, func(s *udpSend) bool { return s.done }); s != nil {
		s.done = true
		c.claim(s, ev, now, s.qo != nil)
		if s.qo != nil {
			c.ready(s.qo)
		}
		return
	}
	d := &udpDelivery{key: key, ev: *ev}
	c.udp.deliveries[key] = append(c.udp.deliveries[key], d)
	c.udp.waits = append(c.udp.waits, udpWait{deadline: now.Add(c.opts.Hold), delivery: d})
}

// claim gives a send the receiver a delivery named. A send not reported
// yet (unconnected, so its channel was unknown) gets its channel from it.
func (c *Correlator) claim(s *udpSend, d *Event, now time.Time, unreported bool) {
	op := s.op
	if unreported {
		op.Channel = inetChannel(UDP, d.Dev, s.local, d.Local)
		op.Endpoint = inetEndpoint(s.local, d.Local)
	}
	box := c.box(boxKey{UDP, d.PeerSock}, now)
	c.sent(box, d.Offset, datagramSend{id: op.ID, from: s.from, channel: op.Channel, local: s.local, at: now})
}

// expireUDP forgets sends and deliveries that found no partner in time; a
// waiting unsure send is dropped as not shown to be loopback.
func (c *Correlator) expireUDP(now time.Time, all bool) {
	i := 0
	for ; i < len(c.udp.waits); i++ {
		w := c.udp.waits[i]
		if !all && w.deadline.After(now) {
			break
		}
		if s := w.send; s != nil && !s.done {
			s.done = true
			popUDP(c.udp.sends, s.key, func(x *udpSend) bool { return x.done })
			if s.qo != nil {
				c.stats.UnattributedUDP++
				c.drop(s.qo)
			}
		}
		if d := w.delivery; d != nil && !d.done {
			d.done = true
			popUDP(c.udp.deliveries, d.key, func(x *udpDelivery) bool { return x.done })
		}
	}
	clear(c.udp.waits[:i])
	c.udp.waits = c.udp.waits[i:]
}

// popUDP drops finished entries from the front of m[key] and takes the
// first unfinished one, or returns nil.
func popUDP[T any](m map[udpKey][]*T, key udpKey, done func(*T) bool) *T {
	q := m[key]
	for len(q) > 0 && done(q[0]) {
		q = q[1:]
	}
	if len(q) == 0 {
		delete(m, key)
		return nil
	}
	first := q[0]
	if len(q) == 1 {
		delete(m, key)
	} else {
		m[key] = q[1:]
	}
	return first
}
