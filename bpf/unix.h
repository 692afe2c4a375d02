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

/* The counters of both ends of an operation on sk. */
struct unix_ends {
	struct sock_state *own;
	struct sock_state *ps; /* the peer's, when connected */
	struct sock *peer;
};

/* Looks up (or creates, sending their names) both ends' counters; done
 * before the operation's record is reserved, so that names reach userspace
 * first. Returns false when the socket's storage cannot be had. */
static __always_inline bool unix_meet(struct sock *sk, struct unix_ends *e)
{
	struct unix_sock *u;

	e->own = sock_state(sk, true, 0);
	if (!e->own)
		return false;
	u = bpf_skc_to_unix_sock(sk);
	e->peer = u ? u->peer : NULL;
	e->ps = e->peer ? sock_state(e->peer, true, 0) : NULL;
	return true;
}

/* Fills the unix part of a record for a send or receive on sk. */
static __always_inline void unix_op(struct task_state *ts, struct sock *sk, struct unix_ends *e, __u8 mech,
				    __u8 op, int ret, int flags, struct op_record *r)
{
	struct sock_state *own = e->own, *ps = e->ps;
	bool peek = op == OPER_RECEIVE && (flags & MSG_PEEK);

	r->ino = own->ino;
	r->sk = (__u64)sk;
	r->peer_sk = (__u64)e->peer;
	if (peek)
		r->flags |= OPF_PEEK;

	if (mech == MECH_UNIX_STREAM) {
		if (op == OPER_SEND) {
			if (ps)
				r->off = ret > 0 ? __sync_fetch_and_add(&ps->in, ret) : ps->in;
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
