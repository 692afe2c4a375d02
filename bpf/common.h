/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* What every mechanism shares: the records sent to userspace, the maps, the
 * configuration userspace writes before loading, and the per-task state that
 * joins a syscall's entry to its exit. */
#pragma once

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#define TASK_COMM_LEN 16
#define PAYLOAD_MAX 4096 /* the largest --payload; a power of two */
#define SYSCALL_MAX 512  /* size of the syscall class table */
#define NAME_MAX_LEN 512 /* socket path, or FIFO path components, in a name record */

#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define SOCK_SEQPACKET 5
#define MSG_PEEK 2
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define S_IFIFO 0010000
#define FMODE_WRITE 0x2
#define PIPEFS_MAGIC 0x50495045
#define TASK_RUNNING 0

enum mechanism {
	MECH_PIPE = 1,
	MECH_FIFO = 2,
	MECH_UNIX_STREAM = 3,
	MECH_UNIX_DGRAM = 4,
	MECH_UNIX_SEQPACKET = 5,
	MECH_TCP = 6,
	MECH_UDP = 7,
	MECH_POSIX_MQ = 8,
	MECH_SYSV_MQ = 9,
	MECH_SYSV_SHM = 10,
	MECH_POSIX_SHM = 11, /* a shared mapping of a tmpfs file (/dev/shm, say) */
	MECH_SIGNAL = 12,
	MECH_MEMFD = 13,
};

enum op_type {
	OPER_SEND = 1,
	OPER_RECEIVE = 2,
	OPER_ATTACH = 3,
	OPER_DETACH = 4,
	OPER_OPEN = 5,
	OPER_CREATE = 6,
	OPER_UNLINK = 7,
	OPER_WAIT = 8,
	OPER_WAKE = 9,
};

enum record_kind {
	RECORD_OP = 1,   /* struct op_record */
	RECORD_NAME = 2, /* struct name_record */
	RECORD_DELIVERY = 3, /* struct delivery_record */
	RECORD_PROC = 4,     /* struct proc_record */
};

enum proc_change {
	PROC_FORK = 1,
	PROC_EXEC = 2,
	PROC_EXIT = 3,
	PROC_RENAME = 4,
};

enum op_flag {
	OPF_BLOCKED = 1 << 0,   /* the task slept inside the call */
	OPF_PEEK = 1 << 1,      /* MSG_PEEK or tee: bytes were not consumed */
	OPF_NO_START = 1 << 2,  /* no entry hook: start is the start of the wait, or the end */
	OPF_TRUNCATED = 1 << 3, /* fewer payload bytes captured than moved */
	OPF_SEQ = 1 << 4,       /* off is a datagram sequence number, not a byte offset */
	OPF_PEER = 1 << 5,      /* peer_sk names the receiving socket of a send */
	OPF_UNSURE = 1 << 6,    /* UDP send to an address not seen: loopback only if a delivery record claims it */
	OPF_PATH = 1 << 7,      /* the payload is the path or name the call named, not data */
};

/* How userspace asks the entry hook to treat a syscall number. */
enum syscall_class {
	SC_NONE = 0,
	SC_WRITE = 1,    /* write(fd, buf, n) */
	SC_WRITEV = 2,   /* writev(fd, iov, cnt) */
	SC_READ = 3,     /* read(fd, buf, n) */
	SC_READV = 4,    /* readv(fd, iov, cnt) */
	SC_SPLICE = 5,   /* splice(in, off_in, out, off_out, len, flags) */
	SC_TEE = 6,      /* tee(in, out, len, flags) */
	SC_VMSPLICE = 7, /* vmsplice(fd, iov, cnt, flags) */
	SC_SENDTO = 8,   /* sendto(fd, buf, n, ...), send */
	SC_RECVFROM = 9, /* recvfrom(fd, buf, n, ...), recv */
	SC_SENDMSG = 10, /* sendmsg(fd, msghdr, flags) */
	SC_RECVMSG = 11, /* recvmsg(fd, msghdr, flags) */
	SC_SENDMMSG = 12,
	SC_RECVMMSG = 13,
	SC_OPEN = 14,    /* open(path, flags): a FIFO may start a new life; /dev/shm */
	SC_OPENAT = 34,  /* openat(dfd, path, flags), openat2: the same */
	SC_MQ_OPEN = 15,     /* mq_open(name, oflag, ...) */
	SC_MQ_SEND = 16,     /* mq_timedsend(mqd, msg, len, prio, timeout) */
	SC_MQ_RECV = 17,     /* mq_timedreceive(mqd, msg, len, prio *, timeout) */
	SC_MQ_NOTIFY = 18,   /* mq_notify(mqd, sevp) */
	SC_MQ_UNLINK = 19,   /* mq_unlink(name) */
	SC_MSGGET = 20,      /* msgget(key, flags) */
	SC_MSGSND = 21,      /* msgsnd(id, msgp, size, flags) */
	SC_MSGRCV = 22,      /* msgrcv(id, msgp, size, type, flags) */
	SC_MSGCTL = 23,      /* msgctl(id, cmd, buf) */
	SC_SHMGET = 24,      /* shmget(key, size, flags) */
	SC_SHMAT = 25,       /* shmat(id, addr, flags) */
	SC_SHMDT = 26,       /* shmdt(addr) */
	SC_SHMCTL = 27,      /* shmctl(id, cmd, buf) */
	SC_MMAP = 28,        /* mmap(addr, len, prot, flags, fd, off) */
	SC_MUNMAP = 29,      /* munmap(addr, len) */
	SC_UNLINK = 30,      /* unlink(path) */
	SC_UNLINKAT = 31,    /* unlinkat(dfd, path, flags) */
	SC_MEMFD = 32,       /* memfd_create(name, flags) */
	SC_FUTEX = 33,       /* futex(uaddr, op, ...) on a shared futex */
};

enum stat_index {
	STAT_OPS_DROPPED = 0,   /* op records lost: ring buffer full */
	STAT_NAMES_DROPPED = 1, /* name records lost: ring buffer full */
	STAT_NO_STORAGE = 2,    /* task or socket storage could not be had */
	STAT_SUBMITS = 3,       /* records submitted on this CPU, to pace checks of the fill level */
	STAT_AGG_DROPPED = 4,   /* metrics mode: operations not counted, the aggregate map was full */
	STAT_HELD = 5,          /* operations held in coalesced runs not yet sent (summed over CPUs) */
	STAT_MAX = 6,
};

/* One completed operation. Shared with Go through bpf2go -type; keep the
 * padding explicit and the size a multiple of 8. */
struct op_record {
	__u8 kind; /* RECORD_OP */
	__u8 mechanism;
	__u8 op;
	__u8 flags;
	__u16 syscall; /* syscall number; 0xffff when unknown */
	__u16 family;  /* AF_INET or AF_INET6 for tcp and udp */
	__u32 pid;
	__u32 tid;
	__u32 ppid;
	__s32 fd; /* -1 when unknown */
	__u64 start_ns;
	__u64 end_ns;
	__s64 ret;      /* bytes moved, or -errno */
	__u64 ino;     /* this end: pipe inode, or socket inode (0 before accept) */
	__u64 sk;      /* this end's socket: its identity while it lives */
	__u64 peer_sk; /* the other end's socket, or a datagram's receiving socket */
	__u64 off;     /* first byte's offset in the stream, or datagram sequence */
	__u32 dev;      /* pipe/FIFO: superblock device; tcp/udp: netns inode */
	__u16 sport;    /* host byte order */
	__u16 dport;
	__u8 saddr[16]; /* tcp/udp; other mechanisms: struct ipc_extra over both */
	__u8 daddr[16];
	char comm[TASK_COMM_LEN];
	__u64 cgroup;      /* cgroup v2 id of the task */
	__u32 payload_len; /* captured payload bytes that follow the record */
	/* Coalesced runs (coalesce_ns): the operations the record stands
	 * for (0 for a record of one), and their summed time in their
	 * calls. start_ns is the first one's start, end_ns the last one's
	 * end, ret their total and off the first one's offset. */
	__u32 count;
	__u64 busy_ns;
};

/* What queues, shared memory, futexes and signals record in place of
 * addresses (saddr and daddr). */
struct ipc_extra {
	__s64 a;  /* mq send/receive: priority or mtype; msgget/shmget: key;
		   * attach: address; futex: address; signal: signal number */
	__u64 b;  /* POSIX mq: messages queued after the call; shmget/attach:
		   * size; futex: the command; signal: target tgid << 32 | tid */
	__s64 id; /* SysV: msqid or shmid; signal: si_code */
	__u32 ns; /* SysV: IPC namespace inode; signal: generate() result */
	__u8 approx; /* mq receive: the priority is a guess (see mq.h) */
	__u8 _pad[3];
};

/* Metrics mode: operations are counted in the kernel per process,
 * mechanism, operation and errno, with their bytes and a log2 histogram of
 * their durations, instead of being sent one by one. */
#define AGG_BUCKETS 32 /* bucket i: durations in [2^i, 2^(i+1)) ns; the last takes the rest */

struct agg_key {
	__u32 pid; /* tgid */
	__u8 mechanism;
	__u8 op;
	__u16 err; /* errno, 0 on success */
};

struct agg_value {
	__u64 count;
	__u64 bytes; /* sends and receives: bytes moved */
	__u64 hist[AGG_BUCKETS];
};

/* A process as the process table needs it, sent at fork, exec, exit and
 * rename of traced processes. */
struct proc_record {
	__u8 kind; /* RECORD_PROC */
	__u8 event; /* enum proc_change */
	__u16 filename_len;
	__u16 args_len;
	__u16 _pad;
	__u32 pid;
	__u32 tid;
	__u32 ppid;
	__u32 _pad2;
	__u64 cgroup;
	__u64 time_ns;
	char comm[TASK_COMM_LEN];
	char filename[256]; /* exec: the path executed */
	char args[256];     /* exec, when asked for: NUL-separated arguments */
};

/* A name for a channel object, sent once when it is first seen: a unix
 * socket's path (id is the socket), or a FIFO's path components, leaf first
 * in fixed slots, relative to its filesystem's root (id is the inode). */
struct name_record {
	__u8 kind; /* RECORD_NAME */
	__u8 mechanism;
	__u16 len;
	__u32 dev;
	__u64 id;
	char name[NAME_MAX_LEN];
};

/* A UDP datagram queued on a loopback socket outside its sender's context
 * (the kernel deferred delivery to ksoftirqd): which socket got it, its
 * sequence there, and the sender's address from the packet, so userspace
 * can pair it with the send. */
struct delivery_record {
	__u8 kind; /* RECORD_DELIVERY */
	__u8 _pad;
	__u16 family;
	__u32 netns;
	__u64 sk;  /* the receiving socket */
	__u64 seq; /* the datagram's sequence number on it */
	__u16 sport; /* the sender's port and address (host byte order) */
	__u16 dport; /* the receiving socket's port and address */
	__u32 _pad2;
	__u8 saddr[16];
	__u8 daddr[16];
};

/* A syscall between its entry and exit hooks. */
struct inflight {
	__u64 start_ns;
	__u64 nvcsw;   /* voluntary context switches at entry: changed means blocked */
	__u64 buf;     /* user buffer, iovec array or msghdr */
	__u64 obj[2];  /* pipe_inode_info of the in and out ends (splice, tee) */
	__u64 ino[2];
	__u32 dev[2];
	__s32 fd[2];
	__u32 cnt;     /* iovec count */
	__u16 syscall;
	__u8 cls;      /* enum syscall_class; 0 when nothing is in flight */
	__u8 mech[2];  /* MECH_PIPE/MECH_FIFO per end, 0 when that end is not a pipe */
	__u8 op;       /* vmsplice: OPER_SEND or OPER_RECEIVE */
	__u8 _pad[7];
	__s64 x[2];    /* per call: see the classes that use them */
};

/* Where a thread's last operation on a byte stream left it: what the next
 * one must match, and the offset it must start at, to continue it. */
struct run_key {
	__u64 ino;
	__u64 sk;
	__u64 peer_sk;
	__u64 next; /* the offset after the last byte moved */
	__u8 saddr[16];
	__u8 daddr[16];
	__u32 dev;
	__s32 fd;
	__u16 syscall;
	__u16 family;
	__u16 sport;
	__u16 dport;
	__u8 mechanism;
	__u8 op;
	__u8 no_start;
	__u8 valid;
	__u32 _pad;
};

struct task_state {
	__u8 traced;
	__u8 in_traced_slots; /* counted in traced_slots */
	__u8 _pad[6];
	struct inflight in;
	/* The two pipes this task last found counters for, most recent
	 * first: a ping-pong writes one and reads the other. */
	__u64 met_pipe[2];
	__u64 met_ino[2];
	/* Set by sk_data_ready in a sending task: the socket it just queued a
	 * datagram on, and that datagram's sequence number. */
	__u64 pend_sk;
	__u64 pend_seq;
	__u8 pend_addr[16]; /* UDP: the receiving socket's bound address and port */
	__u16 pend_port;
	__u8 pend_valid;
	__u8 _pad2[5];
	/* Without syscall hooks: the socket this task last went to sleep on
	 * inside a send or receive, and when. */
	__u64 sleep_sk;
	__u64 sleep_ns;
	/* The task's name and cgroup, as its records carry them: asking the
	 * kernel for them costs two helper calls per record. Exec, rename and
	 * a move to another cgroup clear ident_ok. */
	char comm[TASK_COMM_LEN];
	__u64 cgroup;
	__u8 ident_ok;
	__u8 _pad3[7];
	/* Coalescing (submit_op_ts): the stream position the task's last
	 * operation reached, and the run of operations held since, whose
	 * run.count is 0 when there is none. Only this task's hooks touch
	 * them. */
	struct run_key last;
	struct op_record run;
	/* Selectors (select_mode): the generation the verdict was made
	 * under, and its root: the selector that named this task, or that
	 * named the task it was forked from (root_id is the tgid a pid
	 * selector named, or the cgroup selector's generation). */
	__u32 sel_gen;
	__u32 root_id;
	__u32 moves_seen; /* sel_moves when it was last judged */
	__u8 root_kind;
	__u8 _pad4[3];
	char root_comm[TASK_COMM_LEN];
};

/* The task_state that holds an inflight. */
#define task_state_of(in) ((struct task_state *)((void *)(in) - __builtin_offsetof(struct task_state, in)))

/* Per socket: its inode and its counters. Datagrams: the sequence of what
 * was queued to it (in) and of what its owner took (out). Streams: the bytes
 * its owner sent (in) and took (out); each direction's offsets are the
 * sender's count for sends and the receiver's for receives, so neither end
 * ever touches the other's storage (the peer is only known through a
 * pointer the verifier will not hand to a helper). */
struct sock_state {
	__u64 ino; /* 0 until the socket has a file (an accepted one, once accepted) */
	__u64 in;
	__u64 out;
	__u64 named_peer; /* unix: the peer whose path was last announced */
	__u8 seen;
	__u8 _pad[7];
};

/* Per pipe: bytes written to and read from it since icptrack first saw it. */
struct pipe_key {
	__u64 pipe;
	__u64 ino;
};

/* The writer's and the reader's counters sit on separate cache lines: the
 * two ends usually run on different CPUs, and sharing a line would bounce
 * it between them on every operation. */
struct stream_state {
	__u64 written;
	__u64 _pad1[7];
	__u64 read;
	__u64 _pad2[7];
};

/* Set by userspace before load; the verifier prunes what they switch off. */
const volatile __u32 mechanisms = 0;   /* bit (1 << MECH_x) per traced mechanism */
const volatile __u32 payload_max = 0;  /* bytes of payload to copy per operation */
const volatile __u32 follow_tgid = 0;  /* children of this process are traced */
const volatile __u32 self_tgid = 0;    /* never traced */
const volatile __u8 syscall_hooks = 0; /* sys_enter/sys_exit are attached */
const volatile __u8 sock_syscalls = 0; /* unix sockets are seen from sys_enter/sys_exit (sockunix.h) */
const volatile __u8 attach_only = 0;   /* benchmarks: every program returns at once */
const volatile __u8 capture_args = 0;  /* exec records carry the arguments */
const volatile __u8 metrics_only = 0;  /* count operations in agg_ops instead of sending records */
const volatile __u8 select_mode = 0;   /* trace what the selectors name (icptrack trace) */
const volatile __u64 wakeup_bytes = 0; /* wake the reader when this much is waiting */
const volatile __u64 coalesce_ns = 0;  /* coalesce runs of operations started within this of the first; 0: off */
/* Set by userspace when tracing stops: runs are sent at their thread's
 * next hook, and no new one starts. */
volatile __u8 coalesce_stop = 0;
/* Threads holding a run: sched_switch looks for one to send only then. */
__u64 runs_open = 0;
const volatile __u8 syscall_classes[SYSCALL_MAX] = {};

/* How many tasks whose thread id falls in each slot (tid modulo
 * INFLIGHT_SLOTS) have a syscall in flight that sys_exit must finish.
 * The exit of every other syscall, of untraced tasks above all, is then
 * decided by one load instead of a task-storage lookup. Two tasks in one
 * slot only cost the lookup. */
#define INFLIGHT_SLOTS 65536
__u32 inflight_slots[INFLIGHT_SLOTS];

static __always_inline __u32 *inflight_slot(struct task_struct *task)
{
	return &inflight_slots[(__u32)task->pid & (INFLIGHT_SLOTS - 1)];
}

/* Following a command (not select_mode), only tasks
 * marked at fork are traced. traced_slots counts them per slot of their
 * thread id, so that sys_enter of any other task returns without a
 * task-storage lookup. */
__u32 traced_slots[INFLIGHT_SLOTS];

static __always_inline __u32 *traced_slot(struct task_struct *task)
{
	return &traced_slots[(__u32)task->pid & (INFLIGHT_SLOTS - 1)];
}

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 24); /* resized by userspace */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_state);
} task_states SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sock_state);
} sock_states SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct pipe_key);
	__type(value, struct stream_state);
} pipe_states SEC(".maps");

/* UDP ports that traced tasks send from, so that a delivery the kernel
 * deferred to another task can still be told apart from untraced traffic. */
struct udp_sender {
	__u32 netns;
	__u16 port;
	__u16 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct udp_sender);
	__type(value, __u8);
} udp_senders SEC(".maps");

/* Shared-memory attachments of traced processes, so that munmap and
 * shmdt of those addresses (and only those) are reported. */
struct attach_key {
	__u32 tgid;
	__u32 _pad;
	__u64 addr;
};

struct attachment {
	__u64 ino;  /* POSIX shm, memfd: the file's inode */
	__u32 dev;
	__u8 mech;
	__u8 _pad[3];
	__s64 id;   /* SysV: shmid */
	__u64 size;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct attach_key);
	__type(value, struct attachment);
} attachments SEC(".maps");

/* Process table records and their scratch space. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct proc_record);
} proc_space SEC(".maps");

/* Room to build a record with payload (or a name) before copying it out. */
struct scratch {
	struct op_record rec;
	__u8 payload[2 * PAYLOAD_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch_space SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct name_record);
} name_space SEC(".maps");

/* Metrics mode's counts. Userspace reads it on an interval and deletes the
 * entries of processes that exited; a full map drops what it cannot count
 * (STAT_AGG_DROPPED). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct agg_key);
	__type(value, struct agg_value);
} agg_ops SEC(".maps");

/* Make the enums and records visible to bpf2go -type. */
const enum mechanism *_mechanism __attribute__((unused));
const enum op_type *_op_type __attribute__((unused));
const enum record_kind *_record_kind __attribute__((unused));
const enum op_flag *_op_flag __attribute__((unused));
const enum syscall_class *_syscall_class __attribute__((unused));
const enum stat_index *_stat_index __attribute__((unused));
const struct op_record *_op_record __attribute__((unused));
const struct name_record *_name_record __attribute__((unused));
const struct delivery_record *_delivery_record __attribute__((unused));
const struct proc_record *_proc_record __attribute__((unused));
const struct ipc_extra *_ipc_extra __attribute__((unused));
const struct agg_key *_agg_key __attribute__((unused));
const struct agg_value *_agg_value __attribute__((unused));
const enum proc_change *_proc_change __attribute__((unused));

static __always_inline bool mech_on(__u8 mech)
{
	return mechanisms & (1u << mech);
}

static __always_inline void stat_add(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);
	if (v)
		__sync_fetch_and_add(v, n);
}

static __always_inline void stat_inc(__u32 idx)
{
	stat_add(idx, 1);
}

/* Tasks icptrack follows (children of traced ones) whose storage could
 * not be created at fork: on 6.1 a task-storage call fails while another
 * one is under way on the same CPU. traced_task gives them storage the
 * next time they meet a hook; followed_unstored counts them, so that
 * nobody else pays for the lookup while there are none. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32); /* thread id */
	__type(value, __u8);
} unstored SEC(".maps");

__u32 followed_unstored;

static __always_inline bool is_unstored(struct task_struct *task)
{
	__u32 tid = task->pid;

	return bpf_map_lookup_elem(&unstored, &tid) != NULL;
}

/* Returns whether the task was one. */
static __always_inline bool forget_unstored(struct task_struct *task)
{
	__u32 tid = task->pid;

	if (bpf_map_delete_elem(&unstored, &tid))
		return false;
	__sync_fetch_and_add(&followed_unstored, -1);
	return true;
}

/* icptrack trace's selectors: every process (sel_all), or processes by
 * tgid, by name, or by cgroup (and the cgroups below it). Userspace
 * changes them while tracing (a reload), then bumps sel_gen: each task's
 * verdict is made again at its next hook under the new ones. */
volatile __u8 sel_all = 0;
volatile __u8 sel_cgroup_set = 0;  /* sel_cgroup holds a cgroup */
volatile __u32 sel_cgroup_gen = 0; /* bumped when the cgroup selector changes */
volatile __u32 sel_gen = 0;
volatile __u32 sel_moves = 0; /* tasks moved to another cgroup, while one is selected */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} sel_pids SEC(".maps");

struct comm_key {
	char comm[TASK_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct comm_key);
	__type(value, __u8);
} sel_comms SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} sel_cgroup SEC(".maps");

/* Which selector names a task. */
enum {
	SEL_NONE,
	SEL_PID,
	SEL_COMM,
	SEL_CGROUP,
	SEL_ALL,
};

static __always_inline bool selected_by_name(struct task_struct *task)
{
	struct comm_key k = {};

	/* The process's name: a thread may have renamed itself. */
	bpf_probe_read_kernel_str(k.comm, sizeof(k.comm), task->group_leader->comm);
	return bpf_map_lookup_elem(&sel_comms, &k) != NULL;
}

/* Which selector names the task (SEL_NONE for none), or -1 when it cannot
 * tell yet: a cgroup can be asked only about the current task. icptrack
 * itself only when named by pid. */
static __always_inline int selected(struct task_struct *task)
{
	__u32 tgid = task->tgid;

	if (bpf_map_lookup_elem(&sel_pids, &tgid))
		return SEL_PID;
	if (tgid == self_tgid)
		return SEL_NONE;
	if (sel_all)
		return SEL_ALL;
	if (selected_by_name(task))
		return SEL_COMM;
	if (!sel_cgroup_set)
		return SEL_NONE;
	if (task != bpf_get_current_task_btf())
		return -1;
	return bpf_current_task_under_cgroup(&sel_cgroup, 0) == 1 ? SEL_CGROUP : SEL_NONE;
}

/* Records why the task is traced: by selects it itself. */
static __always_inline void set_root(struct task_state *ts, struct task_struct *task, int by)
{
	ts->root_kind = by;
	ts->root_id = 0;
	if (by == SEL_PID)
		ts->root_id = task->tgid;
	else if (by == SEL_CGROUP)
		ts->root_id = sel_cgroup_gen;
	else if (by == SEL_COMM)
		bpf_probe_read_kernel_str(ts->root_comm, sizeof(ts->root_comm), task->group_leader->comm);
}

/* Whether the selector that named the task's root still names it. */
static __always_inline bool root_selected(struct task_state *ts)
{
	__u32 id = ts->root_id;

	switch (ts->root_kind) {
	case SEL_PID:
		return bpf_map_lookup_elem(&sel_pids, &id) != NULL;
	case SEL_COMM:
		return bpf_map_lookup_elem(&sel_comms, ts->root_comm) != NULL;
	case SEL_CGROUP:
		return sel_cgroup_set && id == sel_cgroup_gen;
	case SEL_ALL:
		return sel_all;
	}
	return false;
}

/* Judges a task again if the selectors changed since its verdict, or, for
 * an untraced task, if a task moved into another cgroup while one is
 * selected: a task forked from a traced one stays traced while its root
 * is still named; otherwise it is traced if the selectors name it now.
 * The counters are read first, so that a change made meanwhile is judged
 * again. */
static __always_inline void rejudge(struct task_struct *task, struct task_state *ts)
{
	__u32 gen = sel_gen, moves = sel_moves;
	int by;

	if (ts->sel_gen == gen && (ts->traced || ts->moves_seen == moves || !sel_cgroup_set))
		return;
	if (!(ts->traced && root_selected(ts))) {
		by = selected(task);
		if (by < 0)
			return; /* kept until it is asked as the current task */
		ts->traced = by != SEL_NONE;
		set_root(ts, task, by);
	}
	ts->sel_gen = gen;
	ts->moves_seen = moves;
}

/* Whether icptrack traces a task that has storage. */
static __always_inline bool is_traced(struct task_struct *task, struct task_state *ts)
{
	if (select_mode)
		rejudge(task, ts);
	return ts->traced;
}

/* The task's state if icptrack traces it, else NULL. A task gets storage
 * the first time it is seen: a followed child at fork, anything else when
 * it first makes a call icptrack hooks, with the verdict cached, so that an
 * untraced task costs one pointer test from then on (and one more load
 * for the selectors' generation). */
static __always_inline struct task_state *traced_task(struct task_struct *task)
{
	struct task_state *ts = bpf_task_storage_get(&task_states, task, 0, 0);
	__u32 gen = sel_gen, moves = sel_moves;
	int by;

	if (ts)
		return is_traced(task, ts) ? ts : NULL;
	if (select_mode) {
		by = selected(task);
		if (by < 0)
			return NULL;
	} else if (followed_unstored && is_unstored(task)) {
		by = SEL_NONE; /* followed at fork, where its storage could not be had */
	} else {
		return NULL;
	}
	ts = bpf_task_storage_get(&task_states, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!ts) {
		stat_inc(STAT_NO_STORAGE);
		return NULL;
	}
	if (select_mode) {
		ts->traced = by != SEL_NONE;
		set_root(ts, task, by);
		ts->sel_gen = gen;
		ts->moves_seen = moves;
	} else {
		/* A followed task that had no storage: it has now, and its
		 * slot was counted at fork. */
		ts->traced = 1;
		ts->in_traced_slots = 1;
		forget_unstored(task);
	}
	return ts->traced ? ts : NULL;
}

/* Syscall arguments and number from the user registers. */
#if defined(__TARGET_ARCH_x86)
#define SYSCALL_ARG0(regs) ((regs)->di)
#define SYSCALL_ARG1(regs) ((regs)->si)
#define SYSCALL_ARG2(regs) ((regs)->dx)
#define SYSCALL_ARG3(regs) ((regs)->r10)
#define SYSCALL_ARG4(regs) ((regs)->r8)
#define SYSCALL_NR(regs) ((regs)->orig_ax)
#elif defined(__TARGET_ARCH_arm64)
#define SYSCALL_ARG0(regs) ((regs)->regs[0])
#define SYSCALL_ARG1(regs) ((regs)->regs[1])
#define SYSCALL_ARG2(regs) ((regs)->regs[2])
#define SYSCALL_ARG3(regs) ((regs)->regs[3])
#define SYSCALL_ARG4(regs) ((regs)->regs[4])
#define SYSCALL_NR(regs) ((regs)->syscallno)
#endif

static __always_inline __u8 class_of(long nr)
{
	if ((unsigned long)nr >= SYSCALL_MAX)
		return SC_NONE;
	return syscall_classes[nr];
}

static __always_inline bool is_socket_class(__u8 cls)
{
	return (cls >= SC_SENDTO && cls <= SC_RECVMMSG) || cls == SC_WRITE || cls == SC_WRITEV ||
	       cls == SC_READ || cls == SC_READV;
}

/* The reader drains the buffer on a timer; records never wake it, except
 * when the buffer is filling up. Asking the buffer how full it is reads
 * positions every CPU writes, and costs more than the record when done
 * each time, so each CPU asks once per 256 records; the threshold
 * (a quarter of the buffer) leaves room for what comes in between. */
static __always_inline __u64 submit_flags(void)
{
	__u32 idx = STAT_SUBMITS;
	__u64 *n = bpf_map_lookup_elem(&stats, &idx);

	if (!n || ((*n)++ & 255) != 0)
		return BPF_RB_NO_WAKEUP;
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

/* The current task's identity in a record; ts caches its name and cgroup. */
static __always_inline void fill_task(struct op_record *r, struct task_struct *task, struct task_state *ts)
{
	r->pid = task->tgid;
	r->tid = task->pid;
	r->ppid = task->real_parent->tgid;
	if (ts->ident_ok) {
		r->cgroup = ts->cgroup;
		__builtin_memcpy(r->comm, ts->comm, sizeof(r->comm));
		return;
	}
	r->cgroup = bpf_get_current_cgroup_id();
	bpf_get_current_comm(r->comm, sizeof(r->comm));
	ts->cgroup = r->cgroup;
	__builtin_memcpy(ts->comm, r->comm, sizeof(ts->comm));
	ts->ident_ok = 1;
}

/* Reinterprets a kernel pointer as a read-only BTF pointer of the given
 * type, so that its fields are read with plain loads instead of a helper
 * call each. The verifier turns the call into a move; it only changes what
 * the verifier knows. Kernel 6.2 and later: weak, so that the object still
 * loads where it is missing (the loader zeroes its address, and the
 * verifier drops the branch that would call it). */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;
#define kernel_ptr(p, type) ((type *)bpf_rdonly_cast((p), bpf_core_type_id_kernel(type)))

/* Reads a chain of fields, KREAD(p, a, b) for p->a->b, from a kernel
 * pointer the verifier knows only as a number (one read out of an array,
 * say): with plain loads through kernel_ptr where the kernel has
 * bpf_rdonly_cast, and a probe read per field where it has not (6.1). */
#define have_rdonly_cast() (!!bpf_rdonly_cast)
#define KREAD(p, ...)                                                                     \
	(have_rdonly_cast() ? ___arrow(kernel_ptr((p), typeof(*(p))), __VA_ARGS__) \
			    : BPF_CORE_READ((p), __VA_ARGS__))

/* The open file behind a descriptor of the current task, or NULL. A plain
 * number to the verifier: read its fields with KREAD. */
static __always_inline struct file *fd_file(struct task_struct *task, int fd)
{
	struct fdtable *fdt = task->files->fdt;
	struct file **fds;
	struct file *f = NULL;

	if (fd < 0 || (unsigned int)fd >= fdt->max_fds)
		return NULL;
	fds = fdt->fd;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

/* Copies up to payload_max bytes that the operation moved from a user
 * buffer, or from an iovec array, into dst. Returns the bytes copied. */
static __always_inline __u32 copy_payload(__u8 *dst, __u64 buf, __u32 cnt, bool vec, __s64 moved)
{
	__u32 want = moved > payload_max ? payload_max : (__u32)moved;
	__u32 got = 0;

	if (want > PAYLOAD_MAX)
		want = PAYLOAD_MAX;
	if (!vec) {
		if (bpf_probe_read_user(dst, want, (void *)buf))
			return 0;
		return want;
	}
	for (int i = 0; i < 8; i++) {
		struct iovec iov;
		__u32 n;

		if (i >= cnt || got >= want)
			break;
		if (bpf_probe_read_user(&iov, sizeof(iov), (void *)(buf + i * sizeof(iov))))
			break;
		n = want - got;
		if (n > iov.iov_len)
			n = iov.iov_len;
		/* got < want <= PAYLOAD_MAX; the masks only tell the verifier. */
		got &= PAYLOAD_MAX - 1;
		if (n > PAYLOAD_MAX)
			n = PAYLOAD_MAX;
		if (bpf_probe_read_user(dst + got, n, iov.iov_base))
			break;
		got += n;
	}
	return got;
}

/* floor(log2(v)) for v > 0, without a loop. */
static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 r = 0;

	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) { r += 1; }
	return r;
}

static const struct agg_value agg_zero = {};

/* Metrics mode: counts a finished operation in agg_ops. The map is per
 * CPU, so the counters need no atomics. */
static __always_inline void count(__u32 pid, __u8 mech, __u8 op, __s64 ret, __u64 start, __u64 end)
{
	struct agg_key k = {
		.pid = pid,
		.mechanism = mech,
		.op = op,
		.err = ret < 0 ? (__u16)-ret : 0,
	};
	struct agg_value *v = bpf_map_lookup_elem(&agg_ops, &k);

	if (!v) {
		/* Fails when another CPU was first (fine) or the map is full. */
		bpf_map_update_elem(&agg_ops, &k, &agg_zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&agg_ops, &k);
		if (!v) {
			stat_inc(STAT_AGG_DROPPED);
			return;
		}
	}
	__u64 d = end > start ? end - start : 0;
	__u32 b = d ? log2_u64(d) : 0;

	if (b >= AGG_BUCKETS)
		b = AGG_BUCKETS - 1;
	v->count++;
	if (ret > 0 && (op == OPER_SEND || op == OPER_RECEIVE) && mech != MECH_SIGNAL)
		v->bytes += ret;
	v->hist[b & (AGG_BUCKETS - 1)]++;
}

static __always_inline void count_op(struct op_record *r)
{
	count(r->pid, r->mechanism, r->op, r->ret, r->start_ns, r->end_ns);
}

/* Hands a finished record to userspace: committed in place when it was
 * reserved in the ring buffer, else copied out with its payload. */
static __always_inline void output_op(struct op_record *r, bool reserved)
{
	if (reserved) {
		bpf_ringbuf_submit(r, submit_flags());
		return;
	}
	__u32 len = r->payload_len & (2 * PAYLOAD_MAX - 1);
	if (bpf_ringbuf_output(&events, r, sizeof(*r) + len, submit_flags()))
		stat_inc(STAT_OPS_DROPPED);
}

/* Coalescing (--coalesce). A run of operations by one thread, in one
 * direction of one byte stream, each starting at the byte where the last
 * one ended, with no other operation of that thread between them and all
 * started within coalesce_ns of the first, is sent as one record: the
 * first start, the last end, the total bytes and the first offset, so the
 * byte range it covers is exact and userspace links receives to it as to
 * any send.
 *
 * An operation is sent at once unless it continues the thread's last one:
 * a request and its answer are never held back, so their records keep
 * their order and a ping-pong costs only remembering where it was
 * (ts->last). What continues is held in the thread's own task storage,
 * which only its own hooks touch: the run is sent by the thread's next
 * operation that does not continue it, its next traced call after the
 * window, its next sleep (sched_switch), its exit, or its next hook once
 * userspace sets coalesce_stop. STAT_HELD counts the operations held, so
 * that whatever a thread still holds when tracing ends is reported, not
 * lost unseen. */
static __always_inline bool run_mergeable(struct op_record *r)
{
	if ((r->op != OPER_SEND && r->op != OPER_RECEIVE) || r->ret <= 0 || r->payload_len)
		return false;
	if (r->flags & (OPF_PEEK | OPF_SEQ | OPF_PEER | OPF_UNSURE | OPF_PATH | OPF_TRUNCATED))
		return false;
	return r->mechanism == MECH_PIPE || r->mechanism == MECH_FIFO || r->mechanism == MECH_UNIX_STREAM ||
	       r->mechanism == MECH_TCP;
}

/* Whether r, a mergeable operation, starts where k left off. */
static __always_inline bool run_continues(struct run_key *k, struct op_record *r)
{
	if (!k->valid || k->mechanism != r->mechanism || k->op != r->op || k->syscall != r->syscall ||
	    k->fd != r->fd || k->ino != r->ino || k->sk != r->sk || k->peer_sk != r->peer_sk || k->dev != r->dev ||
	    k->family != r->family || k->sport != r->sport || k->dport != r->dport ||
	    k->no_start != !!(r->flags & OPF_NO_START))
		return false;
	if (__builtin_memcmp(k->saddr, r->saddr, sizeof(k->saddr)) ||
	    __builtin_memcmp(k->daddr, r->daddr, sizeof(k->daddr)))
		return false;
	/* TCP offsets are 32-bit sequence numbers. */
	return r->mechanism == MECH_TCP ? (__u32)k->next == (__u32)r->off : k->next == r->off;
}

static __always_inline void run_remember(struct run_key *k, struct op_record *r)
{
	k->ino = r->ino;
	k->sk = r->sk;
	k->peer_sk = r->peer_sk;
	k->next = r->off + (__u64)r->ret;
	__builtin_memcpy(k->saddr, r->saddr, sizeof(k->saddr));
	__builtin_memcpy(k->daddr, r->daddr, sizeof(k->daddr));
	k->dev = r->dev;
	k->fd = r->fd;
	k->syscall = r->syscall;
	k->family = r->family;
	k->sport = r->sport;
	k->dport = r->dport;
	k->mechanism = r->mechanism;
	k->op = r->op;
	k->no_start = !!(r->flags & OPF_NO_START);
	k->valid = 1;
}

/* Sends the thread's run, if it holds one. */
static __always_inline void run_flush(struct task_state *ts)
{
	struct op_record *p = &ts->run;
	__u32 n = p->count;

	if (!n)
		return;
	if (n == 1) {
		p->count = 0;
		p->busy_ns = 0;
	}
	if (bpf_ringbuf_output(&events, p, sizeof(*p), submit_flags()))
		stat_add(STAT_OPS_DROPPED, n);
	stat_add(STAT_HELD, -(__u64)n);
	__sync_fetch_and_add(&runs_open, -1);
	p->count = 0;
}

/* Sends the run when it can no longer grow: too old, or tracing stops. */
static __always_inline void run_check(struct task_state *ts)
{
	if (coalesce_ns && ts->run.count &&
	    (coalesce_stop || bpf_ktime_get_ns() - ts->run.start_ns >= coalesce_ns))
		run_flush(ts);
}

/* Takes r into the thread's run, or starts one with it; r was reserved in
 * the ring buffer or built aside, and is given back either way. */
static __always_inline void run_take(struct task_state *ts, struct op_record *r, bool reserved)
{
	struct op_record *p = &ts->run;

	if (p->count && r->start_ns >= p->start_ns && r->start_ns - p->start_ns < coalesce_ns) {
		p->count++;
		p->ret += r->ret;
		p->end_ns = r->end_ns;
		p->busy_ns += r->end_ns - r->start_ns;
		p->flags |= r->flags & OPF_BLOCKED;
	} else {
		run_flush(ts);
		__builtin_memcpy(p, r, sizeof(*r));
		__sync_fetch_and_add(&runs_open, 1);
		p->count = 1;
		p->busy_ns = r->end_ns - r->start_ns;
	}
	stat_inc(STAT_HELD);
	ts->last.next += r->ret;
	if (reserved)
		bpf_ringbuf_discard(r, BPF_RB_NO_WAKEUP);
}

/* Sends a finished record of the current task, whose state is ts (NULL
 * when unknown: nothing is coalesced then). In metrics mode it is only
 * counted. */
static __always_inline void submit_op_ts(struct op_record *r, bool reserved, struct task_state *ts)
{
	if (metrics_only) {
		count_op(r);
		return;
	}
	if (coalesce_ns && ts) {
		bool mergeable = !coalesce_stop && run_mergeable(r);

		if (mergeable && run_continues(&ts->last, r)) {
			run_take(ts, r, reserved);
			return;
		}
		run_flush(ts);
		if (mergeable)
			run_remember(&ts->last, r);
		else
			ts->last.valid = 0;
	}
	output_op(r, reserved);
}

/* The same for a record whose task state is not at hand. Records made in
 * another task's context (the kernel delivering for someone) leave the
 * current task's run alone. */
static __always_inline void submit_op(struct op_record *r, bool reserved)
{
	struct task_state *ts = NULL;

	if (coalesce_ns && !metrics_only) {
		struct task_struct *task = bpf_get_current_task_btf();

		if (r->tid == (__u32)task->pid)
			ts = bpf_task_storage_get(&task_states, task, 0, 0);
	}
	submit_op_ts(r, reserved, ts);
}

/* A zeroed record to fill: in the ring buffer when there is no payload to
 * append, else in per-CPU scratch space. NULL (and counted) when the ring
 * buffer is full. */
static __always_inline struct op_record *new_op_with(bool *reserved, bool variable)
{
	struct op_record *r;

	if (!payload_max && !variable && !metrics_only) {
		r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
		if (!r) {
			stat_inc(STAT_OPS_DROPPED);
			return NULL;
		}
		*reserved = true;
	} else {
		__u32 zero = 0;
		struct scratch *s = bpf_map_lookup_elem(&scratch_space, &zero);
		if (!s)
			return NULL;
		r = &s->rec;
		*reserved = false;
	}
	__builtin_memset(r, 0, sizeof(*r));
	r->kind = RECORD_OP;
	return r;
}

static __always_inline struct op_record *new_op(bool *reserved)
{
	return new_op_with(reserved, false);
}

/* A record that will carry a path or name instead of payload. */
static __always_inline struct op_record *new_path_op(bool *reserved)
{
	return new_op_with(reserved, true);
}

static __always_inline void discard_op(struct op_record *r, bool reserved)
{
	if (reserved)
		bpf_ringbuf_discard(r, BPF_RB_NO_WAKEUP);
}

static __always_inline struct name_record *new_name(void)
{
	__u32 zero = 0;
	struct name_record *n = bpf_map_lookup_elem(&name_space, &zero);
	if (n) {
		n->kind = RECORD_NAME;
		n->len = 0;
	}
	return n;
}

static __always_inline void submit_name(struct name_record *n)
{
	if (metrics_only)
		return; /* names serve only events */
	if (bpf_ringbuf_output(&events, n, sizeof(*n), submit_flags()))
		stat_inc(STAT_NAMES_DROPPED);
}
