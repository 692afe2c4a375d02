package postgres

import (
	"strings"
	"unicode/utf8"

	"github.com/icptrack/icptrack/flow"
)

// column is one column of the operations table: its type in the DDL,
// what it holds (the column's COMMENT), and its value for an operation
// (nil for NULL). One list makes both the DDL and the COPY, so the two
// cannot drift apart.
type column struct {
	name, sqlType, about string
	value                func(op *flow.Operation) any
}

// columns are the event log's fields (README: "The event log"), in
// order, typed. A field the event log leaves out is NULL here.
var columns = []column{
	{"time", "timestamptz NOT NULL", "when the operation started, to the microsecond",
		func(op *flow.Operation) any { return op.Time }},
	{"time_ns", "smallint NOT NULL", "nanoseconds past time's microsecond (0 to 999)",
		func(op *flow.Operation) any { return int16(op.Time.Nanosecond() % 1000) }},
	{"id", "bigint NOT NULL", "the operation's id, the event log's 16 hex digits as a signed number: lpad(to_hex(id), 16, '0') gives them back",
		func(op *flow.Operation) any { return int64(op.ID) }},
	{"duration_ns", "bigint NOT NULL", "time in the operation",
		func(op *flow.Operation) any { return int64(op.Duration) }},
	{"pid", "bigint NOT NULL", "the process that performed it",
		func(op *flow.Operation) any { return int64(op.PID) }},
	{"tid", "bigint NOT NULL", "its thread",
		func(op *flow.Operation) any { return int64(op.TID) }},
	{"ppid", "bigint NOT NULL", "its parent",
		func(op *flow.Operation) any { return int64(op.PPID) }},
	{"comm", "text NOT NULL", "its name",
		func(op *flow.Operation) any { return text(op.Comm) }},
	{"exe", "text", "its executable",
		func(op *flow.Operation) any { return optText(op.Exe) }},
	{"cmdline", "text", "its command line (--cmdline)",
		func(op *flow.Operation) any { return optText(op.Cmdline) }},
	{"mechanism", "text NOT NULL", "pipe, fifo, unix_stream, unix_dgram, unix_seqpacket, tcp, udp, posix_mq, sysv_mq, sysv_shm, posix_shm, memfd, signal",
		func(op *flow.Operation) any { return op.Mechanism.String() }},
	{"op", "text NOT NULL", "send, receive, open, create, attach, detach, unlink, close, wait, wake",
		func(op *flow.Operation) any { return op.Op.String() }},
	{"syscall", "text", "the call that did it",
		func(op *flow.Operation) any { return optText(op.Syscall) }},
	{"channel", "text", "id shared by both ends, stable for the channel's life",
		func(op *flow.Operation) any { return optText(op.Channel) }},
	{"endpoint", "text", "what a person recognises: pipe:[inode], a path, an address",
		func(op *flow.Operation) any { return optText(op.Endpoint) }},
	{"bytes", "bigint NOT NULL", "bytes moved (0 for end of file and failures)",
		func(op *flow.Operation) any { return op.Bytes }},
	{"count", "bigint NOT NULL", "operations this row stands for: more than 1 when coalesced",
		func(op *flow.Operation) any { return op.Ops() }},
	{"busy_ns", "bigint", "with count above 1: the time those operations spent in their calls, summed",
		func(op *flow.Operation) any {
			if op.Count > 1 {
				return int64(op.Busy)
			}
			return nil
		}},
	{"peer_pid", "bigint", "the other end, when known: for a receive, the sender (0 with peer_comm kernel: the kernel)",
		func(op *flow.Operation) any {
			if hasPeer(op) {
				return int64(op.Peer.PID)
			}
			return nil
		}},
	{"peer_comm", "text", "the other end's name",
		func(op *flow.Operation) any {
			if hasPeer(op) {
				return text(op.Peer.Comm)
			}
			return nil
		}},
	{"peers", "bigint[]", "for an attach, the processes already attached to the segment",
		func(op *flow.Operation) any {
			if len(op.Peers) == 0 {
				return nil
			}
			pids := make([]int64, len(op.Peers))
			for i, p := range op.Peers {
				pids[i] = int64(p)
			}
			return pids
		}},
	{"signal", "text", "the signal a signal operation carried",
		func(op *flow.Operation) any { return optText(op.Signal) }},
	{"queue_depth", "bigint", "messages left in a queue after the operation",
		func(op *flow.Operation) any {
			if op.QueueDepth >= 0 {
				return op.QueueDepth
			}
			return nil
		}},
	{"message_type", "bigint", "a queued message's priority (POSIX) or mtype (SysV)",
		func(op *flow.Operation) any {
			if op.HasMessageType {
				return op.MessageType
			}
			return nil
		}},
	{"links", "bigint[]", "ids of the sends a receive delivered",
		func(op *flow.Operation) any {
			if len(op.Links) == 0 {
				return nil
			}
			ids := make([]int64, len(op.Links))
			for i, id := range op.Links {
				ids[i] = int64(id)
			}
			return ids
		}},
	{"error", "text", "errno name when the call failed",
		func(op *flow.Operation) any { return optText(op.Error) }},
	{"blocked", "boolean NOT NULL", "the call had to wait",
		func(op *flow.Operation) any { return op.Blocked }},
	{"payload", "bytea", "with --payload, on sends and receives that moved data: the first bytes",
		func(op *flow.Operation) any {
			if !op.PayloadCaptured {
				return nil
			}
			if op.Payload == nil {
				return []byte{}
			}
			return op.Payload
		}},
	{"payload_truncated", "boolean", "with payload: more bytes moved than were captured",
		func(op *flow.Operation) any {
			if op.PayloadCaptured {
				return op.PayloadTruncated
			}
			return nil
		}},
	{"container_id", "text", "when the process runs in a container",
		func(op *flow.Operation) any { return optText(op.ContainerID) }},
	{"cgroup_id", "bigint", "its cgroup (v2 id, the inode of the cgroup's directory)",
		func(op *flow.Operation) any {
			if op.CgroupID != 0 {
				return int64(op.CgroupID)
			}
			return nil
		}},
}

// columnNames are the names, in order, for the COPY.
var columnNames = func() []string {
	names := make([]string, len(columns))
	for i, c := range columns {
		names[i] = c.name
	}
	return names
}()

// hasPeer is the event log's rule: a peer is written when known, and the
// kernel (pid 0) is one.
func hasPeer(op *flow.Operation) bool { return op.Peer.PID != 0 || op.Peer == flow.Kernel }

func optText(s string) any {
	if s == "" {
		return nil
	}
	return text(s)
}

// text makes s storable: PostgreSQL's text is UTF-8 without NUL, and
// names and paths from the kernel are bytes. Each invalid byte becomes
// U+FFFD, as in the event log; so does NUL, which the event log keeps
// (as \u0000) and no text column can.
func text(s string) string {
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == 0 || (r == utf8.RuneError && size == 1) {
			r = utf8.RuneError
		}
		b.WriteRune(r)
		i += size
	}
	return b.String()
}
