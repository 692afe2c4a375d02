package probes

import (
	"github.com/cilium/ebpf"

	"github.com/icptrack/icptrack/flow"
)

// The one place where icptrack decides how each mechanism is seen. Hooks
// come in groups; a group serves some mechanisms and has variants, tried in
// order on the running kernel, the first that loads and attaches winning.
// A group that no variant can serve turns off only the mechanisms it
// serves.

// hook is one BPF program and where it attaches.
type hook struct {
	program string
	attach  ebpf.AttachType // AttachTraceRawTp (tp_btf), AttachTraceFEntry or AttachTraceFExit
	target  string          // the tracepoint or the kernel function
	// needs: attached only when one of these is traced (0: whenever the
	// group is).
	needs flow.MechanismSet
}

func (h hook) String() string {
	switch h.attach {
	case ebpf.AttachTraceFEntry:
		return "fentry/" + h.target
	case ebpf.AttachTraceFExit:
		return "fexit/" + h.target
	}
	return "tp_btf/" + h.target
}

// hookGroup is a set of programs that work together, with the mechanisms
// they serve.
type hookGroup struct {
	name string
	// serves: the mechanisms that cannot run without this group; 0 for
	// the process table, which everything needs.
	serves flow.MechanismSet
	// optional: when no variant loads, nothing is turned off and nothing
	// fails (a group that only makes something prompter).
	optional bool
	needed   func(*Config) bool
	variants [][]hook
}

func tp(name string) hook { return hook{program: name, attach: ebpf.AttachTraceRawTp, target: name} }

func fexit(fn string, needs flow.MechanismSet) hook {
	return hook{program: "fexit_" + fn, attach: ebpf.AttachTraceFExit, target: fn, needs: needs}
}

var (
	unixSockets = flow.SetOf(flow.UnixStream, flow.UnixDgram, flow.UnixSeqpacket)
	inetSockets = flow.SetOf(flow.TCP, flow.UDP)
	datagrams   = flow.SetOf(flow.UnixDgram, flow.UnixSeqpacket, flow.UDP)
	// coalesced are the byte streams whose runs the kernel coalesces.
	coalesced = flow.SetOf(flow.Pipe, flow.FIFO, flow.UnixStream, flow.TCP)
)

var hookGroups = []hookGroup{
	// The process table, and following children (icptrack run). A task
	// moved to another cgroup: its cached cgroup is stale.
	{name: "processes", needed: always, variants: [][]hook{{
		tp("sched_process_fork"), tp("sched_process_exec"), tp("sched_process_exit"),
		tp("task_rename"), tp("cgroup_attach_task"),
	}}},
	// Pipes, FIFOs, queues and shared memory (and socket payloads): every
	// syscall of every process pays for these once attached, so only
	// when needed.
	{name: "syscalls", serves: syscallMechanisms, needed: (*Config).syscallHooks,
		variants: [][]hook{{tp("sys_enter"), tp("sys_exit")}}},
	// Sockets: the tracepoints fire only in socket sends and receives
	// (6.3 and later); before them, the same work at the end of each
	// socket family's send and receive, where BPF trampolines exist.
	{name: "sockets", serves: sockets, needed: (*Config).sockets, variants: [][]hook{
		{tp("sock_send_length"), tp("sock_recv_length")},
		{
			fexit("unix_stream_sendmsg", unixSockets), fexit("unix_dgram_sendmsg", unixSockets),
			fexit("unix_seqpacket_sendmsg", unixSockets), fexit("unix_stream_recvmsg", unixSockets),
			fexit("unix_dgram_recvmsg", unixSockets), fexit("unix_seqpacket_recvmsg", unixSockets),
			fexit("inet_sendmsg", inetSockets), fexit("inet6_sendmsg", inetSockets),
			fexit("inet_recvmsg", inetSockets), fexit("inet6_recvmsg", inetSockets),
		},
	}},
	// Datagram sockets: names the receiving socket as the sender queues
	// (the tracepoint is 6.6 and later; it fires in sock_def_readable).
	{name: "datagrams", serves: datagrams, needed: (*Config).datagrams, variants: [][]hook{
		{tp("sk_data_ready")},
		{{program: "fentry_sock_def_readable", attach: ebpf.AttachTraceFEntry, target: "sock_def_readable"}},
	}},
	// Signals: both ends named by the kernel.
	{name: "signals", serves: flow.SetOf(flow.Signal), needed: (*Config).signals,
		variants: [][]hook{{tp("signal_generate"), tp("signal_deliver")}}},
	// Sockets without syscall hooks: where a task went to sleep.
	{name: "sleeps", serves: sockets, needed: func(c *Config) bool { return c.sockets() && !c.syscallHooks() },
		variants: [][]hook{{tp("sched_switch")}}},
	// Coalescing with syscall hooks: a thread going to sleep sends the
	// run it holds (without syscall hooks, "sleeps" does it). Without
	// this, a run waits for its thread's next call.
	{name: "runs", optional: true, needed: func(c *Config) bool {
		return c.coalescing() && c.syscallHooks() && c.Mechanisms&coalesced != 0
	},
		variants: [][]hook{{tp("sched_switch")}}},
}

func always(*Config) bool { return true }

// wanted is the variant's hooks that the configuration needs.
func wanted(variant []hook, c *Config) []hook {
	var hs []hook
	for _, h := range variant {
		if h.needs == 0 || h.needs&c.Mechanisms != 0 {
			hs = append(hs, h)
		}
	}
	return hs
}
