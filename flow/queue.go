package flow

import (
	"slices"
	"strconv"
	"time"
)

// Message queues. A POSIX queue delivers its highest priority first, in
// order within a priority; a SysV queue delivers, of the messages its
// receive asks for, the oldest of whatever type it picks (msgtyp 0, > 0, <
// 0 and MSG_EXCEPT alike). Either way the receive took the oldest message
// of the type it got, so sends wait in order per type, and a receive that
// knows its type takes the first of that type. A POSIX receive that did
// not ask for the priority gets the one that was highest when it started
// (TypeGuessed): a message of that priority was waiting, so it takes the
// oldest send of it (a higher one sent in between would make this wrong);
// if the queue was empty, it takes whatever comes first.

type queueKey struct {
	mech Mechanism
	ns   uint32 // POSIX: the queue's device; SysV: the IPC namespace
	id   uint64 // POSIX: the queue's inode; SysV: the msqid
}

type queuedMessage struct {
	id   OpID
	from Peer
	seq  uint64 // order of arrival, across types
}

type queue struct {
	channel  string
	endpoint string
	key      int64 // SysV: the key it was got with, when seen
	pending  map[int64][]queuedMessage
	held     []*heldReceive
	depth    int64 // POSIX: as the kernel last said; SysV: messages sent minus taken, as far as seen
	sent     uint64
	reader   Peer
	active   time.Time
}

func queueKeyOf(ev *Event) queueKey {
	if ev.Mechanism == POSIXMQ {
		return queueKey{POSIXMQ, ev.Dev, ev.Ino}
	}
	return queueKey{SysVMQ, ev.IPC.Namespace, uint64(ev.IPC.ID)}
}

func (c *Correlator) queue(ev *Event, now time.Time) *queue {
	k := queueKeyOf(ev)
	if k.mech == POSIXMQ && ev.Path != "" {
		// mq_unlink names the queue, not its inode.
		if k.id == 0 {
			if known, ok := c.queueNames[ev.Path]; ok {
				k = known
			}
		} else {
			c.queueNames[ev.Path] = k
		}
	}
	q := c.queues[k]
	if q == nil {
		q = &queue{pending: make(map[int64][]queuedMessage)}
		if k.mech == POSIXMQ {
			q.channel = "posix_mq:" + devString(k.ns) + ":" + strconv.FormatUint(k.id, 10)
		} else {
			q.channel = "sysv_mq:" + strconv.FormatUint(uint64(k.ns), 10) + ":" + strconv.FormatUint(k.id, 10)
		}
		c.queues[k] = q
	}
	q.active = now
	switch {
	case k.mech == POSIXMQ && ev.Path != "":
		q.endpoint = ev.Path
	case k.mech == POSIXMQ && q.endpoint == "":
		q.endpoint = "mqueue:[" + strconv.FormatUint(k.id, 10) + "]"
	case k.mech == SysVMQ && (ev.Op == Open || ev.Op == Create):
		q.key = ev.IPC.Key
		q.endpoint = sysvEndpoint("msqid", ev.IPC.Key, ev.IPC.ID)
	case k.mech == SysVMQ && q.endpoint == "":
		q.endpoint = sysvEndpoint("msqid", 0, ev.IPC.ID)
	}
	return q
}

// sysvEndpoint names a SysV object as ipcs shows it: by key and id.
func sysvEndpoint(kind string, key, id int64) string {
	s := kind + " " + strconv.FormatInt(id, 10)
	if key != 0 {
		s = "key 0x" + strconv.FormatUint(uint64(uint32(key)), 16) + " " + s
	}
	return s
}

func (c *Correlator) addQueue(ev *Event, op *Operation, now time.Time) {
	q := c.queue(ev, now)
	op.Channel, op.Endpoint = q.channel, q.endpoint
	me := Peer{PID: ev.PID, Comm: ev.Comm}
	ok := ev.Result >= 0
	if ok && (ev.Op == Send || ev.Op == Receive) && !(ev.IPC.TypeGuessed && ev.IPC.Type < 0) {
		op.MessageType, op.HasMessageType = ev.IPC.Type, true
	}
	switch ev.Op {
	case Send:
		op.Peer = q.reader
		if ok {
			q.depth++
		}
		c.setDepth(q, ev, op)
		c.output(op, true)
		if ok {
			q.sent++
			q.pending[ev.IPC.Type] = append(q.pending[ev.IPC.Type], queuedMessage{id: op.ID, from: me, seq: q.sent})
			c.releaseQueue(q)
		}
		return
	case Receive:
		q.reader = me
		if ok && ev.Peek {
			c.setDepth(q, ev, op)
			c.output(op, true)
			return
		}
		if ok {
			q.depth = max(q.depth-1, 0)
		}
		c.setDepth(q, ev, op)
		if !ok || q.take(op, ev.IPC.Type, ev.IPC.TypeGuessed, &c.stats) {
			c.output(op, true)
			return
		}
		h := &heldReceive{queue: q, qtype: ev.IPC.Type, qguess: ev.IPC.TypeGuessed}
		h.qo = c.output(op, false)
		q.held = append(q.held, h)
		c.hold(h, now)
		return
	}
	c.setDepth(q, ev, op)
	c.output(op, true)
}

func (c *Correlator) setDepth(q *queue, ev *Event, op *Operation) {
	if ev.Mechanism == POSIXMQ {
		op.QueueDepth = ev.IPC.Depth
		if ev.IPC.Depth >= 0 {
			q.depth = ev.IPC.Depth
		}
	} else {
		op.QueueDepth = q.depth
	}
}

// take links a receive to the send it took, if that send has been seen.
func (q *queue) take(op *Operation, typ int64, guessed bool, stats *Stats) bool {
	t, found := typ, false
	if _, ok := q.pending[typ]; ok {
		found = true
	} else if guessed && typ < 0 {
		// The queue was empty at entry: the receive took the first
		// message to come, the oldest waiting now.
		var oldest uint64
		for k, msgs := range q.pending {
			if !found || msgs[0].seq < oldest {
				t, oldest, found = k, msgs[0].seq, true
			}
		}
	}
	if !found {
		return false
	}
	msgs := q.pending[t]
	m := msgs[0]
	if len(msgs) == 1 {
		delete(q.pending, t)
	} else {
		q.pending[t] = msgs[1:]
	}
	op.Links = append(op.Links, m.id)
	op.Peer = m.from
	stats.Linked++
	return true
}

// releaseQueue delivers held receives that the sends seen so far explain.
func (c *Correlator) releaseQueue(q *queue) {
	for i := 0; i < len(q.held); {
		h := q.held[i]
		if !q.take(h.qo.op, h.qtype, h.qguess, &c.stats) {
			i++
			continue
		}
		h.done = true
		q.held = slices.Delete(q.held, i, i+1)
		c.ready(h.qo)
	}
}

func (q *queue) unhold(h *heldReceive) {
	if i := slices.Index(q.held, h); i >= 0 {
		q.held = slices.Delete(q.held, i, i+1)
	}
}
