// SPDX-License-Identifier: GPL-2.0
/*
 * exec.bpf.c - one vigil_ev_exec record per successful exec.
 *
 * Hook: tp_btf/sched_process_exec (BTF-typed raw tracepoint, kernels >= 5.5),
 * which fires after the new image is in place, with the binprm that holds
 * the path given to execve. tp_btf needs no tracefs and, unlike raw_tp, may
 * call the module's tracing kfuncs. Same prototype on 6.1, 6.12 and 6.18.
 * Only tracked processes (agents.bpf.c) unless all_processes is set.
 *
 * No bpf_probe_read_* helper (refused under lockdown=confidentiality): the
 * arguments are trusted BTF pointers read directly, p->real_parent is
 * RCU-trusted in a non-sleepable program, and the path is read from the new
 * image's stack, where exec copied bprm->filename (bprm->exec, AT_EXECFN):
 * current already runs on the new mm here, and the page is present. The
 * user-memory read is bpf_snprintf("%pus") (5.13+), not
 * bpf_probe_read_user_str: libbpf probes for bpf_probe_read_kernel, finds it
 * refused under confidentiality and rewrites every bpf_probe_read_user* call
 * into the legacy bpf_probe_read*, which that level refuses too.
 */
#include "vigil.bpf.h"

SEC("tp_btf/sched_process_exec")
int BPF_PROG(vigil_exec, struct task_struct *p, pid_t old_pid,
	     struct linux_binprm *bprm)
{
	__u32 tgid = p->tgid;
	static const char user_str_fmt[] = "%pus";
	struct vigil_ev_exec *ev;
	__u64 exec_path;
	__u32 agent;

	if (vigil_inactive())
		return 0;
	vigil_note_alive(VIGIL_PROD_EXEC);
	agent = vigil_agent_of_current(tgid);
	if (!agent && !all_processes)
		return 0; /* untracked */
	vigil_agent_announce(agent);

	ev = bpf_ringbuf_reserve(&vigil_events, sizeof(*ev), 0);
	if (!ev) {
		vigil_note_drop(VIGIL_EV_EXEC);
		return 0;
	}
	/* Reserved memory is not zeroed: clear it so nothing stale leaks. */
	__builtin_memset(ev, 0, sizeof(*ev));
	vigil_hdr_init(&ev->hdr, VIGIL_EV_EXEC, sizeof(*ev), agent);

	ev->pid = tgid;
	ev->tid = p->pid;
	ev->ppid = p->real_parent->tgid;
	ev->uid = (__u32)bpf_get_current_uid_gid();
	ev->old_pid = (__u32)old_pid;
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));

	/* A failed copy leaves "" (exec paths are never empty): count it. */
	exec_path = bprm->exec;
	if (bpf_snprintf(ev->filename, sizeof(ev->filename), user_str_fmt,
			 &exec_path, sizeof(exec_path)) < 0 ||
	    ev->filename[0] == '\0')
		vigil_count_error(VIGIL_BPF_ERR_READ);

	vigil_commit_exec(ev);
	vigil_submit(ev);
	return 0;
}
