/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vigil.bpf.h - what every vigil BPF program shares: the maps and loader-set
 * flags defined in common.bpf.c, the module kfuncs, and the helpers that
 * fill the record header, commit a record and count failures.
 */
#ifndef VIGIL_BPF_H
#define VIGIL_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "vigil.h"
#include "counters.h"
#include "agent_maps.h"

/*
 * Map types are named so that the definition in common.bpf.c and the extern
 * declarations in the other objects carry the same BTF, which is what
 * `bpftool gen object` needs to resolve them to one map.
 */
typedef struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, VIGIL_BPF_RINGBUF_BYTES);
} vigil_events_map_t;

typedef struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VIGIL_EV_NR_TYPES);
	__type(key, __u32);
	__type(value, __u64);
} vigil_drops_map_t;

typedef struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VIGIL_BPF_NR_ERRORS);
	__type(key, __u32);
	__type(value, __u64);
} vigil_errors_map_t;

/* What the task running on a CPU started its slice with (sample.bpf.c). */
struct vigil_cpu_slot {
	__u64 runtime_ns;	/* the task's se.sum_exec_runtime */
	__u64 min_flt;
	__u64 maj_flt;
	__u64 cycles;
	__u64 instructions;
	__u64 syscalls;		/* since switch-in (syscalls.bpf.c) */
	__u32 tid;
	__u32 agent;		/* 0: not tracked */
	__u32 hw_valid;		/* cycles/instructions were read */
	__u32 __pad;
};

typedef struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vigil_cpu_slot);
} vigil_cpu_slot_map_t;

extern vigil_events_map_t vigil_events SEC(".maps");
extern vigil_cpu_slot_map_t vigil_cpu_slot SEC(".maps");
extern vigil_drops_map_t vigil_drops SEC(".maps");
extern vigil_errors_map_t vigil_errors SEC(".maps");

/*
 * Set by the loader before load after it found the kfuncs in the module's
 * BTF (/sys/kernel/btf/vigil). With libbpf 1.1.2 bpf_ksym_exists() cannot
 * guard a module kfunc, so the verifier's dead-code elimination on these
 * read-only values is what keeps the unresolved calls out of the program
 * when the module is absent.
 */
extern const volatile bool have_module;
extern const volatile bool have_drop_kfunc;
extern const volatile bool have_alive_kfunc;
/* Set by the loader: record every process, tracked or not (agent id 0). */
extern const volatile bool all_processes;
/*
 * Set by the loader: submit without waking the consumer while less than
 * this many bytes wait in the ring (it polls with a timeout anyway); 0
 * wakes it for every record. Saves a wakeup per record on busy systems.
 */
extern const volatile __u32 wakeup_bytes;
/* Set by the loader with --syscalls (syscalls.bpf.c is loaded then). */
extern const volatile bool count_syscalls;
/* Samples (sample.bpf.c, agent_stats.bpf.c), set by the loader. */
extern const volatile __u64 sample_ns;
extern const volatile __u64 jiffy_ns;
extern const volatile bool have_hw;
extern const volatile bool hw_inject;
/* Restart without a gap (common.bpf.c): set by the loader. */
extern __u64 vigil_active_gen;
extern const volatile __u64 vigil_my_gen;

/* Every program returns at once while another instance is the active one. */
static __always_inline bool vigil_inactive(void)
{
	return *(volatile __u64 *)&vigil_active_gen != vigil_my_gen;
}

/* Per-CPU counters: no atomics needed, user space sums the CPUs. */
static __always_inline void vigil_count_error(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&vigil_errors, &idx);

	if (v)
		*v += 1;
}

static __always_inline void vigil_submit(void *rec)
{
	__u64 flags = 0;

	if (wakeup_bytes &&
	    bpf_ringbuf_query(&vigil_events, BPF_RB_AVAIL_DATA) < wakeup_bytes)
		flags = BPF_RB_NO_WAKEUP;
	bpf_ringbuf_submit(rec, flags);
}

static __always_inline void vigil_hdr_init(struct vigil_rec_hdr *hdr,
					   __u16 type, __u32 size,
					   __u32 agent_id)
{
	hdr->type = type;
	hdr->version = 1;
	hdr->size = size;
	hdr->seq = 0;
	hdr->ts_ns = bpf_ktime_get_boot_ns();
	hdr->agent_id = agent_id;
	hdr->flags = 0;
}

/*
 * Helpers, all static: the programs are built as one compilation unit
 * (vigil.bpf.c includes every concern's file), because a BPF_PROG_TYPE_EXT
 * (freplace) program can replace a *global* function of a loaded program
 * but not a static one ("Cannot replace static functions"). A root user
 * could otherwise swap the agent lookup or the commit helper of vigil's
 * running programs without loading anything that calls the kfuncs.
 *
 * Commit helpers (commit.bpf.c, the only file that declares the module
 * kfuncs): vigil_commit_<type>() commits a reserved record through the
 * module (which sets seq and VIGIL_REC_F_COMMITTED and chains the bytes) or
 * marks it VIGIL_REC_F_NO_MODULE. The caller submits right after: nothing
 * may write to the record between commit and submit, the chain covers
 * those bytes. vigil_note_drop() counts a record that could not be
 * reserved, here and in the module.
 */
static int vigil_commit_exec(struct vigil_ev_exec *ev);
static int vigil_commit_exit(struct vigil_ev_exit *ev);
static int vigil_commit_fork(struct vigil_ev_fork *ev);
static int vigil_commit_agent(struct vigil_ev_agent *ev);
static int vigil_commit_sample(struct vigil_ev_sample *ev);
static int vigil_note_drop(__u32 type);
static int vigil_note_alive(__u32 role);

/*
 * Agents (agents.bpf.c). An agent id of 0 means "not tracked".
 * vigil_agent_of_current() looks the process up by tgid, then by the
 * current task's cgroup: call it only for the current task.
 * vigil_agent_announce() emits the agent's registration record the first
 * time it is called for that agent; call it before the agent's record.
 */
static __u32 vigil_agent_of_pid(__u32 tgid);
static __u32 vigil_agent_of_current_cgroup(void);
static __u32 vigil_agent_of_cgroup(__u64 cgroup_id);
static __u32 vigil_agent_of_current(__u32 tgid);
static int vigil_agent_inherit(__u32 tgid, __u32 agent_id);
static int vigil_agent_forget(__u32 tgid);
static int vigil_agent_announce(__u32 agent_id);

#endif /* VIGIL_BPF_H */
