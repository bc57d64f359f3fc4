// SPDX-License-Identifier: GPL-2.0
/*
 * sample.bpf.c - per-agent metrics from the scheduler: on-CPU time, context
 * switches, faults (and, when measured, cycles, instructions and syscalls)
 * accumulated at every context switch and emitted as a vigil_ev_sample at
 * most every sample_ns per agent.
 *
 * Hook: tp_btf/sched_switch(preempt, prev, next[, prev_state]), called in
 * __schedule() with the rq lock held, before the switch: current == prev.
 * Every on-CPU interval starts and ends here, so it is the one place that
 * sees a task's whole slice; the deltas read here (clock, fault counters,
 * hardware counters) belong entirely to the outgoing task. The first three
 * arguments are the same since 4.x; prev_state (5.18+) is not used, the
 * state comes from prev->__state (5.14+), so 6.1, 6.12 and 6.18 all work.
 *
 * A per-CPU slot remembers what was true when the running task came in
 * (time, its agent, its fault counts, counter readings); switch-out adds
 * the differences to the agent's totals, atomically because one agent runs
 * on several CPUs. Needs -mcpu=v3 atomics (xchg/cmpxchg, kernels 5.12+).
 * Every context switch of the machine comes here, so a switch between two
 * tasks that are not agents does the least: no lookup for the idle task,
 * the incoming task's agent from its task-storage cache
 * (vigil_agent_of_task), no clock, no counters (docs/benchmarks.md).
 *
 * prev and next are trusted BTF pointers and next->cgroups->dfl_cgrp->kn
 * RCU-trusted, all read directly: no bpf_probe_read_kernel, which
 * lockdown=confidentiality refuses.
 *
 * Second hook, for a CPU-bound agent that is never switched out (and so
 * would never reach sched_switch): perf_event vigil_sample_tick, attached
 * by vigild to a cpu-clock software event on every CPU (no PMU needed)
 * firing every sample_ns / 2. It closes the running agent's slice so far
 * as a switch-out would (without counting a switch) and starts a new one
 * at the same instant, so nothing is counted twice; it also starts the
 * slice of an agent whose switch-in came before it was tracked (or before
 * vigild attached), which sched_switch would only notice at its next
 * switch. It runs in hard IRQ context, so it never interleaves with
 * sched_switch on its CPU (that runs with IRQs off); a spinning agent gets
 * a sample every sample_ns to 1.5 * sample_ns.
 */
#include "vigil.bpf.h"

/* Set by the loader. 0 disables samples (the program is not loaded). */
const volatile __u64 sample_ns = 0;
/* Hardware counters: vigild opened cycles/instructions on every CPU. */
const volatile bool have_hw = false;
/*
 * Test only: instead of the PMU, "read" synthetic counters that advance
 * hw_inject_cycles_per_us / _instr_per_us per microsecond of the clock this
 * program reads, so the attribution can be checked exactly on a machine
 * without a PMU. Samples still carry VIGIL_SAMPLE_F_HW; vigild says loudly
 * that the values are injected.
 */
const volatile bool hw_inject = false;
const volatile __u64 hw_inject_cycles_per_us = 0;
const volatile __u64 hw_inject_instr_per_us = 0;

vigil_cpu_slot_map_t vigil_cpu_slot SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VIGIL_BPF_MAX_AGENTS);
	__type(key, __u32);	/* agent id */
	__type(value, struct vigil_agent_stats);
} vigil_agent_stats SEC(".maps");

/* Per-CPU perf events, opened by vigild (BPF_F_CURRENT_CPU reads ours). */
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} vigil_hw_cycles SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} vigil_hw_instructions SEC(".maps");

/* Reads both counters on this CPU; false when a read fails (counted). */
static __always_inline bool read_hw(__u64 now, __u64 *cycles, __u64 *instr)
{
	struct bpf_perf_event_value v = {};

	if (hw_inject) {
		*cycles = now / 1000 * hw_inject_cycles_per_us;
		*instr = now / 1000 * hw_inject_instr_per_us;
		return true;
	}
	if (bpf_perf_event_read_value(&vigil_hw_cycles, BPF_F_CURRENT_CPU, &v,
				      sizeof(v))) {
		vigil_count_error(VIGIL_BPF_ERR_HW_READ);
		return false;
	}
	*cycles = v.counter;
	if (bpf_perf_event_read_value(&vigil_hw_instructions, BPF_F_CURRENT_CPU,
				      &v, sizeof(v))) {
		vigil_count_error(VIGIL_BPF_ERR_HW_READ);
		return false;
	}
	*instr = v.counter;
	return true;
}

static __always_inline struct vigil_agent_stats *stats_of(__u32 agent,
							  __u64 start)
{
	struct vigil_agent_stats *st = bpf_map_lookup_elem(&vigil_agent_stats, &agent);
	struct vigil_agent_stats init = {};

	if (st)
		return st;
	/* The first interval starts with the slice that created it; a racing
	 * CPU's insert wins. */
	init.last_sample_ns = start;
	if (bpf_map_update_elem(&vigil_agent_stats, &agent, &init, BPF_NOEXIST) &&
	    !bpf_map_lookup_elem(&vigil_agent_stats, &agent)) {
		vigil_count_error(VIGIL_BPF_ERR_AGENT_MAP);
		return NULL;
	}
	return bpf_map_lookup_elem(&vigil_agent_stats, &agent);
}

/* Emits the agent's sample when sample_ns has passed since the last one. */
static __always_inline void maybe_sample(struct vigil_agent_stats *st,
					 __u32 agent, __u32 tgid, __u64 now)
{
	struct vigil_ev_sample *ev;
	__u64 last = st->last_sample_ns;

	if (now - last < sample_ns)
		return;
	/* One CPU wins the interval; the others keep accumulating. */
	if (__sync_val_compare_and_swap(&st->last_sample_ns, last, now) != last)
		return;
	vigil_agent_announce(agent);
	ev = bpf_ringbuf_reserve(&vigil_events, sizeof(*ev), 0);
	if (!ev) {
		/* The counts stay in the totals and go out with the next one. */
		vigil_note_drop(VIGIL_EV_SAMPLE);
		return;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	vigil_hdr_init(&ev->hdr, VIGIL_EV_SAMPLE, sizeof(*ev), agent);
	ev->pid = tgid;
	ev->cpu = bpf_get_smp_processor_id();
	ev->interval_ns = now - last;
	ev->oncpu_ns = __sync_lock_test_and_set(&st->oncpu_ns, 0);
	ev->nvcsw = __sync_lock_test_and_set(&st->nvcsw, 0);
	ev->nivcsw = __sync_lock_test_and_set(&st->nivcsw, 0);
	ev->min_flt = __sync_lock_test_and_set(&st->min_flt, 0);
	ev->maj_flt = __sync_lock_test_and_set(&st->maj_flt, 0);
	if (have_hw || hw_inject) {
		ev->flags |= VIGIL_SAMPLE_F_HW;
		ev->cycles = __sync_lock_test_and_set(&st->cycles, 0);
		ev->instructions = __sync_lock_test_and_set(&st->instructions, 0);
	}
	if (count_syscalls) {
		ev->flags |= VIGIL_SAMPLE_F_SYSCALLS;
		ev->syscalls = __sync_lock_test_and_set(&st->syscalls, 0);
	}
	vigil_commit_sample(ev);
	vigil_submit(ev);
}

/*
 * Adds the slice the slot describes, up to now, to the agent's totals:
 * on-CPU time, faults of @t (the slot's task), counter and syscall deltas.
 * The caller counts the switch itself, if any.
 */
static __always_inline void account_slice(struct vigil_agent_stats *st,
					  struct vigil_cpu_slot *slot,
					  struct task_struct *t, __u64 now,
					  __u64 cycles, __u64 instr, bool hw_ok)
{
	__sync_fetch_and_add(&st->oncpu_ns, now - slot->since_ns);
	__sync_fetch_and_add(&st->min_flt, t->min_flt - slot->min_flt);
	__sync_fetch_and_add(&st->maj_flt, t->maj_flt - slot->maj_flt);
	if (hw_ok && slot->hw_valid) {
		__sync_fetch_and_add(&st->cycles, cycles - slot->cycles);
		__sync_fetch_and_add(&st->instructions, instr - slot->instructions);
	}
	/* Exchanged: sys_enter may run (and add) on this CPU at any time. */
	if (count_syscalls)
		__sync_fetch_and_add(&st->syscalls,
				     __sync_lock_test_and_set(&slot->syscalls, 0));
}

/* Starts the slot's slice of agent task @t at now. */
static __always_inline void start_slice(struct vigil_cpu_slot *slot,
					struct task_struct *t, __u64 now,
					__u64 cycles, __u64 instr, bool hw_ok)
{
	slot->since_ns = now;
	slot->min_flt = t->min_flt;
	slot->maj_flt = t->maj_flt;
	slot->cycles = cycles;
	slot->instructions = instr;
	slot->hw_valid = hw_ok;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(vigil_sched_switch, bool preempt, struct task_struct *prev,
	     struct task_struct *next)
{
	struct vigil_agent_stats *st;
	struct vigil_cpu_slot *slot;
	__u32 zero = 0, out_agent, in_agent = 0;
	__u64 cycles = 0, instr = 0, now;
	bool hw_ok = false;

	if (vigil_inactive())
		return 0; /* the active instance owns the shared slots */
	vigil_note_alive(VIGIL_PROD_SWITCH);
	slot = bpf_map_lookup_elem(&vigil_cpu_slot, &zero);
	if (!slot)
		return 0;
	/* The slot describes prev when it was switched in. */
	out_agent = slot->tid == prev->pid ? slot->agent : 0;
	/* The idle task is never an agent: no lookups into or out of idle. */
	if (next->pid)
		in_agent = vigil_agent_of_task(next);
	if (!out_agent && !in_agent) {
		/* What every process that is not an agent pays: no clock, no counters. */
		slot->agent = 0;
		slot->tid = next->pid;
		slot->syscalls = 0;
		return 0;
	}
	now = bpf_ktime_get_ns();
	if (have_hw || hw_inject)
		hw_ok = read_hw(now, &cycles, &instr);

	/* Switch-out. */
	if (out_agent) {
		st = stats_of(out_agent, slot->since_ns);
		if (st) {
			account_slice(st, slot, prev, now, cycles, instr, hw_ok);
			if (!preempt && prev->__state != 0)
				__sync_fetch_and_add(&st->nvcsw, 1);
			else
				__sync_fetch_and_add(&st->nivcsw, 1);
			maybe_sample(st, out_agent, prev->tgid, now);
		}
	}

	/* Switch-in: remember next's starting point. */
	slot->agent = in_agent;
	slot->tid = next->pid;
	slot->since_ns = now;
	slot->syscalls = 0;
	if (in_agent)
		start_slice(slot, next, now, cycles, instr, hw_ok);
	return 0;
}

SEC("perf_event")
int vigil_sample_tick(struct bpf_perf_event_data *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct vigil_agent_stats *st;
	struct vigil_cpu_slot *slot;
	__u64 cycles = 0, instr = 0, now;
	__u32 zero = 0, agent;
	bool hw_ok = false;

	if (vigil_inactive())
		return 0;
	slot = bpf_map_lookup_elem(&vigil_cpu_slot, &zero);
	if (!slot)
		return 0;
	if (t->pid == 0)
		return 0; /* idle */
	now = bpf_ktime_get_ns();
	agent = slot->agent;
	if (!agent || slot->tid != t->pid) {
		/*
		 * The slot was filled before the running task became an agent
		 * (tracked after its switch-in), or before vigild attached.
		 * Start its slice now, as a switch-in would: a task that is
		 * never switched out would otherwise never be sampled.
		 */
		agent = vigil_agent_of_pid(t->tgid);
		if (!agent)
			agent = vigil_agent_of_current_cgroup();
		if (!agent)
			return 0;
		if (have_hw || hw_inject)
			hw_ok = read_hw(now, &cycles, &instr);
		slot->agent = agent;
		slot->tid = t->pid;
		slot->syscalls = 0;
		start_slice(slot, t, now, cycles, instr, hw_ok);
		return 0;
	}
	if (have_hw || hw_inject)
		hw_ok = read_hw(now, &cycles, &instr);
	st = stats_of(agent, slot->since_ns);
	if (!st)
		return 0;
	account_slice(st, slot, t, now, cycles, instr, hw_ok);
	start_slice(slot, t, now, cycles, instr, hw_ok);
	maybe_sample(st, agent, t->tgid, now);
	return 0;
}
