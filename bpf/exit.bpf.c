// SPDX-License-Identifier: GPL-2.0
/*
 * exit.bpf.c - one vigil_ev_exit record per process (thread group) that ends,
 * with its final resource usage.
 *
 * Hook: tp_btf/sched_process_exit. It fires in do_exit() for every exiting
 * thread, after `signal->live` was decremented, the exit code stored and the
 * RSS high-water mark folded into signal->maxrss. 6.18 passes a third
 * argument (group_dead) that 6.12 lacks, so the program only uses the task
 * and decides "whole process gone" from signal->live == 0, which works on
 * both. Threads that exit at the same time can all see live == 0 (each
 * decremented before any reached the tracepoint), so an LRU map keyed by the
 * process identity lets exactly one of them emit the record.
 *
 * Reads are plain dereferences, not bpf_probe_read_kernel (refused under
 * lockdown=confidentiality): p is a trusted BTF pointer and
 * p->group_leader and p->real_parent are RCU-trusted here; p->signal is an
 * untrusted BTF pointer, whose loads the JIT turns into fault-handled
 * loads (BPF_PROBE_MEM) that read 0 where bpf_probe_read_kernel failed.
 */
#include "vigil.bpf.h"

/* include/linux/sched/signal.h: a #define, so not in BTF. Stable since 2.6. */
#define VIGIL_SIGNAL_GROUP_EXIT 0x00000004
#define VIGIL_EEXIST 17 /* errno value; vmlinux.h has no errno macros */
#define VIGIL_PAGE_KB 4 /* x86_64 and arm64 4K pages: signal->maxrss is in pages */

struct exit_key {
	__u32 tgid;
	__u32 __pad;
	__u64 start_boottime;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, VIGIL_BPF_EXIT_DEDUP_ENTRIES);
	__type(key, struct exit_key);
	__type(value, __u8);
} vigil_exit_seen SEC(".maps");

/*
 * What getrusage() reports (cputime_adjust()): the precise runtime rtime,
 * split between user and system in the proportion of the tick-sampled
 * utime/stime. The ratio is kept in 2^-20 units so nothing overflows.
 */
static __always_inline void split_runtime(__u64 rtime, __u64 utime, __u64 stime,
					  __u64 *out_utime, __u64 *out_stime)
{
	__u64 total = utime + stime, ratio;

	if (stime == 0) {
		*out_utime = rtime;
		*out_stime = 0;
		return;
	}
	if (utime == 0) {
		*out_utime = 0;
		*out_stime = rtime;
		return;
	}
	if (total >= (1ULL << 43)) { /* keep stime << 20 below 2^64 */
		stime >>= 20;
		total >>= 20;
		if (total == 0)
			total = 1;
	}
	ratio = (stime << 20) / total;	/* <= 2^20 */
	*out_stime = (rtime >> 20) * ratio + (((rtime & 0xfffff) * ratio) >> 20);
	if (*out_stime > rtime)
		*out_stime = rtime;
	*out_utime = rtime - *out_stime;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(vigil_exit, struct task_struct *p)
{
	struct signal_struct *sig = p->signal;
	struct task_struct *leader = p->group_leader;
	struct exit_key key = {};
	struct vigil_ev_exit *ev;
	__u8 one = 1;
	__u32 sig_flags;
	__u32 agent;
	int status;
	long err;

	if (vigil_inactive())
		return 0;
	vigil_note_alive(VIGIL_PROD_EXIT);
	if (sig->live.counter != 0)
		return 0; /* other threads of the process still run */

	key.tgid = p->tgid;
	agent = vigil_agent_of_current(key.tgid);
	if (!agent && !all_processes)
		return 0; /* untracked */
	key.start_boottime = leader->start_boottime;
	err = bpf_map_update_elem(&vigil_exit_seen, &key, &one, BPF_NOEXIST);
	if (err == -VIGIL_EEXIST)
		return 0; /* a sibling thread already reported this exit */
	if (err)
		vigil_count_error(VIGIL_BPF_ERR_EXIT_DEDUP);
	/* The process is gone: its tgid may be reused by an untracked one. */
	vigil_agent_forget(key.tgid);
	vigil_agent_announce(agent);

	ev = bpf_ringbuf_reserve(&vigil_events, sizeof(*ev), 0);
	if (!ev) {
		vigil_note_drop(VIGIL_EV_EXIT);
		return 0;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	vigil_hdr_init(&ev->hdr, VIGIL_EV_EXIT, sizeof(*ev), agent);

	ev->pid = key.tgid;
	ev->tid = p->pid;
	ev->ppid = p->real_parent->tgid;
	ev->uid = (__u32)bpf_get_current_uid_gid();
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));

	/* What wait() will report: the group code after exit_group() or a
	 * fatal signal, else the leader's own exit code. */
	sig_flags = sig->flags;
	if (sig_flags & VIGIL_SIGNAL_GROUP_EXIT)
		status = sig->group_exit_code;
	else
		status = leader->exit_code;
	if ((status & 0x7f) == 0) {
		ev->exit_code = (status >> 8) & 0xff;
	} else {
		ev->exit_signal = status & 0x7f;
		ev->core_dumped = (status & 0x80) ? 1 : 0;
	}

	ev->lifetime_ns = ev->hdr.ts_ns - key.start_boottime;
	/* Threads reaped earlier were folded into signal_struct; add ours. */
	split_runtime(p->se.sum_exec_runtime + sig->sum_sched_runtime,
		      p->utime + sig->utime, p->stime + sig->stime,
		      &ev->utime_ns, &ev->stime_ns);
	ev->maxrss_kb = sig->maxrss * VIGIL_PAGE_KB;
	ev->min_flt = p->min_flt + sig->min_flt;
	ev->maj_flt = p->maj_flt + sig->maj_flt;
	ev->nvcsw = p->nvcsw + sig->nvcsw;
	ev->nivcsw = p->nivcsw + sig->nivcsw;
	if (bpf_core_field_exists(p->ioac)) { /* CONFIG_TASK_XACCT */
		ev->read_bytes = p->ioac.rchar + sig->ioac.rchar;
		ev->write_bytes = p->ioac.wchar + sig->ioac.wchar;
	}

	vigil_commit_exit(ev);
	vigil_submit(ev);
	return 0;
}
