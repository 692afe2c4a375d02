package flow

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// OpType is what an operation did to its channel.
type OpType uint8

// Operation types, named as in the event log's op field.
const (
	Send OpType = iota + 1
	Receive
	Attach
	Detach
	Open
	Create
	Close
	Unlink
	Wait
	Wake
	opTypeEnd
)

// Delivery is not an operation: it is the kernel saying which socket a UDP
// datagram was queued on, when it could not say so in the send itself.
// The correlator uses it and emits nothing for it.
const Delivery OpType = 100

// Exited is not an operation either: the process (Event.PID) is gone,
// and with it its shared-memory attachments.
const Exited OpType = 101

var opTypeNames = [...]string{
	Send: "send", Receive: "receive", Attach: "attach", Detach: "detach", Open: "open",
	Create: "create", Close: "close", Unlink: "unlink", Wait: "wait", Wake: "wake",
}

func (o OpType) String() string {
	if o > 0 && o < opTypeEnd {
		return opTypeNames[o]
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Event is one completed operation as the kernel reported it, before
// correlation. The identity fields mean what the mechanism makes them mean;
// see the field comments.
type Event struct {
	Start, End time.Time
	// Count is how many operations the kernel coalesced into this record
	// (a run of same-direction operations by one thread on one channel,
	// --coalesce): Start is the first one's, End the last one's, Result
	// their total and Offset the first one's. 0 and 1 both mean one.
	Count uint32
	// Busy is the time the coalesced operations spent in their calls,
	// summed; 0 when Count is at most 1 (End-Start is then that time).
	Busy time.Duration
	// StartUnknown is set when no entry hook saw the call begin: Start is
	// then when it began to wait (Blocked) or equals End.
	StartUnknown bool
	Blocked      bool

	PID, TID, PPID uint32
	Comm           string

	Mechanism Mechanism
	Op        OpType
	Syscall   string
	FD        int32  // -1 when unknown
	Result    int64  // bytes moved, or -errno
	Error     string // errno name when Result < 0

	// Ino is this end's inode: the pipe's, or the socket's (0 for a
	// socket not yet accepted).
	Ino uint64
	// Sock identifies this end's socket while it lives; PeerSock the other
	// end's, or for a datagram send with HasReceiver set, the socket the
	// datagram was queued on. Opaque, never zero for a socket.
	Sock, PeerSock uint64
	// Dev is the pipe's or FIFO's device, or the network namespace of a
	// TCP or UDP socket.
	Dev uint32
	// Offset is the stream offset of the first byte moved (pipes, FIFOs,
	// unix stream, TCP: 32-bit sequence), or the datagram's sequence number
	// on its receiving socket (Seq set).
	Offset      uint64
	Seq         bool
	Peek        bool // the bytes were not consumed (MSG_PEEK, tee)
	HasReceiver bool
	// Unsure marks an unconnected UDP send whose destination the kernel
	// did not see: loopback only if a Delivery claims it.
	Unsure bool

	// Local and Remote are the TCP or UDP addresses of this end and the
	// other (Remote may be unset for an unconnected UDP socket).
	Local, Remote netip.AddrPort
	// Path is the unix socket path of either end, or the FIFO's path.
	Path string

	Payload []byte
	// PayloadCaptured: capture was on and this is a send or receive that
	// moved data, so Payload holds its first bytes (none if they could not
	// be read). Operations that moved no data have no payload at all.
	PayloadCaptured  bool
	PayloadTruncated bool

	// Queues, shared memory, futexes and signals.
	IPC IPC

	// The process, from the process table.
	Process Process
}

// IPC is what a queue, shared-memory, futex or signal operation adds.
type IPC struct {
	// Type is a message's priority (POSIX) or mtype (SysV); for a receive
	// with TypeGuessed, the highest priority queued when it started (-1:
	// the queue was empty).
	Type        int64
	TypeGuessed bool
	// Depth is the messages left in a POSIX queue after the call.
	Depth int64
	// ID and Namespace name a SysV object (msqid, shmid) in its IPC
	// namespace; Key is the key it was got with.
	ID        int64
	Namespace uint32
	Key       int64
	// Address and Size of a shared-memory attachment; the futex address.
	Address uint64
	Size    uint64
	// FutexOp is the futex command of a wait or wake.
	FutexOp int
	// Signal: its number, si_code, and the other end (Target for a send,
	// Sender for a receive; 0 for the kernel). SignalResult is
	// signal_generate's (0 delivered, 1 ignored, 2 already pending);
	// Handler says how a receive was handled (0 default action, 1
	// ignored, 2 a handler).
	Signal       int
	SignalCode   int
	Target       uint32
	TargetTID    uint32
	Sender       uint32
	SignalResult int
	Handler      int
}

// Process is what the process table knows of the process that made an
// operation.
type Process struct {
	Exe         string
	Cmdline     string
	CgroupID    uint64
	ContainerID string
}

// Bytes is the number of bytes the operation moved (0 on failure).
func (e *Event) Bytes() int64 {
	if e.Result < 0 {
		return 0
	}
	return e.Result
}

// OpID identifies an operation. It is also the span id of the operation's
// span, so it is never zero.
type OpID uint64

func (id OpID) String() string {
	var b [8]byte
	for i := range b {
		b[i] = byte(id >> (56 - 8*i))
	}
	return hex.EncodeToString(b[:])
}

// Peer is the process at the other end of an operation.
type Peer struct {
	PID  uint32
	Comm string
}

// Operation is a matched operation: one row of the event log.
type Operation struct {
	ID       OpID
	Time     time.Time
	Duration time.Duration
	// Count is how many operations this record stands for: more than one
	// when the kernel coalesced a run of them (Event.Count). Bytes is
	// then their total, Time the first one's start and Duration reaches
	// to the last one's end. 0 and 1 both mean one.
	Count uint32
	// Busy is the coalesced operations' summed time in their calls (0
	// when Count is at most 1: Duration is that time).
	Busy time.Duration
	// StartUnknown: no hook saw the call begin (signals; socket calls
	// without syscall hooks), so Duration was not measured. It is the
	// time the call waited when Blocked, else 0.
	StartUnknown bool

	PID, TID, PPID uint32
	Comm           string

	Mechanism Mechanism
	Op        OpType
	Syscall   string
	Channel   string
	Endpoint  string
	Bytes     int64
	// Local and Remote are a TCP or UDP operation's addresses, this end's
	// and the other's, when the kernel said.
	Local, Remote netip.AddrPort

	// Peer is the other end, when known: for a receive, the sender of its
	// bytes.
	Peer Peer
	// Links are the sends a receive delivered.
	Links []OpID

	Error   string // errno name when the call failed
	Blocked bool

	// Payload, PayloadCaptured and PayloadTruncated are as in Event:
	// captured only on sends and receives that moved data.
	Payload          []byte
	PayloadCaptured  bool
	PayloadTruncated bool

	// Signal names a signal operation's signal: SIGTERM.
	Signal string
	// QueueDepth is the messages waiting in a queue after the operation;
	// -1 when unknown or not a queue.
	QueueDepth int64
	// MessageType is a queued message's priority (POSIX) or mtype (SysV);
	// set on queue sends and receives (HasMessageType).
	MessageType    int64
	HasMessageType bool
	// Peers are the other processes attached to a shared-memory segment
	// when this one attached.
	Peers []uint32

	Exe         string
	Cmdline     string
	CgroupID    uint64
	ContainerID string
}

// Clone returns a copy of op that shares nothing with it.
func (op *Operation) Clone() *Operation {
	c := *op
	c.Links = slices.Clone(op.Links)
	c.Payload = slices.Clone(op.Payload)
	c.Peers = slices.Clone(op.Peers)
	return &c
}

// Ops is how many operations op stands for: Count, or 1.
func (op *Operation) Ops() int64 {
	if op.Count > 1 {
		return int64(op.Count)
	}
	return 1
}
