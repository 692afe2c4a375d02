package probes

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/icptrack/icptrack/flow"
	"github.com/icptrack/icptrack/internal/ipcload"
)

// checkQueue asserts a queue transfer: count sends and receives on one
// channel, every receive linked to exactly one send of its own message
// type, from the sender, each send taken once, in order within a type.
func checkQueue(t *testing.T, ops []*flow.Operation, mech flow.Mechanism, writer, reader, count int) (sends, recvs []*flow.Operation) {
	return checkQueueTypes(t, ops, mech, writer, reader, count, true)
}

// checkQueueTypes is checkQueue; exact false allows a receive that did not
// ask the kernel for its message's priority to be linked to another type.
func checkQueueTypes(t *testing.T, ops []*flow.Operation, mech flow.Mechanism, writer, reader, count int, exact bool) (sends, recvs []*flow.Operation) {
	t.Helper()
	sends = withBytes(withOp(byPID(ops, writer), flow.Send))
	recvs = withBytes(withOp(byPID(ops, reader), flow.Receive))
	if len(sends) != count || len(recvs) != count {
		t.Fatalf("%d sends and %d receives, want %d each: %s%s", len(sends), len(recvs), count, describe(sends), describe(recvs))
	}
	byID := make(map[flow.OpID]*flow.Operation)
	for _, s := range sends {
		if s.Mechanism != mech || s.Channel != sends[0].Channel || !s.HasMessageType || s.QueueDepth < 0 {
			t.Fatalf("send %s", describe([]*flow.Operation{s}))
		}
		byID[s.ID] = s
	}
	taken := make(map[flow.OpID]bool)
	lastTaken := make(map[int64]int) // per type, index of the last send taken
	index := make(map[flow.OpID]int)
	for i, s := range sends {
		index[s.ID] = i
	}
	for i, r := range recvs {
		if r.Channel != sends[0].Channel || int(r.Peer.PID) != writer || len(r.Links) != 1 {
			t.Fatalf("receive %d: %s, want one link to the sender's send on %s", i, describe([]*flow.Operation{r}), sends[0].Channel)
		}
		s := byID[r.Links[0]]
		if s == nil || taken[s.ID] {
			t.Fatalf("receive %d links %v: not a send, or one taken twice", i, r.Links)
		}
		taken[s.ID] = true
		if exact && (s.MessageType != r.MessageType || !r.HasMessageType) {
			t.Errorf("receive %d of type %d linked to a send of type %d", i, r.MessageType, s.MessageType)
		}
		if prev, ok := lastTaken[s.MessageType]; exact && ok && index[s.ID] < prev {
			t.Errorf("type %d taken out of order: send %d after send %d", s.MessageType, index[s.ID], prev)
		}
		lastTaken[s.MessageType] = index[s.ID]
	}
	return sends, recvs
}

func TestPOSIXQueueMatchesByPriority(t *testing.T) {
	for _, ask := range []string{"prio", "noprio"} {
		t.Run(ask, func(t *testing.T) {
			name := fmt.Sprintf("/icptrack-test-%d-%s", os.Getpid(), ask)
			c := startCapture(t, DefaultConfig())
			wc := spawn(t, "mq-send", nil, name, "40", strconv.Itoa(msgSize), "0,7,3")
			rc := spawn(t, "mq-recv", nil, name, "40", strconv.Itoa(msgSize), ask)
			wait(t, wc, rc)
			ops := c.stop(t)
			// Asked, the kernel says which priority each receive took;
			// not asked, icptrack infers it (README: what is approximate).
			sends, recvs := checkQueueTypes(t, ops, flow.POSIXMQ, wc.Process.Pid, rc.Process.Pid, 40, ask == "prio")
			for _, op := range []*flow.Operation{sends[0], recvs[0]} {
				if op.Endpoint != name || op.QueueDepth > 10 {
					t.Errorf("%s endpoint %q depth %d, want %s and at most 10", op.Op, op.Endpoint, op.QueueDepth, name)
				}
			}
			var opens, unlinks int
			for _, op := range ops {
				if op.Mechanism == flow.POSIXMQ && (op.Op == flow.Open || op.Op == flow.Create) && op.Channel == sends[0].Channel {
					opens++
				}
				if op.Mechanism == flow.POSIXMQ && op.Op == flow.Unlink && op.Endpoint == name {
					unlinks++
				}
			}
			if opens != 2 || unlinks != 1 {
				t.Errorf("%d opens and %d unlinks of the queue, want 2 and 1", opens, unlinks)
			}
		})
	}
}

func TestSysVQueueMatchesByType(t *testing.T) {
	for _, tc := range []struct {
		name   string
		msgtyp string
		except bool
		count  int
	}{
		{"any", "0", false, 30},
		{"type2", "2", false, 10},
		{"lowest-at-most-2", "-2", false, 20},
		{"except-3", "3", true, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := os.Getpid()<<4 | len(tc.name)
			c := startCapture(t, DefaultConfig())
			wc := spawn(t, "msg-send", nil, strconv.Itoa(key), "30", strconv.Itoa(msgSize), "1,2,3")
			args := []string{strconv.Itoa(key), strconv.Itoa(tc.count), strconv.Itoa(msgSize), tc.msgtyp}
			if tc.except {
				args = append(args, "except")
			}
			rc := spawn(t, "msg-recv", nil, args...)
			wait(t, wc, rc)
			ops := c.stop(t)
			removeMsgQueue(t, key)
			sends := withBytes(withOp(byPID(ops, wc.Process.Pid), flow.Send))
			if len(sends) != 30 {
				t.Fatalf("%d sends, want 30", len(sends))
			}
			// Only the receives' sends are taken; check those.
			var taken []*flow.Operation
			recvs := withBytes(withOp(byPID(ops, rc.Process.Pid), flow.Receive))
			for _, s := range sends {
				for _, r := range recvs {
					if len(r.Links) == 1 && r.Links[0] == s.ID {
						taken = append(taken, s)
					}
				}
			}
			checkQueue(t, append(taken, recvs...), flow.SysVMQ, wc.Process.Pid, rc.Process.Pid, tc.count)
			if want := fmt.Sprintf("key 0x%x msqid", key); len(sends[0].Endpoint) < len(want) || sends[0].Endpoint[:len(want)] != want {
				t.Errorf("endpoint %q, want %q...", sends[0].Endpoint, want)
			}
		})
	}
}

// payloadLimits are the --payload sizes the queue payload tests run with:
// below the message size (captured truncated), and above it (all of it).
var payloadLimits = []int{16, 256}

// checkQueuePayload asserts that every send carries the first limit bytes
// of the message it sent, and every receive those of the message it took
// (the send it links to), truncated when the message was longer.
func checkQueuePayload(t *testing.T, sends, recvs []*flow.Operation, limit int) {
	t.Helper()
	index := make(map[flow.OpID]int)
	for i, s := range sends {
		index[s.ID] = i
	}
	for _, ops := range [][]*flow.Operation{sends, recvs} {
		for i, op := range ops {
			msg := index[op.ID]
			if op.Op == flow.Receive {
				msg = index[op.Links[0]]
			}
			want := ipcload.Message(msg, msgSize)
			trunc := limit < len(want)
			want = want[:min(limit, len(want))]
			if !op.PayloadCaptured || !bytes.Equal(op.Payload, want) || op.PayloadTruncated != trunc {
				t.Errorf("%s %d (message %d) payload %q truncated=%v, want %q truncated=%v",
					op.Syscall, i, msg, op.Payload, op.PayloadTruncated, want, trunc)
				break
			}
		}
	}
}

// mq_timedsend carries the sender's message, mq_timedreceive what the
// receiver got: the bytes each moved, up to the limit.
func TestPOSIXQueuePayloadIsCaptured(t *testing.T) {
	for _, limit := range payloadLimits {
		t.Run(strconv.Itoa(limit), func(t *testing.T) {
			name := fmt.Sprintf("/icptrack-test-%d-payload-%d", os.Getpid(), limit)
			cfg := DefaultConfig()
			cfg.PayloadBytes = limit
			c := startCapture(t, cfg)
			wc := spawn(t, "mq-send", nil, name, "20", strconv.Itoa(msgSize), "0,5")
			rc := spawn(t, "mq-recv", nil, name, "20", strconv.Itoa(msgSize), "prio")
			wait(t, wc, rc)
			sends, recvs := checkQueue(t, c.stop(t), flow.POSIXMQ, wc.Process.Pid, rc.Process.Pid, 20)
			checkQueuePayload(t, sends, recvs, limit)
		})
	}
}

// msgsnd and msgrcv carry the message text (mtext), without its mtype.
func TestSysVQueuePayloadIsCaptured(t *testing.T) {
	for _, limit := range payloadLimits {
		t.Run(strconv.Itoa(limit), func(t *testing.T) {
			key := os.Getpid()<<8 | 0xc0 | limit>>8
			cfg := DefaultConfig()
			cfg.PayloadBytes = limit
			c := startCapture(t, cfg)
			wc := spawn(t, "msg-send", nil, strconv.Itoa(key), "20", strconv.Itoa(msgSize), "1,2")
			rc := spawn(t, "msg-recv", nil, strconv.Itoa(key), "20", strconv.Itoa(msgSize), "0")
			wait(t, wc, rc)
			ops := c.stop(t)
			removeMsgQueue(t, key)
			sends, recvs := checkQueue(t, ops, flow.SysVMQ, wc.Process.Pid, rc.Process.Pid, 20)
			checkQueuePayload(t, sends, recvs, limit)
		})
	}
}

func removeMsgQueue(t *testing.T, key int) {
	id, _, e := unix.Syscall(unix.SYS_MSGGET, uintptr(key), 0, 0)
	if e == 0 {
		unix.Syscall(unix.SYS_MSGCTL, id, unix.IPC_RMID, uintptr(unsafe.Pointer(nil)))
	}
}
