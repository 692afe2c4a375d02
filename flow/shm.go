package flow

import (
	"slices"
	"strconv"
	"time"
)

// Shared memory moves bytes without a syscall, so what icptrack can show is
// who shares a segment (create, attach, detach, unlink) and how they
// synchronise through it: futex waits and wakes on addresses inside it.
// Each process maps a segment at its own address; a futex is named by the
// segment and its offset in it, which every process computes alike.

type segmentKey struct {
	mech Mechanism
	ns   uint32 // SysV: IPC namespace; POSIX shm, memfd: device
	id   uint64 // SysV: shmid; POSIX shm, memfd: inode
}

type segment struct {
	mech     Mechanism
	channel  string
	endpoint string
	size     uint64
	attached map[uint32]Peer // processes attached now
	active   time.Time
}

// mapping is one process's attachment of a segment.
type mapping struct {
	base, size uint64
	seg        *segment
}

type futexKey struct {
	seg    *segment
	offset uint64
}

type futexWake struct {
	id   OpID
	from Peer
	at   time.Time // when the wake's call started
}

func segmentKeyOf(ev *Event) segmentKey {
	if ev.Mechanism == SysVShm {
		return segmentKey{SysVShm, ev.IPC.Namespace, uint64(ev.IPC.ID)}
	}
	return segmentKey{ev.Mechanism, ev.Dev, ev.Ino}
}

func (c *Correlator) segment(k segmentKey, ev *Event, now time.Time) *segment {
	s := c.segments[k]
	if s == nil {
		s = &segment{mech: k.mech, attached: make(map[uint32]Peer)}
		switch k.mech {
		case SysVShm:
			s.channel = "sysv_shm:" + strconv.FormatUint(uint64(k.ns), 10) + ":" + strconv.FormatUint(k.id, 10)
		default:
			s.channel = k.mech.String() + ":" + devString(k.ns) + ":" + strconv.FormatUint(k.id, 10)
		}
		c.segments[k] = s
	}
	s.active = now
	switch {
	case k.mech == SysVShm && (ev.Op == Create || ev.Op == Open):
		s.endpoint = sysvEndpoint("shmid", ev.IPC.Key, ev.IPC.ID)
		if ev.IPC.Size > 0 {
			s.size = ev.IPC.Size
		}
	case k.mech == SysVShm && s.endpoint == "":
		s.endpoint = sysvEndpoint("shmid", 0, ev.IPC.ID)
	case ev.Path != "":
		s.endpoint = ev.Path
		if k.mech == Memfd {
			s.endpoint = "memfd:" + ev.Path
		}
	case s.endpoint == "":
		s.endpoint = k.mech.String() + ":[" + strconv.FormatUint(k.id, 10) + "]"
	}
	return s
}

func (c *Correlator) addShm(ev *Event, op *Operation, now time.Time) {
	if ev.Op == Wait || ev.Op == Wake {
		c.addFutex(ev, op, now)
		return
	}
	// A shared mapping of a tmpfs file outside /dev/shm is not what
	// shm_open makes; icptrack leaves it out.
	if ev.Mechanism == POSIXShm && ev.Path != "" && ev.Path[0] != '/' {
		c.stats.NotShared++
		return
	}
	k := segmentKeyOf(ev)
	if k.mech != SysVShm && ev.Path != "" {
		if k.id == 0 {
			// unlink names the file, not the inode.
			if known, ok := c.shmNames[ev.Path]; ok {
				k = known
			}
		} else {
			c.shmNames[ev.Path] = k
		}
	}
	s := c.segment(k, ev, now)
	op.Channel, op.Endpoint = s.channel, s.endpoint
	if ev.Op == Unlink && k.id == 0 && k.mech != SysVShm {
		// A file's unlink (shmid 0 is a segment like any other).
		op.Channel = k.mech.String() + ":" + ev.Path
	}
	me := Peer{PID: ev.PID, Comm: ev.Comm}
	switch ev.Op {
	case Attach:
		if ev.Result < 0 {
			break
		}
		size := ev.IPC.Size
		if size == 0 {
			size = s.size // shmat: the size shmget was given
		}
		op.Bytes = int64(size)
		for pid, p := range s.attached {
			if pid != me.PID {
				op.Peers = append(op.Peers, p.PID)
			}
		}
		slices.Sort(op.Peers)
		if len(op.Peers) == 1 {
			op.Peer = s.attached[op.Peers[0]]
		}
		s.attached[me.PID] = me
		c.mappings[me.PID] = append(c.mappings[me.PID], mapping{base: ev.IPC.Address, size: size, seg: s})
	case Detach:
		if ev.Result < 0 {
			break
		}
		ms := c.mappings[me.PID]
		for i, m := range ms {
			if m.base == ev.IPC.Address {
				op.Bytes = int64(m.size)
				ms = slices.Delete(ms, i, i+1)
				break
			}
		}
		c.mappings[me.PID] = ms
		if !slices.ContainsFunc(ms, func(m mapping) bool { return m.seg == s }) {
			delete(s.attached, me.PID)
		}
	case Create, Open:
		op.Bytes = int64(ev.IPC.Size)
	}
	c.output(op, true)
}

// addFutex reports a futex wait or wake if its address lies in a segment
// the process has attached, and links a wait that was woken to the wake.
func (c *Correlator) addFutex(ev *Event, op *Operation, now time.Time) {
	var k futexKey
	for _, m := range c.mappings[ev.PID] {
		if ev.IPC.Address >= m.base && ev.IPC.Address < m.base+max(m.size, 1) {
			k = futexKey{m.seg, ev.IPC.Address - m.base}
			break
		}
	}
	if k.seg == nil {
		c.stats.NotShared++ // a process-shared futex outside any segment seen
		return
	}
	op.Mechanism = k.seg.mech
	op.Channel = k.seg.channel
	op.Endpoint = k.seg.endpoint + "+0x" + strconv.FormatUint(k.offset, 16)
	op.Bytes = 0
	if ev.Op == Wake {
		if ev.Result > 0 {
			c.wakes[k] = futexWake{id: op.ID, from: Peer{PID: ev.PID, Comm: ev.Comm}, at: ev.Start}
		}
		c.output(op, true)
		c.releaseFutex(k)
		return
	}
	// A wait that returned 0 was woken; the wake happened while it waited.
	if ev.Result != 0 || c.linkWake(op, k, ev.Start) {
		c.output(op, true)
		return
	}
	h := &heldReceive{futex: k, since: ev.Start}
	h.qo = c.output(op, false)
	c.futexHeld[k] = append(c.futexHeld[k], h)
	c.hold(h, now)
}

func (c *Correlator) linkWake(op *Operation, k futexKey, since time.Time) bool {
	w, ok := c.wakes[k]
	if !ok || w.at.Before(since) || w.from.PID == op.PID {
		return false
	}
	op.Links = append(op.Links, w.id)
	op.Peer = w.from
	c.stats.Linked++
	return true
}

func (c *Correlator) releaseFutex(k futexKey) {
	held := c.futexHeld[k]
	kept := held[:0]
	for _, h := range held {
		if c.linkWake(h.qo.op, k, h.since) {
			h.done = true
			c.ready(h.qo)
			continue
		}
		kept = append(kept, h)
	}
	if len(kept) == 0 {
		delete(c.futexHeld, k)
	} else {
		c.futexHeld[k] = kept
	}
}

// exited forgets a process's attachments: its mappings went with it.
func (c *Correlator) exited(pid uint32) {
	for _, m := range c.mappings[pid] {
		delete(m.seg.attached, pid)
	}
	delete(c.mappings, pid)
}
