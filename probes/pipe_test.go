package probes

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/icptrack/icptrack/flow"
	"github.com/icptrack/icptrack/internal/ipcload"
)

const (
	msgCount = 100
	msgSize  = 64
)

// pipeTransfer runs a writer and a reader on one pipe and returns their
// operations. The writer also writes every message to /dev/null and to a
// regular file, which must not show up.
func pipeTransfer(t *testing.T, cfg Config, writeHow, readHow string) (ops []*flow.Operation, writer, reader int) {
	t.Helper()
	c := startCapture(t, cfg)
	r, w := pipe(t)
	file := filepath.Join(t.TempDir(), "regular")
	wc := spawn(t, "write", []*os.File{w}, "3", strconv.Itoa(msgCount), strconv.Itoa(msgSize), writeHow, file)
	rc := spawn(t, "read", []*os.File{r}, "3", strconv.Itoa(msgSize), readHow)
	closeAll(r, w)
	wait(t, wc, rc)
	return c.stop(t), wc.Process.Pid, rc.Process.Pid
}

func TestPipeReceiveLinksToItsWrites(t *testing.T) {
	ops, w, r := pipeTransfer(t, DefaultConfig(), "write", "read")
	sends, _ := checkTransfer(t, ops, transfer{mech: flow.Pipe, writer: w, reader: r, count: msgCount, size: msgSize,
		sendSyscall: "write", recvSyscall: "read", eof: true})
	if ep := sends[0].Endpoint; ep != "pipe:["+sends[0].Channel[len("pipe:"):]+"]" {
		t.Errorf("endpoint %q, want pipe:[inode] matching channel %q", ep, sends[0].Channel)
	}
}

func TestPipeVectoredIO(t *testing.T) {
	ops, w, r := pipeTransfer(t, DefaultConfig(), "writev", "readv")
	checkTransfer(t, ops, transfer{mech: flow.Pipe, writer: w, reader: r, count: msgCount, size: msgSize,
		sendSyscall: "writev", recvSyscall: "readv", eof: true})
}

func TestPipeVmsplice(t *testing.T) {
	ops, w, r := pipeTransfer(t, DefaultConfig(), "vmsplice", "read")
	checkTransfer(t, ops, transfer{mech: flow.Pipe, writer: w, reader: r, count: msgCount, size: msgSize,
		sendSyscall: "vmsplice", recvSyscall: "read", eof: true})
}

// writer -> pipe a -> splicer -> pipe b -> reader: the splicer receives
// from one pipe and sends to the other in one call.
func TestPipeSpliceIsAReceiveAndASend(t *testing.T) {
	c := startCapture(t, DefaultConfig())
	ar, aw := pipe(t)
	br, bw := pipe(t)
	wc := spawn(t, "write", []*os.File{aw}, "3", strconv.Itoa(msgCount), strconv.Itoa(msgSize), "write")
	sc := spawn(t, "splice", []*os.File{ar, bw}, "3", "4", strconv.Itoa(msgSize))
	rc := spawn(t, "read", []*os.File{br}, "3", strconv.Itoa(msgSize), "read")
	closeAll(ar, aw, br, bw)
	wait(t, wc, sc, rc)
	ops := c.stop(t)

	splicer := byPID(ops, sc.Process.Pid)
	in := withOp(splicer, flow.Receive)
	out := withOp(splicer, flow.Send)
	// Into pipe a: writer to splicer.
	checkTransfer(t, append(byPID(ops, wc.Process.Pid), in...), transfer{mech: flow.Pipe,
		writer: wc.Process.Pid, reader: sc.Process.Pid, count: msgCount, size: msgSize,
		sendSyscall: "write", recvSyscall: "splice", eof: true})
	// Out of pipe b: splicer to reader. The final splice moved 0 bytes.
	if len(out) != msgCount+1 || out[msgCount].Bytes != 0 {
		t.Fatalf("splicer sent %d times, want %d and a last one of 0 bytes: %s", len(out), msgCount+1, describe(out))
	}
	checkTransfer(t, append(out[:msgCount], byPID(ops, rc.Process.Pid)...), transfer{mech: flow.Pipe,
		writer: sc.Process.Pid, reader: rc.Process.Pid, count: msgCount, size: msgSize,
		sendSyscall: "splice", recvSyscall: "read", eof: true})
	if in[0].Channel == out[0].Channel {
		t.Errorf("splice's two ends share channel %s, want the two pipes", in[0].Channel)
	}
}

// tee copies without consuming: its receive and the read that follows both
// deliver the same write.
func TestPipeTeeDoesNotConsume(t *testing.T) {
	c := startCapture(t, DefaultConfig())
	ar, aw := pipe(t)
	br, bw := pipe(t)
	wc := spawn(t, "write", []*os.File{aw}, "3", strconv.Itoa(msgCount), strconv.Itoa(msgSize), "write")
	tc := spawn(t, "tee", []*os.File{ar, bw}, "3", "4", strconv.Itoa(msgSize))
	rc := spawn(t, "read", []*os.File{br}, "3", strconv.Itoa(msgSize), "read")
	closeAll(ar, aw, br, bw)
	wait(t, wc, tc, rc)
	ops := c.stop(t)

	sends := withOp(byPID(ops, wc.Process.Pid), flow.Send)
	var tees, reads []*flow.Operation
	for _, op := range withBytes(withOp(byPID(ops, tc.Process.Pid), flow.Receive)) {
		if op.Syscall == "tee" {
			tees = append(tees, op)
		} else {
			reads = append(reads, op)
		}
	}
	if len(sends) != msgCount || len(tees) != msgCount || len(reads) != msgCount {
		t.Fatalf("%d sends, %d tees, %d reads; want %d of each", len(sends), len(tees), len(reads), msgCount)
	}
	for i := range sends {
		for _, r := range []*flow.Operation{tees[i], reads[i]} {
			if len(r.Links) != 1 || r.Links[0] != sends[i].ID || int(r.Peer.PID) != wc.Process.Pid {
				t.Errorf("%s %d links %v from %d, want send %s from %d", r.Syscall, i, r.Links, r.Peer.PID, sends[i].ID, wc.Process.Pid)
			}
		}
	}
	// And what tee sent into pipe b reached the reader.
	checkTransfer(t, append(withBytes(withOp(byPID(ops, tc.Process.Pid), flow.Send)), byPID(ops, rc.Process.Pid)...),
		transfer{mech: flow.Pipe, writer: tc.Process.Pid, reader: rc.Process.Pid, count: msgCount, size: msgSize,
			sendSyscall: "tee", recvSyscall: "read", eof: true})
}

func TestFIFOIsNamedByItsPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "orders.fifo")
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	c := startCapture(t, DefaultConfig())
	wc := spawn(t, "fifo-write", nil, path, strconv.Itoa(msgCount), strconv.Itoa(msgSize))
	rc := spawn(t, "fifo-read", nil, path, strconv.Itoa(msgSize))
	wait(t, wc, rc)
	ops := c.stop(t)
	sends, recvs := checkTransfer(t, ops, transfer{mech: flow.FIFO, writer: wc.Process.Pid, reader: rc.Process.Pid,
		count: msgCount, size: msgSize, sendSyscall: "write", recvSyscall: "read", eof: true})
	for _, op := range []*flow.Operation{sends[0], recvs[0]} {
		if op.Endpoint != path {
			t.Errorf("%s endpoint %q, want the FIFO's path %q", op.Op, op.Endpoint, path)
		}
	}
}

func TestPipePayloadIsCapturedAndTruncated(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PayloadBytes = 16
	ops, w, r := pipeTransfer(t, cfg, "writev", "read")
	sends, recvs := checkTransfer(t, ops, transfer{mech: flow.Pipe, writer: w, reader: r, count: msgCount, size: msgSize,
		sendSyscall: "writev", recvSyscall: "read", eof: true})
	for i := 0; i < msgCount; i++ {
		want := ipcload.Message(i, msgSize)[:16]
		for _, op := range []*flow.Operation{sends[i], recvs[i]} {
			if !op.PayloadCaptured || !bytes.Equal(op.Payload, want) || !op.PayloadTruncated {
				t.Fatalf("%s %d payload %q truncated=%v, want %q truncated", op.Op, i, op.Payload, op.PayloadTruncated, want)
			}
		}
	}
}

func TestPipePayloadWholeMessage(t *testing.T) {
	cfg := DefaultConfig()
	cfg.PayloadBytes = 256
	ops, w, r := pipeTransfer(t, cfg, "write", "readv")
	sends, recvs := checkTransfer(t, ops, transfer{mech: flow.Pipe, writer: w, reader: r, count: msgCount, size: msgSize,
		sendSyscall: "write", recvSyscall: "readv", eof: true})
	for i := 0; i < msgCount; i++ {
		want := ipcload.Message(i, msgSize)
		for _, op := range []*flow.Operation{sends[i], recvs[i]} {
			if !bytes.Equal(op.Payload, want) || op.PayloadTruncated {
				t.Fatalf("%s %d payload %q truncated=%v, want all %d bytes", op.Op, i, op.Payload, op.PayloadTruncated, msgSize)
			}
		}
	}
}

// Every syscall sys_enter marks as in flight is unmarked again, at its
// exit, also when its task is killed in it. A leak would send every later
// exit of the tasks sharing its slot down the slow path.
func TestInflightSlotsBalance(t *testing.T) {
	c := startCapture(t, DefaultConfig())
	r, w := pipe(t)
	wc := spawn(t, "write", []*os.File{w}, "3", "10", "64", "write", filepath.Join(t.TempDir(), "regular"))
	rc := spawn(t, "read", []*os.File{r}, "3", "64", "read")
	// A reader killed while it waits in read(2) on a pipe nobody writes.
	r2, w2 := pipe(t)
	blocked := spawn(t, "read", []*os.File{r2}, "3", "64", "read")
	closeAll(r, w, r2)
	wait(t, wc, rc)
	// The Go runtime may make the read on any of its threads.
	inRead := []byte(strconv.Itoa(unix.SYS_READ) + " ")
	reading := func() (bool, string) {
		tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(blocked.Process.Pid) + "/task/*/syscall")
		var seen []string
		for _, p := range tasks {
			b, _ := os.ReadFile(p)
			if bytes.HasPrefix(b, inRead) {
				return true, ""
			}
			seen = append(seen, strings.TrimSpace(string(b)))
		}
		return false, strings.Join(seen, "; ")
	}
	for i := 0; ; i++ {
		ok, seen := reading()
		if ok {
			break
		}
		if i == 500 {
			t.Fatalf("the reader never waited in read(2): its threads' /proc/PID/task/TID/syscall say %q", seen)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := blocked.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = blocked.Wait()
	closeAll(w2)
	c.stop(t)

	// Likewise every traced task counted per slot is uncounted when it
	// exits.
	for _, name := range []string{"inflight_slots", "traced_slots"} {
		slots := new([65536]uint32)
		v, ok := c.tr.coll.Variables[name]
		if !ok {
			t.Fatalf("the BPF object has no %s", name)
		}
		if err := v.Get(slots); err != nil {
			t.Fatal(err)
		}
		for i, n := range slots {
			if n != 0 {
				t.Errorf("%s: slot %d counts %d after every traced task exited", name, i, n)
			}
		}
	}
}
