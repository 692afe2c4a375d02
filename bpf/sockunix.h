/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Unix sockets seen from sys_enter/sys_exit alone, on kernels with neither
 * the socket tracepoints nor BPF trampolines (Debian 12's arm64 6.1). The
 * socket is read out of the descriptor table, so the verifier knows it
 * only as a number: no socket storage; its counters live in a table keyed
 * by the socket's address, checked against its inode (sock_counter).
 * Matching is as exact as on the socket hooks, with two limits: a
 * datagram sent by an untraced process, or with sendto() to a path rather
 * than on a connected socket, is not counted on its receiver, and
 * sendmmsg/recvmmsg are not seen. */
#pragma once

#include "common.h"
#include "pipe.h"
#include "sock.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64); /* the socket's address */
	__type(value, struct sock_state);
} sock_counters SEC(".maps");

/* sys_enter: remember the socket behind the descriptor and the receive
 * flags. */
static __always_inline void unix_syscall_enter(struct inflight *in, struct fd_kind *k, int fd, __u64 flags)
{
	if (!sock_syscalls || k->mech != FD_SOCKET || !k->obj)
		return;
	in->obj[0] = k->obj;
	in->fd[0] = fd;
	in->x[0] = flags;
}

/* The counters of a unix socket known only by its address, created (and
 * its path sent) the first time. The address alone names the socket: a
 * server's socket has no inode until it is accepted, and its counters must
 * carry over. An entry whose inode differs from the socket's (both known)
 * belongs to a socket that was freed and whose address was reused: it
 * starts again. */
static __always_inline struct sock_state *sock_counter(__u64 sk)
{
	static const struct sock_state zero = {};
	__u64 ino = sock_ino((const struct sock *)sk);
	struct sock_state *ss = bpf_map_lookup_elem(&sock_counters, &sk);

	if (ss && ss->ino && ino && ss->ino != ino) {
		bpf_map_delete_elem(&sock_counters, &sk);
		ss = NULL;
	}
	if (!ss) {
		if (bpf_map_update_elem(&sock_counters, &sk, &zero, BPF_NOEXIST) == 0)
			announce_unix((const struct sock *)sk);
		ss = bpf_map_lookup_elem(&sock_counters, &sk);
		if (!ss) {
			stat_inc(STAT_NO_STORAGE);
			return NULL;
		}
	}
	if (!ss->ino)
		ss->ino = ino;
	return ss;
}

/* sys_exit of a send or receive on a unix socket. */
static __noinline void unix_syscall_exit(struct task_struct *task, struct inflight *in, __s64 ret, __u64 now,
					 bool blocked)
{
	const struct sock *sk = (const struct sock *)in->obj[0];
	__u8 cls = in->cls, op = send_class(cls) ? OPER_SEND : OPER_RECEIVE, mech;
	bool peek = op == OPER_RECEIVE && (in->x[0] & MSG_PEEK), reserved = false, vec;
	struct sock_state *own, *ps;
	struct op_record *r;
	__u64 peer;

	/* Their result counts messages, not bytes: not seen this way. */
	if (cls == SC_SENDMMSG || cls == SC_RECVMMSG)
		return;
	if (BPF_CORE_READ(sk, __sk_common.skc_family) != AF_UNIX)
		return;
	switch (BPF_CORE_READ(sk, sk_type)) {
	case SOCK_STREAM:
		mech = MECH_UNIX_STREAM;
		break;
	case SOCK_DGRAM:
		mech = MECH_UNIX_DGRAM;
		break;
	case SOCK_SEQPACKET:
		mech = MECH_UNIX_SEQPACKET;
		break;
	default:
		return;
	}
	if (!mech_on(mech))
		return;
	if (metrics_only) {
		count(task->tgid, mech, op, ret, in->start_ns, now);
		return;
	}
	own = sock_counter((__u64)sk);
	if (!own) {
		stat_inc(STAT_OPS_DROPPED);
		return;
	}
	peer = (__u64)BPF_CORE_READ((struct unix_sock *)sk, peer);
	if (peer && own->named_peer != peer) {
		own->named_peer = peer;
		announce_unix((const struct sock *)peer);
	}
	r = new_op(&reserved);
	if (!r)
		return;
	r->mechanism = mech;
	r->op = op;
	r->flags = (blocked ? OPF_BLOCKED : 0) | (peek ? OPF_PEEK : 0);
	r->syscall = in->syscall;
	fill_task(r, task, task_state_of(in));
	r->fd = in->fd[0];
	r->start_ns = in->start_ns;
	r->end_ns = now;
	r->ret = ret;
	r->ino = own->ino;
	r->sk = (__u64)sk;
	r->peer_sk = peer;
	if (mech == MECH_UNIX_STREAM) {
		if (op == OPER_SEND)
			r->off = ret > 0 ? __sync_fetch_and_add(&own->in, ret) : own->in;
		else if (peek || ret <= 0)
			r->off = own->out;
		else
			r->off = __sync_fetch_and_add(&own->out, ret);
	} else {
		r->flags |= OPF_SEQ;
		if (op == OPER_SEND) {
			ps = ret >= 0 && peer ? sock_counter(peer) : NULL;
			if (ps) {
				r->off = __sync_fetch_and_add(&ps->in, 1);
				r->flags |= OPF_PEER;
			}
		} else if (peek || ret < 0) {
			r->off = own->out;
		} else {
			r->off = __sync_fetch_and_add(&own->out, 1);
		}
	}
	if (payload_max && ret > 0 && in->buf) {
		vec = cls == SC_WRITEV || cls == SC_READV || cls == SC_SENDMSG || cls == SC_RECVMSG;
		r->payload_len = copy_payload((__u8 *)(r + 1), in->buf, in->cnt, vec, ret);
		if (r->payload_len < ret)
			r->flags |= OPF_TRUNCATED;
	}
	submit_op_ts(r, reserved, task_state_of(in));
}
