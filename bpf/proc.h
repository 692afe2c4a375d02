/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The process table: fork, exec, exit and rename of traced processes, so
 * that every operation can name its process's executable, parent and
 * container even after the process is gone. */
#pragma once

#include "common.h"

static __always_inline struct proc_record *new_proc(__u8 event, struct task_struct *task)
{
	__u32 zero = 0;
	struct proc_record *p = bpf_map_lookup_elem(&proc_space, &zero);

	if (!p)
		return NULL;
	p->kind = RECORD_PROC;
	p->event = event;
	p->filename_len = 0;
	p->args_len = 0;
	p->pid = task->tgid;
	p->tid = task->pid;
	p->ppid = task->real_parent->tgid;
	p->cgroup = bpf_get_current_cgroup_id();
	p->time_ns = bpf_ktime_get_ns();
	bpf_probe_read_kernel_str(p->comm, sizeof(p->comm), task->comm);
	return p;
}

static __always_inline void submit_proc(struct proc_record *p)
{
	if (bpf_ringbuf_output(&events, p, sizeof(*p), submit_flags()))
		stat_inc(STAT_NAMES_DROPPED);
}

/* At exec the new program's arguments sit at the top of its stack. */
static __always_inline void exec_args(struct proc_record *p, struct task_struct *task)
{
	unsigned long start = BPF_CORE_READ(task, mm, arg_start);
	unsigned long end = BPF_CORE_READ(task, mm, arg_end);
	unsigned long n = end - start;

	n &= 0x1ff;
	if (n > sizeof(p->args))
		n = sizeof(p->args);
	if (n && !bpf_probe_read_user(p->args, n, (void *)start))
		p->args_len = n;
}
