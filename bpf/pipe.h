/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Pipes and FIFOs: what a descriptor is, and the byte offsets that let a
 * read find the writes it delivered. Hooked from sys_enter/sys_exit. */
#pragma once

#include "common.h"

#define FD_SOCKET 0xff /* classify_fd: the descriptor is a socket */
#define NAME_PARTS 8   /* FIFO path components kept, leaf first */
#define NAME_PART_LEN 64

/* What a descriptor refers to, as far as icptrack cares. */
struct fd_kind {
	__u64 obj; /* pipe_inode_info */
	__u64 ino;
	__u32 dev;
	__u8 mech; /* MECH_PIPE, MECH_FIFO, FD_SOCKET, or 0 for anything else */
	__u8 writable;
};

static __always_inline void classify_fd(struct task_struct *task, int fd, struct fd_kind *k)
{
	struct file *f = fd_file(task, fd);
	struct inode *inode;
	struct super_block *sb;
	umode_t mode;

	k->mech = 0;
	if (!f)
		return;
	inode = KREAD(f, f_inode);
	mode = KREAD(inode, i_mode) & S_IFMT;
	if (mode == S_IFSOCK) {
		k->mech = FD_SOCKET;
		if (sock_syscalls) {
			struct socket *so = KREAD(f, private_data);
			k->obj = (__u64)KREAD(so, sk);
		}
		return;
	}
	if (mode != S_IFIFO)
		return;
	sb = KREAD(inode, i_sb);
	k->mech = KREAD(sb, s_magic) == PIPEFS_MAGIC ? MECH_PIPE : MECH_FIFO;
	k->obj = (__u64)KREAD(inode, i_pipe);
	k->ino = KREAD(inode, i_ino);
	k->dev = KREAD(sb, s_dev);
	k->writable = (KREAD(f, f_mode) & FMODE_WRITE) != 0;
}

/* Bytes waiting in a pipe: the lengths of its buffers from tail to head. */
static __always_inline __u64 pipe_buffered(struct pipe_inode_info *p)
{
	unsigned int head = BPF_CORE_READ(p, head);
	unsigned int tail = BPF_CORE_READ(p, tail);
	unsigned int mask = BPF_CORE_READ(p, ring_size) - 1;
	void *bufs = BPF_CORE_READ(p, bufs);
	__u64 size = bpf_core_type_size(struct pipe_buffer);
	__u64 total = 0;

	for (int i = 0; i < 64; i++) {
		struct pipe_buffer *b;

		if (tail + i == head)
			break;
		b = bufs + ((tail + i) & mask) * size;
		total += BPF_CORE_READ(b, len);
	}
	return total;
}

/* The FIFO's path, leaf first, one component per NAME_PART_LEN slot, up to
 * its filesystem's root. Userspace adds the mount point. */
static __always_inline void announce_fifo(struct task_struct *task, int fd, __u64 ino, __u32 dev)
{
	struct file *f = fd_file(task, fd);
	struct name_record *n = new_name();
	struct dentry *d;

	if (!f || !n)
		return;
	n->mechanism = MECH_FIFO;
	n->id = ino;
	n->dev = dev;
	d = BPF_CORE_READ(f, f_path.dentry);
	for (int i = 0; i < NAME_PARTS; i++) {
		struct dentry *parent = BPF_CORE_READ(d, d_parent);
		const unsigned char *s = BPF_CORE_READ(d, d_name.name);

		if (!d || parent == d)
			break;
		bpf_probe_read_kernel_str(&n->name[i * NAME_PART_LEN], NAME_PART_LEN, s);
		n->len = i + 1;
		d = parent;
	}
	submit_name(n);
}

static __always_inline struct stream_state *new_pipe_state(struct task_struct *task, struct inflight *in,
							    int end, __u64 written)
{
	struct pipe_key key = {.pipe = in->obj[end], .ino = in->ino[end]};
	struct stream_state init = {.written = written};

	if (bpf_map_update_elem(&pipe_states, &key, &init, BPF_NOEXIST) == 0 &&
	    in->mech[end] == MECH_FIFO)
		announce_fifo(task, in->fd[end], in->ino[end], in->dev[end]);
	return bpf_map_lookup_elem(&pipe_states, &key);
}

/* Called at a pipe operation's entry: the first time icptrack meets a
 * pipe, its counters start with the bytes already buffered counted as
 * written (by someone unseen), and nothing read. At entry none of this
 * operation's bytes have moved, and any traced writer whose bytes are in
 * the pipe met it first, so the count is exact. Each side then counts only
 * its own operations, in whatever order their exit hooks run. */
static __always_inline void pipe_meet(struct task_struct *task, struct task_state *ts, struct inflight *in,
				      int end)
{
	struct pipe_key key = {.pipe = in->obj[end], .ino = in->ino[end]};

	if (ts->met_pipe[0] == key.pipe && ts->met_ino[0] == key.ino)
		return;
	if ((ts->met_pipe[1] != key.pipe || ts->met_ino[1] != key.ino) &&
	    !bpf_map_lookup_elem(&pipe_states, &key))
		new_pipe_state(task, in, end, pipe_buffered((struct pipe_inode_info *)key.pipe));
	ts->met_pipe[1] = ts->met_pipe[0];
	ts->met_ino[1] = ts->met_ino[0];
	ts->met_pipe[0] = key.pipe;
	ts->met_ino[0] = key.ino;
}

/* The pipe's counters at an operation's exit. They exist unless the table
 * evicted them meanwhile; then the buffered bytes are counted as at entry,
 * correcting for this operation's own. */
static __always_inline struct stream_state *pipe_state(struct task_struct *task, struct inflight *in,
							int end, __u8 op, __s64 ret)
{
	struct pipe_key key = {.pipe = in->obj[end], .ino = in->ino[end]};
	struct stream_state *st = bpf_map_lookup_elem(&pipe_states, &key);
	__u64 buffered;

	if (st)
		return st;
	buffered = pipe_buffered((struct pipe_inode_info *)in->obj[end]);
	if (ret > 0 && op == OPER_SEND)
		buffered = buffered > ret ? buffered - ret : 0;
	else if (ret > 0)
		buffered += ret;
	return new_pipe_state(task, in, end, buffered);
}

/* A FIFO was opened. Its counters outlive the pipe behind it when its
 * last opener closes, and bytes written then but never read were thrown
 * away: opened with nothing buffered, the read counter catches up. */
static __always_inline void fifo_opened(struct task_struct *task, int fd)
{
	struct pipe_inode_info *p;
	struct stream_state *st;
	struct pipe_key key;
	struct fd_kind k;

	classify_fd(task, fd, &k);
	if (k.mech != MECH_FIFO || !mech_on(MECH_FIFO))
		return;
	key.pipe = k.obj;
	key.ino = k.ino;
	st = bpf_map_lookup_elem(&pipe_states, &key);
	p = (struct pipe_inode_info *)k.obj;
	if (st && st->written > st->read && BPF_CORE_READ(p, head) == BPF_CORE_READ(p, tail))
		st->read = st->written;
}

/* One record for one end of a finished pipe syscall. */
static __always_inline void emit_pipe(struct task_struct *task, struct inflight *in, int end, __u8 op,
				      bool peek, __s64 ret, __u64 now, bool blocked)
{
	struct stream_state *st;
	struct op_record *r;
	bool reserved = false;
	__u64 off = 0;

	if (metrics_only) {
		/* No offsets to keep: nothing is matched. */
		count(task->tgid, in->mech[end], op, ret, in->start_ns, now);
		return;
	}
	st = pipe_state(task, in, end, op, ret);

	if (st) {
		if (op == OPER_SEND)
			off = ret > 0 ? __sync_fetch_and_add(&st->written, ret) : st->written;
		else if (peek || ret <= 0)
			off = st->read;
		else
			off = __sync_fetch_and_add(&st->read, ret);
	}

	r = new_op(&reserved);
	if (!r)
		return;
	r->mechanism = in->mech[end];
	r->op = op;
	r->flags = (blocked ? OPF_BLOCKED : 0) | (peek ? OPF_PEEK : 0);
	r->syscall = in->syscall;
	fill_task(r, task, task_state_of(in));
	r->fd = in->fd[end];
	r->start_ns = in->start_ns;
	r->end_ns = now;
	r->ret = ret;
	r->ino = in->ino[end];
	r->dev = in->dev[end];
	r->off = off;
	if (payload_max && ret > 0 && in->buf) {
		bool vec = in->cls == SC_WRITEV || in->cls == SC_READV || in->cls == SC_VMSPLICE;
		r->payload_len = copy_payload((__u8 *)(r + 1), in->buf, in->cnt, vec, ret);
		if (r->payload_len < ret)
			r->flags |= OPF_TRUNCATED;
	}
	submit_op_ts(r, reserved, task_state_of(in));
}
