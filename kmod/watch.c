// SPDX-License-Identifier: GPL-2.0
/*
 * watch.c - the module's own count of the tracepoints vigil's producers hook.
 *
 * The producers' vigil_alive() calls say how often a vigil program ran; this
 * says how often it should have run. The module attaches its own probes to
 * sched_process_exec/exit/fork (probes beside the BPF programs on the same
 * tracepoints) and counts every firing per CPU. Every checkpoint carries
 * both: a producer that was detached, replaced or switched off runs less
 * often than its tracepoint fires, one attached twice runs more often. Root
 * can change BPF programs, not these probes.
 *
 * sched_switch is not watched: it fires all the time on a live system, so a
 * counter that stands still is the signal there, and registering a probe on
 * it at every load and unload patches the scheduler's hottest call site
 * (under QEMU/TCG that once crashed the guest in __schedule).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/percpu.h>
#include <linux/sched.h>
#include <linux/string.h>
#include <linux/tracepoint.h>

#include "internal.h"

struct linux_binprm;

static DEFINE_PER_CPU(u64 [VIGIL_PROD_SLOTS], vigil_hit_count);

static void vigil_probe_exec(void *data, struct task_struct *p, pid_t old_pid,
			     struct linux_binprm *bprm)
{
	this_cpu_inc(vigil_hit_count[VIGIL_PROD_EXEC]);
}

static void vigil_probe_exit(void *data, struct task_struct *p)
{
	this_cpu_inc(vigil_hit_count[VIGIL_PROD_EXIT]);
}

static void vigil_probe_fork(void *data, struct task_struct *parent,
			     struct task_struct *child)
{
	this_cpu_inc(vigil_hit_count[VIGIL_PROD_FORK]);
}

static struct vigil_watch {
	const char *name;
	void *probe;
	struct tracepoint *tp;
} vigil_watches[] = {
	{ "sched_process_exec", vigil_probe_exec },
	{ "sched_process_exit", vigil_probe_exit },
	{ "sched_process_fork", vigil_probe_fork },
};

static void vigil_watch_find(struct tracepoint *tp, void *priv)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(vigil_watches); i++)
		if (!strcmp(tp->name, vigil_watches[i].name))
			vigil_watches[i].tp = tp;
}

/**
 * vigil_hits_sum() - tracepoint firings since load, by producer role
 * @out: VIGIL_PROD_SLOTS counters (sched_switch and sys_enter are not
 *       watched: 0)
 */
void vigil_hits_sum(u64 *out)
{
	vigil_slots_sum(&vigil_hit_count[0], out);
}

static void vigil_watch_unregister(int n)
{
	while (--n >= 0)
		tracepoint_probe_unregister(vigil_watches[n].tp,
					    vigil_watches[n].probe, NULL);
	tracepoint_synchronize_unregister();
}

/**
 * vigil_watch_init() - attach the counting probes
 *
 * Return: 0, -ENOENT when a tracepoint is missing, or the error of
 * tracepoint_probe_register().
 */
int vigil_watch_init(void)
{
	int i, ret;

	for_each_kernel_tracepoint(vigil_watch_find, NULL);
	for (i = 0; i < ARRAY_SIZE(vigil_watches); i++) {
		if (!vigil_watches[i].tp) {
			pr_err("tracepoint %s not found\n", vigil_watches[i].name);
			ret = -ENOENT;
			goto out_unregister;
		}
		ret = tracepoint_probe_register(vigil_watches[i].tp,
						vigil_watches[i].probe, NULL);
		if (ret) {
			pr_err("probing tracepoint %s failed: %d\n",
			       vigil_watches[i].name, ret);
			goto out_unregister;
		}
	}
	return 0;

out_unregister:
	vigil_watch_unregister(i);
	return ret;
}

/**
 * vigil_watch_exit() - detach the probes; none runs after it returns
 */
void vigil_watch_exit(void)
{
	vigil_watch_unregister(ARRAY_SIZE(vigil_watches));
}
