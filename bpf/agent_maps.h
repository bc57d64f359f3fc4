/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * agent_maps.h - the tracked-agent maps' value layout and pin names, shared by
 * the BPF programs (agents.bpf.c) and user space (vigild pins the maps,
 * vigilctl edits them). Not part of the module ABI, so not in vigil.h.
 */
#ifndef VIGIL_BPF_AGENT_MAPS_H
#define VIGIL_BPF_AGENT_MAPS_H

#if !defined(__bpf__)
#include <linux/types.h>
#endif

/* Capacity of the agent maps. */
#define VIGIL_BPF_MAX_AGENTS		1024	/* live agents (names, stats) */
#define VIGIL_BPF_MAX_AGENT_IDS		65536	/* ids used in one vigild lifetime */
#define VIGIL_BPF_MAX_AGENT_PIDS	16384	/* tracked processes (vigil_agents) */
#define VIGIL_BPF_MAX_AGENT_CGROUPS	256	/* tracked cgroups */
#define VIGIL_BPF_AGENT_NAME_LEN	64	/* == VIGIL_NAME_LEN */

/* Files under the pin directory (default /sys/fs/bpf/vigil). */
#define VIGIL_PIN_AGENTS	"agents"		/* tgid -> agent id */
#define VIGIL_PIN_AGENT_CGROUPS	"agent_cgroups"		/* cgroup v2 id -> agent id */
#define VIGIL_PIN_AGENT_INFO	"agent_info"		/* agent id -> vigil_bpf_agent_info */
#define VIGIL_PIN_AGENT_SEEN	"agent_announced"	/* agent id -> 1 once announced */
#define VIGIL_PIN_AGENT_STATS	"agent_stats"		/* agent id -> last sample */
#define VIGIL_PIN_AGENT_CPU_STATS "agent_cpu_stats"	/* agent id -> per-CPU totals */
#define VIGIL_PIN_AGENT_GEN	"agent_gen"		/* [0]: bumped after each edit */

/*
 * vigil_agent_gen[0]: the agent generation, bumped by 2 after every edit of
 * the agent maps; its lowest bit says whether any cgroup is tracked. While
 * none is, a task's cgroup cannot change its agent, and sched_switch does
 * not read it (agents.bpf.c).
 */
#define VIGIL_AGENT_GEN_STEP	2
#define VIGIL_AGENT_GEN_CGROUPS	1ULL

/* Value of vigil_agent_info: what the registration record reports. */
struct vigil_bpf_agent_info {
	char name[VIGIL_BPF_AGENT_NAME_LEN];	/* NUL-terminated */
	__u32 how;		/* enum vigil_agent_how */
	__u32 pid;		/* root process (VIGIL_AGENT_BY_PID) */
	__u64 cgroup_id;	/* VIGIL_AGENT_BY_CGROUP */
	__u32 uid;		/* who registered it */
	__u32 __pad;
};

#endif /* VIGIL_BPF_AGENT_MAPS_H */
