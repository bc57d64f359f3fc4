/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * counters.h - indexes of the BPF side's failure counters, shared by the BPF
 * programs and their loader (not part of the module ABI, so not in vigil.h).
 * Plain C with no includes: it compiles in BPF, C and C++.
 */
#ifndef VIGIL_BPF_COUNTERS_H
#define VIGIL_BPF_COUNTERS_H

/* Index into the per-CPU array map `vigil_errors`. Append only. */
enum vigil_bpf_error {
	VIGIL_BPF_ERR_RESERVE = 0,	/* ring buffer full: record dropped */
	VIGIL_BPF_ERR_COMMIT = 1,	/* vigil_commit() returned an error */
	VIGIL_BPF_ERR_DROP_REPORT = 2,	/* vigil_drop() returned an error */
	VIGIL_BPF_ERR_READ = 3,		/* a kernel read (filename) failed */
	VIGIL_BPF_ERR_EXIT_DEDUP = 4,	/* exit dedup map update failed */
	VIGIL_BPF_ERR_AGENT_MAP = 5,	/* a child could not inherit (agent map full) */
	VIGIL_BPF_ERR_AGENT_INFO = 6,	/* tracked agent id without a name */
	VIGIL_BPF_ERR_HW_READ = 7,	/* bpf_perf_event_read_value() failed */
	VIGIL_BPF_NR_ERRORS = 8,
};

/* Default ring buffer size; the loader may resize it before load. */
#define VIGIL_BPF_RINGBUF_BYTES (256 * 1024)

/* Entries of the exit dedup map (processes exiting at the same time). */
#define VIGIL_BPF_EXIT_DEDUP_ENTRIES 4096

#endif /* VIGIL_BPF_COUNTERS_H */
