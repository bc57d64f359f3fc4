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
const volatile bool have_alive_kfunc = false;
const volatile bool all_processes = false;
const volatile bool count_syscalls = false;
const volatile __u32 wakeup_bytes = 0;

/*
 * Which instance records. A collector with a pin directory pins this .bss
 * map with the others; the collector that adopts a killed one's instance
 * reuses it, loads its programs with vigil_my_gen one higher, attaches them
 * beside the old ones (inactive), then flips vigil_active_gen with one
 * store: no hook is unobserved and only an event racing that store can be
 * seen by both. Both 0 when nothing is pinned.
 */
__u64 vigil_active_gen = 0;
const volatile __u64 vigil_my_gen = 0;

char LICENSE[] SEC("license") = "GPL";
