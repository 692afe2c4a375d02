package filter

import (
	"sort"
	"strconv"
	"strings"

	"github.com/icptrack/icptrack/flow"
)

// kind is a field's type: what values it takes and which operators apply.
type kind uint8

const (
	kInt       kind = iota // a number
	kSize                  // a number of bytes: 4096, 4KiB
	kDuration              // a duration: 1ms
	kNanos                 // a number of nanoseconds
	kTime                  // an RFC 3339 time
	kString                // text
	kMechanism             // a mechanism name
	kOp                    // an operation name
	kErrno                 // an errno name
	kSignal                // a signal name
	kBool                  // true or false
	kID                    // an operation id (16 hex digits)
	kIDList                // operation ids
	kPIDList               // pids
	kPayload               // captured bytes
)

var kindNames = [...]string{
	kInt: "number", kSize: "size", kDuration: "duration", kNanos: "number (nanoseconds)",
	kTime: "time", kString: "string", kMechanism: "mechanism", kOp: "operation",
	kErrno: "errno name", kSignal: "signal name", kBool: "boolean", kID: "operation id",
	kIDList: "list of operation ids", kPIDList: "list of pids", kPayload: "bytes",
}

func (k kind) String() string { return kindNames[k] }

// fieldDef is a field of the event log as the filter sees it. Exactly one
// of num, str and boolean reads its value (lists and payload are read by
// the compiler); has is nil for a field every operation has.
type fieldDef struct {
	name    string
	kind    kind
	has     func(*flow.Operation) bool
	num     func(*flow.Operation) int64
	str     func(*flow.Operation) string
	boolean func(*flow.Operation) bool
}

func hasPeer(op *flow.Operation) bool { return op.Peer.PID != 0 || op.Peer == flow.Kernel }

// fields are the event log's (exporter/eventlog.go, eventFields), present
// exactly when the event log writes them, plus duration.
var fields = []*fieldDef{
	{name: "id", kind: kID, num: func(op *flow.Operation) int64 { return int64(op.ID) }},
	{name: "time", kind: kTime, num: func(op *flow.Operation) int64 { return op.Time.UnixNano() }},
	{name: "duration", kind: kDuration, num: func(op *flow.Operation) int64 { return int64(op.Duration) }},
	{name: "duration_ns", kind: kNanos, num: func(op *flow.Operation) int64 { return int64(op.Duration) }},
	{name: "pid", kind: kInt, num: func(op *flow.Operation) int64 { return int64(op.PID) }},
	{name: "tid", kind: kInt, num: func(op *flow.Operation) int64 { return int64(op.TID) }},
	{name: "ppid", kind: kInt, num: func(op *flow.Operation) int64 { return int64(op.PPID) }},
	{name: "comm", kind: kString, str: func(op *flow.Operation) string { return op.Comm }},
	{name: "exe", kind: kString, str: func(op *flow.Operation) string { return op.Exe },
		has: func(op *flow.Operation) bool { return op.Exe != "" }},
	{name: "cmdline", kind: kString, str: func(op *flow.Operation) string { return op.Cmdline },
		has: func(op *flow.Operation) bool { return op.Cmdline != "" }},
	{name: "mechanism", kind: kMechanism, num: func(op *flow.Operation) int64 { return int64(op.Mechanism) }},
	{name: "op", kind: kOp, num: func(op *flow.Operation) int64 { return int64(op.Op) }},
	{name: "syscall", kind: kString, str: func(op *flow.Operation) string { return op.Syscall },
		has: func(op *flow.Operation) bool { return op.Syscall != "" }},
	{name: "channel", kind: kString, str: func(op *flow.Operation) string { return op.Channel },
		has: func(op *flow.Operation) bool { return op.Channel != "" }},
	{name: "endpoint", kind: kString, str: func(op *flow.Operation) string { return op.Endpoint },
		has: func(op *flow.Operation) bool { return op.Endpoint != "" }},
	{name: "bytes", kind: kSize, num: func(op *flow.Operation) int64 { return op.Bytes }},
	{name: "count", kind: kInt, num: func(op *flow.Operation) int64 { return op.Ops() }},
	{name: "busy_ns", kind: kNanos, num: func(op *flow.Operation) int64 { return int64(op.Busy) },
		has: func(op *flow.Operation) bool { return op.Count > 1 }},
	{name: "peer_pid", kind: kInt, num: func(op *flow.Operation) int64 { return int64(op.Peer.PID) }, has: hasPeer},
	{name: "peer_comm", kind: kString, str: func(op *flow.Operation) string { return op.Peer.Comm }, has: hasPeer},
	{name: "peers", kind: kPIDList, has: func(op *flow.Operation) bool { return len(op.Peers) > 0 }},
	{name: "signal", kind: kSignal, str: func(op *flow.Operation) string { return op.Signal },
		has: func(op *flow.Operation) bool { return op.Signal != "" }},
	{name: "queue_depth", kind: kInt, num: func(op *flow.Operation) int64 { return op.QueueDepth },
		has: func(op *flow.Operation) bool { return op.QueueDepth >= 0 }},
	{name: "message_type", kind: kInt, num: func(op *flow.Operation) int64 { return op.MessageType },
		has: func(op *flow.Operation) bool { return op.HasMessageType }},
	{name: "links", kind: kIDList, has: func(op *flow.Operation) bool { return len(op.Links) > 0 }},
	{name: "error", kind: kErrno, str: func(op *flow.Operation) string { return op.Error },
		has: func(op *flow.Operation) bool { return op.Error != "" }},
	{name: "blocked", kind: kBool, boolean: func(op *flow.Operation) bool { return op.Blocked }},
	{name: "payload", kind: kPayload, has: func(op *flow.Operation) bool { return op.PayloadCaptured }},
	{name: "payload_truncated", kind: kBool, boolean: func(op *flow.Operation) bool { return op.PayloadTruncated },
		has: func(op *flow.Operation) bool { return op.PayloadCaptured }},
	{name: "container_id", kind: kString, str: func(op *flow.Operation) string { return op.ContainerID },
		has: func(op *flow.Operation) bool { return op.ContainerID != "" }},
	{name: "cgroup_id", kind: kInt, num: func(op *flow.Operation) int64 { return int64(op.CgroupID) },
		has: func(op *flow.Operation) bool { return op.CgroupID != 0 }},
}

var fieldByName = func() map[string]*fieldDef {
	m := make(map[string]*fieldDef, len(fields))
	for _, f := range fields {
		m[f.name] = f
	}
	return m
}()

func fieldNames() []string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	return names
}

// The names the enum-like fields take.
var (
	mechanismValues = enumNames(func(v int) string { return flow.Mechanism(v).String() }, "mechanism(")
	opValues        = enumNames(func(v int) string { return flow.OpType(v).String() }, "op(")
	errnoValues     = errnoNames()
	signalValues    = func() map[string]int64 {
		m := map[string]int64{}
		for n := 1; n <= 64; n++ {
			m[flow.SignalName(n)] = int64(n)
		}
		return m
	}()
)

// enumNames maps the names of an enum's values 1..254 to them, stopping at
// the first value that has no name (its String falls back to prefix).
func enumNames(name func(int) string, prefix string) map[string]int64 {
	m := map[string]int64{}
	for v := 1; v < 255; v++ {
		s := name(v)
		if len(s) >= len(prefix) && s[:len(prefix)] == prefix {
			break
		}
		m[s] = int64(v)
	}
	return m
}

// anyErrnoName: no errno list on this system, so any E… name passes.
var anyErrnoName bool

// validErrno reports whether s is an errno name the event log can write:
// a known name, or errno_N for one without a name (probes/errno.go).
func validErrno(s string) bool {
	if _, ok := errnoValues[s]; ok {
		return true
	}
	if anyErrnoName && len(s) > 1 && s[0] == 'E' && strings.Trim(s[1:], "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") == "" {
		return true
	}
	if len(s) > 6 && s[:6] == "errno_" {
		_, err := strconv.Atoi(s[6:])
		return err == nil
	}
	return false
}

func keys(m map[string]int64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
