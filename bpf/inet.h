/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Loopback TCP and UDP. TCP needs no counters of its own: the sender's
 * write_seq and the receiver's copied_seq number the same bytes. UDP takes
 * a sequence per receiving socket, like unix datagrams. */
#pragma once

#include "sock.h"


static __always_inline bool v4_loopback(__be32 a)
{
	return (a & 0xff) == 127; /* network byte order: first octet */
}

static __always_inline bool v6_loopback(const __u8 *a)
{
	__u64 hi = *(__u64 *)a, lo = *(__u64 *)(a + 8);

	if (hi == 0 && lo == bpf_cpu_to_be64(1))
		return true; /* ::1 */
	/* ::ffff:127.x.y.z */
	return hi == 0 && (lo & bpf_cpu_to_be64(0xffffffff00000000ull)) == bpf_cpu_to_be64(0x0000ffff00000000ull) &&
	       a[12] == 127;
}

static __always_inline bool v4_any(__be32 a)
{
	return a == 0;
}

static __always_inline bool inet_remote_loopback(const struct sock *sk)
{
	const struct sock_common *c = &sk->__sk_common;
	__u8 a[16];

	if (c->skc_family == AF_INET)
		return v4_loopback(c->skc_daddr);
	BPF_CORE_READ_INTO(&a, c, skc_v6_daddr.in6_u.u6_addr8);
	return v6_loopback(a);
}

/* Bound to a loopback address or to the wildcard. */
static __always_inline bool inet_local_loopback(const struct sock *sk)
{
	const struct sock_common *c = &sk->__sk_common;
	__u8 a[16];

	if (c->skc_family == AF_INET)
		return v4_loopback(c->skc_rcv_saddr) || c->skc_rcv_saddr == 0;
	BPF_CORE_READ_INTO(&a, c, skc_v6_rcv_saddr.in6_u.u6_addr8);
	return v6_loopback(a) || (*(__u64 *)a == 0 && *(__u64 *)(a + 8) == 0);
}

static __always_inline bool inet_connected(const struct sock *sk)
{
	return sk->__sk_common.skc_dport != 0;
}

/* Whether icptrack reports an operation on this TCP or UDP socket: loopback
 * only. An unconnected UDP send counts when sk_data_ready saw it delivered
 * locally; a receive on a wildcard-bound socket counts, and userspace drops
 * it unless it matches such a send. */
static __always_inline __u8 inet_mechanism(struct task_state *ts, const struct sock *sk, __u8 op)
{
	__u16 proto = sk->sk_protocol;

	if (proto == IPPROTO_TCP)
		return mech_on(MECH_TCP) && inet_remote_loopback(sk) ? MECH_TCP : 0;
	if (proto != IPPROTO_UDP || !mech_on(MECH_UDP))
		return 0;
	if (inet_connected(sk))
		return inet_remote_loopback(sk) ? MECH_UDP : 0;
	if (op == OP_SEND)
		return ts->pend_valid ? MECH_UDP : 0;
	return inet_local_loopback(sk) ? MECH_UDP : 0;
}

static __always_inline void inet_fill(const struct sock *sk, struct op_record *r)
{
	const struct sock_common *c = &sk->__sk_common;
	__u16 family = c->skc_family;

	r->family = family;
	r->sport = c->skc_num;
	r->dport = bpf_ntohs(c->skc_dport);
	r->dev = BPF_CORE_READ(c, skc_net.net, ns.inum);
	if (family == AF_INET) {
		__be32 s = c->skc_rcv_saddr, d = c->skc_daddr;
		__builtin_memcpy(r->saddr, &s, 4);
		__builtin_memcpy(r->daddr, &d, 4);
		return;
	}
	BPF_CORE_READ_INTO(&r->saddr, c, skc_v6_rcv_saddr.in6_u.u6_addr8);
	BPF_CORE_READ_INTO(&r->daddr, c, skc_v6_daddr.in6_u.u6_addr8);
}

static __always_inline bool tcp_op(struct sock *sk, __u8 op, int ret, int flags, struct op_record *r)
{
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);
	__u32 seq;

	if (!tp)
		return false;
	inet_fill(sk, r);
	r->ino = sock_ino(sk);
	r->sk = (__u64)sk;
	if (op == OP_SEND) {
		seq = tp->write_seq;
		r->off = ret > 0 ? seq - ret : seq;
	} else {
		seq = tp->copied_seq;
		if (flags & MSG_PEEK) {
			r->flags |= OPF_PEEK;
			r->off = seq;
		} else {
			r->off = ret > 0 ? seq - ret : seq;
		}
	}
	r->off &= 0xffffffff;
	return true;
}

/* UDP: a send names the socket sk_data_ready saw it queued on; a receive
 * takes the next sequence number of its own socket. */
static __always_inline bool udp_op(struct task_state *ts, struct sock *sk, __u8 op, int ret, int flags,
				   struct op_record *r)
{
	struct sock_state *own;

	inet_fill(sk, r);
	r->flags |= OPF_SEQ;
	if (op == OP_SEND) {
		r->ino = sock_ino(sk);
		r->sk = (__u64)sk;
		if (ts->pend_valid) {
			r->peer_sk = ts->pend_sk;
			r->off = ts->pend_seq;
			r->flags |= OPF_PEER;
			if (!inet_connected(sk)) {
				__builtin_memcpy(r->daddr, ts->pend_addr, 16);
				r->dport = ts->pend_port;
			}
		}
		return true;
	}
	own = sock_state(sk, true, ret >= 0 && !(flags & MSG_PEEK));
	if (!own)
		return false;
	r->ino = own->ino;
	r->sk = (__u64)sk;
	if ((flags & MSG_PEEK) || ret < 0) {
		r->flags |= (flags & MSG_PEEK) ? OPF_PEEK : 0;
		r->off = own->out;
		return true;
	}
	r->off = __sync_fetch_and_add(&own->out, 1);
	return true;
}

/* sk_data_ready on a UDP socket, in the sending task: remember where the
 * datagram went so the send can name it. */
static __always_inline void udp_pending(struct task_state *ts, const struct sock *sk)
{
	const struct sock_common *c = &sk->__sk_common;

	ts->pend_port = c->skc_num;
	if (c->skc_family == AF_INET) {
		__be32 a = c->skc_rcv_saddr;
		__builtin_memset(ts->pend_addr, 0, 16);
		__builtin_memcpy(ts->pend_addr, &a, 4);
	} else {
		BPF_CORE_READ_INTO(&ts->pend_addr, c, skc_v6_rcv_saddr.in6_u.u6_addr8);
	}
}
