/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Message queues (POSIX and SysV), shared memory (SysV segments, shared
 * mappings of tmpfs files and memfds) and futexes in shared memory. All of
 * them are seen from sys_enter/sys_exit. Matching is done in userspace:
 * queues by (queue, priority or mtype) in order, shared memory by who has
 * a segment attached. */
#pragma once

#include "common.h"
#include "pipe.h"

#define MQUEUE_MAGIC 0x19800202
#define TMPFS_MAGIC 0x01021994
#define HUGETLBFS_MAGIC 0x958458f6
#define O_CREAT 0100
#define IPC_CREAT 01000
#define IPC_RMID 0
#define MSG_COPY 040000
#define MAP_SHARED 0x01
#define FUTEX_PRIVATE 128
#define FUTEX_CMD_MASK 127
#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
#define FUTEX_WAIT_BITSET 9
#define FUTEX_WAKE_BITSET 10

static __always_inline struct ipc_extra *extra(struct op_record *r)
{
	return (struct ipc_extra *)r->saddr;
}

static __always_inline __u32 ipc_ns(struct task_struct *task)
{
	return BPF_CORE_READ(task, nsproxy, ipc_ns, ns.inum);
}

/* The file behind fd if it is of the filesystem with this magic. */
static __always_inline struct file *fd_of_fs(struct task_struct *task, int fd, unsigned long magic)
{
	struct file *f = fd_file(task, fd);

	if (!f || KREAD(f, f_inode, i_sb, s_magic) != magic)
		return NULL;
	return f;
}

/* Marks end 0 of the call in flight as the queue or file behind fd. */
static __always_inline void set_end(struct inflight *in, struct file *f, int fd, __u8 mech)
{
	struct inode *inode = KREAD(f, f_inode);

	in->mech[0] = mech;
	in->obj[0] = (__u64)inode;
	in->ino[0] = KREAD(inode, i_ino);
	in->dev[0] = KREAD(inode, i_sb, s_dev);
	in->fd[0] = fd;
}

/* The mqueue state around a queue's inode. */
static __always_inline struct mqueue_inode_info *mq_info(__u64 inode)
{
	return (void *)inode - bpf_core_field_offset(struct mqueue_inode_info, vfs_inode);
}

/* Messages waiting in a queue. */
static __always_inline __u64 mq_depth(__u64 inode)
{
	struct mqueue_inode_info *info = mq_info(inode);

	return BPF_CORE_READ(info, attr.mq_curmsgs);
}

/* The priority of the message a receive will take if the queue is not
 * empty now: its highest. -1 when empty. */
static __always_inline __s64 mq_top_priority(__u64 inode)
{
	struct mqueue_inode_info *info = mq_info(inode);
	struct rb_node *top = BPF_CORE_READ(info, msg_tree_rightmost);
	struct posix_msg_tree_node *node;

	if (!top)
		return -1;
	node = (void *)top - bpf_core_field_offset(struct posix_msg_tree_node, rb_node);
	return BPF_CORE_READ(node, priority);
}

/* The path or name a call named, copied as the record's payload. */
static __always_inline void path_payload(struct op_record *r, __u64 user_str)
{
	long n = bpf_probe_read_user_str((__u8 *)(r + 1), NAME_MAX_LEN, (void *)user_str);

	if (n > 1) {
		r->payload_len = n - 1;
		r->flags |= OPF_PATH;
	}
}

/* Does the user string start with /dev/shm/? */
static __always_inline bool in_dev_shm(__u64 user_str)
{
	char p[9];

	if (bpf_probe_read_user(p, sizeof(p), (void *)user_str))
		return false;
	return p[0] == '/' && p[1] == 'd' && p[2] == 'e' && p[3] == 'v' && p[4] == '/' && p[5] == 's' &&
	       p[6] == 'h' && p[7] == 'm' && p[8] == '/';
}

/* A shared file's mechanism: a memfd (its dentry is named memfd:...), or
 * any other tmpfs file, which userspace keeps only under /dev/shm. */
static __always_inline __u8 shm_mechanism(struct file *f)
{
	const unsigned char *name = KREAD(f, f_path.dentry, d_name.name);
	char p[6];

	if (bpf_probe_read_kernel(p, sizeof(p), name) == 0 && p[0] == 'm' && p[1] == 'e' && p[2] == 'm' &&
	    p[3] == 'f' && p[4] == 'd' && p[5] == ':')
		return MECH_MEMFD;
	return MECH_POSIX_SHM;
}

/* sys_enter for the queue, shared memory and futex calls. Returns false
 * when the call is not one icptrack reports. */
static __always_inline bool ipc_enter(struct task_struct *task, struct pt_regs *regs, __u8 cls,
				      struct inflight *in)
{
	struct attachment *att;
	struct attach_key ak = {.tgid = task->tgid};
	struct file *f;
	__s64 mtype;
	long op;

	switch (cls) {
	case SC_MQ_OPEN:
	case SC_MQ_UNLINK:
		if (!mech_on(MECH_POSIX_MQ))
			return false;
		in->buf = SYSCALL_ARG0(regs);
		in->x[0] = SYSCALL_ARG1(regs);
		return true;
	case SC_MQ_SEND:
	case SC_MQ_RECV:
	case SC_MQ_NOTIFY:
		if (!mech_on(MECH_POSIX_MQ))
			return false;
		f = fd_of_fs(task, SYSCALL_ARG0(regs), MQUEUE_MAGIC);
		if (!f)
			return false;
		set_end(in, f, SYSCALL_ARG0(regs), MECH_POSIX_MQ);
		in->buf = SYSCALL_ARG1(regs);
		in->cnt = SYSCALL_ARG2(regs);
		in->x[0] = SYSCALL_ARG3(regs); /* priority, or where the receive writes it */
		in->x[1] = cls == SC_MQ_RECV ? mq_top_priority(in->obj[0]) : 0;
		return true;
	case SC_MSGGET:
	case SC_MSGSND:
	case SC_MSGRCV:
	case SC_MSGCTL:
		if (!mech_on(MECH_SYSV_MQ))
			return false;
		in->x[0] = SYSCALL_ARG0(regs); /* key, or msqid */
		in->x[1] = SYSCALL_ARG1(regs); /* flags, msgp or cmd */
		in->cnt = SYSCALL_ARG2(regs);
		if (cls == SC_MSGSND && !bpf_probe_read_user(&mtype, sizeof(mtype), (void *)in->x[1]))
			in->obj[0] = mtype;
		if (cls == SC_MSGRCV)
			in->obj[1] = SYSCALL_ARG4(regs); /* flags */
		return true;
	case SC_SHMGET:
	case SC_SHMAT:
	case SC_SHMCTL:
		if (!mech_on(MECH_SYSV_SHM))
			return false;
		in->x[0] = SYSCALL_ARG0(regs); /* key, or shmid */
		in->x[1] = SYSCALL_ARG1(regs); /* size, address or cmd */
		in->cnt = SYSCALL_ARG2(regs);
		return true;
	case SC_SHMDT:
	case SC_MUNMAP:
		ak.addr = SYSCALL_ARG0(regs);
		att = bpf_map_lookup_elem(&attachments, &ak);
		if (!att)
			return false;
		in->mech[0] = att->mech;
		in->ino[0] = att->ino;
		in->dev[0] = att->dev;
		in->x[0] = ak.addr;
		in->x[1] = att->id;
		in->obj[0] = att->size;
		return true;
	case SC_MMAP:
		if (!(SYSCALL_ARG3(regs) & MAP_SHARED))
			return false;
		f = fd_file(task, SYSCALL_ARG4(regs));
		if (!f)
			return false;
		op = KREAD(f, f_inode, i_sb, s_magic);
		if (op != TMPFS_MAGIC && op != HUGETLBFS_MAGIC)
			return false;
		cls = shm_mechanism(f);
		if (!mech_on(cls))
			return false;
		set_end(in, f, SYSCALL_ARG4(regs), cls);
		in->x[1] = SYSCALL_ARG1(regs); /* length */
		return true;
	case SC_UNLINK:
	case SC_UNLINKAT:
		if (!mech_on(MECH_POSIX_SHM))
			return false;
		in->buf = cls == SC_UNLINK ? SYSCALL_ARG0(regs) : SYSCALL_ARG1(regs);
		return in_dev_shm(in->buf);
	case SC_MEMFD:
		if (!mech_on(MECH_MEMFD))
			return false;
		in->buf = SYSCALL_ARG0(regs);
		return true;
	case SC_FUTEX:
		op = SYSCALL_ARG1(regs);
		/* Private futexes never cross a process. */
		if (op & FUTEX_PRIVATE)
			return false;
		op &= FUTEX_CMD_MASK;
		if (op != FUTEX_WAIT && op != FUTEX_WAKE && op != FUTEX_WAIT_BITSET && op != FUTEX_WAKE_BITSET)
			return false;
		in->x[0] = SYSCALL_ARG0(regs);
		in->x[1] = op;
		return true;
	}
	return false;
}

/* A record for a queue, shared memory or futex call, with the common
 * fields filled. With a path, in->buf is copied as its payload. */
static __always_inline struct op_record *ipc_record(struct task_struct *task, struct inflight *in, __u8 mech,
						    __u8 op, __s64 ret, __u64 now, bool blocked, bool path,
						    bool *reserved)
{
	struct op_record *r = path ? new_path_op(reserved) : new_op(reserved);

	if (!r)
		return NULL;
	r->mechanism = mech;
	r->op = op;
	r->flags = blocked ? OPF_BLOCKED : 0;
	r->syscall = in->syscall;
	fill_task(r, task, task_state_of(in));
	r->fd = -1;
	r->start_ns = in->start_ns;
	r->end_ns = now;
	r->ret = ret;
	if (path && ret >= 0)
		path_payload(r, in->buf);
	return r;
}

/* With payload capture on, the message a queue send or receive moved as
 * the record's payload: the bytes at buf, as many as the call moved (the
 * record's ret), up to payload_max. A receive's buffer is read after the
 * call, when the kernel has filled it. The record is in scratch space:
 * new_op puts it there whenever payload_max is set. */
static __always_inline void message_payload(struct op_record *r, __u64 buf)
{
	if (!payload_max || metrics_only || r->ret <= 0 || !buf)
		return;
	r->payload_len = copy_payload((__u8 *)(r + 1), buf, 0, false, r->ret);
	if (r->payload_len < r->ret)
		r->flags |= OPF_TRUNCATED;
}

/* The file a successful open-like call returned: its identity. */
static __always_inline void opened_file(struct task_struct *task, struct op_record *r, int fd)
{
	struct file *f = fd_file(task, fd);

	r->fd = fd;
	if (f) {
		r->ino = KREAD(f, f_inode, i_ino);
		r->dev = KREAD(f, f_inode, i_sb, s_dev);
	}
}

static __always_inline bool is_error(__s64 ret)
{
	return (unsigned long)ret >= (unsigned long)-4095;
}

/* sys_exit for the queue, shared memory and futex calls. */
static __noinline void ipc_exit(struct task_struct *task, struct inflight *in, __s64 ret, __u64 now, bool blocked)
{
	struct attach_key ak = {.tgid = task->tgid};
	struct attachment att = {};
	struct op_record *r = NULL;
	struct ipc_extra *x;
	bool reserved = false;
	__u8 cls = in->cls;
	__s64 v;

	switch (cls) {
	case SC_MQ_OPEN:
		r = ipc_record(task, in, MECH_POSIX_MQ, in->x[0] & O_CREAT ? OPER_CREATE : OPER_OPEN, ret, now, blocked,
			       true, &reserved);
		if (r && ret >= 0)
			opened_file(task, r, ret);
		break;
	case SC_MQ_UNLINK:
		r = ipc_record(task, in, MECH_POSIX_MQ, OPER_UNLINK, ret, now, blocked, true, &reserved);
		break;
	case SC_MQ_SEND:
	case SC_MQ_RECV:
	case SC_MQ_NOTIFY:
		r = ipc_record(task, in, MECH_POSIX_MQ,
			       cls == SC_MQ_SEND ? OPER_SEND : cls == SC_MQ_RECV ? OPER_RECEIVE : OPER_WAIT, ret, now,
			       blocked, false, &reserved);
		if (!r)
			return;
		r->fd = in->fd[0];
		r->ino = in->ino[0];
		r->dev = in->dev[0];
		x = extra(r);
		x->b = mq_depth(in->obj[0]);
		if (cls == SC_MQ_SEND) {
			x->a = in->x[0];
			if (ret == 0)
				r->ret = in->cnt; /* mq_timedsend returns 0 */
			message_payload(r, in->buf);
		} else if (cls == SC_MQ_RECV) {
			message_payload(r, in->buf);
			/* The receive says which priority it took only if asked
			 * to; otherwise it is the highest queued at entry (or, if
			 * the queue was empty, unknown). */
			__u32 prio;
			if (ret >= 0 && in->x[0] && !bpf_probe_read_user(&prio, sizeof(prio), (void *)in->x[0])) {
				x->a = prio;
			} else {
				x->a = in->x[1];
				x->approx = 1;
			}
		}
		break;
	case SC_MSGGET:
	case SC_MSGCTL:
		if (cls == SC_MSGCTL && ((in->x[1] & 0xff) != IPC_RMID || ret != 0))
			return;
		r = ipc_record(task, in, MECH_SYSV_MQ,
			       cls == SC_MSGCTL ? OPER_UNLINK : (in->x[1] & IPC_CREAT) ? OPER_CREATE : OPER_OPEN, ret, now,
			       blocked, false, &reserved);
		if (!r)
			return;
		x = extra(r);
		x->ns = ipc_ns(task);
		x->id = cls == SC_MSGCTL ? in->x[0] : ret;
		x->a = cls == SC_MSGGET ? in->x[0] : 0; /* the key */
		break;
	case SC_MSGSND:
	case SC_MSGRCV:
		r = ipc_record(task, in, MECH_SYSV_MQ, cls == SC_MSGSND ? OPER_SEND : OPER_RECEIVE, ret, now, blocked,
			       false, &reserved);
		if (!r)
			return;
		x = extra(r);
		x->ns = ipc_ns(task);
		x->id = in->x[0];
		if (cls == SC_MSGSND) {
			x->a = in->obj[0];
			if (ret == 0)
				r->ret = in->cnt; /* msgsnd returns 0 */
		} else {
			/* The kernel wrote the type it delivered into msgp. */
			if (ret >= 0 && !bpf_probe_read_user(&v, sizeof(v), (void *)in->x[1]))
				x->a = v;
			if (in->obj[1] & MSG_COPY)
				r->flags |= OPF_PEEK;
		}
		/* msgp is a struct msgbuf { long mtype; char mtext[]; }: the
		 * message is mtext. */
		message_payload(r, in->x[1] + sizeof(long));
		break;
	case SC_SHMGET:
	case SC_SHMCTL:
		if (cls == SC_SHMCTL && ((in->x[1] & 0xff) != IPC_RMID || ret != 0))
			return;
		r = ipc_record(task, in, MECH_SYSV_SHM,
			       cls == SC_SHMCTL ? OPER_UNLINK : (in->cnt & IPC_CREAT) ? OPER_CREATE : OPER_OPEN, ret, now,
			       blocked, false, &reserved);
		if (!r)
			return;
		x = extra(r);
		x->ns = ipc_ns(task);
		x->id = cls == SC_SHMCTL ? in->x[0] : ret;
		if (cls == SC_SHMGET) {
			x->a = in->x[0];
			x->b = in->x[1];
		}
		break;
	case SC_SHMAT:
	case SC_MMAP:
		if (is_error(ret)) {
			r = ipc_record(task, in, cls == SC_SHMAT ? MECH_SYSV_SHM : in->mech[0], OPER_ATTACH, ret, now,
				       blocked, false, &reserved);
			break;
		}
		att.mech = cls == SC_SHMAT ? MECH_SYSV_SHM : in->mech[0];
		att.id = cls == SC_SHMAT ? in->x[0] : 0;
		att.ino = in->ino[0];
		att.dev = in->dev[0];
		att.size = cls == SC_SHMAT ? 0 : in->x[1];
		ak.addr = ret;
		bpf_map_update_elem(&attachments, &ak, &att, BPF_ANY);
		r = ipc_record(task, in, att.mech, OPER_ATTACH, att.size, now, blocked, false, &reserved);
		if (!r)
			return;
		r->ino = att.ino;
		r->dev = att.dev;
		x = extra(r);
		x->a = ret;
		x->b = att.size;
		x->id = att.id;
		if (cls == SC_SHMAT)
			x->ns = ipc_ns(task);
		else
			r->fd = in->fd[0];
		break;
	case SC_SHMDT:
	case SC_MUNMAP:
		if (ret == 0) {
			ak.addr = in->x[0];
			bpf_map_delete_elem(&attachments, &ak);
		}
		r = ipc_record(task, in, in->mech[0], OPER_DETACH, ret == 0 ? in->obj[0] : ret, now, blocked, false,
			       &reserved);
		if (!r)
			return;
		r->ino = in->ino[0];
		r->dev = in->dev[0];
		x = extra(r);
		x->a = in->x[0];
		x->b = in->obj[0];
		x->id = in->x[1];
		if (in->mech[0] == MECH_SYSV_SHM)
			x->ns = ipc_ns(task);
		break;
	case SC_UNLINK:
	case SC_UNLINKAT:
		r = ipc_record(task, in, MECH_POSIX_SHM, OPER_UNLINK, ret, now, blocked, true, &reserved);
		break;
	case SC_OPEN:
	case SC_OPENAT:
		if (!in->buf)
			return;
		r = ipc_record(task, in, MECH_POSIX_SHM, in->x[0] & O_CREAT ? OPER_CREATE : OPER_OPEN, ret, now,
			       blocked, true, &reserved);
		if (r && ret >= 0)
			opened_file(task, r, ret);
		break;
	case SC_MEMFD:
		r = ipc_record(task, in, MECH_MEMFD, OPER_CREATE, ret, now, blocked, true, &reserved);
		if (r && ret >= 0)
			opened_file(task, r, ret);
		break;
	case SC_FUTEX:
		/* Userspace keeps the ones inside a tracked segment. */
		r = ipc_record(task, in, MECH_POSIX_SHM,
			       in->x[1] == FUTEX_WAKE || in->x[1] == FUTEX_WAKE_BITSET ? OPER_WAKE : OPER_WAIT, ret, now,
			       blocked, false, &reserved);
		if (!r)
			return;
		x = extra(r);
		x->a = in->x[0];
		x->b = in->x[1];
		break;
	}
	if (r)
		submit_op(r, reserved);
}
