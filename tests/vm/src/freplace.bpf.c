// SPDX-License-Identifier: GPL-2.0
/*
 * freplace.bpf.c - the attack the freplace host test tries: replace vigil's
 * agent lookup inside its loaded exec program, so the attacker's processes
 * are never tracked. The target program and function are set at load
 * (vigil-freplace.c), so the same program also tries the commit helper.
 */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

SEC("freplace/vigil_agent_of_current")
__u32 fake_agent_of_current(__u32 tgid)
{
	return 0;	/* "not tracked" */
}

char LICENSE[] SEC("license") = "GPL";
