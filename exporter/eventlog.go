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
	b = append(b, `{"id":"`...)
	b = appendID(b, op.ID)
	b = append(b, `","time":"`...)
	b = e.appendTime(b, op.Time)
	b = append(b, `","duration_ns":`...)
	b = strconv.AppendInt(b, int64(op.Duration), 10)
	b = appendUint(b, "pid", uint64(op.PID))
	b = appendUint(b, "tid", uint64(op.TID))
	b = appendUint(b, "ppid", uint64(op.PPID))
	b = appendString(b, "comm", op.Comm)
	if op.Exe != "" {
		b = appendString(b, "exe", op.Exe)
	}
	if op.Cmdline != "" {
		b = appendString(b, "cmdline", op.Cmdline)
	}
	b = appendString(b, "mechanism", op.Mechanism.String())
	b = appendString(b, "op", op.Op.String())
	if op.Syscall != "" {
		b = appendString(b, "syscall", op.Syscall)
	}
	if op.Channel != "" {
		b = appendString(b, "channel", op.Channel)
	}
	if op.Endpoint != "" {
		b = appendString(b, "endpoint", op.Endpoint)
	}
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, op.Bytes, 10)
	if op.Peer.PID != 0 || op.Peer == flow.Kernel {
		b = appendUint(b, "peer_pid", uint64(op.Peer.PID))
		b = appendString(b, "peer_comm", op.Peer.Comm)
	}
	if len(op.Peers) > 0 {
		b = append(b, `,"peers":[`...)
		for i, p := range op.Peers {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendUint(b, uint64(p), 10)
		}
		b = append(b, ']')
	}
	if op.Signal != "" {
		b = appendString(b, "signal", op.Signal)
	}
	if op.QueueDepth >= 0 {
		b = append(b, `,"queue_depth":`...)
		b = strconv.AppendInt(b, op.QueueDepth, 10)
	}
	if op.HasMessageType {
		b = append(b, `,"message_type":`...)
		b = strconv.AppendInt(b, op.MessageType, 10)
	}
	if len(op.Links) > 0 {
		b = append(b, `,"links":[`...)
		for i, id := range op.Links {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '"')
			b = appendID(b, id)
			b = append(b, '"')
		}
		b = append(b, ']')
	}
	if op.Error != "" {
		b = appendString(b, "error", op.Error)
	}
	b = append(b, `,"blocked":`...)
	b = strconv.AppendBool(b, op.Blocked)
	if op.PayloadCaptured {
		b = append(b, `,"payload":"`...)
		b = base64.StdEncoding.AppendEncode(b, op.Payload)
		b = append(b, `","payload_truncated":`...)
		b = strconv.AppendBool(b, op.PayloadTruncated)
	}
	if op.ContainerID != "" {
		b = appendString(b, "container_id", op.ContainerID)
	}
	if op.CgroupID != 0 {
		b = appendUint(b, "cgroup_id", op.CgroupID)
	}
	return append(b, '}')
}

func appendUint(b []byte, key string, v uint64) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return strconv.AppendUint(b, v, 10)
}

func appendString(b []byte, key, v string) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return appendQuoted(b, v)
}

const hexDigits = "0123456789abcdef"

// appendQuoted writes s as a JSON string. Process names and paths are
// bytes from the kernel, not always UTF-8: invalid bytes become U+FFFD.
func appendQuoted(b []byte, s string) []byte {
	b = append(b, '"')
	// Most strings need no escaping: copy them whole.
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
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
