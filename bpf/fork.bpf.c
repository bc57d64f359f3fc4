// SPDX-License-Identifier: GPL-2.0
/*
 * fork.bpf.c - children of tracked processes inherit the agent, and one
 * vigil_ev_fork record per task a tracked task creates.
 *
 * Hook: tp_btf/sched_process_fork(parent, child), called in kernel_clone()
 * after copy_process() and before wake_up_new_task(), so the child is in
 * the agent map before it can run (and exec). Same prototype since 4.x
 * (6.1, 6.12, 6.18). Runs in the parent's context. Both tasks are trusted
 * BTF pointers, read directly (no bpf_probe_read_kernel, which
 * lockdown=confidentiality refuses).
 */
#include "vigil.bpf.h"

_Static_assert(sizeof(((struct task_struct *)0)->comm) == VIGIL_COMM_LEN,
	       "task comm and record comm differ");

SEC("tp_btf/sched_process_fork")
int BPF_PROG(vigil_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = parent->tgid;
	__u32 ctgid = child->tgid;
	struct vigil_ev_fork *ev;
	__u32 agent;

	if (vigil_inactive())
		return 0;
	vigil_note_alive(VIGIL_PROD_FORK);
	agent = vigil_agent_of_pid(ptgid);
	/* A new process of a pid-tracked one is tracked itself (a cgroup-
	 * tracked child is covered by its cgroup). Threads share the tgid. */
	if (agent && ctgid != ptgid)
		vigil_agent_inherit(ctgid, agent);
	if (!agent)
		agent = vigil_agent_of_current_cgroup();
	if (!agent && !all_processes)
		return 0;
	vigil_agent_announce(agent);

	ev = bpf_ringbuf_reserve(&vigil_events, sizeof(*ev), 0);
	if (!ev) {
		vigil_note_drop(VIGIL_EV_FORK);
		return 0;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	vigil_hdr_init(&ev->hdr, VIGIL_EV_FORK, sizeof(*ev), agent);
	ev->pid = ctgid;
	ev->tid = child->pid;
	ev->ppid = ptgid;
	ev->uid = (__u32)bpf_get_current_uid_gid();
	if (ctgid == ptgid)
		ev->flags |= VIGIL_FORK_F_THREAD;
	/* task->comm is always NUL-padded (strscpy_pad), as the record wants. */
	__builtin_memcpy(ev->comm, child->comm, sizeof(ev->comm));
	ev->comm[sizeof(ev->comm) - 1] = '\0';

	vigil_commit_fork(ev);
	vigil_submit(ev);
	return 0;
}
