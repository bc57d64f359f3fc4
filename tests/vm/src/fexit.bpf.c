// SPDX-License-Identifier: GPL-2.0
/*
 * fexit.bpf.c - the BPF half of vigil-fexit: an fexit program with no body,
 * whose target function the loader names at run time. An fexit (like the
 * function_graph tracer) runs the traced function from a trampoline, so
 * inside it __builtin_return_address(0) is the trampoline, not the caller:
 * on vigil's kfuncs that would make the call-site guard refuse the real
 * producers.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("fexit")
int fexit_any(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
