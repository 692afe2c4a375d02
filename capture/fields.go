package capture

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/icptrack/icptrack/flow"
)

// value is one field's value as text: a scalar, or a list's elements.
type value struct {
	s      string
	list   []string
	isList bool
}

// setter parses a field's value into an operation.
type setter func(op *flow.Operation, v value) error

var (
	mechanisms = map[string]flow.Mechanism{}
	opTypes    = map[string]flow.OpType{}
)

func init() {
	for m := flow.Mechanism(1); int(m) < flow.MechanismCount; m++ {
		mechanisms[m.String()] = m
	}
	for o := flow.OpType(1); !strings.HasPrefix(o.String(), "op("); o++ {
		opTypes[o.String()] = o
	}
}

func scalar(v value) (string, error) {
	if v.isList {
		return "", fmt.Errorf("is a list, want a single value")
	}
	return v.s, nil
}

func parseInt(v value, bits int) (int64, error) {
	s, err := scalar(v)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(s, 10, bits)
	if err != nil {
		return 0, fmt.Errorf("%q is not a whole number", s)
	}
	return n, nil
}

func parseUint(s string, bits int) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, bits)
	if err != nil {
		return 0, fmt.Errorf("%q is not a whole number from 0 to %d", s, uint64(1)<<bits-1)
	}
	return n, nil
}

func parseID(s string) (flow.OpID, error) {
	n, err := strconv.ParseUint(s, 16, 64)
	if len(s) != 16 || err != nil {
		return 0, fmt.Errorf("%q is not an operation id (16 hexadecimal digits)", s)
	}
	return flow.OpID(n), nil
}

func str(set func(*flow.Operation, string)) setter {
	return func(op *flow.Operation, v value) error {
		s, err := scalar(v)
		set(op, s)
		return err
	}
}

func integer(bits int, set func(*flow.Operation, int64)) setter {
	return func(op *flow.Operation, v value) error {
		n, err := parseInt(v, bits)
		if err == nil {
			set(op, n)
		}
		return err
	}
}

func unsigned(bits int, set func(*flow.Operation, uint64)) setter {
	return func(op *flow.Operation, v value) error {
		s, err := scalar(v)
		if err != nil {
			return err
		}
		n, err := parseUint(s, bits)
		if err == nil {
			set(op, n)
		}
		return err
	}
}

func boolean(set func(*flow.Operation, bool)) setter {
	return func(op *flow.Operation, v value) error {
		s, err := scalar(v)
		if err != nil {
			return err
		}
		b, err := strconv.ParseBool(s)
		if err != nil || (s != "true" && s != "false") {
			return fmt.Errorf("%q is not true or false", s)
		}
		set(op, b)
		return nil
	}
}

// fields parse the event log's fields (DESIGN.md, "The event log") by name.
var fields = map[string]setter{
	"id": func(op *flow.Operation, v value) error {
		s, err := scalar(v)
		if err == nil {
			op.ID, err = parseID(s)
		}
		return err
	},
	"time": func(op *flow.Operation, v value) error {
		s, err := scalar(v)
		if err != nil {
			return err
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return fmt.Errorf("%q is not an RFC 3339 time", s)
		}
		op.Time = t.UTC()
		return nil
	},
	"duration_ns": integer(64, func(op *flow.Operation, n int64) { op.Duration = time.Duration(n) }),
	"pid":         unsigned(32, func(op *flow.Operation, n uint64) { op.PID = uint32(n) }),
	"tid":         unsigned(32, func(op *flow.Operation, n uint64) { op.TID = uint32(n) }),
	"ppid":        unsigned(32, func(op *flow.Operation, n uint64) { op.PPID = uint32(n) }),
	"comm":        str(func(op *flow.Operation, s string) { op.Comm = s }),
	"exe":         str(func(op *flow.Operation, s string) { op.Exe = s }),
	"cmdline":     str(func(op *flow.Operation, s string) { op.Cmdline = s }),
	"mechanism": func(op *flow.Operation, v value) error {
		s, err := scalar(v)
		if err != nil {
			return err
		}
		m, ok := mechanisms[s]
		if !ok {
			return fmt.Errorf("%q is not a mechanism", s)
		}
		op.Mechanism = m
		return nil
	},
	"op": func(op *flow.Operation, v value) error {
		s, err := scalar(v)
		if err != nil {
			return err
		}
		o, ok := opTypes[s]
		if !ok {
			return fmt.Errorf("%q is not an operation type", s)
		}
		op.Op = o
		return nil
	},
	"syscall":      str(func(op *flow.Operation, s string) { op.Syscall = s }),
	"channel":      str(func(op *flow.Operation, s string) { op.Channel = s }),
	"endpoint":     str(func(op *flow.Operation, s string) { op.Endpoint = s }),
	"bytes":        integer(64, func(op *flow.Operation, n int64) { op.Bytes = n }),
	"count":        unsigned(32, func(op *flow.Operation, n uint64) { op.Count = uint32(n) }),
	"busy_ns":      integer(64, func(op *flow.Operation, n int64) { op.Busy = time.Duration(n) }),
	"peer_pid":     unsigned(32, func(op *flow.Operation, n uint64) { op.Peer.PID = uint32(n) }),
	"peer_comm":    str(func(op *flow.Operation, s string) { op.Peer.Comm = s }),
	"signal":       str(func(op *flow.Operation, s string) { op.Signal = s }),
	"queue_depth":  integer(64, func(op *flow.Operation, n int64) { op.QueueDepth = n }),
	"message_type": integer(64, func(op *flow.Operation, n int64) { op.MessageType, op.HasMessageType = n, true }),
	"error":        str(func(op *flow.Operation, s string) { op.Error = s }),
	"blocked":      boolean(func(op *flow.Operation, b bool) { op.Blocked = b }),
	"payload": func(op *flow.Operation, v value) error {
		s, err := scalar(v)
		if err != nil {
			return err
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return fmt.Errorf("is not base64: %v", err)
		}
		op.Payload, op.PayloadCaptured = b, true
		return nil
	},
	"payload_truncated": boolean(func(op *flow.Operation, b bool) {
		op.PayloadTruncated, op.PayloadCaptured = b, true
	}),
	"container_id": str(func(op *flow.Operation, s string) { op.ContainerID = s }),
	"cgroup_id":    unsigned(64, func(op *flow.Operation, n uint64) { op.CgroupID = n }),
	"links": func(op *flow.Operation, v value) error {
		if !v.isList {
			return fmt.Errorf("is not a list of operation ids")
		}
		op.Links = make([]flow.OpID, 0, len(v.list))
		for _, s := range v.list {
			id, err := parseID(s)
			if err != nil {
				return err
			}
			op.Links = append(op.Links, id)
		}
		return nil
	},
	"peers": func(op *flow.Operation, v value) error {
		if !v.isList {
			return fmt.Errorf("is not a list of pids")
		}
		op.Peers = make([]uint32, 0, len(v.list))
		for _, s := range v.list {
			n, err := parseUint(s, 32)
			if err != nil {
				return err
			}
			op.Peers = append(op.Peers, uint32(n))
		}
		return nil
	},
}

// listFields are the fields whose values are lists.
var listFields = map[string]bool{"links": true, "peers": true}

// builder collects one operation's fields.
type builder struct {
	op   *flow.Operation
	seen map[string]bool
}

func newBuilder() builder {
	return builder{op: &flow.Operation{QueueDepth: -1}, seen: make(map[string]bool, 32)}
}

// set parses one field. Fields this version does not know are skipped:
// the event log adds fields and never renames them.
func (b *builder) set(name string, v value) error {
	f, ok := fields[name]
	if !ok {
		return nil
	}
	if b.seen[name] {
		return fmt.Errorf("field %q: appears twice", name)
	}
	b.seen[name] = true
	if err := f(b.op, v); err != nil {
		return fmt.Errorf("field %q: %v", name, err)
	}
	return nil
}

// done checks that the fields every operation has are there.
func (b *builder) done() (*flow.Operation, error) {
	for _, name := range []string{"id", "time", "mechanism", "op"} {
		if !b.seen[name] {
			return nil, fmt.Errorf("field %q is missing", name)
		}
	}
	return b.op, nil
}
