// SPDX-License-Identifier: GPL-2.0
/*
 * syscalls.bpf.c - counts the system calls of tracked tasks, reported in
 * samples (VIGIL_SAMPLE_F_SYSCALLS). Off by default: vigild loads this
 * program only with --syscalls, because a hook on every system call costs
 * every process on the machine (~80 ns per call).
 *
 * Hook: tp_btf/sys_enter (raw syscall tracepoint, BTF-typed since 5.5; no
 * tracefs needed). Cheap for untracked tasks: one per-CPU array lookup,
 * the slot sched_switch filled for the running task (sample.bpf.c), which
 * sched_switch adds to the agent's totals at switch-out.
 */
#include "vigil.bpf.h"

SEC("tp_btf/sys_enter")
int BPF_PROG(vigil_sys_enter, struct pt_regs *regs, long id)
{
	struct vigil_cpu_slot *slot;
	__u32 zero = 0;

	if (vigil_inactive())
		return 0;
	vigil_note_alive(VIGIL_PROD_SYSCALL);
	slot = bpf_map_lookup_elem(&vigil_cpu_slot, &zero);
	/* Per-CPU, and the task cannot migrate here; atomic because
	 * sample.bpf.c's tick takes the count from hard IRQ context. */
	if (slot && slot->agent)
		__sync_fetch_and_add(&slot->syscalls, 1);
	return 0;
}
