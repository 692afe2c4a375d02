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
	inode = BPF_CORE_READ(f, f_inode);
	mode = BPF_CORE_READ(inode, i_mode) & S_IFMT;
	if (mode == S_IFSOCK) {
		k->mech = FD_SOCKET;
		return;
	}
	if (mode != S_IFIFO)
		return;
	sb = BPF_CORE_READ(inode, i_sb);
	k->mech = BPF_CORE_READ(sb, s_magic) == PIPEFS_MAGIC ? MECH_PIPE : MECH_FIFO;
	k->obj = (__u64)BPF_CORE_READ(inode, i_pipe);
	k->ino = BPF_CORE_READ(inode, i_ino);
	k->dev = BPF_CORE_READ(sb, s_dev);
	k->writable = (BPF_CORE_READ(f, f_mode) & FMODE_WRITE) != 0;
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
	n->ino = ino;
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

/* The pipe's counters, created on first sight so that bytes already
 * buffered before icptrack looked are not mistaken for traced writes. */
static __always_inline struct stream_state *pipe_state(struct task_struct *task, struct inflight *in,
							int end, __u8 op, __s64 ret)
{
	struct pipe_key key = {.pipe = in->obj[end], .ino = in->ino[end]};
	struct stream_state *st = bpf_map_lookup_elem(&pipe_states, &key);
	struct stream_state init = {};
	__u64 buffered;

	if (st)
		return st;
	buffered = pipe_buffered((struct pipe_inode_info *)in->obj[end]);
	if (ret > 0 && op == OP_SEND)
		init.written = buffered > ret ? buffered - ret : 0;
	else if (ret > 0)
		init.written = buffered + ret;
	else
		init.written = buffered;
	if (bpf_map_update_elem(&pipe_states, &key, &init, BPF_NOEXIST) == 0 &&
	    in->mech[end] == MECH_FIFO)
		announce_fifo(task, in->fd[end], in->ino[end], in->dev[end]);
	return bpf_map_lookup_elem(&pipe_states, &key);
}

/* When a read leaves the pipe empty, everything written has been read:
 * pull both counters to the larger so that writes by untraced processes,
 * or a writer whose exit hook has not run yet, cannot skew later matches
 * for longer than until the pipe next drains. */
static __always_inline void pipe_resync(struct pipe_inode_info *p, struct stream_state *st)
{
	__u64 w, r;

	if (BPF_CORE_READ(p, head) != BPF_CORE_READ(p, tail))
		return;
	w = st->written;
	r = st->read;
	if (w > r)
		st->read = w;
	else if (r > w)
		st->written = r;
}

/* One record for one end of a finished pipe syscall. */
static __always_inline void emit_pipe(struct task_struct *task, struct inflight *in, int end, __u8 op,
				      bool peek, __s64 ret, __u64 now, bool blocked)
{
	struct stream_state *st = pipe_state(task, in, end, op, ret);
	struct op_record *r;
	bool reserved = false;
	__u64 off = 0;

	if (st) {
		if (op == OP_SEND)
			off = ret > 0 ? __sync_fetch_and_add(&st->written, ret) : st->written;
		else if (peek || ret <= 0)
			off = st->read;
		else {
			off = __sync_fetch_and_add(&st->read, ret);
			pipe_resync((struct pipe_inode_info *)in->obj[end], st);
		}
	}

	r = new_op(&reserved);
	if (!r)
		return;
	r->mechanism = in->mech[end];
	r->op = op;
	r->flags = (blocked ? OPF_BLOCKED : 0) | (peek ? OPF_PEEK : 0);
	r->syscall = in->syscall;
	fill_task(r, task);
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
	submit_op(r, reserved);
}
