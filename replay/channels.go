package replay

import (
	"slices"

	"github.com/icptrack/icptrack/flow"
)

// channelOps are a channel's operations, in time order, while the plan is
// made.
type channelOps struct {
	ch      Channel
	ops     []*flow.Operation
	planned int
}

// Slack is how much a channel may be left holding when the capture ended
// before its reader took it: what fits in a default buffer, so that the
// stand-in that sent it does not block. Beyond it, the last sends are left
// out (NeverReceived).
const (
	streamSlack = 48 << 10 // a pipe holds 64 KiB
	dgramSlack  = 8        // net.unix.max_dgram_qlen is 10
)

// signalNumber is the number of a signal named as flow.SignalName names it.
func signalNumber(name string) int {
	for n := 1; n <= 64; n++ {
		if flow.SignalName(n) == name {
			return n
		}
	}
	return 0
}

func (pl *planner) signal(op *flow.Operation) {
	sig := signalNumber(op.Signal)
	switch op.Op {
	case flow.Send:
		target := op.Peer.PID
		switch {
		case op.PID == 0:
			pl.skip(op, KernelSignal, op.Signal)
		case op.Error != "":
			pl.skip(op, Failed, op.Error)
		case target == op.PID:
			pl.skip(op, SelfSignal, op.Signal)
		case target == 0 || !pl.traced[target]:
			pl.skip(op, Untraced, op.Signal)
		case sig == 9 || sig == 19 || sig == 0:
			pl.skip(op, Uncatchable, op.Signal)
		default:
			pl.steps = append(pl.steps, planned{op: op, act: Kill, sig: sig})
		}
	case flow.Receive:
		from := op.Peer.PID
		switch {
		case op.Peer == flow.Kernel:
			pl.skip(op, KernelSignal, op.Signal)
		case from == op.PID:
			pl.skip(op, SelfSignal, op.Signal)
		case from == 0 || !pl.traced[from]:
			pl.skip(op, Untraced, op.Signal)
		case sig == 9 || sig == 19 || sig == 0:
			pl.skip(op, Uncatchable, op.Signal)
		default:
			// Not a step: the stand-in's handler takes it when the
			// sender's stand-in sends it.
			d := pl.delivered[op.PID]
			if d == nil {
				d = map[int]int{}
				pl.delivered[op.PID] = d
			}
			d[sig]++
		}
	default:
		pl.skip(op, Unsupported, op.Op.String())
	}
}

// ends are the processes that sent on the channel and those that
// received, in the order they first did, leaving out failed calls.
func (c *channelOps) ends() (senders, receivers []uint32) {
	for _, op := range c.ops {
		if op.Error != "" {
			continue
		}
		switch op.Op {
		case flow.Send:
			senders = appendNew(senders, op.PID)
		case flow.Receive:
			receivers = appendNew(receivers, op.PID)
		}
	}
	return senders, receivers
}

// oneWay plans a pipe, FIFO or unix datagram socket: writers send, readers
// receive.
func (pl *planner) oneWay(c *channelOps) {
	writers, readers := c.ends()
	stream := c.ch.Mech.Stream()
	for _, op := range c.ops {
		switch {
		case op.Error != "":
			pl.skip(op, Failed, op.Error)
		case op.Op == flow.Send && len(readers) == 0:
			pl.skip(op, Untraced, "")
		case op.Op == flow.Send:
			pl.add(op, Send, c, Write)
		case op.Op == flow.Receive && len(writers) == 0:
			pl.skip(op, Untraced, "")
		case op.Op == flow.Receive && stream && op.Bytes == 0:
			pl.add(op, EndOfFile, c, Read)
		case op.Op == flow.Receive && !slices.Contains(writers, op.Peer.PID):
			pl.skip(op, UnknownSender, "")
		case op.Op == flow.Receive:
			pl.add(op, Receive, c, Read)
		default:
			pl.skip(op, Unsupported, op.Op.String()+" "+op.Syscall)
		}
	}
	pl.balance(c, Write, Read)
}

// connection plans a unix stream or seqpacket connection, or a TCP or UDP
// conversation: each process is at one end, told apart by who received
// from whom.
func (pl *planner) connection(c *channelOps) {
	ends, both := pl.ends(c)
	stream := c.ch.Mech.Stream()
	for _, op := range c.ops {
		mine, ok := ends[op.PID]
		switch {
		case op.Error != "":
			pl.skip(op, Failed, op.Error)
		case both:
			pl.skip(op, UnknownEnd, "one process at both ends")
		case !ok:
			pl.skip(op, UnknownEnd, "")
		case !hasEnd(ends, other(mine)):
			pl.skip(op, Untraced, "")
		case op.Op == flow.Send:
			pl.add(op, Send, c, mine)
		case op.Op != flow.Receive:
			pl.skip(op, Unsupported, op.Op.String()+" "+op.Syscall)
		case op.Bytes == 0 && op.Peer.PID == 0 && (stream || c.ch.Mech == flow.UnixSeqpacket):
			pl.add(op, EndOfFile, c, mine)
		case ends[op.Peer.PID] != other(mine):
			pl.skip(op, UnknownSender, "")
		default:
			pl.add(op, Receive, c, mine)
		}
	}
	pl.balance(c, EndA, EndB)
	pl.balance(c, EndB, EndA)
}

func other(r Role) Role {
	if r == EndA {
		return EndB
	}
	return EndA
}

func hasEnd(ends map[uint32]Role, r Role) bool {
	for _, e := range ends {
		if e == r {
			return true
		}
	}
	return false
}

// ends puts each process of a connection at end A or B: a process and
// the one it received from, or sent to, are at opposite ends. Two
// processes with nothing to tell them apart are at opposite ends too.
// both is set when a process received from itself, or when the
// processes cannot be split in two.
func (pl *planner) ends(c *channelOps) (ends map[uint32]Role, both bool) {
	pids := []uint32{}
	for _, op := range c.ops {
		pids = appendNew(pids, op.PID)
	}
	near := map[uint32][]uint32{}
	link := func(a, b uint32) {
		// A peer with no operations on the channel holds no end of it.
		if b == 0 || !slices.Contains(pids, b) {
			return
		}
		if a == b {
			both = true
			return
		}
		near[a] = appendNew(near[a], b)
		near[b] = appendNew(near[b], a)
	}
	for _, op := range c.ops {
		if op.Error != "" {
			continue
		}
		link(op.PID, op.Peer.PID)
		if op.Op == flow.Send {
			link(op.PID, pl.receiverOf[op.ID])
		}
	}
	ends = map[uint32]Role{}
	for _, p := range pids {
		if _, done := ends[p]; done || len(near[p]) == 0 {
			continue
		}
		ends[p] = EndA
		queue := []uint32{p}
		for len(queue) > 0 {
			q := queue[0]
			queue = queue[1:]
			for _, n := range near[q] {
				want := other(ends[q])
				if r, seen := ends[n]; seen {
					if r != want {
						both = true
					}
					continue
				}
				ends[n] = want
				queue = append(queue, n)
			}
		}
	}
	switch len(pids) {
	case 1:
		ends[pids[0]] = EndA // alone: the other end was not traced
	case 2:
		a, b := pids[0], pids[1]
		ra, oka := ends[a]
		rb, okb := ends[b]
		switch {
		case !oka && !okb:
			ends[a], ends[b] = EndA, EndB
		case !oka:
			ends[a] = other(rb)
		case !okb:
			ends[b] = other(ra)
		}
	}
	return ends, both
}

// queue plans a POSIX or SysV message queue: its lifecycle, and messages
// from senders to receivers.
func (pl *planner) queue(c *channelOps) {
	senders, receivers := c.ends()
	created := false
	for _, op := range c.ops {
		switch {
		case op.Error != "":
			pl.skip(op, Failed, op.Error)
		case op.Op == flow.Send && len(receivers) == 0:
			pl.skip(op, Untraced, "")
		case op.Op == flow.Send:
			pl.add(op, Send, c, Queue)
		case op.Op == flow.Receive && !slices.Contains(senders, op.Peer.PID):
			pl.skip(op, UnknownSender, "")
		case op.Op == flow.Receive:
			pl.add(op, Receive, c, Queue)
		case op.Op == flow.Create:
			created = true
			pl.add(op, Create, c, Queue)
		case op.Op == flow.Open:
			pl.add(op, Open, c, Queue)
		case op.Op == flow.Unlink:
			pl.add(op, Unlink, c, Queue)
		default:
			pl.skip(op, Unsupported, op.Op.String()+" "+op.Syscall)
		}
	}
	c.ch.Existed = !created
	pl.balance(c, Queue, Queue)
}

// balance makes what the stand-ins at from send on c fit what those at to
// receive, so that none of them waits for ever: receives of more than
// was sent lose their earliest (whose bytes came before the capture);
// sends of more than was received, beyond what the channel holds, lose
// their last. It also measures the channel's largest message and depth.
func (pl *planner) balance(c *channelOps, from, to Role) {
	var sends, recvs []int // indexes into pl.steps
	for i := len(pl.steps) - c.planned; i < len(pl.steps); i++ {
		s := pl.steps[i]
		switch {
		case s.ch != c:
		case s.act == Send && s.role == from:
			sends = append(sends, i)
		case s.act == Receive && s.role == to:
			recvs = append(recvs, i)
		}
	}
	stream := c.ch.Mech.Stream()
	amount := func(i int) int64 {
		if stream {
			return pl.steps[i].op.Bytes
		}
		return pl.steps[i].op.Ops()
	}
	var sent, received int64
	for _, i := range sends {
		sent += amount(i)
	}
	for _, i := range recvs {
		received += amount(i)
	}
	var drop []int
	for k := 0; received > sent && k < len(recvs); k++ {
		received -= amount(recvs[k])
		drop = append(drop, recvs[k])
		pl.skip(pl.steps[recvs[k]].op, UnknownSender, "")
	}
	slack := int64(streamSlack)
	switch c.ch.Mech {
	case flow.UnixDgram, flow.UnixSeqpacket:
		slack = dgramSlack
	case flow.UDP:
		slack = 1 << 30 // UDP drops rather than blocks
	case flow.POSIXMQ, flow.SysVMQ:
		slack = 1 << 30 // the queue is made as deep as it needs
	}
	for k := len(sends) - 1; sent-received > slack && k >= 0; k-- {
		sent -= amount(sends[k])
		drop = append(drop, sends[k])
		pl.skip(pl.steps[sends[k]].op, NeverReceived, "")
	}
	if len(drop) > 0 {
		slices.Sort(drop)
		for k := len(drop) - 1; k >= 0; k-- {
			pl.steps = slices.Delete(pl.steps, drop[k], drop[k]+1)
		}
		c.planned -= len(drop)
	}
	pl.measure(c)
}

// measure sets c's largest message and the most messages it held, over
// the steps planned on it in time order.
func (pl *planner) measure(c *channelOps) {
	depth := 0
	c.ch.Depth, c.ch.MaxMessage = 0, 0
	for i := len(pl.steps) - c.planned; i < len(pl.steps); i++ {
		s := pl.steps[i]
		if s.ch != c || (s.act != Send && s.act != Receive) {
			continue
		}
		size := s.op.Bytes / s.op.Ops()
		if s.op.Bytes%s.op.Ops() != 0 {
			size++
		}
		c.ch.MaxMessage = max(c.ch.MaxMessage, size)
		if s.act == Send {
			depth += int(s.op.Ops())
		} else {
			depth -= int(s.op.Ops())
		}
		c.ch.Depth = max(c.ch.Depth, depth)
	}
}

func appendNew(s []uint32, v uint32) []uint32 {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}
