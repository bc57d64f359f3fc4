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
 * sees a task's whole slice; the deltas read here (run time, fault
 * counters, hardware counters) belong entirely to the outgoing task. The
 * first three arguments are the same since 4.x; prev_state (5.18+) is not
 * used, the state comes from prev->__state (5.14+), so 6.1, 6.12 and 6.18
 * all work.
 *
 * A per-CPU slot remembers what was true when the running task came in
 * (its agent, its run time, its fault counts, counter readings);
 * switch-out adds the differences to this CPU's copy of the agent's
 * totals, without atomics, and the sample (agent_stats.bpf.c) sums the
 * CPUs' copies. Needs -mcpu=v3 atomics (xchg/cmpxchg, kernels 5.12+) for
 * the sample.
 *
 * On-CPU time is the scheduler's own account of the task,
 * se.sum_exec_runtime, which __schedule() brought up to date for prev
 * before this tracepoint (update_curr() at dequeue or put_prev_task, in
 * every scheduling class) and which does not move while next waits: what
 * getrusage() and the exit record count, and no clock read per switch
 * (bpf_ktime_get_ns() cost ~70 ns per switch in a KVM guest,
 * docs/benchmarks.md run 7). With PARAVIRT_TIME_ACCOUNTING or
 * IRQ_TIME_ACCOUNTING it leaves out hypervisor steal and IRQ time, which
 * the clock between switch-in and switch-out included before. The clock is
 * read only to decide whether a sample is due: jiffies (bpf_jiffies64,
 * 5.5+, one load) against this CPU's due_jiffies, then, in the last jiffy
 * before the sample is due, the precise clock.
 *
 * Every context switch of the machine comes here, so a switch between two
 * tasks that are not agents does the least: no lookup for the idle task,
 * the incoming task's agent from its task-storage cache
 * (vigil_agent_of_task), no clock, no counters, one store
 * (docs/benchmarks.md).
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
 * a sample every sample_ns to 1.5 * sample_ns. The running task's
 * sum_exec_runtime there is as of the last scheduler tick (at most 1/HZ
 * old; on a nohz_full CPU up to a second): the rest of the slice goes
 * into the next sample.
 */
#include "vigil.bpf.h"

/* Set by the loader. 0 disables samples (the program is not loaded). */
const volatile __u64 sample_ns = 0;
/*
 * Set by the loader: ns per jiffy (clock_getres(CLOCK_MONOTONIC_COARSE) is
 * one tick). Too large only makes the precise checks start earlier.
 */
const volatile __u64 jiffy_ns = 10000000;
/* Hardware counters: vigild opened cycles/instructions on every CPU. */
const volatile bool have_hw = false;
/*
 * Test only: instead of the PMU, "read" synthetic counters that advance
 * hw_inject_cycles_per_us / _instr_per_us per microsecond of the running
 * task's run time (se.sum_exec_runtime, what on-CPU time is measured with),
 * so the attribution can be checked exactly on a machine without a PMU.
 * Samples still carry VIGIL_SAMPLE_F_HW; vigild says loudly that the values
 * are injected.
 */
const volatile bool hw_inject = false;
const volatile __u64 hw_inject_cycles_per_us = 0;
const volatile __u64 hw_inject_instr_per_us = 0;

vigil_cpu_slot_map_t vigil_cpu_slot SEC(".maps");

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

/*
 * Reads both counters on this CPU, as @t's slice starts or ends there;
 * false when a read fails (counted). Injected values depend on @t's run
 * time, real ones on the CPU only.
 */
static __always_inline bool read_hw(struct task_struct *t, __u64 *cycles,
				    __u64 *instr)
{
	struct bpf_perf_event_value v = {};

	if (hw_inject) {
		__u64 us = t->se.sum_exec_runtime / 1000;

		*cycles = us * hw_inject_cycles_per_us;
		*instr = us * hw_inject_instr_per_us;
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

/*
 * Adds the slice the slot describes, up to now, to this CPU's totals of
 * its agent: run time and faults of @t (the slot's task), counter and
 * syscall deltas; returns the slice's run time. Plain adds: no other CPU
 * writes @pc, and neither the timer (hard IRQ) nor sys_enter interleaves
 * with sched_switch (IRQs off) or with the timer's read-and-clear of
 * slot->syscalls below (sys_enter's add is one instruction). The caller
 * counts the switch itself, if any.
 */
static __always_inline __u64 account_slice(struct vigil_agent_cpu_stats *pc,
					   struct vigil_cpu_slot *slot,
					   struct task_struct *t, __u64 cycles,
					   __u64 instr, bool hw_ok)
{
	__u64 ran = t->se.sum_exec_runtime - slot->runtime_ns;

	pc->total.oncpu_ns += ran;
	pc->total.min_flt += t->min_flt - slot->min_flt;
	pc->total.maj_flt += t->maj_flt - slot->maj_flt;
	if (hw_ok && slot->hw_valid) {
		pc->total.cycles += cycles - slot->cycles;
		pc->total.instructions += instr - slot->instructions;
	}
	if (count_syscalls) {
		pc->total.syscalls += slot->syscalls;
		slot->syscalls = 0;
	}
	return ran;
}

/* Starts the slot's slice of agent task @t. */
static __always_inline void start_slice(struct vigil_cpu_slot *slot,
					struct task_struct *t, __u64 cycles,
					__u64 instr, bool hw_ok)
{
	slot->tid = t->pid;
	slot->runtime_ns = t->se.sum_exec_runtime;
	slot->min_flt = t->min_flt;
	slot->maj_flt = t->maj_flt;
	slot->cycles = cycles;
	slot->instructions = instr;
	slot->hw_valid = hw_ok;
	slot->syscalls = 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(vigil_sched_switch, bool preempt, struct task_struct *prev,
	     struct task_struct *next)
{
	struct vigil_agent_cpu_stats *pc;
	struct vigil_cpu_slot *slot;
	__u32 zero = 0, out_agent = 0, in_agent = 0;
	__u64 cycles = 0, instr = 0, ran, now;
	bool hw_ok = false;

	if (vigil_inactive())
		return 0; /* the active instance owns the shared slots */
	vigil_note_alive(VIGIL_PROD_SWITCH);
	slot = bpf_map_lookup_elem(&vigil_cpu_slot, &zero);
	if (!slot)
		return 0;
	/* The slot describes prev when it was switched in. */
	if (slot->agent && slot->tid == prev->pid)
		out_agent = slot->agent;
	/* The idle task is never an agent: no lookups into or out of idle. */
	if (next->pid)
		in_agent = vigil_agent_of_task(next);
	if (!out_agent && !in_agent) {
		/*
		 * What every process that is not an agent pays: no clock, no
		 * counters, one store. The slot's other fields only mean
		 * something while agent is set, and are set with it.
		 */
		slot->agent = 0;
		return 0;
	}
	if (have_hw || hw_inject)
		hw_ok = read_hw(out_agent ? prev : next, &cycles, &instr);

	/* Switch-out. */
	if (out_agent) {
		pc = vigil_agent_cpu_stats_of(out_agent);
		if (pc) {
			ran = account_slice(pc, slot, prev, cycles, instr, hw_ok);
			if (!preempt && prev->__state != 0)
				pc->total.nvcsw++;
			else
				pc->total.nivcsw++;
			if ((__s64)(bpf_jiffies64() - pc->due_jiffies) >= 0) {
				now = bpf_ktime_get_ns();
				vigil_agent_maybe_sample(pc, out_agent, prev->tgid,
							 now, now - ran);
			}
		}
		if (in_agent && hw_inject)
			hw_ok = read_hw(next, &cycles, &instr);
	}

	/* Switch-in: remember next's starting point. */
	slot->agent = in_agent;
	if (in_agent)
		start_slice(slot, next, cycles, instr, hw_ok);
	return 0;
}

SEC("perf_event")
int vigil_sample_tick(struct bpf_perf_event_data *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct vigil_agent_cpu_stats *pc;
	struct vigil_cpu_slot *slot;
	__u64 cycles = 0, instr = 0, now, ran;
	__u32 zero = 0, agent;
	bool hw_ok = false;

	if (vigil_inactive())
		return 0;
	slot = bpf_map_lookup_elem(&vigil_cpu_slot, &zero);
	if (!slot)
		return 0;
	if (t->pid == 0)
		return 0; /* idle */
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
			hw_ok = read_hw(t, &cycles, &instr);
		slot->agent = agent;
		start_slice(slot, t, cycles, instr, hw_ok);
		return 0;
	}
	if (have_hw || hw_inject)
		hw_ok = read_hw(t, &cycles, &instr);
	pc = vigil_agent_cpu_stats_of(agent);
	if (!pc)
		return 0;
	ran = account_slice(pc, slot, t, cycles, instr, hw_ok);
	start_slice(slot, t, cycles, instr, hw_ok);
	/* Twice per sample_ns per CPU: the precise clock is affordable. */
	now = bpf_ktime_get_ns();
	vigil_agent_maybe_sample(pc, agent, t->tgid, now, now - ran);
	return 0;
}
