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
 * only. An unconnected UDP send is reported, flagged unsure unless
 * sk_data_ready saw it delivered locally, and userspace keeps it only if a
 * delivery record then claims it. A receive on a wildcard-bound socket is
 * reported, and userspace drops it unless it matches a loopback send. */
static __always_inline __u8 inet_mechanism(struct task_state *ts, const struct sock *sk, __u8 op)
{
	__u16 proto = sk->sk_protocol;

	if (proto == IPPROTO_TCP)
		return mech_on(MECH_TCP) && inet_remote_loopback(sk) ? MECH_TCP : 0;
	if (proto != IPPROTO_UDP || !mech_on(MECH_UDP))
		return 0;
	if (inet_connected(sk))
		return inet_remote_loopback(sk) ? MECH_UDP : 0;
	if (op == OPER_SEND)
		return MECH_UDP; /* udp_op flags it unsure without a delivery */
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
	if (op == OPER_SEND) {
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
	if (op == OPER_SEND) {
		r->ino = sock_ino(sk);
		r->sk = (__u64)sk;
		if (!ts->pend_valid) {
			if (!inet_connected(sk))
				r->flags |= OPF_UNSURE;
			/* Delivery was deferred: let sk_data_ready know this
			 * port is traced, for this datagram and the next. */
			struct udp_sender key = {.netns = r->dev, .port = r->sport};
			__u8 one = 1;
			if (!bpf_map_lookup_elem(&udp_senders, &key))
				bpf_map_update_elem(&udp_senders, &key, &one, BPF_ANY);
		}
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
	own = sock_state(sk, true, 0);
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

/* The source address and port of the datagram just queued on sk (the
 * queue's last packet), read from its IP and UDP headers. */
static __always_inline bool udp_source(const struct sock *sk, __u8 saddr[16], __u16 *sport)
{
	struct sk_buff *skb = BPF_CORE_READ(sk, sk_receive_queue.prev);
	unsigned char *head;
	__u16 nh, th, proto;
	__be16 port;

	if (!skb || (void *)skb == (void *)&sk->sk_receive_queue)
		return false;
	head = BPF_CORE_READ(skb, head);
	nh = BPF_CORE_READ(skb, network_header);
	th = BPF_CORE_READ(skb, transport_header);
	proto = bpf_ntohs(BPF_CORE_READ(skb, protocol));
	__builtin_memset(saddr, 0, 16);
	if (proto == 0x0800) { /* ETH_P_IP: saddr at 12 */
		if (bpf_probe_read_kernel(saddr, 4, head + nh + 12))
			return false;
	} else if (proto == 0x86DD) { /* ETH_P_IPV6: saddr at 8 */
		if (bpf_probe_read_kernel(saddr, 16, head + nh + 8))
			return false;
	} else {
		return false;
	}
	if (bpf_probe_read_kernel(&port, sizeof(port), head + th))
		return false;
	*sport = bpf_ntohs(port);
	return true;
}

static __always_inline bool addr_loopback(const __u8 a[16], bool v4)
{
	if (v4)
		return a[0] == 127;
	return v6_loopback(a);
}

/* sk_data_ready on a UDP socket outside its sender's context (the kernel
 * deferred delivery to softirq in another task). If the datagram came over
 * loopback from a port a traced task sends from, count it and tell
 * userspace where it went, so that it can pair it with its send; else only
 * count it on a socket icptrack already knows. */
static __always_inline void udp_deferred(const struct sock *sk)
{
	const struct sock_common *c = &sk->__sk_common;
	struct udp_sender key = {};
	struct delivery_record *d;
	struct sock_state *ss;
	__u8 saddr[16];
	__u16 sport;
	bool ours;
	__u64 seq;

	ours = udp_source(sk, saddr, &sport) && addr_loopback(saddr, c->skc_family == AF_INET);
	if (ours) {
		key.netns = BPF_CORE_READ(c, skc_net.net, ns.inum);
		key.port = sport;
		ours = bpf_map_lookup_elem(&udp_senders, &key) != NULL;
	}
	ss = sock_state(sk, ours, -1);
	if (!ss)
		return;
	seq = __sync_fetch_and_add(&ss->in, 1);
	if (!ours || metrics_only)
		return;
	d = bpf_ringbuf_reserve(&events, sizeof(*d), 0);
	if (!d) {
		stat_inc(STAT_NAMES_DROPPED);
		return;
	}
	__builtin_memset(d, 0, sizeof(*d));
	d->kind = RECORD_DELIVERY;
	d->family = c->skc_family;
	d->netns = key.netns;
	d->sk = (__u64)sk;
	d->seq = seq;
	d->sport = sport;
	__builtin_memcpy(d->saddr, saddr, 16);
	d->dport = c->skc_num;
	if (c->skc_family == AF_INET) {
		__be32 a = c->skc_rcv_saddr;
		__builtin_memcpy(d->daddr, &a, 4);
	} else {
		BPF_CORE_READ_INTO(&d->daddr, c, skc_v6_rcv_saddr.in6_u.u6_addr8);
	}
	bpf_ringbuf_submit(d, submit_flags());
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
