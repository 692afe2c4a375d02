package probes

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
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
	payload bool // payload capture is on
	seed    uint64
	comms   map[[16]byte]string
}

func newDecoder(c clock, n *names, payload bool) *decoder {
	return &decoder{clock: c, names: n, payload: payload, seed: rand.Uint64(), comms: make(map[[16]byte]string)}
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
	op := flow.Send
	switch ipcOpType(r.Op) {
	case ipcOpTypeOP_SEND:
	case ipcOpTypeOP_RECEIVE:
		op = flow.Receive
	default:
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
		Sock:             d.sockID(r.Sk),
		PeerSock:         d.sockID(r.PeerSk),
		Dev:              r.Dev,
		Offset:           r.Off,
		Seq:              flags&ipcOpFlagOPF_SEQ != 0,
		Peek:             flags&ipcOpFlagOPF_PEEK != 0,
		HasReceiver:      flags&ipcOpFlagOPF_PEER != 0,
		Unsure:           flags&ipcOpFlagOPF_UNSURE != 0,
		PayloadCaptured:  d.payload,
		PayloadTruncated: flags&ipcOpFlagOPF_TRUNCATED != 0,
	}
	if r.StartNs > r.EndNs {
		ev.Start = ev.End
	}
	if r.Ret < 0 {
		ev.Error = errnoName(-r.Ret)
	}
	if r.PayloadLen > 0 {
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
	}
	return nil
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
	}
	return 0, false
}

// kernelMechanisms is the mechanisms bit mask the BPF code reads.
func kernelMechanisms(s flow.MechanismSet) uint32 {
	var bits uint32
	for _, m := range []ipcMechanism{
		ipcMechanismMECH_PIPE, ipcMechanismMECH_FIFO, ipcMechanismMECH_UNIX_STREAM,
		ipcMechanismMECH_UNIX_DGRAM, ipcMechanismMECH_UNIX_SEQPACKET, ipcMechanismMECH_TCP, ipcMechanismMECH_UDP,
	} {
		if fm, _ := mechanismOf(m); s.Has(fm) {
			bits |= 1 << m
		}
	}
	return bits
}
