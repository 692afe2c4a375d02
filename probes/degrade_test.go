package probes

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/icptrack/icptrack/flow"
)

// socketPrograms are every program that can serve the socket send and
// receive paths, whichever variant a kernel would pick.
var socketPrograms = "sock_send_length,sock_recv_length,fexit_unix_stream_sendmsg,fexit_unix_dgram_sendmsg," +
	"fexit_unix_stream_recvmsg,fexit_unix_dgram_recvmsg,fexit_unix_seqpacket_sendmsg,fexit_unix_seqpacket_recvmsg,fexit_inet_sendmsg,fexit_inet6_sendmsg," +
	"fexit_inet_recvmsg,fexit_inet6_recvmsg"

func offSet(t *testing.T, tr *Tracer) flow.MechanismSet {
	t.Helper()
	var off flow.MechanismSet
	for _, st := range tr.Unavailable() {
		off |= flow.SetOf(st.Mechanism)
		if len(st.Hooks) != 0 {
			t.Errorf("%s is off but names hooks %v", st.Mechanism, st.Hooks)
		}
	}
	return off
}

// The verifier refuses the socket programs (every variant): the socket
// mechanisms are off and say why, and pipes are still matched exactly.
func TestRejectedSocketProgramsLeavePipesTraced(t *testing.T) {
	t.Setenv(rejectEnv, socketPrograms)
	ops, w, r := pipeTransfer(t, DefaultConfig(), "write", "read")
	checkTransfer(t, ops, transfer{mech: flow.Pipe, writer: w, reader: r, count: msgCount, size: msgSize,
		sendSyscall: "write", recvSyscall: "read", eof: true})

	tr := openTracer(t, DefaultConfig())
	want, why := sockets, "the verifier rejected it"
	if tr.cfg.sockSyscalls {
		// No socket hooks on this kernel (arm64 6.1): unix sockets come
		// from the syscall hooks, and TCP and UDP are off anyway.
		want, why = inetSockets, "this kernel has no such tracepoint"
	}
	if off := offSet(t, tr); off != want {
		t.Errorf("off: %v, want exactly %v", off, want)
	}
	for _, st := range tr.Unavailable() {
		if !strings.Contains(st.Err.Error(), why) {
			t.Errorf("%s: %v, want %q", st.Mechanism, st.Err, why)
		}
	}
	for _, st := range tr.Mechanisms() {
		if st.Err == nil && len(st.Hooks) == 0 {
			t.Errorf("%s is on with no hooks", st.Mechanism)
		}
	}
}

// The verifier refuses sys_enter: pipes, FIFOs, queues and shared memory
// are off, and unix sockets are still matched exactly.
func TestRejectedSyscallHookLeavesSocketsTraced(t *testing.T) {
	t.Setenv(rejectEnv, "sys_enter")
	c := startCapture(t, DefaultConfig())
	if c.tr.cfg.sockSyscalls {
		// Sockets need the syscall hooks on this kernel (arm64 6.1):
		// only signals are left.
		if off := offSet(t, c.tr); off != flow.AllMechanisms()&^flow.SetOf(flow.Signal) {
			t.Errorf("off: %v, want every mechanism but signal", off)
		}
		return
	}
	if off := offSet(t, c.tr); off != syscallMechanisms {
		t.Errorf("off: %v, want exactly the syscall mechanisms %v", off, syscallMechanisms)
	}
	a, b := socketpair(t, unixTypes[flow.UnixStream])
	wc := spawn(t, "write", []*os.File{a}, "3", strconv.Itoa(msgCount), strconv.Itoa(msgSize), "write")
	rc := spawn(t, "read", []*os.File{b}, "3", strconv.Itoa(msgSize), "read")
	closeAll(a, b)
	wait(t, wc, rc)
	checkTransfer(t, c.stop(t), transfer{mech: flow.UnixStream, writer: wc.Process.Pid, reader: rc.Process.Pid,
		count: msgCount, size: msgSize, sendSyscall: "write", recvSyscall: "read", eof: true})
}

// A mechanism the user named that cannot be traced fails Open, naming it
// and the kernel; with every mechanism off, Open fails too. Pipes need
// sys_enter on every kernel.
func TestNamedMechanismThatCannotLoadIsAnError(t *testing.T) {
	t.Setenv(rejectEnv, "sys_enter")
	cfg := DefaultConfig()
	cfg.FollowPID = os.Getpid()
	cfg.Mechanisms = flow.SetOf(flow.Pipe, flow.Signal)
	cfg.Required = cfg.Mechanisms
	tr, err := Open(cfg)
	if err == nil {
		tr.Close()
		t.Fatal("Open succeeded without pipe, which was named")
	}
	if !errors.Is(err, ErrMechanismUnavailable) || !strings.Contains(err.Error(), "pipe: tp_btf/sys_enter") ||
		!strings.Contains(err.Error(), KernelRelease()) {
		t.Errorf("error %q, want ErrMechanismUnavailable naming pipe, its hook and the kernel", err)
	}

	cfg.Required = 0
	tr, err = Open(cfg)
	if err != nil {
		t.Fatalf("Open failed with signal left to trace: %v", err)
	}
	tr.Close()

	cfg.Mechanisms = flow.SetOf(flow.Pipe)
	if tr, err := Open(cfg); err == nil {
		tr.Close()
		t.Fatal("Open succeeded with nothing it could trace")
	} else if !errors.Is(err, ErrMechanismUnavailable) {
		t.Errorf("error %q, want ErrMechanismUnavailable", err)
	}
}
