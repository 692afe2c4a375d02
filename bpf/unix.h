/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Unix sockets. Stream: byte offsets per direction, counted on the
 * receiving socket. Datagram and seqpacket: a sequence number per receiving
 * socket, taken in sk_data_ready while the sender queues the datagram. */
#pragma once

#include "sock.h"

static __always_inline __u8 unix_mechanism(const struct sock *sk)
{
	switch (BPF_CORE_READ(sk, sk_type)) {
	case SOCK_STREAM:
		return MECH_UNIX_STREAM;
	case SOCK_DGRAM:
		return MECH_UNIX_DGRAM;
	case SOCK_SEQPACKET:
		return MECH_UNIX_SEQPACKET;
	}
	return 0;
}

/* Fills the unix part of a record for a send or receive on sk. Returns
 * false when the record cannot be completed. */
static __always_inline bool unix_op(struct task_state *ts, struct sock *sk, __u8 mech, __u8 op, int ret,
				    int flags, struct op_record *r)
{
	struct sock_state *own, *ps = NULL;
	struct unix_sock *u;
	struct sock *peer = NULL;
	bool peek = op == OP_RECEIVE && (flags & MSG_PEEK);

	own = sock_state(sk, true);
	if (!own)
		return false;
	r->ino = own->ino;
	u = bpf_skc_to_unix_sock(sk);
	if (u)
		peer = u->peer;
	if (peer) {
		ps = sock_state(peer, true);
		if (ps)
			r->peer_ino = ps->ino;
	}
	if (peek)
		r->flags |= OPF_PEEK;

	if (mech == MECH_UNIX_STREAM) {
		if (op == OP_SEND) {
			if (ps)
				r->off = ret > 0 ? __sync_fetch_and_add(&ps->in, ret) : ps->in;
		} else if (peek || ret <= 0) {
			r->off = own->out;
		} else {
			r->off = __sync_fetch_and_add(&own->out, ret);
			if (sk->sk_receive_queue.qlen == 0)
				seq_resync(own);
		}
		return true;
	}

	r->flags |= OPF_SEQ;
	if (op == OP_SEND) {
		/* sk_data_ready named the socket this datagram went to. */
		if (ts->pend_valid) {
			r->peer_ino = ts->pend_ino;
			r->off = ts->pend_seq;
			r->flags |= OPF_PEER;
		}
		return true;
	}
	if (peek || ret < 0) {
		r->off = own->out;
	} else {
		r->off = __sync_fetch_and_add(&own->out, 1);
		if (sk->sk_receive_queue.qlen == 0)
			seq_resync(own);
	}
	return true;
}
