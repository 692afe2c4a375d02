/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Unix sockets. Stream: byte offsets per direction, counted on the
 * receiving socket. Datagram and seqpacket: a sequence number per receiving
 * socket, taken in sk_data_ready while the sender queues the datagram.
 * Each side counts only its own operations, so the order in which the two
 * ends' hooks run does not matter. */
#pragma once

#include "sock.h"

static __always_inline __u8 unix_mechanism(const struct sock *sk)
{
	switch (sk->sk_type) {
	case SOCK_STREAM:
		return MECH_UNIX_STREAM;
	case SOCK_DGRAM:
		return MECH_UNIX_DGRAM;
	case SOCK_SEQPACKET:
		return MECH_UNIX_SEQPACKET;
	}
	return 0;
}

/* What an operation on sk needs of its two ends: its own counters, and the
 * peer's socket as an address. The peer is reached through a field of sk,
 * which strict verifiers mark untrusted: it is only ever read with probe
 * reads and recorded, never handed to a helper. */
struct unix_ends {
	struct sock_state *own;
	__u64 peer;
};

/* Looks up (or creates, sending its name) this end's counters, and sends
 * the peer's path once per connection; done before the operation's record
 * is reserved, so that names reach userspace first. Returns false when the
 * socket's storage cannot be had. */
static __always_inline bool unix_meet(struct sock *sk, struct unix_ends *e)
{
	struct unix_sock *u;

	e->own = sock_state(sk, true, 0);
	if (!e->own)
		return false;
	u = bpf_skc_to_unix_sock(sk);
	e->peer = u ? (__u64)BPF_CORE_READ(u, peer) : 0;
	if (e->peer && e->own->named_peer != e->peer) {
		e->own->named_peer = e->peer;
		announce_unix((const struct sock *)e->peer);
	}
	return true;
}

/* Fills the unix part of a record for a send or receive on sk. */
static __always_inline void unix_op(struct task_state *ts, struct sock *sk, struct unix_ends *e, __u8 mech,
				    __u8 op, int ret, int flags, struct op_record *r)
{
	struct sock_state *own = e->own;
	bool peek = op == OPER_RECEIVE && (flags & MSG_PEEK);

	r->ino = own->ino;
	r->sk = (__u64)sk;
	r->peer_sk = e->peer;
	if (peek)
		r->flags |= OPF_PEEK;

	if (mech == MECH_UNIX_STREAM) {
		/* A send's bytes land on the peer in the order they were sent,
		 * so the sender's own count numbers them as the receiver's
		 * count will. */
		if (op == OPER_SEND) {
			r->off = ret > 0 ? __sync_fetch_and_add(&own->in, ret) : own->in;
		} else if (peek || ret <= 0) {
			r->off = own->out;
		} else {
			r->off = __sync_fetch_and_add(&own->out, ret);
		}
		return;
	}

	r->flags |= OPF_SEQ;
	if (op == OPER_SEND) {
		/* sk_data_ready named the socket this datagram went to. */
		if (ts->pend_valid) {
			r->peer_sk = ts->pend_sk;
			r->off = ts->pend_seq;
			r->flags |= OPF_PEER;
		}
		return;
	}
	if (peek || ret < 0) {
		r->off = own->out;
	} else {
		r->off = __sync_fetch_and_add(&own->out, 1);
	}
}
