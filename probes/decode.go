package probes

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/icptrack/icptrack/flow"
)

// Field offsets of the kernel's records, taken from the Go mirror that
// bpf2go generated from the C structs, so the decoder cannot drift from
// bpf/common.h.
var (
	opRecordSize   = int(unsafe.Sizeof(ipcOpRecord{}))
	nameRecordSize = int(unsafe.Sizeof(ipcNameRecord{}))
)

var errShortRecord = errors.New("record shorter than its kind")

// clock converts the kernel's CLOCK_MONOTONIC nanoseconds to wall time.
type clock struct {
	offset int64 // realtime - monotonic, in ns
}

func (c clock) wall(mono uint64) time.Time {
	return time.Unix(0, int64(mono)+c.offset)
}

// decoder turns ring-buffer records into events.
type decoder struct {
	clock   clock
	names   *names
	procs   *processTable
	payload bool // payload capture is on
	seed    uint64
	comms   map[[16]byte]string
	// recent caches the process table by pid: consecutive records come
	// from a few processes. Any process record clears it.
	recent [64]struct {
		pid    uint32
		cgroup uint64
		proc   flow.Process
	}
}

func newDecoder(c clock, n *names, procs *processTable, payload bool) *decoder {
	return &decoder{clock: c, names: n, procs: procs, payload: payload, seed: rand.Uint64(), comms: make(map[[16]byte]string)}
}

func (d *decoder) process(pid uint32, cgroup uint64) flow.Process {
	if d.procs == nil {
		return flow.Process{}
	}
	e := &d.recent[pid%uint32(len(d.recent))]
	if e.pid != pid || e.cgroup != cgroup {
		e.pid, e.cgroup, e.proc = pid, cgroup, d.procs.process(pid, cgroup)
	}
	return e.proc
}

// decode fills ev from an op record and returns true, or takes in a name
// record and returns false.
func (d *decoder) decode(raw []byte, ev *flow.Event) (bool, error) {
	if len(raw) < 1 {
		return false, errShortRecord
	}
	switch ipcRecordKind(raw[0]) {
	case ipcRecordKindRECORD_OP:
		return true, d.decodeOp(raw, ev)
	case ipcRecordKindRECORD_NAME:
		return false, d.decodeName(raw)
	case ipcRecordKindRECORD_DELIVERY:
		return true, d.decodeDelivery(raw, ev)
	case ipcRecordKindRECORD_PROC:
		return d.decodeProc(raw, ev)
	}
	return false, fmt.Errorf("unknown record kind %d", raw[0])
}

func (d *decoder) decodeOp(raw []byte, ev *flow.Event) error {
	if len(raw) < opRecordSize {
		return errShortRecord
	}
	var r ipcOpRecord
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&r)), opRecordSize), raw)
	mech, ok := mechanismOf(ipcMechanism(r.Mechanism))
	if !ok {
		return fmt.Errorf("unknown mechanism %d", r.Mechanism)
	}
	op, ok := opTypeOf(ipcOpType(r.Op))
	if !ok {
		return fmt.Errorf("unknown operation %d", r.Op)
	}
	payload := raw[opRecordSize:]
	if int(r.PayloadLen) > len(payload) {
		return fmt.Errorf("payload of %d bytes in a record with %d", r.PayloadLen, len(payload))
	}
	flags := ipcOpFlag(r.Flags)
	// CLOCK_MONOTONIC counts from boot: anything near int64's end is a
	// corrupt record, and would overflow on the way to wall time.
	if r.EndNs > 1<<62 {
		return fmt.Errorf("timestamp %d out of range", r.EndNs)
	}

	// A coalesced run's busy time is part of its span: more is corrupt.
	if r.Count > 1 && (r.BusyNs > r.EndNs-min(r.StartNs, r.EndNs) || r.Ret < 0) {
		return fmt.Errorf("coalesced record of %d operations busy %d ns in %d", r.Count, r.BusyNs, r.EndNs-min(r.StartNs, r.EndNs))
	}

	*ev = flow.Event{
		End:              d.clock.wall(r.EndNs),
		Start:            d.clock.wall(r.StartNs),
		StartUnknown:     flags&ipcOpFlagOPF_NO_START != 0,
		Blocked:          flags&ipcOpFlagOPF_BLOCKED != 0,
		PID:              r.Pid,
		TID:              r.Tid,
		PPID:             r.Ppid,
		Comm:             d.comm(r.Comm),
		Mechanism:        mech,
		Op:               op,
		Syscall:          syscallName(r.Syscall),
		FD:               r.Fd,
		Result:           r.Ret,
		Ino:              r.Ino,
		Count:            countOf(r.Count),
		Busy:             busyOf(r.Count, r.BusyNs),
		Sock:             d.sockID(r.Sk),
		PeerSock:         d.sockID(r.PeerSk),
		Dev:              r.Dev,
		Offset:           r.Off,
		Seq:              flags&ipcOpFlagOPF_SEQ != 0,
		Peek:             flags&ipcOpFlagOPF_PEEK != 0,
		HasReceiver:      flags&ipcOpFlagOPF_PEER != 0,
		Unsure:           flags&ipcOpFlagOPF_UNSURE != 0,
		PayloadTruncated: flags&ipcOpFlagOPF_TRUNCATED != 0,
		Process:          d.process(r.Pid, r.Cgroup),
	}
	if r.StartNs > r.EndNs {
		ev.Start = ev.End
	}
	if r.Ret < 0 {
		ev.Error = errnoName(-r.Ret)
	}
	if flags&ipcOpFlagOPF_PATH != 0 {
		// Not data: the path or name the call was given.
		ev.Path = string(payload[:r.PayloadLen])
	} else if r.PayloadLen > 0 {
		ev.Payload = bytes.Clone(payload[:r.PayloadLen])
	}
	switch mech {
	case flow.TCP, flow.UDP:
		ev.Local = addrPort(r.Family, r.Saddr, r.Sport)
		ev.Remote = addrPort(r.Family, r.Daddr, r.Dport)
	case flow.FIFO:
		ev.Path = d.names.fifo(r.Dev, r.Ino)
	case flow.UnixStream, flow.UnixDgram, flow.UnixSeqpacket:
		ev.Path = d.names.unix(ev.Sock)
		if ev.Path == "" {
			ev.Path = d.names.unix(ev.PeerSock)
		}
	default:
		d.decodeIPC(&r, ev)
	}
	ev.PayloadCaptured = d.payload && (len(ev.Payload) > 0 || movedData(ev))
	return nil
}

// movedData reports whether ev is a send or receive that moved bytes of a
// mechanism that carries them: what payload capture applies to. Signals,
// shared memory, opens, waits, an end of file and a failed call have no
// payload to show, not an empty one.
func movedData(ev *flow.Event) bool {
	switch ev.Mechanism {
	case flow.Signal, flow.SysVShm, flow.POSIXShm, flow.Memfd:
		return false
	}
	return (ev.Op == flow.Send || ev.Op == flow.Receive) && ev.Bytes() > 0
}

// decodeIPC reads what queues, shared memory, futexes and signals record
// in place of addresses.
func (d *decoder) decodeIPC(r *ipcOpRecord, ev *flow.Event) {
	var x ipcIpcExtra
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&x)), unsafe.Sizeof(x)), unsafe.Slice(&r.Saddr[0], 32))
	switch ev.Mechanism {
	case flow.POSIXMQ:
		ev.IPC.Type, ev.IPC.TypeGuessed = x.A, x.Approx != 0
		ev.IPC.Depth = int64(x.B)
		d.objectName(ev)
	case flow.SysVMQ:
		ev.IPC.ID, ev.IPC.Namespace = x.Id, x.Ns
		if ev.Op == flow.Open || ev.Op == flow.Create {
			ev.IPC.Key = x.A
		} else {
			ev.IPC.Type = x.A
		}
		ev.IPC.Depth = -1
	case flow.SysVShm, flow.POSIXShm, flow.Memfd:
		ev.IPC.ID, ev.IPC.Namespace = x.Id, x.Ns
		if ev.Mechanism != flow.SysVShm {
			d.objectName(ev)
		}
		switch ev.Op {
		case flow.Create, flow.Open:
			ev.IPC.Key, ev.IPC.Size = x.A, x.B
		case flow.Wait, flow.Wake:
			ev.IPC.Address, ev.IPC.FutexOp = uint64(x.A), int(x.B)
		default:
			ev.IPC.Address, ev.IPC.Size = uint64(x.A), x.B
		}
	case flow.Signal:
		ev.IPC.Signal, ev.IPC.SignalCode = int(x.A), int(x.Id)
		if ev.Op == flow.Send {
			ev.IPC.Target, ev.IPC.TargetTID = uint32(x.B>>32), uint32(x.B)
			ev.IPC.SignalResult = int(x.Ns)
			ev.Result = 0 // the generate result is in SignalResult
			if ev.PID == 0 {
				ev.Comm = "kernel"
			}
		} else {
			ev.IPC.Sender = uint32(x.B)
			ev.IPC.Handler = int(ev.Result)
			ev.Result = 0
		}
	}
}

// objectName remembers the name an open or create gave a queue or shared
// file, and names its later operations with it; for an object opened
// before icptrack started, the descriptor's link in /proc tells.
func (d *decoder) objectName(ev *flow.Event) {
	if ev.Path != "" {
		ev.Path = objectPath(ev.Mechanism, ev.Path, false)
		d.names.remember(ev.Dev, ev.Ino, ev.Path)
		return
	}
	if ev.Path = d.names.fifo(ev.Dev, ev.Ino); ev.Path != "" || ev.FD < 0 {
		return
	}
	if link, err := os.Readlink("/proc/" + itoa(ev.PID) + "/fd/" + strconv.Itoa(int(ev.FD))); err == nil {
		ev.Path = objectPath(ev.Mechanism, link, true)
		d.names.remember(ev.Dev, ev.Ino, ev.Path)
	}
}

// objectPath is how a queue or shared file is named: a POSIX queue or
// shm object by its name (/orders), a memfd by the name it was created
// with. A tmpfs file outside /dev/shm keeps its full path without the
// leading slash, which tells the correlator it is not POSIX shm. fromLink
// says the path is a /proc/PID/fd link rather than a name a call gave.
func objectPath(m flow.Mechanism, p string, fromLink bool) string {
	switch m {
	case flow.POSIXMQ:
		// The syscalls name a queue without the slash that mq_open(3)
		// users write.
		if !strings.HasPrefix(p, "/") {
			p = "/" + p
		}
	case flow.POSIXShm:
		if rest, ok := strings.CutPrefix(p, "/dev/shm/"); ok {
			return "/" + rest
		}
		if fromLink {
			return "file:" + p
		}
	case flow.Memfd:
		p = strings.TrimSuffix(strings.TrimPrefix(p, "/memfd:"), " (deleted)")
	}
	return p
}

// decodeProc updates the process table; a process's exit goes on to the
// correlator too, as an Exited event.
func (d *decoder) decodeProc(raw []byte, ev *flow.Event) (bool, error) {
	var r ipcProcRecord
	if len(raw) < int(unsafe.Sizeof(r)) {
		return false, errShortRecord
	}
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&r)), unsafe.Sizeof(r)), raw)
	if d.procs != nil {
		d.procs.apply(&r)
		clear(d.recent[:])
	}
	if ipcProcChange(r.Event) != ipcProcChangePROC_EXIT {
		return false, nil
	}
	*ev = flow.Event{Op: flow.Exited, PID: r.Pid, End: d.clock.wall(r.TimeNs)}
	return true, nil
}

var deliveryRecordSize = int(unsafe.Sizeof(ipcDeliveryRecord{}))

func (d *decoder) decodeDelivery(raw []byte, ev *flow.Event) error {
	if len(raw) < deliveryRecordSize {
		return errShortRecord
	}
	var r ipcDeliveryRecord
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&r)), deliveryRecordSize), raw)
	*ev = flow.Event{
		Mechanism: flow.UDP,
		Op:        flow.Delivery,
		Dev:       r.Netns,
		PeerSock:  d.sockID(r.Sk),
		Offset:    r.Seq,
		Seq:       true,
		Remote:    addrPort(r.Family, r.Saddr, r.Sport),
		Local:     addrPort(r.Family, r.Daddr, r.Dport),
	}
	if !ev.Remote.IsValid() {
		return fmt.Errorf("delivery record without a sender address")
	}
	return nil
}

func (d *decoder) decodeName(raw []byte) error {
	if len(raw) < nameRecordSize {
		return errShortRecord
	}
	r := new(ipcNameRecord)
	copy(unsafe.Slice((*byte)(unsafe.Pointer(r)), nameRecordSize), raw)
	name := unsafe.Slice((*byte)(unsafe.Pointer(&r.Name[0])), len(r.Name))
	switch ipcMechanism(r.Mechanism) {
	case ipcMechanismMECH_FIFO:
		d.names.addFIFO(r.Dev, r.Id, fifoParts(name, int(r.Len)))
	case ipcMechanismMECH_UNIX_STREAM:
		if int(r.Len) > len(name) {
			return fmt.Errorf("socket name of %d bytes in a record with %d", r.Len, len(name))
		}
		d.names.addUnix(d.sockID(r.Id), unixPath(name[:r.Len]))
	default:
		return fmt.Errorf("name record for unknown mechanism %d", r.Mechanism)
	}
	return nil
}

// unixPath is a socket's name: a path ends at its NUL; an abstract name
// starts with one and is all its bytes.
func unixPath(b []byte) string {
	if len(b) > 0 && b[0] != 0 {
		if i := bytes.IndexByte(b, 0); i >= 0 {
			b = b[:i]
		}
	}
	return string(b)
}

// fifoParts reads the leaf-first path components the kernel wrote into
// fixed slots.
func fifoParts(buf []byte, n int) []string {
	const slot = 64 // NAME_PART_LEN in bpf/pipe.h
	if n > len(buf)/slot {
		n = len(buf) / slot
	}
	parts := make([]string, 0, n)
	for i := 0; i < n; i++ {
		s := buf[i*slot : (i+1)*slot]
		if j := bytes.IndexByte(s, 0); j >= 0 {
			s = s[:j]
		}
		parts = append(parts, string(s))
	}
	return parts
}

// sockID turns a kernel socket address into an opaque id: stable while
// the socket lives, distinct for distinct sockets (splitmix64's finaliser
// is a bijection), and no kernel address in the event log.
func (d *decoder) sockID(sk uint64) uint64 {
	if sk == 0 {
		return 0
	}
	z := sk ^ d.seed
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// comm interns task names: there are few, and events are many.
func (d *decoder) comm(c [16]int8) string {
	key := *(*[16]byte)(unsafe.Pointer(&c))
	if s, ok := d.comms[key]; ok {
		return s
	}
	b := key[:]
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	s := string(b)
	if len(d.comms) > 4096 {
		clear(d.comms)
	}
	d.comms[key] = s
	return s
}

func addrPort(family uint16, a [16]uint8, port uint16) netip.AddrPort {
	var addr netip.Addr
	switch family {
	case 2: // AF_INET
		addr = netip.AddrFrom4([4]byte(a[:4]))
	case 10: // AF_INET6
		addr = netip.AddrFrom16(a).Unmap()
	default:
		return netip.AddrPort{}
	}
	if port == 0 && addr.IsUnspecified() {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(addr, port)
}

func opTypeOf(o ipcOpType) (flow.OpType, bool) {
	switch o {
	case ipcOpTypeOPER_SEND:
		return flow.Send, true
	case ipcOpTypeOPER_RECEIVE:
		return flow.Receive, true
	case ipcOpTypeOPER_ATTACH:
		return flow.Attach, true
	case ipcOpTypeOPER_DETACH:
		return flow.Detach, true
	case ipcOpTypeOPER_OPEN:
		return flow.Open, true
	case ipcOpTypeOPER_CREATE:
		return flow.Create, true
	case ipcOpTypeOPER_UNLINK:
		return flow.Unlink, true
	case ipcOpTypeOPER_WAIT:
		return flow.Wait, true
	case ipcOpTypeOPER_WAKE:
		return flow.Wake, true
	}
	return 0, false
}

func mechanismOf(m ipcMechanism) (flow.Mechanism, bool) {
	switch m {
	case ipcMechanismMECH_PIPE:
		return flow.Pipe, true
	case ipcMechanismMECH_FIFO:
		return flow.FIFO, true
	case ipcMechanismMECH_UNIX_STREAM:
		return flow.UnixStream, true
	case ipcMechanismMECH_UNIX_DGRAM:
		return flow.UnixDgram, true
	case ipcMechanismMECH_UNIX_SEQPACKET:
		return flow.UnixSeqpacket, true
	case ipcMechanismMECH_TCP:
		return flow.TCP, true
	case ipcMechanismMECH_UDP:
		return flow.UDP, true
	case ipcMechanismMECH_POSIX_MQ:
		return flow.POSIXMQ, true
	case ipcMechanismMECH_SYSV_MQ:
		return flow.SysVMQ, true
	case ipcMechanismMECH_SYSV_SHM:
		return flow.SysVShm, true
	case ipcMechanismMECH_POSIX_SHM:
		return flow.POSIXShm, true
	case ipcMechanismMECH_MEMFD:
		return flow.Memfd, true
	case ipcMechanismMECH_SIGNAL:
		return flow.Signal, true
	}
	return 0, false
}

// kernelMechanisms is the mechanisms bit mask the BPF code reads.
func kernelMechanisms(s flow.MechanismSet) uint32 {
	var bits uint32
	for m := ipcMechanismMECH_PIPE; m <= ipcMechanismMECH_MEMFD; m++ {
		if fm, _ := mechanismOf(m); s.Has(fm) {
			bits |= 1 << m
		}
	}
	return bits
}

// countOf is a record's operation count: 0 (a record of one) reads as 1.
func countOf(n uint32) uint32 { return max(n, 1) }

// busyOf is a coalesced record's summed call time; 0 for a record of one.
func busyOf(n uint32, busy uint64) time.Duration {
	if n <= 1 {
		return 0
	}
	return time.Duration(busy)
}
