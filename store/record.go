package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/icptrack/icptrack/flow"
)

// A data block's body is a run of records, each its length (uvarint,
// counting the type byte) then a type byte and the record. A record's
// sequence number is its block's first sequence number plus its place in
// the block. Each block decodes on its own: "same as the previous
// operation" never reaches into the block before.

// Record types.
const (
	recOperation = 1
	recDrops     = 2
	recStarted   = 3
	recRecovered = 4
	recExpired   = 5
	recMissing   = 6
)

// Operation record flags (the uvarint after the id).
const (
	opStartUnknown = 1 << iota
	opBlocked
	opPayloadCaptured
	opPayloadTruncated
	opMessageType
	opCount
	opLocal
	opRemote
	opLinks
	opPeers
	opPayload
	opSameCgroup
)

// The operation's strings, in the order they follow, two bits each in
// the string mask: 0 empty, 1 the same as the previous operation's, 2
// given (uvarint length, bytes).
const (
	sComm = iota
	sSyscall
	sChannel
	sEndpoint
	sPeerComm
	sError
	sSignal
	sExe
	sCmdline
	sContainer
	nStrings
)

const (
	strEmpty = 0
	strSame  = 1
	strGiven = 2
)

// encoder writes operation records, remembering the block's previous
// operation.
type encoder struct {
	prevTime   int64
	prevCgroup uint64
	prevStr    [nStrings]string
	scratch    []byte
}

func (e *encoder) reset() {
	*e = encoder{scratch: e.scratch[:0]}
}

// appendOp appends op's record (length, type, fields) to b.
func (e *encoder) appendOp(b []byte, op *flow.Operation) []byte {
	r := e.scratch[:0]
	r = append(r, recOperation)
	r = le.AppendUint64(r, uint64(op.ID))

	var mask uint64
	if op.StartUnknown {
		mask |= opStartUnknown
	}
	if op.Blocked {
		mask |= opBlocked
	}
	if op.PayloadCaptured {
		mask |= opPayloadCaptured
	}
	if op.PayloadTruncated {
		mask |= opPayloadTruncated
	}
	if op.HasMessageType {
		mask |= opMessageType
	}
	if op.Count != 0 || op.Busy != 0 {
		mask |= opCount
	}
	if op.Local.IsValid() {
		mask |= opLocal
	}
	if op.Remote.IsValid() {
		mask |= opRemote
	}
	if len(op.Links) > 0 {
		mask |= opLinks
	}
	if len(op.Peers) > 0 {
		mask |= opPeers
	}
	if len(op.Payload) > 0 {
		mask |= opPayload
	}
	if op.CgroupID == e.prevCgroup {
		mask |= opSameCgroup
	}
	strs := [nStrings]string{op.Comm, op.Syscall, op.Channel, op.Endpoint, op.Peer.Comm,
		op.Error, op.Signal, op.Exe, op.Cmdline, op.ContainerID}
	var smask uint64
	for i, s := range strs {
		switch {
		case s == "":
		case s == e.prevStr[i]:
			smask |= strSame << (2 * i)
		default:
			smask |= strGiven << (2 * i)
		}
	}
	r = binary.AppendUvarint(r, mask)
	r = binary.AppendUvarint(r, smask)

	t := op.Time.UnixNano()
	r = binary.AppendVarint(r, t-e.prevTime)
	e.prevTime = t
	r = binary.AppendVarint(r, int64(op.Duration))
	r = binary.AppendUvarint(r, uint64(op.PID))
	r = binary.AppendUvarint(r, uint64(op.TID))
	r = binary.AppendUvarint(r, uint64(op.PPID))
	r = append(r, byte(op.Mechanism), byte(op.Op))
	r = binary.AppendVarint(r, op.Bytes)
	if mask&opCount != 0 {
		r = binary.AppendUvarint(r, uint64(op.Count))
		r = binary.AppendVarint(r, int64(op.Busy))
	}
	r = binary.AppendVarint(r, op.QueueDepth)
	if op.HasMessageType {
		r = binary.AppendVarint(r, op.MessageType)
	}
	r = binary.AppendUvarint(r, uint64(op.Peer.PID))
	if mask&opSameCgroup == 0 {
		r = binary.AppendUvarint(r, op.CgroupID)
		e.prevCgroup = op.CgroupID
	}
	if mask&opLocal != 0 {
		r = appendAddrPort(r, op.Local)
	}
	if mask&opRemote != 0 {
		r = appendAddrPort(r, op.Remote)
	}
	if mask&opLinks != 0 {
		r = binary.AppendUvarint(r, uint64(len(op.Links)))
		for _, id := range op.Links {
			r = le.AppendUint64(r, uint64(id))
		}
	}
	if mask&opPeers != 0 {
		r = binary.AppendUvarint(r, uint64(len(op.Peers)))
		for _, p := range op.Peers {
			r = binary.AppendUvarint(r, uint64(p))
		}
	}
	if mask&opPayload != 0 {
		r = binary.AppendUvarint(r, uint64(len(op.Payload)))
		r = append(r, op.Payload...)
	}
	for i, s := range strs {
		if smask>>(2*i)&3 == strGiven {
			r = binary.AppendUvarint(r, uint64(len(s)))
			r = append(r, s...)
			e.prevStr[i] = s
		}
	}
	e.scratch = r
	b = binary.AppendUvarint(b, uint64(len(r)))
	return append(b, r...)
}

func appendAddrPort(b []byte, ap netip.AddrPort) []byte {
	n := len(b)
	b = append(b, 0)
	b, _ = ap.AppendBinary(b) // an AddrPort never fails to marshal
	b[n] = byte(len(b) - n - 1)
	return b
}

// errCorrupt is a record that cannot be decoded. Behind a good hash and
// tag it means a bug or a forged block; a verifier reports it as such.
var errCorrupt = errors.New("record is malformed")

// decoder reads a block's records back.
type decoder struct {
	b          []byte
	prevTime   int64
	prevCgroup uint64
	prevStr    [nStrings]string
	err        error
	// intern keeps the strings decoded so far, across blocks: names and
	// paths repeat, and a string made once is not made again.
	intern map[string]string
	// The decoded operation's slices live here until the next one: who
	// keeps an operation keeps its Clone.
	links   []flow.OpID
	peers   []uint32
	payload []byte
}

func (d *decoder) reset(body []byte) {
	*d = decoder{b: body, intern: d.intern, links: d.links, peers: d.peers, payload: d.payload}
}

// maxIntern bounds the strings a decoder keeps.
const maxIntern = 1 << 13

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", errCorrupt, what)
	}
	d.b = nil
}

func (d *decoder) uvarint(what string) uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint(what string) int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(n uint64, what string) []byte {
	if n > uint64(len(d.b)) {
		d.fail(what)
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8(what string) byte {
	if len(d.b) < 1 {
		d.fail(what)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) u64(what string) uint64 {
	if len(d.b) < 8 {
		d.fail(what)
		return 0
	}
	v := le.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) str(what string) string {
	b := d.bytes(d.uvarint(what), what)
	if len(b) > 256 {
		return string(b)
	}
	if s, ok := d.intern[string(b)]; ok {
		return s
	}
	s := string(b)
	if d.intern == nil || len(d.intern) >= maxIntern {
		d.intern = make(map[string]string, 256)
	}
	d.intern[s] = s
	return s
}

// next splits off the next record: its type and bytes. ok is false at
// the end or on an error (d.err).
func (d *decoder) next() (typ byte, rec []byte, ok bool) {
	if len(d.b) == 0 || d.err != nil {
		return 0, nil, false
	}
	n := d.uvarint("record length")
	rec = d.bytes(n, "record length")
	if d.err != nil || len(rec) == 0 {
		d.fail("empty record")
		return 0, nil, false
	}
	return rec[0], rec[1:], true
}

// operation decodes an operation record's bytes into op, which it sets
// whole. Its slices are the decoder's until the next record: keep a
// Clone.
func (d *decoder) operation(rec []byte, op *flow.Operation) error {
	outer := d.b
	d.b = rec
	defer func() { d.b = outer }()
	*op = flow.Operation{}

	op.ID = flow.OpID(d.u64("id"))
	mask := d.uvarint("flags")
	smask := d.uvarint("string mask")
	t := d.prevTime + d.varint("time")
	d.prevTime = t
	op.Time = time.Unix(0, t)
	op.Duration = time.Duration(d.varint("duration"))
	op.PID = uint32(d.uvarint("pid"))
	op.TID = uint32(d.uvarint("tid"))
	op.PPID = uint32(d.uvarint("ppid"))
	op.Mechanism = flow.Mechanism(d.u8("mechanism"))
	op.Op = flow.OpType(d.u8("op"))
	op.Bytes = d.varint("bytes")
	if mask&opCount != 0 {
		op.Count = uint32(d.uvarint("count"))
		op.Busy = time.Duration(d.varint("busy"))
	}
	op.QueueDepth = d.varint("queue depth")
	op.HasMessageType = mask&opMessageType != 0
	if op.HasMessageType {
		op.MessageType = d.varint("message type")
	}
	op.Peer.PID = uint32(d.uvarint("peer pid"))
	if mask&opSameCgroup == 0 {
		d.prevCgroup = d.uvarint("cgroup")
	}
	op.CgroupID = d.prevCgroup
	if mask&opLocal != 0 {
		op.Local = d.addrPort()
	}
	if mask&opRemote != 0 {
		op.Remote = d.addrPort()
	}
	if mask&opLinks != 0 {
		n := d.uvarint("links")
		if n > uint64(len(d.b))/8 {
			d.fail("links")
		} else {
			d.links = d.links[:0]
			for range n {
				d.links = append(d.links, flow.OpID(d.u64("links")))
			}
			op.Links = d.links
		}
	}
	if mask&opPeers != 0 {
		n := d.uvarint("peers")
		if n > uint64(len(d.b)) {
			d.fail("peers")
		} else {
			d.peers = d.peers[:0]
			for range n {
				d.peers = append(d.peers, uint32(d.uvarint("peers")))
			}
			op.Peers = d.peers
		}
	}
	if mask&opPayload != 0 {
		d.payload = append(d.payload[:0], d.bytes(d.uvarint("payload"), "payload")...)
		op.Payload = d.payload
	}
	op.StartUnknown = mask&opStartUnknown != 0
	op.Blocked = mask&opBlocked != 0
	op.PayloadCaptured = mask&opPayloadCaptured != 0
	op.PayloadTruncated = mask&opPayloadTruncated != 0
	var strs [nStrings]string
	for i := range strs {
		switch smask >> (2 * i) & 3 {
		case strEmpty:
		case strSame:
			strs[i] = d.prevStr[i]
		case strGiven:
			strs[i] = d.str("strings")
			d.prevStr[i] = strs[i]
		default:
			d.fail("string mask")
		}
	}
	op.Comm, op.Syscall, op.Channel, op.Endpoint, op.Peer.Comm = strs[sComm], strs[sSyscall], strs[sChannel], strs[sEndpoint], strs[sPeerComm]
	op.Error, op.Signal, op.Exe, op.Cmdline, op.ContainerID = strs[sError], strs[sSignal], strs[sExe], strs[sCmdline], strs[sContainer]
	if smask>>(2*nStrings) != 0 || mask >= opSameCgroup<<1 {
		d.fail("unknown flags")
	}
	if len(d.b) != 0 {
		d.fail("bytes left over")
	}
	return d.err
}

func (d *decoder) addrPort() netip.AddrPort {
	b := d.bytes(uint64(d.u8("address")), "address")
	var ap netip.AddrPort
	if d.err == nil && ap.UnmarshalBinary(b) != nil {
		d.fail("address")
	}
	return ap
}

// Note is a record that is not an operation: what the store says about
// itself (drops, starts, crashes, expiry).
type Note struct {
	// Kind is drops, started, recovered, expired or missing.
	Kind string
	Time time.Time
	// drops: Reason (an ipc.drop.reason, or the sink that dropped) and
	// Count operations lost.
	Reason string
	Count  uint64
	// started: the icptrack Version and its PID.
	Version string
	PID     uint32
	// recovered: Segment was cut at Offset, losing Bytes torn bytes.
	// expired: segments Segment to Last, Bytes in all, for Reason
	// (max_size or max_age). missing: Segment was gone when due to expire.
	Segment, Last uint64
	Offset, Bytes uint64
}

func (n *Note) String() string {
	switch n.Kind {
	case "drops":
		return fmt.Sprintf("%d operations dropped (%s)", n.Count, n.Reason)
	case "started":
		return fmt.Sprintf("icptrack %s (pid %d) started writing", n.Version, n.PID)
	case "recovered":
		return fmt.Sprintf("segment %d was not closed (a crash): %d torn bytes cut at offset %d", n.Segment, n.Bytes, n.Offset)
	case "expired":
		return fmt.Sprintf("segments %d to %d expired (%s, %d bytes)", n.Segment, n.Last, n.Reason, n.Bytes)
	case "missing":
		return fmt.Sprintf("segment %d was missing when it was due to expire: it was deleted by something other than icptrack", n.Segment)
	}
	return n.Kind
}

var noteKinds = map[byte]string{recDrops: "drops", recStarted: "started", recRecovered: "recovered", recExpired: "expired", recMissing: "missing"}

func appendNote(b []byte, n *Note) []byte {
	var r []byte
	switch n.Kind {
	case "drops":
		r = append(r, recDrops)
		r = binary.AppendVarint(r, n.Time.UnixNano())
		r = binary.AppendUvarint(r, n.Count)
		r = appendString(r, n.Reason)
	case "started":
		r = append(r, recStarted)
		r = binary.AppendVarint(r, n.Time.UnixNano())
		r = binary.AppendUvarint(r, uint64(n.PID))
		r = appendString(r, n.Version)
	case "recovered":
		r = append(r, recRecovered)
		r = binary.AppendVarint(r, n.Time.UnixNano())
		r = binary.AppendUvarint(r, n.Segment)
		r = binary.AppendUvarint(r, n.Offset)
		r = binary.AppendUvarint(r, n.Bytes)
	case "expired":
		r = append(r, recExpired)
		r = binary.AppendVarint(r, n.Time.UnixNano())
		r = binary.AppendUvarint(r, n.Segment)
		r = binary.AppendUvarint(r, n.Last)
		r = binary.AppendUvarint(r, n.Bytes)
		r = appendString(r, n.Reason)
	case "missing":
		r = append(r, recMissing)
		r = binary.AppendVarint(r, n.Time.UnixNano())
		r = binary.AppendUvarint(r, n.Segment)
	default:
		panic("store: unknown note kind " + n.Kind)
	}
	b = binary.AppendUvarint(b, uint64(len(r)))
	return append(b, r...)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// note decodes a record of type typ that is not an operation.
func (d *decoder) note(typ byte, rec []byte) (*Note, error) {
	kind, ok := noteKinds[typ]
	if !ok {
		return nil, fmt.Errorf("%w: unknown record type %d", errCorrupt, typ)
	}
	outer := d.b
	d.b = rec
	defer func() { d.b = outer }()
	n := &Note{Kind: kind, Time: time.Unix(0, d.varint("time"))}
	switch typ {
	case recDrops:
		n.Count = d.uvarint("count")
		n.Reason = d.str("reason")
	case recStarted:
		n.PID = uint32(d.uvarint("pid"))
		n.Version = d.str("version")
	case recRecovered:
		n.Segment = d.uvarint("segment")
		n.Offset = d.uvarint("offset")
		n.Bytes = d.uvarint("bytes")
	case recExpired:
		n.Segment = d.uvarint("segment")
		n.Last = d.uvarint("segment")
		n.Bytes = d.uvarint("bytes")
		n.Reason = d.str("reason")
	case recMissing:
		n.Segment = d.uvarint("segment")
	}
	if len(d.b) != 0 {
		d.fail("bytes left over")
	}
	return n, d.err
}
