// SPDX-License-Identifier: GPL-2.0
/*
 * agents.bpf.c - which agent a task belongs to, and the one registration
 * record per agent.
 *
 * vigild pins the maps (under /sys/fs/bpf/vigil) and vigilctl fills them:
 * a process (tgid) is tracked when it is in vigil_agents, or when the
 * current task's cgroup v2 id is in vigil_agent_cgroups. Children inherit
 * through fork.bpf.c; exit.bpf.c forgets a process when it is gone. No
 * hook of its own: global functions called by the other programs, so they
 * work wherever those do (5.5+ for tp_btf, cgroup v2 ids since 4.18).
 */
#include "vigil.bpf.h"

#define VIGIL_EEXIST 17 /* errno value; vmlinux.h has no errno macros */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VIGIL_BPF_MAX_AGENT_PIDS);
	__type(key, __u32);	/* tgid */
	__type(value, __u32);	/* agent id */
} vigil_agents SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VIGIL_BPF_MAX_AGENT_CGROUPS);
	__type(key, __u64);	/* cgroup v2 id */
	__type(value, __u32);	/* agent id */
} vigil_agent_cgroups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VIGIL_BPF_MAX_AGENTS);
	__type(key, __u32);	/* agent id */
	__type(value, struct vigil_bpf_agent_info);
} vigil_agent_info SEC(".maps");

/*
 * Agents whose registration record is in the stream (or being written).
 * Never shrinks while vigild runs (vigilctl allocates ids above these), so
 * it is sized for the ids of a vigild lifetime, not for live agents.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VIGIL_BPF_MAX_AGENT_IDS);
	__type(key, __u32);	/* agent id */
	__type(value, __u8);
} vigil_agent_announced SEC(".maps");

/*
 * Bumped by user space (vigilctl, through vigil::agents::Registry) after
 * every edit of vigil_agents or vigil_agent_cgroups: it invalidates the
 * per-task cache below. Its low bit (VIGIL_AGENT_GEN_CGROUPS) says whether
 * any cgroup is tracked. BPF's own edits (fork inheritance, exit) need no
 * bump: they concern a task that has not run yet or will not run again.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} vigil_agent_gen SEC(".maps");

/* What a task was, as of an agent generation and a cgroup. */
struct vigil_task_agent {
	__u64 gen;
	__u64 cgroup_id;	/* 0: not read (no cgroup tracked); v2 ids start at 1 */
	__u32 agent;
	__u32 __pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct vigil_task_agent);
} vigil_task_agent SEC(".maps");

/*
 * In front of the task storage, for sched_switch: the last two tasks this
 * CPU looked up and their agents, valid in one agent generation while no
 * cgroup is tracked. Two tasks switching back and forth on a CPU (a pipe
 * or socket ping-pong, the worst case for a sched_switch hook) are then
 * answered from this CPU's own cache line, without the task-storage helper
 * call (~40 ns of an untracked switch's ~50, docs/benchmarks.md run 7).
 * (pid, start_time) names one task for ever: a reused pid has a later
 * start_time (a thread that execs takes its leader's pid and start_time,
 * and its tgid: the same agent). Written by sched_switch only, IRQs off.
 */
struct vigil_recent_task {
	__u64 start_time;
	__u32 pid;		/* 0: empty (the idle task is never asked about) */
	__u32 agent;
};

struct vigil_recent_agents {
	__u64 gen;
	struct vigil_recent_task task[2];	/* [0]: the latest */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vigil_recent_agents);
} vigil_recent_agents SEC(".maps");

static __noinline __u32 vigil_agent_of_pid(__u32 tgid)
{
	__u32 *id = bpf_map_lookup_elem(&vigil_agents, &tgid);

	return id ? *id : 0;
}

static __noinline __u32 vigil_agent_of_cgroup(__u64 cgroup_id)
{
	__u32 *id = bpf_map_lookup_elem(&vigil_agent_cgroups, &cgroup_id);

	return id ? *id : 0;
}

/* Only for the current task: the helper reads current's cgroup. */
static __noinline __u32 vigil_agent_of_current_cgroup(void)
{
	return vigil_agent_of_cgroup(bpf_get_current_cgroup_id());
}

static __noinline __u32 vigil_agent_of_current(__u32 tgid)
{
	__u32 id = vigil_agent_of_pid(tgid);

	return id ? id : vigil_agent_of_current_cgroup();
}

/*
 * The agent of @task, for sched_switch: every context switch of the machine
 * asks this of the incoming task, and two hash lookups (tgid, then cgroup)
 * were most of what an untracked switch cost. The answer is cached in the
 * task's local storage (and for the last two tasks of the CPU in
 * vigil_recent_agents, above) and holds while the agent generation is the
 * one it was found with and, if any cgroup is tracked, the task's cgroup
 * is too.
 * While no cgroup is tracked the cgroup is not read (three dependent loads,
 * css_set, cgroup, kernfs node): moving a task then changes nothing, and
 * tracking a cgroup bumps the generation. The generation is read before the
 * lookups, so an edit racing with them leaves an entry that the bump
 * following the edit invalidates.
 */
static __always_inline __u32 vigil_agent_of_task(struct task_struct *task)
{
	__u64 cgroup_id = 0, gen = 0, *gen_p, start_time = task->start_time;
	struct vigil_recent_agents *r;
	struct vigil_task_agent *c;
	__u32 zero = 0, agent, pid = task->pid;

	gen_p = bpf_map_lookup_elem(&vigil_agent_gen, &zero);
	if (gen_p)
		gen = *(volatile __u64 *)gen_p;
	r = bpf_map_lookup_elem(&vigil_recent_agents, &zero);
	if (gen & VIGIL_AGENT_GEN_CGROUPS)
		r = NULL; /* the cgroup matters: the task storage keeps it */
	if (r && r->gen == gen) {
		if (r->task[0].pid == pid && r->task[0].start_time == start_time)
			return r->task[0].agent;
		if (r->task[1].pid == pid && r->task[1].start_time == start_time)
			return r->task[1].agent;
	}
	c = bpf_task_storage_get(&vigil_task_agent, task, 0,
				 BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (c && c->gen == gen) {
		if (!(gen & VIGIL_AGENT_GEN_CGROUPS)) {
			agent = c->agent;
			goto remember;
		}
		cgroup_id = task->cgroups->dfl_cgrp->kn->id;
		if (c->cgroup_id == cgroup_id)
			return c->agent;
	} else if (gen & VIGIL_AGENT_GEN_CGROUPS) {
		cgroup_id = task->cgroups->dfl_cgrp->kn->id;
	}
	agent = vigil_agent_of_pid(task->tgid);
	if (!agent && cgroup_id)
		agent = vigil_agent_of_cgroup(cgroup_id);
	if (c) {
		c->gen = gen;
		c->cgroup_id = cgroup_id;
		c->agent = agent;
	}
remember:
	if (r) {
		if (r->gen == gen) {
			r->task[1] = r->task[0];
		} else {
			r->gen = gen;
			r->task[1].pid = 0;
		}
		r->task[0].start_time = start_time;
		r->task[0].pid = pid;
		r->task[0].agent = agent;
	}
	return agent;
}

static __noinline int vigil_agent_inherit(__u32 tgid, __u32 agent_id)
{
	if (bpf_map_update_elem(&vigil_agents, &tgid, &agent_id, BPF_ANY)) {
		vigil_count_error(VIGIL_BPF_ERR_AGENT_MAP);
		return -1;
	}
	return 0;
}

static __noinline int vigil_agent_forget(__u32 tgid)
{
	bpf_map_delete_elem(&vigil_agents, &tgid); /* absent is fine */
	return 0;
}

static __noinline int vigil_agent_announce(__u32 agent_id)
{
	struct vigil_bpf_agent_info *info;
	struct vigil_ev_agent *ev;
	__u8 one = 1;
	long err;

	if (agent_id == 0)
		return 0;
	/* Exactly one caller wins the insert; the others see -EEXIST. */
	err = bpf_map_update_elem(&vigil_agent_announced, &agent_id, &one,
				  BPF_NOEXIST);
	if (err == -VIGIL_EEXIST)
		return 0;
	if (err) {
		vigil_count_error(VIGIL_BPF_ERR_AGENT_MAP);
		return -1;
	}
	info = bpf_map_lookup_elem(&vigil_agent_info, &agent_id);
	if (!info) {
		/* Untracked meanwhile, or registered by pid without a name. */
		vigil_count_error(VIGIL_BPF_ERR_AGENT_INFO);
		bpf_map_delete_elem(&vigil_agent_announced, &agent_id);
		return -1;
	}
	ev = bpf_ringbuf_reserve(&vigil_events, sizeof(*ev), 0);
	if (!ev) {
		vigil_note_drop(VIGIL_EV_AGENT);
		/* Let the agent's next record try again. */
		bpf_map_delete_elem(&vigil_agent_announced, &agent_id);
		return -1;
	}
	__builtin_memset(ev, 0, sizeof(*ev));
	vigil_hdr_init(&ev->hdr, VIGIL_EV_AGENT, sizeof(*ev), agent_id);
	ev->action = VIGIL_AGENT_REGISTER;
	ev->how = info->how;
	ev->pid = info->pid;
	ev->uid = info->uid;
	ev->cgroup_id = info->cgroup_id;
	__builtin_memcpy(ev->name, info->name, sizeof(ev->name));
	ev->name[sizeof(ev->name) - 1] = '\0';
	vigil_commit_agent(ev);
	vigil_submit(ev);
	return 0;
}
