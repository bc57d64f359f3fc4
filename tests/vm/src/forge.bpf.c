// SPDX-License-Identifier: GPL-2.0
/*
 * forge.bpf.c - the BPF half of vigil-forge: a program that is not vigil's
 * writes one record, prepared by user space, into vigil's ring buffer.
 *
 * The loader replaces the fd of `target` with the fd of vigil's ring buffer
 * (bpf_map__reuse_fd) before load, fills `rec`/`rec_len` in .bss after load
 * and calls getppid() once. The program copies the bytes as they are: the
 * forgery (header, seq, flags) is all done in user space.
 *
 * Hook: raw_tp/sys_enter, filtered to the loader's process and one syscall
 * number (set by the loader, so nothing here is arch-specific). A raw
 * tracepoint needs neither tracefs nor BTF and has bpf_ringbuf_output()
 * on every kernel with ring buffers (>= 5.8), Debian's 6.12 included.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "vigil.h"

/* Placeholder definition: replaced by vigil's map before load. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} target SEC(".maps");

const volatile __u32 target_pid;	/* tgid of the loader */
const volatile __u64 target_nr;		/* syscall number that triggers */

__u8 rec[VIGIL_RECORD_MAX];	/* the record, written by user space */
__u32 rec_len;			/* bytes of rec to write */
__u64 runs;			/* times the program fired for us */
__u64 written;			/* records written (at most one) */
__s64 out_ret;			/* bpf_ringbuf_output() result */

SEC("raw_tp/sys_enter")
int forge(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 len;

	if ((bpf_get_current_pid_tgid() >> 32) != target_pid ||
	    ctx->args[1] != target_nr)
		return 0;
	runs++;
	if (written)
		return 0;	/* one record per run, even if triggered again */
	len = rec_len;
	/*
	 * Two separate tests: clang folds "len < a || len > b" into one
	 * unsigned compare of len - a, which leaves len itself unbounded
	 * for the verifier.
	 */
	if (len > VIGIL_RECORD_MAX)
		goto bad;
	barrier_var(len);
	if (len < sizeof(struct vigil_rec_hdr))
		goto bad;
	out_ret = bpf_ringbuf_output(&target, rec, len, BPF_RB_FORCE_WAKEUP);
	if (!out_ret)
		written++;
	return 0;
bad:
	out_ret = -22;	/* -EINVAL: nothing (sane) prepared */
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
