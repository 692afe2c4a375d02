// Package exporter renders matched operations for people and tools: the
// event log, the terminal summary, and OpenTelemetry data.
package exporter

import (
	"bufio"
	"encoding/base64"
	"io"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/icptrack/icptrack/flow"
)

// EventLog writes operations as JSON Lines, one object per operation, with
// the fields of the event-log contract (DESIGN.md, "The event log"). Field
// order is fixed; optional fields are left out when they do not apply.
type EventLog struct {
	w   *bufio.Writer
	buf []byte
	enc encoder
	err error
}

// NewEventLog writes to w, buffered; call Flush before closing w.
func NewEventLog(w io.Writer) *EventLog {
	return &EventLog{w: bufio.NewWriterSize(w, 256<<10), buf: make([]byte, 0, 1024)}
}

// Write appends one operation. The first write error sticks and is
// returned by Flush.
func (l *EventLog) Write(op *flow.Operation) {
	if l.err != nil {
		return
	}
	l.buf = l.enc.appendJSON(l.buf[:0], op)
	l.buf = append(l.buf, '\n')
	_, l.err = l.w.Write(l.buf)
}

// Flush writes out buffered lines.
func (l *EventLog) Flush() error {
	if l.err != nil {
		return l.err
	}
	l.err = l.w.Flush()
	return l.err
}

// AppendJSON appends op as one JSON object.
func AppendJSON(b []byte, op *flow.Operation) []byte {
	var e encoder
	return e.appendJSON(b, op)
}

// encoder remembers the last second it formatted: consecutive operations
// nearly always share it.
type encoder struct {
	sec    int64
	prefix []byte // "2006-01-02T15:04:05" of sec
	fields jsonFields
}

// appendTime writes t as RFC 3339 in UTC with the nanoseconds, trailing
// zeros dropped, as time.RFC3339Nano does.
func (e *encoder) appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	if sec := t.Unix(); sec != e.sec || e.prefix == nil {
		e.sec = sec
		e.prefix = t.AppendFormat(e.prefix[:0], "2006-01-02T15:04:05")
	}
	b = append(b, e.prefix...)
	if ns := t.Nanosecond(); ns != 0 {
		var frac [10]byte
		frac[0] = '.'
		for i := 9; i >= 1; i-- {
			frac[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 10
		for frac[n-1] == '0' {
			n--
		}
		b = append(b, frac[:n]...)
	}
	return append(b, 'Z')
}

func appendID(b []byte, id flow.OpID) []byte {
	for shift := 60; shift >= 0; shift -= 4 {
		b = append(b, hexDigits[(id>>shift)&0xf])
	}
	return b
}

func (e *encoder) appendJSON(b []byte, op *flow.Operation) []byte {
	// The writer lives in the encoder: handing a local to the interface
	// would allocate it on every operation.
	e.fields.e, e.fields.b, e.fields.more = e, append(b, '{'), false
	eventFields(op, &e.fields)
	b = append(e.fields.b, '}')
	e.fields.b = nil
	return b
}

// fieldWriter receives an operation's event-log fields, in order. The
// event log (JSON) and the Collector receiver's log records (OTel
// attributes) both write them, so the two cannot drift apart.
type fieldWriter interface {
	id(k field, id flow.OpID)
	time(k field, t time.Time)
	int(k field, v int64)
	str(k field, v string)
	// name is str for values icptrack makes from a fixed vocabulary
	// (mechanism, operation, syscall and errno names): never escaped.
	name(k field, v string)
	bool(k field, v bool)
	ids(k field, ids []flow.OpID)
	pids(k field, pids []uint32)
	bytes(k field, v []byte)
}

// field is an event-log field's name, and its JSON member prefix made
// once: ,"name":
type field struct {
	name string
	json string
}

func newField(name string) field { return field{name, `,"` + name + `":`} }

// The event log's fields.
var (
	fBlocked          = newField("blocked")
	fBusyNs           = newField("busy_ns")
	fBytes            = newField("bytes")
	fCgroupId         = newField("cgroup_id")
	fChannel          = newField("channel")
	fCmdline          = newField("cmdline")
	fComm             = newField("comm")
	fCount            = newField("count")
	fContainerId      = newField("container_id")
	fDurationNs       = newField("duration_ns")
	fEndpoint         = newField("endpoint")
	fError            = newField("error")
	fExe              = newField("exe")
	fId               = newField("id")
	fLinks            = newField("links")
	fMechanism        = newField("mechanism")
	fMessageType      = newField("message_type")
	fOp               = newField("op")
	fPayload          = newField("payload")
	fPayloadTruncated = newField("payload_truncated")
	fPeerComm         = newField("peer_comm")
	fPeerPid          = newField("peer_pid")
	fPeers            = newField("peers")
	fPid              = newField("pid")
	fPpid             = newField("ppid")
	fQueueDepth       = newField("queue_depth")
	fSignal           = newField("signal")
	fSyscall          = newField("syscall")
	fTid              = newField("tid")
	fTime             = newField("time")
)

// eventFields writes op's fields: the event-log contract (DESIGN.md, "The
// event log"). Optional fields are left out when they do not apply.
func eventFields(op *flow.Operation, w fieldWriter) {
	w.id(fId, op.ID)
	w.time(fTime, op.Time)
	w.int(fDurationNs, int64(op.Duration))
	w.int(fPid, int64(op.PID))
	w.int(fTid, int64(op.TID))
	w.int(fPpid, int64(op.PPID))
	w.str(fComm, op.Comm)
	if op.Exe != "" {
		w.str(fExe, op.Exe)
	}
	if op.Cmdline != "" {
		w.str(fCmdline, op.Cmdline)
	}
	w.name(fMechanism, op.Mechanism.String())
	w.name(fOp, op.Op.String())
	if op.Syscall != "" {
		w.name(fSyscall, op.Syscall)
	}
	if op.Channel != "" {
		w.str(fChannel, op.Channel)
	}
	if op.Endpoint != "" {
		w.str(fEndpoint, op.Endpoint)
	}
	w.int(fBytes, op.Bytes)
	if op.Count > 1 {
		w.int(fCount, int64(op.Count))
		w.int(fBusyNs, int64(op.Busy))
	}
	if op.Peer.PID != 0 || op.Peer == flow.Kernel {
		w.int(fPeerPid, int64(op.Peer.PID))
		w.str(fPeerComm, op.Peer.Comm)
	}
	if len(op.Peers) > 0 {
		w.pids(fPeers, op.Peers)
	}
	if op.Signal != "" {
		w.name(fSignal, op.Signal)
	}
	if op.QueueDepth >= 0 {
		w.int(fQueueDepth, op.QueueDepth)
	}
	if op.HasMessageType {
		w.int(fMessageType, op.MessageType)
	}
	if len(op.Links) > 0 {
		w.ids(fLinks, op.Links)
	}
	if op.Error != "" {
		w.name(fError, op.Error)
	}
	w.bool(fBlocked, op.Blocked)
	if op.PayloadCaptured {
		w.bytes(fPayload, op.Payload)
		w.bool(fPayloadTruncated, op.PayloadTruncated)
	}
	if op.ContainerID != "" {
		w.str(fContainerId, op.ContainerID)
	}
	if op.CgroupID != 0 {
		w.int(fCgroupId, int64(op.CgroupID))
	}
}

// jsonFields writes fields as the members of a JSON object.
type jsonFields struct {
	e    *encoder
	b    []byte
	more bool // a member was written: the next needs a comma
}

func (j *jsonFields) key(k field) {
	p := k.json
	if !j.more {
		p = p[1:] // no comma before the first member
		j.more = true
	}
	j.b = append(j.b, p...)
}

func (j *jsonFields) id(k field, id flow.OpID) {
	j.key(k)
	j.b = append(j.b, '"')
	j.b = appendID(j.b, id)
	j.b = append(j.b, '"')
}

func (j *jsonFields) time(k field, t time.Time) {
	j.key(k)
	j.b = append(j.b, '"')
	j.b = j.e.appendTime(j.b, t)
	j.b = append(j.b, '"')
}

func (j *jsonFields) int(k field, v int64) {
	j.key(k)
	j.b = strconv.AppendInt(j.b, v, 10)
}

func (j *jsonFields) str(k field, v string) {
	j.key(k)
	j.b = appendQuoted(j.b, v)
}

func (j *jsonFields) name(k field, v string) {
	j.key(k)
	j.b = append(j.b, '"')
	j.b = append(j.b, v...)
	j.b = append(j.b, '"')
}

func (j *jsonFields) bool(k field, v bool) {
	j.key(k)
	j.b = strconv.AppendBool(j.b, v)
}

func (j *jsonFields) ids(k field, ids []flow.OpID) {
	j.key(k)
	j.b = append(j.b, '[')
	for i, id := range ids {
		if i > 0 {
			j.b = append(j.b, ',')
		}
		j.b = append(j.b, '"')
		j.b = appendID(j.b, id)
		j.b = append(j.b, '"')
	}
	j.b = append(j.b, ']')
}

func (j *jsonFields) pids(k field, pids []uint32) {
	j.key(k)
	j.b = append(j.b, '[')
	for i, p := range pids {
		if i > 0 {
			j.b = append(j.b, ',')
		}
		j.b = strconv.AppendUint(j.b, uint64(p), 10)
	}
	j.b = append(j.b, ']')
}

func (j *jsonFields) bytes(k field, v []byte) {
	j.key(k)
	j.b = append(j.b, '"')
	j.b = base64.StdEncoding.AppendEncode(j.b, v)
	j.b = append(j.b, '"')
}

const hexDigits = "0123456789abcdef"

// jsonPlain marks the bytes a JSON string holds as they are.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendQuoted writes s as a JSON string. Process names and paths are
// bytes from the kernel, not always UTF-8: invalid bytes become U+FFFD.
func appendQuoted(b []byte, s string) []byte {
	b = append(b, '"')
	// Most strings need no escaping: copy them whole.
	clean := true
	for i := 0; i < len(s); i++ {
		if !jsonPlain[s[i]] {
			clean = false
			break
		}
	}
	if clean {
		b = append(b, s...)
		return append(b, '"')
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c >= 0x20:
				b = append(b, c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\t':
				b = append(b, '\\', 't')
			case c == '\r':
				b = append(b, '\\', 'r')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
