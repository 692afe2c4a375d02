/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* What unix and inet sockets share: per-socket counters in socket storage
 * (freed with the socket, so a reused address never inherits them), the
 * receiving socket a send queued a datagram on, and the timing of an
 * operation seen only at its end by sock_send_length/sock_recv_length. */
#pragma once

#include "common.h"

#define IPPROTO_UDP 17
#define IPPROTO_TCP 6

static __always_inline __u64 sock_ino(const struct sock *sk)
{
	return BPF_CORE_READ(sk, sk_socket, file, f_inode, i_ino);
}

/* A bound unix socket's path, sent once. Abstract names start with NUL. */
static __always_inline void announce_unix(const struct sock *sk)
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
	n->id = (__u64)sk;
	n->dev = 0;
	n->len = len;
	bpf_probe_read_kernel(n->name, len & 127, &addr->name[0].sun_path);
	submit_name(n);
}

/* Datagrams waiting in a socket's receive queues. */
static __always_inline __u64 queued_datagrams(const struct sock *sk)
{
	__u64 n = BPF_CORE_READ(sk, sk_receive_queue.qlen);

	if (BPF_CORE_READ(sk, sk_protocol) == IPPROTO_UDP)
		n += BPF_CORE_READ((struct udp_sock *)sk, reader_queue.qlen);
	return n;
}

/* The socket's counters. Sockets icptrack has not seen get storage only
 * when create is set, so untraced traffic costs one lookup. A datagram
 * socket first seen with datagrams queued starts its sequence after them:
 * they were queued unseen and must not match traced sends. queued_adjust
 * is -1 when sk_data_ready has just queued one it is about to count.
 *
 * A receive that meets the socket first does not count the datagram it
 * took as unseen: a sender queues before sk_data_ready runs, and a
 * receiver can take the datagram in between, before the sender counts it.
 * Counting it here would shift every later match; not counting it costs
 * only a datagram queued before icptrack started, taken just then. Stream
 * sockets start at zero on both sides, and each side counts only its own
 * operations. */
static __always_inline struct sock_state *sock_state(const struct sock *sk, bool create, int queued_adjust)
{
	struct sock_state *ss;

	if (!sk)
		return NULL;
	ss = bpf_sk_storage_get(&sock_states, (void *)sk, 0, create ? BPF_SK_STORAGE_GET_F_CREATE : 0);
	/* Two CPUs creating storage for one socket at once (its sender and
	 * its receiver meeting it first): the loser gets NULL, and the
	 * winner's storage is there to find. */
	if (!ss && create)
		ss = bpf_sk_storage_get(&sock_states, (void *)sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!ss) {
		if (create)
			stat_inc(STAT_NO_STORAGE);
		return NULL;
	}
	if (!ss->seen) {
		ss->seen = 1;
		if (BPF_CORE_READ(sk, sk_type) != SOCK_STREAM) {
			__s64 q = queued_datagrams(sk) + queued_adjust;
			ss->in = q > 0 ? q : 0;
		}
		if (BPF_CORE_READ(sk, __sk_common.skc_family) == AF_UNIX)
			announce_unix(sk);
	}
	if (!ss->ino)
		ss->ino = sock_ino(sk);
	return ss;
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
