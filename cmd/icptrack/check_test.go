package main

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/icptrack/icptrack/flow"
)

// socketPrograms are every program that can serve the socket send and
// receive paths, whichever variant the kernel would pick.
const socketPrograms = "sock_send_length,sock_recv_length,fexit_unix_stream_sendmsg,fexit_unix_dgram_sendmsg," +
	"fexit_unix_stream_recvmsg,fexit_unix_dgram_recvmsg,fexit_unix_seqpacket_sendmsg,fexit_unix_seqpacket_recvmsg,fexit_inet_sendmsg,fexit_inet6_sendmsg," +
	"fexit_inet_recvmsg,fexit_inet6_recvmsg"

func checkJSON(t *testing.T, r result) checkReport {
	t.Helper()
	var rep checkReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("check --json is not one JSON object: %v\n%s", err, r.stdout)
	}
	return rep
}

// On the kernels CI runs on, every mechanism loads: check says so, row by
// row, and exits 0.
func TestCheckFindsEveryMechanism(t *testing.T) {
	needsBPF(t)
	r := run(t, "check")
	if r.code != 0 {
		t.Fatalf("check exited %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, name := range flow.AllMechanisms().List() {
		if !strings.Contains(r.stdout, "\n"+name.String()+" ") {
			t.Errorf("no row for %s:\n%s", name, r.stdout)
		}
	}
	for _, want := range []string{"kernel ", "BTF ", "capabilities ", "lockdown ", "ring buffer ", "tp_btf ", "fentry/fexit ", "kprobes ", "BPF LSM "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("check does not report %q:\n%s", strings.TrimSpace(want), r.stdout)
		}
	}

	rep := checkJSON(t, run(t, "check", "--json"))
	if !rep.OK || rep.Kernel == "" || !rep.BTF || len(rep.Mechanisms) != flow.AllMechanisms().Len() {
		t.Errorf("check --json: %+v", rep)
	}
	for _, m := range rep.Mechanisms {
		if m.Status != "ok" || len(m.Hooks) == 0 {
			t.Errorf("%s: %+v, want ok with its hooks", m.Mechanism, m)
		}
	}
}

// A program the verifier refuses: check names the mechanisms it takes
// down with the verifier's words and exits 1; run with the default
// mechanisms still traces the rest and says what is missing; run naming
// a missing mechanism fails.
func TestOneRejectedProgramTurnsOffOnlyItsMechanisms(t *testing.T) {
	needsBPF(t)
	reject := "ICPTRACK_TEST_REJECT=" + socketPrograms
	cmd := exec.Command(binary, "check", "--json")
	cmd.Env = append(cmd.Environ(), reject)
	r := runCmd(t, cmd)
	if r.code != 1 {
		t.Errorf("check exited %d with the socket programs refused, want 1", r.code)
	}
	rep := checkJSON(t, r)
	for _, m := range rep.Mechanisms {
		mech, _ := flow.ParseMechanisms(m.Mechanism)
		isSocket := mech&flow.SetOf(flow.UnixStream, flow.UnixDgram, flow.UnixSeqpacket, flow.TCP, flow.UDP) != 0
		switch {
		case isSocket && (m.Status != "unavailable" || !strings.Contains(m.Reason, "the verifier rejected it")):
			t.Errorf("%s: %+v, want unavailable with the verifier's refusal", m.Mechanism, m)
		case !isSocket && m.Status != "ok":
			t.Errorf("%s: %+v, want ok", m.Mechanism, m)
		}
	}

	cmd = exec.Command(binary, "run", "--", "sh", "-c", "printf hello | cat >/dev/null")
	cmd.Env = append(cmd.Environ(), reject)
	r = runCmd(t, cmd)
	if r.code != 0 {
		t.Fatalf("run exited %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"unix_stream is not traced on this kernel", "the verifier rejected it",
		"not traced on this kernel (", "unix_stream, unix_dgram, unix_seqpacket, tcp, udp"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("run's stderr does not say %q:\n%s", want, r.stderr)
		}
	}
	if !strings.Contains(r.stderr, "\npipe ") {
		t.Errorf("the pipe was not traced:\n%s", r.stderr)
	}

	cmd = exec.Command(binary, "run", "--mechanisms", "pipe,unix_stream", "--", "true")
	cmd.Env = append(cmd.Environ(), reject)
	oneLineError(t, runCmd(t, cmd), exitFailure, "unix_stream", "cannot trace on this kernel", "icptrack check")
}
