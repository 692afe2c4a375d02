package syslog

import (
	"strconv"
	"strings"

	"github.com/icptrack/icptrack/flow"
)

// operationMessage is an operation as a syslog message: PROCID the traced
// process, MSGID the operation (send, receive, …), its fields in an
// ipc@32473 element under the event log's names, and MSG a line like the
// text format's.
func operationMessage(op *flow.Operation) message {
	m := message{
		severity: sevInfo,
		time:     op.Time,
		procID:   op.PID,
		msgID:    op.Op.String(),
		sdID:     "ipc",
		text:     operationLine(op),
	}
	if op.Error != "" {
		m.severity = sevWarning
	}
	add := func(name, value string) {
		if value != "" {
			m.params = append(m.params, param{name, value})
		}
	}
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	add("id", op.ID.String())
	add("mechanism", op.Mechanism.String())
	add("op", op.Op.String())
	add("syscall", op.Syscall)
	add("channel", op.Channel)
	add("endpoint", op.Endpoint)
	add("bytes", strconv.FormatInt(op.Bytes, 10))
	add("comm", op.Comm)
	if op.TID != 0 && op.TID != op.PID {
		add("tid", u(uint64(op.TID)))
	}
	if op.Peer.PID != 0 || op.Peer == flow.Kernel {
		add("peer_pid", u(uint64(op.Peer.PID)))
		add("peer_comm", op.Peer.Comm)
	}
	add("error", op.Error)
	add("signal", op.Signal)
	if op.Blocked {
		add("blocked", "true")
	}
	if op.Count > 1 {
		add("count", u(uint64(op.Count)))
	}
	add("duration_ns", u(uint64(max(op.Duration, 0))))
	add("container_id", op.ContainerID)
	return m
}

// operationLine is the human line in MSG: "writer[1234] pipe send write
// pipe:[5678] 0B → reader[1235] 3.1µs EPIPE".
func operationLine(op *flow.Operation) string {
	var b strings.Builder
	b.WriteString(op.Comm)
	b.WriteByte('[')
	b.WriteString(strconv.FormatUint(uint64(op.PID), 10))
	if op.TID != 0 && op.TID != op.PID {
		b.WriteByte('/')
		b.WriteString(strconv.FormatUint(uint64(op.TID), 10))
	}
	b.WriteString("] ")
	b.WriteString(op.Mechanism.String())
	b.WriteByte(' ')
	b.WriteString(op.Op.String())
	if op.Syscall != "" {
		b.WriteByte(' ')
		b.WriteString(op.Syscall)
	}
	if op.Endpoint != "" {
		b.WriteByte(' ')
		b.WriteString(op.Endpoint)
	}
	b.WriteByte(' ')
	b.WriteString(strconv.FormatInt(op.Bytes, 10))
	b.WriteByte('B')
	if op.Peer.PID != 0 || op.Peer == flow.Kernel {
		if op.Op == flow.Receive {
			b.WriteString(" ← ")
		} else {
			b.WriteString(" → ")
		}
		b.WriteString(op.Peer.Comm)
		if op.Peer.PID != 0 {
			b.WriteByte('[')
			b.WriteString(strconv.FormatUint(uint64(op.Peer.PID), 10))
			b.WriteByte(']')
		}
	}
	b.WriteByte(' ')
	b.WriteString(op.Duration.String())
	if op.Error != "" {
		b.WriteByte(' ')
		b.WriteString(op.Error)
	}
	if op.Blocked {
		b.WriteString(" blocked")
	}
	if op.Count > 1 {
		b.WriteString(" ×")
		b.WriteString(strconv.FormatUint(uint64(op.Count), 10))
	}
	if op.Signal != "" {
		b.WriteByte(' ')
		b.WriteString(op.Signal)
	}
	return b.String()
}
