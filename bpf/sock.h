/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* What unix and inet sockets share: per-socket counters in socket storage
 * (freed with the socket, so a reused address never inherits them), the
 * receiving socket a send queued a datagram on, and the timing of an
 * operation seen only at its end by sock_send_length/sock_recv_length. */
#pragma once

#include "common.h"

#define IPPROTO_UDP 17

static __always_inline __u64 sock_ino(const struct sock *sk)
{
	return BPF_CORE_READ(sk, sk_socket, file, f_inode, i_ino);
}

/* A bound unix socket's path, sent once. Abstract names start with NUL. */
static __always_inline void announce_unix(const struct sock *sk, __u64 ino)
{
	struct unix_address *addr = BPF_CORE_READ((struct unix_sock *)sk, addr);
	struct name_record *n;
	int len;

	if (!addr)
		return;
	n = new_name();
	if (!n)
		return;
	len = BPF_CORE_READ(addr, len) - (int)sizeof(__u16); /* minus sun_family */
	if (len <= 0)
		return;
	if (len > 108)
		len = 108;
	n->mechanism = MECH_UNIX_STREAM;
	n->ino = ino;
	n->dev = 0;
	n->len = len;
	bpf_probe_read_kernel(n->name, len & 127, &addr->name[0].sun_path);
	submit_name(n);
}

/* The socket's counters. Sockets icptrack has not seen get storage only
 * when create is set, so untraced traffic costs one lookup. */
static __always_inline struct sock_state *sock_state(const struct sock *sk, bool create)
{
	struct sock_state *ss;

	if (!sk)
		return NULL;
	ss = bpf_sk_storage_get(&sock_states, (void *)sk, 0, create ? BPF_SK_STORAGE_GET_F_CREATE : 0);
	if (!ss) {
		if (create)
			stat_inc(STAT_NO_STORAGE);
		return NULL;
	}
	if (!ss->ino) {
		ss->ino = sock_ino(sk);
		if (BPF_CORE_READ(sk, __sk_common.skc_family) == AF_UNIX)
			announce_unix(sk, ss->ino);
	}
	return ss;
}

/* A datagram receive left the queue empty: every datagram queued has been
 * read, so both counters must agree. Datagrams queued before icptrack
 * looked, or by senders whose delivery it did not see, skew the sequence
 * only until the queue next drains. */
static __always_inline void seq_resync(struct sock_state *ss)
{
	__u64 in = ss->in, out = ss->out;

	if (in > out)
		ss->out = in;
	else if (out > in)
		ss->in = out;
}

static __always_inline bool send_class(__u8 cls)
{
	return cls == SC_SENDTO || cls == SC_SENDMSG || cls == SC_SENDMMSG || cls == SC_WRITE ||
	       cls == SC_WRITEV;
}

/* Is the task inside a syscall that sends? Used by sk_data_ready for UDP,
 * which runs in softirq and may interrupt a task that sent nothing. */
static __always_inline bool sending(struct task_struct *task)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);

	return regs && send_class(class_of(SYSCALL_NR(regs)));
}

/* Start time, syscall and blocked flag of a socket operation that
 * sock_send_length/sock_recv_length reports at its end. With syscall hooks
 * the entry hook recorded them; without, sched_switch recorded where the
 * task went to sleep, which bounds the wait but not the time on CPU. */
static __always_inline void sock_timing(struct task_struct *task, struct task_state *ts,
					const struct sock *sk, struct op_record *r, __u64 now)
{
	if (syscall_hooks && ts->in.cls) {
		r->start_ns = ts->in.start_ns;
		r->syscall = ts->in.syscall;
		if (task->nvcsw != ts->in.nvcsw)
			r->flags |= OPF_BLOCKED;
		return;
	}
	r->flags |= OPF_NO_START;
	r->start_ns = now;
	if (ts->sleep_sk == (__u64)sk) {
		r->start_ns = ts->sleep_ns;
		r->flags |= OPF_BLOCKED;
	}
	ts->sleep_sk = 0;
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	r->syscall = 0xffff;
	if (regs) {
		long nr = SYSCALL_NR(regs);
		if ((unsigned long)nr < SYSCALL_MAX)
			r->syscall = nr;
	}
}

/* Payload of a socket operation, from the buffer the entry hook saved. */
static __always_inline void sock_payload(struct task_state *ts, struct op_record *r, int ret)
{
	struct inflight *in = &ts->in;
	bool vec;

	if (!payload_max || !syscall_hooks || ret <= 0 || !in->cls || !in->buf)
		return;
	vec = in->cls == SC_WRITEV || in->cls == SC_READV || in->cls == SC_SENDMSG ||
	      in->cls == SC_RECVMSG || in->cls == SC_SENDMMSG || in->cls == SC_RECVMMSG;
	r->payload_len = copy_payload((__u8 *)(r + 1), in->buf, in->cnt, vec, ret);
	if (r->payload_len < ret)
		r->flags |= OPF_TRUNCATED;
}
