// SPDX-License-Identifier: GPL-2.0
/*
 * kread.bpf.c - the BPF half of vigil-kread: read up to KREAD_MAX bytes of
 * kernel memory at an address user space chose, as a root attacker after
 * the module's key would.
 *
 * Three programs, loaded one at a time by the loader:
 *  - kread_helper: bpf_probe_read_kernel(), which the verifier refuses
 *    under lockdown=confidentiality (LOCKDOWN_BPF_READ_KERNEL);
 *  - kread_cast: bpf_rdonly_cast() of the address to a kernel struct, then
 *    plain loads (fault-handled BPF_PROBE_MEM). Neither the kfunc nor the
 *    loads are checked against lockdown in 6.12: this shows what
 *    confidentiality does not stop;
 *  - kread_printf: bpf_snprintf("%s") of the address, which copies a kernel
 *    string with strncpy_from_kernel_nofault() (kernel/bpf/helpers.c,
 *    bpf_trace_copy_string()), again without a lockdown check.
 *
 * Hook: SEC("syscall"), run once with BPF_PROG_TEST_RUN: no attachment, no
 * tracefs. Both the helper and the kfunc are available to it on 6.12.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define KREAD_MAX 64

/* Resolved by name in the kernel's BTF (CO-RE): two 8-byte fields. */
struct timespec64 {
	long long tv_sec;
	long tv_nsec;
} __attribute__((preserve_access_index));

/* Weak: 6.1 has no bpf_rdonly_cast (6.2+); the loader checks for it. */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym __weak;

__u64 addr;			/* set by user space */
__u8 buf[KREAD_MAX];		/* what was read */
__s64 ret;			/* the helper's result */

SEC("syscall")
int kread_helper(void *ctx)
{
	ret = bpf_probe_read_kernel(buf, sizeof(buf), (const void *)addr);
	return 0;
}

SEC("syscall")
int kread_cast(void *ctx)
{
	__u64 *out = (__u64 *)buf;
	struct timespec64 *t;
	int i;

#pragma unroll
	for (i = 0; i < KREAD_MAX / 16; i++) {
		t = bpf_rdonly_cast((const void *)(addr + i * 16),
				    bpf_core_type_id_kernel(struct timespec64));
		out[2 * i] = t->tv_sec;
		out[2 * i + 1] = t->tv_nsec;
	}
	ret = 0;
	return 0;
}

SEC("syscall")
int kread_printf(void *ctx)
{
	static const char fmt[] = "%s";
	__u64 arg = addr;

	ret = bpf_snprintf((char *)buf, sizeof(buf), fmt, &arg, sizeof(arg));
	ret = ret < 0 ? ret : 0;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
