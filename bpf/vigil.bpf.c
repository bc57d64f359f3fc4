// SPDX-License-Identifier: GPL-2.0
/*
 * vigil.bpf.c - vigil's BPF programs as one compilation unit.
 *
 * Each concern keeps its own file; they are included here so that every
 * helper is a static function. A freplace (BPF_PROG_TYPE_EXT) program may
 * replace a global BPF function of a loaded program, not a static one: with
 * separately compiled objects linked by `bpftool gen object` the shared
 * helpers (agent lookup, commit) had to be global, and root could swap them
 * in vigil's running programs without calling a vigil kfunc.
 */
#include "common.bpf.c"
#include "commit.bpf.c"
#include "agents.bpf.c"
#include "exec.bpf.c"
#include "exit.bpf.c"
#include "fork.bpf.c"
#include "agent_stats.bpf.c"
#include "sample.bpf.c"
#include "syscalls.bpf.c"
