// SPDX-License-Identifier: GPL-2.0
/*
 * agent_stats.bpf.c - an agent's counters between samples, kept per CPU,
 * and the sample that reports them.
 *
 * sample.bpf.c adds every closed slice of an agent's task to the agent's
 * running totals in the copy of the CPU the slice ran on
 * (vigil_agent_cpu_stats, a per-CPU hash): plain adds, because only that
 * CPU writes its copy and both writers run there with interrupts off
 * (sched_switch under the rq lock, the sample timer in hard IRQ). The
 * totals only grow. When a sample is due, the CPU that wins the agent's
 * shared entry (vigil_agent_stats) sums every CPU's copy
 * (bpf_map_lookup_percpu_elem, 5.19+, in bpf_loop, 5.17+) and reports the
 * growth since the totals of the agent's previous sample, which the shared
 * entry keeps. A remote copy read while its CPU adds to it gives the old or
 * the new value of each field (aligned 8-byte loads and stores, never
 * torn); what a sum misses is in the next sample, nothing twice.
 *
 * Before, every slice did five atomic adds on the one shared entry per
 * agent, a cache line bouncing between the CPUs the agent ran on, and a
 * hash lookup of it. Now a slice touches the shared entry only when this
 * CPU's copy says a sample may be due (due_jiffies: jiffies are one load,
 * where the precise clock cost ~70 ns in a KVM guest, and
 * bpf_ktime_get_coarse_ns is not allowed in tracing programs).
 */
#include "vigil.bpf.h"

/* What an agent did (all its CPUs) since its stats entries were created. */
struct vigil_agent_totals {
	__u64 oncpu_ns;
	__u64 nvcsw;
	__u64 nivcsw;
	__u64 min_flt;
	__u64 maj_flt;
	__u64 cycles;
	__u64 instructions;
	__u64 syscalls;
};

/* One CPU's copy; written by that CPU only. */
struct vigil_agent_cpu_stats {
	struct vigil_agent_totals total;
	/* No sample is due before this jiffy (due_jiffies()). */
	__u64 due_jiffies;
};

/* Shared by the agent's CPUs; written by the CPU that emits a sample. */
struct vigil_agent_stats {
	/* VIGIL_SAMPLING while a CPU sums and emits the agent's sample. */
	__u64 last_sample_ns;
	/* The summed totals the previous sample reported up to. */
	struct vigil_agent_totals reported;
};

#define VIGIL_SAMPLING (~0ULL)
/* bpf_loop bound; the CPU loop stops at nr_cpu_ids (lookup gives NULL). */
#define VIGIL_MAX_CPUS 8192

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VIGIL_BPF_MAX_AGENTS);
	__type(key, __u32);	/* agent id */
	__type(value, struct vigil_agent_stats);
} vigil_agent_stats SEC(".maps");

/* Preallocated (no allocation under the rq lock; 6.1 refuses anything else
 * in perf_event programs): max_entries x possible CPUs x 72 bytes. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, VIGIL_BPF_MAX_AGENTS);
	__type(key, __u32);	/* agent id */
	__type(value, struct vigil_agent_cpu_stats);
} vigil_agent_cpu_stats SEC(".maps");

/* Out of line: the zeroed initial value stays off the per-switch path. */
static __noinline struct vigil_agent_cpu_stats *cpu_stats_create(__u32 agent)
{
	struct vigil_agent_cpu_stats init = {};
	struct vigil_agent_cpu_stats *pc;

	/* Every CPU's copy starts zero; a racing CPU's insert wins. */
	bpf_map_update_elem(&vigil_agent_cpu_stats, &agent, &init, BPF_NOEXIST);
	pc = bpf_map_lookup_elem(&vigil_agent_cpu_stats, &agent);
	if (!pc)
		vigil_count_error(VIGIL_BPF_ERR_AGENT_MAP);
	return pc;
}

/* This CPU's running totals of @agent. */
static __always_inline struct vigil_agent_cpu_stats *vigil_agent_cpu_stats_of(__u32 agent)
{
	struct vigil_agent_cpu_stats *pc;

	pc = bpf_map_lookup_elem(&vigil_agent_cpu_stats, &agent);
	return pc ? pc : cpu_stats_create(agent);
}

static __always_inline struct vigil_agent_stats *shared_stats_of(__u32 agent,
								  __u64 start)
{
	struct vigil_agent_stats *st = bpf_map_lookup_elem(&vigil_agent_stats, &agent);
	struct vigil_agent_stats init = {};

	if (st)
		return st;
	/* The first interval starts with the slice that created it; a racing
	 * CPU's insert wins. */
	init.last_sample_ns = start;
	bpf_map_update_elem(&vigil_agent_stats, &agent, &init, BPF_NOEXIST);
	st = bpf_map_lookup_elem(&vigil_agent_stats, &agent);
	if (!st)
		vigil_count_error(VIGIL_BPF_ERR_AGENT_MAP);
	return st;
}

struct fold_ctx {
	__u32 agent;
	__u32 __pad;
	struct vigil_agent_totals sum;
};

/* bpf_loop callback: adds CPU @cpu's copy; stops past the last CPU. */
static long fold_cpu(__u64 cpu, void *data)
{
	struct fold_ctx *f = data;
	struct vigil_agent_cpu_stats *pc;

	pc = bpf_map_lookup_percpu_elem(&vigil_agent_cpu_stats, &f->agent, cpu);
	if (!pc)
		return 1;
	f->sum.oncpu_ns += *(volatile __u64 *)&pc->total.oncpu_ns;
	f->sum.nvcsw += *(volatile __u64 *)&pc->total.nvcsw;
	f->sum.nivcsw += *(volatile __u64 *)&pc->total.nivcsw;
	f->sum.min_flt += *(volatile __u64 *)&pc->total.min_flt;
	f->sum.maj_flt += *(volatile __u64 *)&pc->total.maj_flt;
	f->sum.cycles += *(volatile __u64 *)&pc->total.cycles;
	f->sum.instructions += *(volatile __u64 *)&pc->total.instructions;
	f->sum.syscalls += *(volatile __u64 *)&pc->total.syscalls;
	return 0;
}

/*
 * The jiffy before which a sample due at @due (precise clock, read as @now)
 * cannot be: jiffies advance once per jiffy_ns, so at jiffy j + k the
 * precise clock is past now + (k - 1) * jiffy_ns, and no later than
 * now + k * jiffy_ns. Checked from one tick before @due on.
 */
static __always_inline __u64 due_jiffies(__u64 due, __u64 now)
{
	__u64 j = bpf_jiffies64();

	if ((__s64)(due - now) <= 0)
		return j;
	return j + (due - now) / jiffy_ns;
}

/*
 * Growth of a summed total since the previous sample. A total below what
 * was reported means the entries were deleted (untrack) and created again
 * meanwhile: everything in it is new.
 */
static __always_inline __u64 growth(__u64 now_total, __u64 reported)
{
	return now_total >= reported ? now_total - reported : now_total;
}

/*
 * Emits @agent's sample when sample_ns has passed since its last one, by
 * the precise clock @now: called at this CPU's switch-out (or timer) of one
 * of its tasks when @pc's due_jiffies has come; @start is when the closed
 * slice began (an agent's first interval starts there).
 */
static __noinline void vigil_agent_maybe_sample(struct vigil_agent_cpu_stats *pc,
						__u32 agent, __u32 tgid,
						__u64 now, __u64 start)
{
	struct vigil_ev_sample *ev;
	struct vigil_agent_stats *st;
	struct fold_ctx f = {};
	__u64 last;

	if (!pc)
		return;
	st = shared_stats_of(agent, start);
	if (!st)
		return;
	last = *(volatile __u64 *)&st->last_sample_ns;
	if (last == VIGIL_SAMPLING)
		return; /* another CPU is emitting it: look again next slice */
	/* Signed: another CPU's later clock may already be there. */
	if ((__s64)(now - last) < (__s64)sample_ns) {
		pc->due_jiffies = due_jiffies(last + sample_ns, now);
		return;
	}
	/* One CPU wins the interval; the others keep accumulating. */
	if (__sync_val_compare_and_swap(&st->last_sample_ns, last,
					VIGIL_SAMPLING) != last)
		return;

	f.agent = agent;
	bpf_loop(VIGIL_MAX_CPUS, fold_cpu, &f, 0);
	vigil_agent_announce(agent);
	ev = bpf_ringbuf_reserve(&vigil_events, sizeof(*ev), 0);
	if (!ev) {
		/* The growth stays unreported and goes out with the next one. */
		vigil_note_drop(VIGIL_EV_SAMPLE);
		goto out;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	vigil_hdr_init(&ev->hdr, VIGIL_EV_SAMPLE, sizeof(*ev), agent);
	ev->pid = tgid;
	ev->cpu = bpf_get_smp_processor_id();
	ev->interval_ns = now - last;
	ev->oncpu_ns = growth(f.sum.oncpu_ns, st->reported.oncpu_ns);
	ev->nvcsw = growth(f.sum.nvcsw, st->reported.nvcsw);
	ev->nivcsw = growth(f.sum.nivcsw, st->reported.nivcsw);
	ev->min_flt = growth(f.sum.min_flt, st->reported.min_flt);
	ev->maj_flt = growth(f.sum.maj_flt, st->reported.maj_flt);
	if (have_hw || hw_inject) {
		ev->flags |= VIGIL_SAMPLE_F_HW;
		ev->cycles = growth(f.sum.cycles, st->reported.cycles);
		ev->instructions = growth(f.sum.instructions,
					  st->reported.instructions);
	}
	if (count_syscalls) {
		ev->flags |= VIGIL_SAMPLE_F_SYSCALLS;
		ev->syscalls = growth(f.sum.syscalls, st->reported.syscalls);
	}
	vigil_commit_sample(ev);
	vigil_submit(ev);
	st->reported = f.sum;
out:
	pc->due_jiffies = due_jiffies(now + sample_ns, now);
	/* Full barrier: the next winner's cmpxchg sees reported. */
	__sync_lock_test_and_set(&st->last_sample_ns, now);
}
