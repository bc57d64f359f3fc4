// SPDX-License-Identifier: GPL-2.0
/*
 * kmod_bench.bpf.c - the cost of committing a record through vigil.ko,
 * against emitting the same record to a ring buffer only, and a check of
 * the kfuncs' contract from a real BPF program.
 *
 * A tp_btf/sys_enter program, filtered to one pid and one syscall
 * (getppid), runs a bpf_loop of `iters` iterations and times it with
 * bpf_ktime_get_ns(): mode 0 reserves, fills and submits a 160-byte exit
 * record; mode 1 also calls vigil_commit() on it. Mode 2 runs the kfunc
 * contract checks once. tp_btf because it needs no tracefs and can call
 * TRACING kfuncs (Debian 6.12, module BTF).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "vigil.h"

#define NR_GETPPID 110	/* x86_64 */

extern int vigil_commit(void *rec, __u32 rec__sz) __ksym;
extern int vigil_drop(__u32 type) __ksym;
extern int vigil_alive(__u32 role) __ksym;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} rb SEC(".maps");

/* never consumed: fills up, so reservations start to fail (NULL) */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} tiny SEC(".maps");

const volatile __u32 target_pid;
__u32 mode;
__u32 iters;
__u64 elapsed_ns;
__u64 runs;
__u64 n_ok;
__u64 n_err;
__u64 n_full;
/* check results */
__s32 chk_valid;
__u64 chk_valid_seq;
__u32 chk_valid_flags;
__u32 chk_null_calls;
__u32 chk_null_einval;
__s32 chk_bad_type;
__s32 chk_bad_size;
__s32 chk_drop_ok;
__s32 chk_types;	/* bit per known type committed with 0 */
__s32 chk_drop_bad;
__s32 chk_alive;

static void fill(struct vigil_ev_exit *ev, __u32 i)
{
	ev->hdr.type = VIGIL_EV_EXIT;
	ev->hdr.version = 1;
	ev->hdr.size = sizeof(*ev);
	ev->hdr.seq = 0;
	ev->hdr.ts_ns = bpf_ktime_get_ns();
	ev->hdr.agent_id = 1;
	ev->hdr.flags = 0;
	ev->pid = i;
	ev->tid = i;
	ev->ppid = 1;
	ev->uid = 0;
	ev->exit_code = 0;
	ev->exit_signal = 0;
	ev->core_dumped = 0;
	ev->__reserved = 0;
	ev->lifetime_ns = i;
	ev->utime_ns = 0;
	ev->stime_ns = 0;
	ev->maxrss_kb = 0;
	ev->min_flt = 0;
	ev->maj_flt = 0;
	ev->nvcsw = 0;
	ev->nivcsw = 0;
	ev->read_bytes = 0;
	ev->write_bytes = 0;
	__builtin_memset(ev->comm, 0, sizeof(ev->comm));
}

static long emit(__u32 i, void *ctx)
{
	struct vigil_ev_exit *ev;

	ev = bpf_ringbuf_reserve(&rb, sizeof(*ev), 0);
	if (!ev) {
		n_full++;
		return 1;
	}
	fill(ev, i);
	if (mode == 1) {
		if (vigil_commit(ev, sizeof(*ev)))
			n_err++;
		else
			n_ok++;
	}
	bpf_ringbuf_submit(ev, BPF_RB_NO_WAKEUP);
	return 0;
}

static long null_probe(__u32 i, void *ctx)
{
	struct vigil_ev_exit *ev;
	int ret;

	ev = bpf_ringbuf_reserve(&tiny, sizeof(*ev), 0);
	/* passed before the NULL check on purpose: the kfunc must cope */
	ret = vigil_commit(ev, sizeof(*ev));
	if (!ev) {
		chk_null_calls++;
		if (ret == -22)
			chk_null_einval++;
		return 0;
	}
	/* not filled: type 0 is rejected too */
	bpf_ringbuf_submit(ev, BPF_RB_NO_WAKEUP);
	return 0;
}

#define COMMIT_TYPE(T, TYPE, BIT)						\
	do {									\
		struct T *r = bpf_ringbuf_reserve(&rb, sizeof(*r), 0);		\
		if (r) {							\
			__builtin_memset(r, 0, sizeof(*r));			\
			r->hdr.type = TYPE;					\
			r->hdr.version = 1;					\
			r->hdr.size = sizeof(*r);				\
			if (!vigil_commit(r, sizeof(*r)) && r->hdr.seq)	\
				chk_types |= BIT;				\
			bpf_ringbuf_discard(r, BPF_RB_NO_WAKEUP);		\
		}								\
	} while (0)

static void check(void)
{
	struct vigil_ev_exit *ev;

	ev = bpf_ringbuf_reserve(&rb, sizeof(*ev), 0);
	if (!ev)
		return;
	fill(ev, 1);
	chk_valid = vigil_commit(ev, sizeof(*ev));
	chk_valid_seq = ev->hdr.seq;
	chk_valid_flags = ev->hdr.flags;
	ev->hdr.seq = 0;
	ev->hdr.type = 0x77;
	chk_bad_type = vigil_commit(ev, sizeof(*ev));
	ev->hdr.type = VIGIL_EV_EXIT;
	ev->hdr.size = sizeof(*ev) + 8;
	chk_bad_size = vigil_commit(ev, sizeof(*ev));
	bpf_ringbuf_discard(ev, BPF_RB_NO_WAKEUP);

	COMMIT_TYPE(vigil_ev_exec, VIGIL_EV_EXEC, 1);
	COMMIT_TYPE(vigil_ev_user, VIGIL_EV_USER, 2);
	COMMIT_TYPE(vigil_ev_fork, VIGIL_EV_FORK, 4);
	COMMIT_TYPE(vigil_ev_agent, VIGIL_EV_AGENT, 8);
	COMMIT_TYPE(vigil_ev_sample, VIGIL_EV_SAMPLE, 16);

	bpf_loop(64, null_probe, NULL, 0);
	chk_drop_ok = vigil_drop(VIGIL_EV_EXEC) | vigil_drop(VIGIL_EV_EXIT) |
		      vigil_drop(VIGIL_EV_EXIT);
	chk_drop_bad = vigil_drop(0x999);
	chk_alive = vigil_alive(VIGIL_PROD_SYSCALL);
}

SEC("tp_btf/sys_enter")
int on_sys_enter(__u64 *ctx)
{
	__u64 t0;

	if ((bpf_get_current_pid_tgid() >> 32) != target_pid ||
	    ctx[1] != NR_GETPPID)
		return 0;
	if (mode == 2) {
		check();
		runs++;
		return 0;
	}
	t0 = bpf_ktime_get_ns();
	bpf_loop(iters, emit, NULL, 0);
	elapsed_ns += bpf_ktime_get_ns() - t0;
	runs++;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
