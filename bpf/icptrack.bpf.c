// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/* icptrack's kernel side: one record per completed IPC operation.
 *
 * Pipes and FIFOs are seen from sys_enter/sys_exit, joined per task. Sockets
 * are seen from sock_send_length/sock_recv_length, which fire inside every
 * send and receive with the socket in hand; when sys_enter is attached too it
 * supplies their start time, otherwise sched_switch records where a task
 * went to sleep. sk_data_ready runs in the sender while it queues a datagram
 * and names the receiving socket. sched_process_fork follows traced
 * processes' children. */

#include "common.h"
#include "pipe.h"
#include "sock.h"
#include "unix.h"
#include "inet.h"
#include "sockunix.h"
#include "ipc.h"
#include "signal.h"
#include "proc.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

static __always_inline bool sockets_on(void)
{
	return mechanisms & ((1u << MECH_UNIX_STREAM) | (1u << MECH_UNIX_DGRAM) |
			     (1u << MECH_UNIX_SEQPACKET) | (1u << MECH_TCP) | (1u << MECH_UDP));
}

/* Marks end i of the syscall in flight as a pipe if it is one icptrack traces. */
static __always_inline bool pipe_end(struct inflight *in, int i, struct fd_kind *k, int fd)
{
	if (k->mech != MECH_PIPE && k->mech != MECH_FIFO)
		return false;
	if (!mech_on(k->mech))
		return false;
	in->mech[i] = k->mech;
	in->obj[i] = k->obj;
	in->ino[i] = k->ino;
	in->dev[i] = k->dev;
	in->fd[i] = fd;
	return true;
}

/* With payload capture on, find the iovec array behind a msghdr or the
 * first mmsghdr. */
static __always_inline void msghdr_iov(struct inflight *in)
{
	struct user_msghdr mh;

	if (!payload_max || bpf_probe_read_user(&mh, sizeof(mh), (void *)in->buf)) {
		in->buf = 0;
		return;
	}
	in->buf = (__u64)mh.msg_iov;
	in->cnt = mh.msg_iovlen;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(sys_enter, struct pt_regs *regs, long id)
{
	if (attach_only)
		return 0;
	__u8 cls = class_of(id);
	struct task_struct *task;
	struct task_state *ts;
	struct inflight *in;
	struct fd_kind k;
	int fd0, fd1;

	if (!cls)
		return 0;
	task = bpf_get_current_task_btf();
	if (!select_mode && !*traced_slot(task))
		return 0;
	ts = traced_task(task);
	if (!ts)
		return 0;
	run_check(ts);
	in = &ts->in;
	in->mech[0] = 0;
	in->mech[1] = 0;
	in->obj[0] = 0;
	in->buf = 0;
	in->cnt = 0;

	switch (cls) {
	case SC_WRITE:
	case SC_WRITEV:
	case SC_READ:
	case SC_READV:
		fd0 = SYSCALL_ARG0(regs);
		classify_fd(task, fd0, &k);
		if (k.mech == FD_SOCKET) {
			if (!sockets_on())
				return 0;
			unix_syscall_enter(in, &k, fd0, 0);
		} else if (!pipe_end(in, 0, &k, fd0)) {
			return 0;
		}
		in->buf = SYSCALL_ARG1(regs);
		in->cnt = SYSCALL_ARG2(regs);
		break;
	case SC_SPLICE:
	case SC_TEE:
		fd0 = SYSCALL_ARG0(regs);
		fd1 = cls == SC_SPLICE ? SYSCALL_ARG2(regs) : SYSCALL_ARG1(regs);
		classify_fd(task, fd0, &k);
		pipe_end(in, 0, &k, fd0);
		classify_fd(task, fd1, &k);
		pipe_end(in, 1, &k, fd1);
		if (!in->mech[0] && !in->mech[1])
			return 0;
		break;
	case SC_OPEN:
	case SC_OPENAT:
		/* FIFOs are handled at exit; shm_open opens /dev/shm/NAME. */
		if (mech_on(MECH_POSIX_SHM)) {
			__u64 path = cls == SC_OPEN ? SYSCALL_ARG0(regs) : SYSCALL_ARG1(regs);
			if (in_dev_shm(path)) {
				in->buf = path;
				in->x[0] = cls == SC_OPEN ? SYSCALL_ARG1(regs) : SYSCALL_ARG2(regs);
			}
		}
		break;
	case SC_VMSPLICE:
		fd0 = SYSCALL_ARG0(regs);
		classify_fd(task, fd0, &k);
		if (!pipe_end(in, 0, &k, fd0))
			return 0;
		in->op = k.writable ? OPER_SEND : OPER_RECEIVE;
		in->buf = SYSCALL_ARG1(regs);
		in->cnt = SYSCALL_ARG2(regs);
		break;
	case SC_SENDTO:
	case SC_RECVFROM:
	case SC_SENDMSG:
	case SC_RECVMSG:
	case SC_SENDMMSG:
	case SC_RECVMMSG:
		/* The socket hooks do the work; this gives them a start. */
		if (!sockets_on())
			return 0;
		if (sock_syscalls) {
			fd0 = SYSCALL_ARG0(regs);
			classify_fd(task, fd0, &k);
			unix_syscall_enter(in, &k, fd0,
					   cls == SC_RECVFROM ? SYSCALL_ARG3(regs) : cls == SC_RECVMSG ? SYSCALL_ARG2(regs) : 0);
		}
		in->buf = SYSCALL_ARG1(regs);
		if (cls == SC_SENDMSG || cls == SC_RECVMSG || cls == SC_SENDMMSG || cls == SC_RECVMMSG)
			msghdr_iov(in);
		break;
	default:
		if (!ipc_enter(task, regs, cls, in))
			return 0;
		break;
	}
	if (!metrics_only) {
		if (in->mech[0] == MECH_PIPE || in->mech[0] == MECH_FIFO)
			pipe_meet(task, ts, in, 0);
		if (in->mech[1] == MECH_PIPE || in->mech[1] == MECH_FIFO)
			pipe_meet(task, ts, in, 1);
	}
	in->syscall = id;
	in->nvcsw = task->nvcsw;
	in->start_ns = bpf_ktime_get_ns();
	if (!in->cls)
		__sync_fetch_and_add(inflight_slot(task), 1);
	in->cls = cls;
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(sys_exit, struct pt_regs *regs, long ret)
{
	if (attach_only)
		return 0;
	struct task_struct *task;
	struct task_state *ts;
	struct inflight *in;
	bool blocked;
	__u64 now;

	if (!class_of(SYSCALL_NR(regs)))
		return 0;
	task = bpf_get_current_task_btf();
	if (!*inflight_slot(task))
		return 0;
	ts = bpf_task_storage_get(&task_states, task, 0, 0);
	if (!ts || !ts->in.cls)
		return 0;
	in = &ts->in;
	now = bpf_ktime_get_ns();
	blocked = task->nvcsw != in->nvcsw;

	switch (in->cls) {
	case SC_WRITE:
	case SC_WRITEV:
		if (in->mech[0])
			emit_pipe(task, in, 0, OPER_SEND, false, ret, now, blocked);
		else if (sock_syscalls && in->obj[0])
			unix_syscall_exit(task, in, ret, now, blocked);
		break;
	case SC_READ:
	case SC_READV:
		if (in->mech[0])
			emit_pipe(task, in, 0, OPER_RECEIVE, false, ret, now, blocked);
		else if (sock_syscalls && in->obj[0])
			unix_syscall_exit(task, in, ret, now, blocked);
		break;
	case SC_SPLICE:
	case SC_TEE:
		/* tee copies without consuming: a peek at the input pipe. */
		if (in->mech[0])
			emit_pipe(task, in, 0, OPER_RECEIVE, in->cls == SC_TEE, ret, now, blocked);
		if (in->mech[1])
			emit_pipe(task, in, 1, OPER_SEND, false, ret, now, blocked);
		break;
	case SC_VMSPLICE:
		emit_pipe(task, in, 0, in->op, false, ret, now, blocked);
		break;
	case SC_OPEN:
	case SC_OPENAT:
		if (ret >= 0 && mech_on(MECH_FIFO))
			fifo_opened(task, ret);
		if (in->buf)
			ipc_exit(task, in, ret, now, blocked);
		break;
	case SC_SENDTO:
	case SC_RECVFROM:
	case SC_SENDMSG:
	case SC_RECVMSG:
	case SC_SENDMMSG:
	case SC_RECVMMSG:
		if (sock_syscalls && in->obj[0])
			unix_syscall_exit(task, in, ret, now, blocked);
		break;
	default:
		ipc_exit(task, in, ret, now, blocked);
		break;
	}
	in->cls = 0;
	__sync_fetch_and_add(inflight_slot(task), -1);
	return 0;
}

/* The mechanism of an operation on sk, or 0 when icptrack does not report it. */
static __always_inline __u8 sock_mechanism(struct task_state *ts, const struct sock *sk, __u8 op)
{
	__u16 family = sk->__sk_common.skc_family;
	__u8 mech;

	if (family == AF_UNIX) {
		mech = unix_mechanism(sk);
		return mech && mech_on(mech) ? mech : 0;
	}
	if (family == AF_INET || family == AF_INET6)
		return inet_mechanism(ts, sk, op);
	return 0;
}

static __always_inline int sock_event(struct sock *sk, int ret, int flags, __u8 op)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct task_state *ts = traced_task(task);
	struct unix_ends ends = {};
	struct op_record *r;
	bool reserved = false, ok = true;
	__u64 now;
	__u8 mech;

	if (!ts)
		return 0;
	mech = sock_mechanism(ts, sk, op);
	if (metrics_only) {
		/* Only what the counts need: no identity, no record, and the
		 * clock only when the call blocked (without the syscall hooks
		 * an operation that did not block has no known start). */
		if (mech) {
			__u64 start = 0, end = 0;
			if (syscall_hooks && ts->in.cls) {
				start = ts->in.start_ns;
				end = bpf_ktime_get_ns();
			} else if (ts->sleep_sk == (__u64)sk) {
				start = ts->sleep_ns;
				end = bpf_ktime_get_ns();
			}
			ts->sleep_sk = 0;
			count(task->tgid, mech, op, ret, start, end);
		}
		if (op == OPER_SEND)
			ts->pend_valid = 0;
		return 0;
	}
	if (mech >= MECH_UNIX_STREAM && mech <= MECH_UNIX_SEQPACKET && !unix_meet(sk, &ends)) {
		stat_inc(STAT_OPS_DROPPED);
		mech = 0;
	}
	if (!mech) {
		if (op == OPER_SEND)
			ts->pend_valid = 0;
		return 0;
	}
	now = bpf_ktime_get_ns();
	r = new_op(&reserved);
	if (!r) {
		if (op == OPER_SEND)
			ts->pend_valid = 0;
		return 0;
	}
	r->mechanism = mech;
	r->op = op;
	r->ret = ret;
	r->end_ns = now;
	r->fd = -1;
	fill_task(r, task, ts);
	sock_timing(task, ts, sk, r, now);
	if (mech == MECH_TCP)
		ok = tcp_op(sk, op, ret, flags, r);
	else if (mech == MECH_UDP)
		ok = udp_op(ts, sk, op, ret, flags, r);
	else
		unix_op(ts, sk, &ends, mech, op, ret, flags, r);
	if (op == OPER_SEND)
		ts->pend_valid = 0;
	if (!ok) {
		discard_op(r, reserved);
		stat_inc(STAT_OPS_DROPPED);
		return 0;
	}
	sock_payload(ts, r, ret);
	submit_op_ts(r, reserved, ts);
	return 0;
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(sock_send_length, struct sock *sk, int ret, int flags)
{
	if (attach_only)
		return 0;
	return sock_event(sk, ret, flags, OPER_SEND);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(sock_recv_length, struct sock *sk, int ret, int flags)
{
	if (attach_only)
		return 0;
	return sock_event(sk, ret, flags, OPER_RECEIVE);
}

/* A datagram was queued on sk: in the sender for unix sockets, and in the
 * softirq of the sender's loopback transmit for UDP. */
static __always_inline int data_ready(const struct sock *sk)
{
	__u16 family = sk->__sk_common.skc_family;
	struct task_struct *task;
	struct task_state *ts;
	struct sock_state *ss;
	__u64 seq;
	__u8 mech;

	if (family == AF_UNIX) {
		mech = unix_mechanism(sk);
		if (mech != MECH_UNIX_DGRAM && mech != MECH_UNIX_SEQPACKET)
			return 0;
	} else if ((family == AF_INET || family == AF_INET6) && sk->sk_protocol == IPPROTO_UDP) {
		mech = MECH_UDP;
	} else {
		return 0;
	}
	if (!mech_on(mech))
		return 0;
	task = bpf_get_current_task_btf();
	ts = traced_task(task);
	if (mech == MECH_UDP && !(ts && sending(task))) {
		udp_deferred(sk);
		return 0;
	}
	ss = sock_state(sk, ts != NULL, -1);
	if (!ss)
		return 0;
	seq = __sync_fetch_and_add(&ss->in, 1);
	if (!ts)
		return 0;
	ts->pend_sk = (__u64)sk;
	ts->pend_seq = seq;
	ts->pend_valid = 1;
	if (mech == MECH_UDP)
		udp_pending(ts, sk);
	return 0;
}

SEC("tp_btf/sk_data_ready")
int BPF_PROG(sk_data_ready, const struct sock *sk)
{
	if (attach_only)
		return 0;
	return data_ready(sk);
}

/* Kernels before the socket tracepoints (6.3 for sock_send_length and
 * sock_recv_length, 6.6 for sk_data_ready) that have BPF trampolines: the
 * same work at the end of each socket family's send and receive, and at
 * the start of the default data-ready callback, which is where
 * sk_data_ready fires. unix_seqpacket_* call unix_dgram_*, which the
 * compiler may inline there or not: seqpacket sockets are taken at their
 * own entry points and skipped in unix_dgram_*, so each operation is seen
 * once either way. */
#define SOCK_FEXIT_SEND(fn, skip_type)                                                       \
	SEC("fexit/" #fn)                                                                  \
	int BPF_PROG(fexit_##fn, struct socket *sock, struct msghdr *msg, size_t len, int ret) \
	{                                                                                  \
		if (attach_only || sock->type == (skip_type))                              \
			return 0;                                                          \
		return sock_event(sock->sk, ret, 0, OPER_SEND);                            \
	}
#define SOCK_FEXIT_RECV(fn, skip_type)                                                             \
	SEC("fexit/" #fn)                                                                        \
	int BPF_PROG(fexit_##fn, struct socket *sock, struct msghdr *msg, size_t len, int flags, int ret) \
	{                                                                                        \
		if (attach_only || sock->type == (skip_type))                                    \
			return 0;                                                                \
		return sock_event(sock->sk, ret, flags, OPER_RECEIVE);                           \
	}

SOCK_FEXIT_SEND(unix_stream_sendmsg, -1)
SOCK_FEXIT_SEND(unix_dgram_sendmsg, SOCK_SEQPACKET)
SOCK_FEXIT_SEND(unix_seqpacket_sendmsg, -1)
SOCK_FEXIT_SEND(inet_sendmsg, -1)
SOCK_FEXIT_SEND(inet6_sendmsg, -1)
SOCK_FEXIT_RECV(unix_stream_recvmsg, -1)
SOCK_FEXIT_RECV(unix_dgram_recvmsg, SOCK_SEQPACKET)
SOCK_FEXIT_RECV(unix_seqpacket_recvmsg, -1)
SOCK_FEXIT_RECV(inet_recvmsg, -1)
SOCK_FEXIT_RECV(inet6_recvmsg, -1)

SEC("fentry/sock_def_readable")
int BPF_PROG(fentry_sock_def_readable, struct sock *sk)
{
	if (attach_only)
		return 0;
	return data_ready(sk);
}

/* Children of traced processes are traced, and in follow mode so are the
 * children (not the threads) of follow_tgid. Runs in the parent before the
 * child first runs, so nothing the child does is missed. New traced
 * processes go into the process table. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(sched_process_fork, struct task_struct *parent, struct task_struct *child)
{
	if (attach_only)
		return 0;
	/* With selectors, the parent is judged now if it never was: a
	 * selected process forks before its first traced call. */
	struct task_state *ps = select_mode ? traced_task(parent) : bpf_task_storage_get(&task_states, parent, 0, 0);
	struct proc_record *p;
	struct task_state *cs;

	if (!(ps && ps->traced) &&
	    !(follow_tgid && parent->tgid == follow_tgid && child->tgid != parent->tgid))
		return 0;
	cs = bpf_task_storage_get(&task_states, child, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (cs) {
		cs->traced = 1;
		if (select_mode && ps) {
			/* Traced for its parent's reason, so long as that holds. */
			cs->sel_gen = ps->sel_gen;
			cs->moves_seen = ps->moves_seen;
			cs->root_kind = ps->root_kind;
			cs->root_id = ps->root_id;
			__builtin_memcpy(cs->root_comm, ps->root_comm, sizeof(cs->root_comm));
		}
		if (!select_mode && !cs->in_traced_slots) {
			cs->in_traced_slots = 1;
			__sync_fetch_and_add(traced_slot(child), 1);
		}
	} else {
		/* Follow it all the same: traced_task creates its storage
		 * the first time it meets a hook. */
		__u32 tid = child->pid;
		__u8 one = 1;
		if (bpf_map_update_elem(&unstored, &tid, &one, BPF_NOEXIST)) {
			stat_inc(STAT_NO_STORAGE);
			return 0;
		}
		__sync_fetch_and_add(&followed_unstored, 1);
		__sync_fetch_and_add(traced_slot(child), 1);
	}
	if (child->tgid == parent->tgid)
		return 0;
	p = new_proc(PROC_FORK, child);
	if (p) {
		p->ppid = parent->tgid;
		submit_proc(p);
	}
	return 0;
}

/* A traced process runs a new program; with name selectors, a process
 * becomes traced when it runs one they name. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(sched_process_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	if (attach_only)
		return 0;
	struct task_state *ts = traced_task(task);
	struct proc_record *p;
	long n;

	if (!ts && select_mode && selected_by_name(task)) {
		ts = bpf_task_storage_get(&task_states, task, 0, 0);
		if (ts) {
			ts->traced = 1;
			set_root(ts, task, SEL_COMM);
		}
	}
	if (!ts || !ts->traced)
		return 0;
	ts->ident_ok = 0;
	p = new_proc(PROC_EXEC, task);
	if (!p)
		return 0;
	n = bpf_probe_read_kernel_str(p->filename, sizeof(p->filename), BPF_CORE_READ(bprm, filename));
	if (n > 1)
		p->filename_len = n - 1;
	if (capture_args)
		exec_args(p, task);
	submit_proc(p);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(sched_process_exit, struct task_struct *task)
{
	if (attach_only)
		return 0;
	struct task_state *ts = bpf_task_storage_get(&task_states, task, 0, 0);
	struct proc_record *p;

	if (ts && coalesce_ns)
		run_flush(ts);
	if (ts && ts->in.cls) {
		/* exit(2) and exit_group(2) never return: no sys_exit. */
		ts->in.cls = 0;
		__sync_fetch_and_add(inflight_slot(task), -1);
	}
	if (ts && ts->in_traced_slots) {
		ts->in_traced_slots = 0;
		__sync_fetch_and_add(traced_slot(task), -1);
	} else if (!ts && followed_unstored && forget_unstored(task)) {
		__sync_fetch_and_add(traced_slot(task), -1);
	}
	if (!ts || !is_traced(task, ts) || task->pid != task->tgid)
		return 0;
	p = new_proc(PROC_EXIT, task);
	if (p)
		submit_proc(p);
	return 0;
}

SEC("tp_btf/task_rename")
int BPF_PROG(task_rename, struct task_struct *task, const char *comm)
{
	if (attach_only)
		return 0;
	struct task_state *ts = bpf_task_storage_get(&task_states, task, 0, 0);
	struct proc_record *p;

	if (!ts || !is_traced(task, ts))
		return 0;
	ts->ident_ok = 0;
	p = new_proc(PROC_RENAME, task);
	if (p) {
		bpf_probe_read_kernel_str(p->comm, sizeof(p->comm), comm);
		submit_proc(p);
	}
	return 0;
}

/* A task moved to another cgroup: its records must say so. */
SEC("tp_btf/cgroup_attach_task")
int BPF_PROG(cgroup_attach_task, struct cgroup *dst, const char *path, struct task_struct *task, bool threadgroup)
{
	if (attach_only)
		return 0;
	struct task_state *ts = bpf_task_storage_get(&task_states, task, 0, 0);

	/* With a cgroup selector, every untraced task asks again whether it
	 * is in the cgroup, at its next hook: a container runtime moves its
	 * container's first process after that process has made calls of its
	 * own outside it, and the event names only the thread group's
	 * leader, not the threads that moved with it. */
	if (select_mode && sel_cgroup_set)
		__sync_fetch_and_add(&sel_moves, 1);
	if (ts)
		ts->ident_ok = 0;
	return 0;
}

SEC("tp_btf/signal_generate")
int BPF_PROG(signal_generate, int sig, struct kernel_siginfo *info, struct task_struct *task, int group,
	     int result)
{
	if (attach_only)
		return 0;
	signal_generated(sig, info, task, result);
	return 0;
}

SEC("tp_btf/signal_deliver")
int BPF_PROG(signal_deliver, int sig, struct kernel_siginfo *info, struct k_sigaction *ka)
{
	if (attach_only)
		return 0;
	signal_delivered(sig, info, ka);
	return 0;
}

/* Without syscall hooks, note the socket a traced task goes to sleep on in
 * a send or receive, so the operation can report that it blocked and since
 * when. Attached only in that mode. */
SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	if (attach_only)
		return 0;
	struct task_state *ts;
	struct pt_regs *regs;
	struct socket *sock;
	struct file *f;
	struct sock *sk;

	if (preempt || prev_state == TASK_RUNNING)
		return 0;
	/* A thread going to sleep sends its run: whoever it waits for may
	 * be reading those bytes now. */
	if (coalesce_ns && runs_open) {
		ts = bpf_task_storage_get(&task_states, prev, 0, 0);
		if (ts)
			run_flush(ts);
	}
	if (syscall_hooks)
		return 0; /* attached only to coalesce: sys_enter gives starts */
	ts = traced_task(prev);
	if (!ts)
		return 0;
	regs = (struct pt_regs *)bpf_task_pt_regs(prev);
	if (!regs || !is_socket_class(class_of(SYSCALL_NR(regs))))
		return 0;
	f = fd_file(prev, SYSCALL_ARG0(regs));
	if (!f || (KREAD(f, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return 0;
	sock = KREAD(f, private_data);
	sk = KREAD(sock, sk);
	if (ts->sleep_sk != (__u64)sk) {
		ts->sleep_sk = (__u64)sk;
		ts->sleep_ns = bpf_ktime_get_ns();
	}
	return 0;
}
