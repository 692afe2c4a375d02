/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Signals, from tracepoints that name both ends: signal_generate runs in
 * the sender (or the kernel, for signals it raises itself) with the target
 * in hand; signal_deliver runs in the receiver with the sender's pid in the
 * siginfo. No syscall hooks. */
#pragma once

#include "common.h"
#include "ipc.h"

#define SI_USER 0
#define SI_QUEUE -1
#define SI_TKILL -6
#define SI_KERNEL 0x80

/* si_code of a generated signal. The kernel's own signals (SIGPIPE,
 * SIGCHLD, a terminal's SIGINT) come with one of two special siginfo
 * pointers, 0 or 1; every signal a process sends carries a real one. */
static __always_inline int signal_code(struct kernel_siginfo *info)
{
	if ((unsigned long)info <= 1)
		return SI_KERNEL;
	return BPF_CORE_READ(info, si_code);
}

/* Sent by a process (kill, tgkill, sigqueue, pidfd_send_signal), rather
 * than raised by the kernel (SIGSEGV, SIGCHLD, SIGPIPE, timers...). */
static __always_inline bool from_process(int code)
{
	return code == SI_USER || code == SI_QUEUE || code == SI_TKILL;
}

static __always_inline void signal_syscall(struct task_struct *task, struct op_record *r)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	long nr;

	r->syscall = 0xffff;
	if (regs) {
		nr = SYSCALL_NR(regs);
		if ((unsigned long)nr < SYSCALL_MAX)
			r->syscall = nr;
	}
}

/* A signal generated for task. A send by a traced process; or, when the
 * kernel raised it for a traced target, a send by the kernel (pid 0). */
static __always_inline void signal_generated(int sig, struct kernel_siginfo *info, struct task_struct *task,
					     int result)
{
	struct task_struct *cur = bpf_get_current_task_btf();
	int code = signal_code(info);
	bool user = from_process(code);
	struct task_state *target, *ts = NULL;
	struct op_record *r;
	struct ipc_extra *x;
	bool reserved = false;
	__u64 now;

	if (user) {
		ts = traced_task(cur);
		if (!ts)
			return;
	} else {
		target = bpf_task_storage_get(&task_states, task, 0, 0);
		if (!target || !is_traced(task, target))
			return;
	}
	now = bpf_ktime_get_ns();
	r = new_op(&reserved);
	if (!r)
		return;
	r->mechanism = MECH_SIGNAL;
	r->op = OPER_SEND;
	r->flags = OPF_NO_START;
	r->fd = -1;
	r->start_ns = now;
	r->end_ns = now;
	r->ret = result; /* 0 delivered, 1 ignored, 2 already pending, ... */
	if (ts) {
		fill_task(r, cur, ts);
		signal_syscall(cur, r);
	} else {
		r->syscall = 0xffff;
		__builtin_memcpy(r->comm, "kernel", 7);
	}
	x = extra(r);
	x->a = sig;
	x->b = ((__u64)task->tgid << 32) | task->pid;
	x->id = code;
	x->ns = result;
	submit_op(r, reserved);
}

/* A signal taken by the current task: a receive that names its sender. */
static __always_inline void signal_delivered(int sig, struct kernel_siginfo *info, struct k_sigaction *ka)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct op_record *r;
	struct ipc_extra *x;
	bool reserved = false;
	unsigned long handler;
	__u32 sender;
	__u64 now;
	int code;
	struct task_state *ts = traced_task(task);

	if (!ts)
		return;
	code = BPF_CORE_READ(info, si_code);
	sender = from_process(code) ? BPF_CORE_READ(info, _sifields._kill._pid) : 0;
	handler = (unsigned long)BPF_CORE_READ(ka, sa.sa_handler);
	/* A handler ran, or another process's signal took its default action
	 * (a kill). Not the kernel's own default actions: the SIGKILL that
	 * takes down a process's other threads when it exits (its siginfo
	 * reads SI_USER from pid 0), a SIGCHLD no one handles. */
	if (handler <= 1 && !sender)
		return;
	now = bpf_ktime_get_ns();
	r = new_op(&reserved);
	if (!r)
		return;
	r->mechanism = MECH_SIGNAL;
	r->op = OPER_RECEIVE;
	r->flags = OPF_NO_START;
	r->fd = -1;
	r->syscall = 0xffff;
	r->start_ns = now;
	r->end_ns = now;
	fill_task(r, task, ts);
	x = extra(r);
	x->a = sig;
	x->id = code;
	/* The sender, for signals a process sent; 0 for the kernel's. */
	x->b = sender;
	/* 0: default action, 1: ignored, 2: a handler. */
	r->ret = handler > 1 ? 2 : handler;
	submit_op(r, reserved);
}
