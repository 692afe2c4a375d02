package probes

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/icptrack/icptrack/flow"
)

const shmRounds = 5

// checkShared asserts what two processes sharing a segment did: both
// attached it under one channel, the second naming the first as a peer;
// the waiter's futex waits were woken by the waker's wakes, each linked to
// one; both detached. It returns the channel.
func checkShared(t *testing.T, ops []*flow.Operation, mech flow.Mechanism, waker, waiter, size int) string {
	t.Helper()
	var attaches, detaches, waits, wakes []*flow.Operation
	for _, op := range ops {
		if op.Mechanism != mech || (int(op.PID) != waker && int(op.PID) != waiter) {
			continue
		}
		switch op.Op {
		case flow.Attach:
			attaches = append(attaches, op)
		case flow.Detach:
			detaches = append(detaches, op)
		case flow.Wait:
			if op.Error == "" {
				waits = append(waits, op)
			}
		case flow.Wake:
			wakes = append(wakes, op)
		}
	}
	if len(attaches) != 2 || len(detaches) != 2 {
		t.Fatalf("%d attaches and %d detaches, want 2 of each: %s", len(attaches), len(detaches), describe(ops))
	}
	channel := attaches[0].Channel
	for _, op := range append(slices.Clone(attaches), detaches...) {
		if op.Channel != channel || op.Bytes != int64(size) {
			t.Errorf("%s on %s of %d bytes, want %s and %d", op.Op, op.Channel, op.Bytes, channel, size)
		}
	}
	// Whichever attached second names the first (their calls can overlap,
	// so which one that is is not fixed).
	first, second := attaches[0], attaches[1]
	if len(first.Peers) != 0 {
		first, second = second, first
	}
	if len(first.Peers) != 0 || !slices.Equal(second.Peers, []uint32{first.PID}) {
		t.Errorf("attach peers %v and %v, want none, and the first attacher [%d]", first.Peers, second.Peers, first.PID)
	}
	if len(wakes) != shmRounds {
		t.Errorf("%d wakes, want %d", len(wakes), shmRounds)
	}
	if len(waits) < 1 {
		t.Fatalf("no futex wait was reported")
	}
	wakeIDs := make(map[flow.OpID]bool)
	for _, w := range wakes {
		if int(w.PID) != waker || w.Channel != channel {
			t.Errorf("wake %s", describe([]*flow.Operation{w}))
		}
		wakeIDs[w.ID] = true
	}
	for _, w := range waits {
		if int(w.PID) != waiter || w.Channel != channel || len(w.Links) != 1 || !wakeIDs[w.Links[0]] || int(w.Peer.PID) != waker {
			t.Errorf("wait %s: want the waiter woken by one of the waker's wakes", describe([]*flow.Operation{w}))
		}
	}
	return channel
}

func lifecycle(ops []*flow.Operation, mech flow.Mechanism, channel string, kind flow.OpType) []*flow.Operation {
	var out []*flow.Operation
	for _, op := range ops {
		if op.Mechanism == mech && op.Op == kind && (channel == "" || op.Channel == channel) {
			out = append(out, op)
		}
	}
	return out
}

func TestSysVSharedMemory(t *testing.T) {
	key := strconv.Itoa(os.Getpid()<<8 | 1)
	c := startCapture(t, DefaultConfig())
	wk := spawn(t, "shm-sysv", nil, key, "4096", "waker", strconv.Itoa(shmRounds))
	wt := spawn(t, "shm-sysv", nil, key, "4096", "waiter", strconv.Itoa(shmRounds))
	wait(t, wk, wt)
	ops := c.stop(t)
	channel := checkShared(t, ops, flow.SysVShm, wk.Process.Pid, wt.Process.Pid, 4096)
	creates := lifecycle(ops, flow.SysVShm, channel, flow.Create)
	unlinks := lifecycle(ops, flow.SysVShm, channel, flow.Unlink)
	if len(creates) != 1 || int(creates[0].PID) != wk.Process.Pid || creates[0].Bytes != 4096 || len(unlinks) != 1 {
		t.Errorf("creates %s, unlinks %s: want one create of 4096 bytes by the waker, one unlink; all: %s", describe(creates), describe(unlinks), describe(lifecycle(ops, flow.SysVShm, "", flow.Unlink)))
	}
	if want := fmt.Sprintf("key 0x%x shmid", os.Getpid()<<8|1); creates[0].Endpoint[:len(want)] != want {
		t.Errorf("endpoint %q, want %q...", creates[0].Endpoint, want)
	}
}

func TestPOSIXSharedMemory(t *testing.T) {
	name := fmt.Sprintf("/icptrack-test-%d", os.Getpid())
	c := startCapture(t, DefaultConfig())
	wk := spawn(t, "shm-posix", nil, name, "8192", "waker", strconv.Itoa(shmRounds))
	wt := spawn(t, "shm-posix", nil, name, "8192", "waiter", strconv.Itoa(shmRounds))
	wait(t, wk, wt)
	ops := c.stop(t)
	channel := checkShared(t, ops, flow.POSIXShm, wk.Process.Pid, wt.Process.Pid, 8192)
	for _, kind := range []flow.OpType{flow.Create, flow.Attach, flow.Unlink} {
		got := lifecycle(ops, flow.POSIXShm, "", kind)
		if len(got) == 0 || got[0].Endpoint != name {
			t.Errorf("%s: %s, want endpoint %s", kind, describe(got), name)
		}
	}
	if opens := lifecycle(ops, flow.POSIXShm, channel, flow.Open); len(opens) == 0 || int(opens[0].PID) != wt.Process.Pid {
		t.Errorf("opens %s, want the waiter's", describe(opens))
	}
}

func TestMemfdSharedWithAChild(t *testing.T) {
	c := startCapture(t, DefaultConfig())
	p := spawn(t, "memfd", nil, "4096", strconv.Itoa(shmRounds))
	wait(t, p)
	ops := c.stop(t)
	var child int
	for _, op := range lifecycle(ops, flow.Memfd, "", flow.Attach) {
		if int(op.PID) != p.Process.Pid {
			child = int(op.PID)
		}
	}
	if child == 0 {
		t.Fatalf("the child's attach is missing: %s", describe(lifecycle(ops, flow.Memfd, "", flow.Attach)))
	}
	channel := checkShared(t, ops, flow.Memfd, p.Process.Pid, child, 4096)
	creates := lifecycle(ops, flow.Memfd, channel, flow.Create)
	if len(creates) != 1 || creates[0].Endpoint != "memfd:icptrack-test" {
		t.Errorf("creates %s, want one named memfd:icptrack-test", describe(creates))
	}
}
