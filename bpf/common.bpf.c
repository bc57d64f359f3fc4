// SPDX-License-Identifier: GPL-2.0
/*
 * common.bpf.c - the state every vigil program shares: the event ring buffer,
 * the per-CPU drop and error counters and the loader-set flags. Defined once
 * here; the other objects declare them extern (vigil.bpf.h) and
 * `bpftool gen object` links them into one map each.
 */
#include "vigil.bpf.h"

vigil_events_map_t vigil_events SEC(".maps");
vigil_drops_map_t vigil_drops SEC(".maps");
vigil_errors_map_t vigil_errors SEC(".maps");

const volatile bool have_module = false;
const volatile bool have_drop_kfunc = false;
const volatile bool all_processes = false;
const volatile bool count_syscalls = false;
const volatile __u32 wakeup_bytes = 0;

char LICENSE[] SEC("license") = "GPL";
