package exporter

import (
	"bufio"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/icptrack/icptrack/flow"
)

// textLog writes one aligned line per operation for people, as strace
// does: local time, comm[pid/tid], mechanism, op, syscall, endpoint,
// bytes, the peer (← the sender of a receive, → the receiver of a send),
// duration, then the error and what else applies. It cannot be read
// back: keep jsonl, csv or an OTLP format for that.
type textLog struct {
	w      *bufio.Writer
	buf    []byte
	colour bool
	err    error
}

// ANSI colours: failures red, sends green, receives cyan, the rest plain;
// the peer bold.
const (
	ansiRed   = "\x1b[31m"
	ansiGreen = "\x1b[32m"
	ansiCyan  = "\x1b[36m"
	ansiBold  = "\x1b[1m"
	ansiDim   = "\x1b[2m"
	ansiReset = "\x1b[0m"
)

func (l *textLog) Write(op *flow.Operation) {
	if l.err != nil {
		return
	}
	l.buf = l.appendLine(l.buf[:0], op)
	_, l.err = l.w.Write(l.buf)
}

func (l *textLog) Flush() error {
	if l.err != nil {
		return l.err
	}
	l.err = l.w.Flush()
	return l.err
}

// pad appends spaces until what b holds since start takes at least width
// columns, and at least one space.
func pad(b []byte, start, width int) []byte {
	b = append(b, ' ')
	for w := visibleWidth(b[start:]); w < width; w++ {
		b = append(b, ' ')
	}
	return b
}

// visibleWidth counts the characters of b that a terminal shows: runes,
// less ANSI colour sequences.
func visibleWidth(b []byte) int {
	n := 0
	for i := 0; i < len(b); {
		if b[i] == 0x1b {
			for i < len(b) && b[i] != 'm' {
				i++
			}
			i++
			continue
		}
		_, size := utf8.DecodeRune(b[i:])
		i += size
		n++
	}
	return n
}

func (l *textLog) colourOn(b []byte, c string) []byte {
	if l.colour {
		b = append(b, c...)
	}
	return b
}

func (l *textLog) colourOff(b []byte) []byte {
	if l.colour {
		b = append(b, ansiReset...)
	}
	return b
}

func (l *textLog) appendLine(b []byte, op *flow.Operation) []byte {
	b = l.colourOn(b, ansiDim)
	b = op.Time.Local().AppendFormat(b, "15:04:05.000000")
	b = l.colourOff(b)
	b = append(b, ' ')

	s := len(b)
	b = appendVisible(b, op.Comm)
	b = append(b, '[')
	b = strconv.AppendUint(b, uint64(op.PID), 10)
	if op.TID != op.PID && op.TID != 0 {
		b = append(b, '/')
		b = strconv.AppendUint(b, uint64(op.TID), 10)
	}
	b = append(b, ']')
	b = pad(b, s, 22)

	s = len(b)
	b = append(b, op.Mechanism.String()...)
	b = pad(b, s, 15)

	s = len(b)
	colour := ""
	switch {
	case op.Error != "" && IsError(op.Error):
		colour = ansiRed
	case op.Op == flow.Send:
		colour = ansiGreen
	case op.Op == flow.Receive:
		colour = ansiCyan
	}
	if colour != "" {
		b = l.colourOn(b, colour)
	}
	b = append(b, op.Op.String()...)
	if colour != "" {
		b = l.colourOff(b)
	}
	b = pad(b, s, 8)

	s = len(b)
	b = append(b, op.Syscall...)
	b = pad(b, s, 15)

	s = len(b)
	b = appendVisible(b, op.Endpoint)
	b = pad(b, s, 24)

	s = len(b)
	num := strconv.AppendInt(nil, op.Bytes, 10)
	for i := len(num) + 1; i < 8; i++ {
		b = append(b, ' ')
	}
	b = append(b, num...)
	b = append(b, 'B')

	if op.Peer.PID != 0 || op.Peer == flow.Kernel {
		if op.Op == flow.Receive {
			b = append(b, " ← "...)
		} else {
			b = append(b, " → "...)
		}
		b = l.colourOn(b, ansiBold)
		b = appendVisible(b, op.Peer.Comm)
		if op.Peer.PID != 0 {
			b = append(b, '[')
			b = strconv.AppendUint(b, uint64(op.Peer.PID), 10)
			b = append(b, ']')
		}
		b = l.colourOff(b)
	}
	b = pad(b, s, 32)

	b = append(b, time.Duration(op.Duration).String()...)
	if op.Error != "" {
		b = append(b, ' ')
		if IsError(op.Error) {
			b = l.colourOn(b, ansiRed)
		}
		b = append(b, op.Error...)
		if IsError(op.Error) {
			b = l.colourOff(b)
		}
	}
	if op.Blocked {
		b = append(b, " blocked"...)
	}
	if op.Count > 1 {
		b = append(b, " ×"...)
		b = strconv.AppendUint(b, uint64(op.Count), 10)
		b = append(b, " busy "...)
		b = append(b, op.Busy.String()...)
	}
	if op.Signal != "" {
		b = append(b, ' ')
		b = append(b, op.Signal...)
	}
	if op.QueueDepth >= 0 {
		b = append(b, " depth="...)
		b = strconv.AppendInt(b, op.QueueDepth, 10)
	}
	if op.HasMessageType {
		b = append(b, " type="...)
		b = strconv.AppendInt(b, op.MessageType, 10)
	}
	if len(op.Peers) > 0 {
		b = append(b, " peers="...)
		for i, p := range op.Peers {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendUint(b, uint64(p), 10)
		}
	}
	if len(op.Links) > 0 {
		b = append(b, " links="...)
		b = strconv.AppendInt(b, int64(len(op.Links)), 10)
	}
	if op.PayloadCaptured {
		b = append(b, ' ')
		b = strconv.AppendQuote(b, string(op.Payload))
		if op.PayloadTruncated {
			b = append(b, "..."...)
		}
	}
	return append(b, '\n')
}

// appendVisible writes s with control characters as \xNN, so that a
// process name or path cannot break the line or colour the terminal.
func appendVisible(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			b = append(b, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
			continue
		}
		b = append(b, c)
	}
	return b
}
