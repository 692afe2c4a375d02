package probes

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/icptrack/icptrack/flow"
)

// waitForFile waits for a workload to write its pid to a file.
func waitForFile(t *testing.T, path string) int {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if b, err := os.ReadFile(path); err == nil && len(b) > 0 {
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err == nil {
				return pid
			}
		}
	}
	t.Fatalf("%s never appeared", path)
	return 0
}

func signalsOf(ops []*flow.Operation, pid int, kind flow.OpType, name string) []*flow.Operation {
	var out []*flow.Operation
	for _, op := range ops {
		if op.Mechanism == flow.Signal && int(op.PID) == pid && op.Op == kind && op.Signal == name {
			out = append(out, op)
		}
	}
	return out
}

// Every way a process sends a signal is a send naming the target; every
// delivery to the target's handler is a receive naming the sender and
// linked to the send.
func TestSignalsSentByAProcess(t *testing.T) {
	const count = 5
	for _, how := range []struct{ how, syscall string }{
		{"kill", "kill"}, {"tgkill", "tgkill"}, {"sigqueue", "rt_sigqueueinfo"}, {"pidfd", "pidfd_send_signal"},
	} {
		t.Run(how.how, func(t *testing.T) {
			ready := filepath.Join(t.TempDir(), "ready")
			c := startCapture(t, DefaultConfig())
			target := spawn(t, "signal-target", nil, "10", strconv.Itoa(count), ready)
			pid := waitForFile(t, ready)
			sender := spawnEnv(t, "signal-send", []string{"ICPTRACK_SIGNAL_ACK=" + ready + ".ack"},
				strconv.Itoa(pid), "10", strconv.Itoa(count), how.how)
			wait(t, sender, target)
			ops := c.stop(t)
			sends := signalsOf(ops, sender.Process.Pid, flow.Send, "SIGUSR1")
			recvs := signalsOf(ops, target.Process.Pid, flow.Receive, "SIGUSR1")
			if len(sends) != count || len(recvs) != count {
				t.Fatalf("%d sends and %d receives of SIGUSR1, want %d each: %s%s", len(sends), len(recvs), count, describe(sends), describe(recvs))
			}
			for i := range sends {
				s, r := sends[i], recvs[i]
				if s.Syscall != how.syscall || int(s.Peer.PID) != pid {
					t.Errorf("send %d by %s to %d, want %s to %d", i, s.Syscall, s.Peer.PID, how.syscall, pid)
				}
				if int(r.Peer.PID) != sender.Process.Pid || len(r.Links) != 1 || r.Links[0] != s.ID || r.Channel != s.Channel {
					t.Errorf("receive %d from %d links %v on %s, want the sender's send %s on %s", i, r.Peer.PID, r.Links, r.Channel, s.ID, s.Channel)
				}
			}
		})
	}
}

// Signals the kernel raises come from the kernel.
func TestSignalsRaisedByTheKernel(t *testing.T) {
	c := startCapture(t, DefaultConfig())
	w := spawn(t, "sigpipe", nil)
	wait(t, w)
	ops := c.stop(t)
	sends := signalsOf(ops, 0, flow.Send, "SIGPIPE")
	recvs := signalsOf(ops, w.Process.Pid, flow.Receive, "SIGPIPE")
	if len(sends) != 1 || sends[0].Comm != "kernel" || int(sends[0].Peer.PID) != w.Process.Pid {
		t.Fatalf("kernel sends of SIGPIPE %s, want one to %d", describe(sends), w.Process.Pid)
	}
	if len(recvs) != 1 || recvs[0].Peer != flow.Kernel || len(recvs[0].Links) != 1 || recvs[0].Links[0] != sends[0].ID {
		t.Fatalf("receives of SIGPIPE %s, want one from the kernel linked to its send", describe(recvs))
	}
}

// spawnEnv is spawn with extra environment.
func spawnEnv(t *testing.T, mode string, env []string, args ...string) *execCmd {
	t.Helper()
	cmd := newWorkload(mode, args...)
	cmd.Env = append(cmd.Env, env...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", mode, err)
	}
	return cmd
}
