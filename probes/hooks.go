package probes

// hook is one BPF program and the kernel tracepoint it runs on, with the
// condition under which icptrack attaches it. Programs that are not needed
// are not even loaded.
type hook struct {
	program    string
	tracepoint string
	needed     func(*Config) bool
}

var hooks = []hook{
	// Pipes and FIFOs (and socket payloads): every syscall of every
	// process pays for these once attached, so only when needed.
	{"sys_enter", "sys_enter", (*Config).syscallHooks},
	{"sys_exit", "sys_exit", (*Config).syscallHooks},
	// Sockets: fire only in socket sends and receives.
	{"sock_send_length", "sock_send_length", (*Config).sockets},
	{"sock_recv_length", "sock_recv_length", (*Config).sockets},
	// Datagram sockets: names the receiving socket as the sender queues.
	{"sk_data_ready", "sk_data_ready", (*Config).datagrams},
	// Signals: both ends named by the kernel.
	{"signal_generate", "signal_generate", (*Config).signals},
	{"signal_deliver", "signal_deliver", (*Config).signals},
	// The process table, and following children (icptrack run).
	{"sched_process_fork", "sched_process_fork", always},
	{"sched_process_exec", "sched_process_exec", always},
	{"sched_process_exit", "sched_process_exit", always},
	{"task_rename", "task_rename", always},
	// A traced task moved to another cgroup: its cached cgroup is stale.
	{"cgroup_attach_task", "cgroup_attach_task", always},
	// Sockets without syscall hooks: where a task went to sleep.
	{"sched_switch", "sched_switch", func(c *Config) bool { return c.sockets() && !c.syscallHooks() }},
}

func always(*Config) bool { return true }

type hookSet []hook

func hooksFor(c *Config) hookSet {
	var hs hookSet
	for _, h := range hooks {
		if h.needed(c) {
			hs = append(hs, h)
		}
	}
	return hs
}

func (hs hookSet) has(program string) bool {
	for _, h := range hs {
		if h.program == program {
			return true
		}
	}
	return false
}
