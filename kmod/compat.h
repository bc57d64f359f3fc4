/* SPDX-License-Identifier: GPL-2.0 */
/*
 * compat.h - the kernel APIs that differ between the kernels vigil builds
 * for: Debian 12's own 6.1 and the 6.12 of bookworm-backports/updates.
 * Each shim says which version brought the API it stands in for; features
 * are tested, not version numbers (distribution kernels backport). Checked
 * against the 6.1.0-57 and 6.12.118 headers.
 */
#ifndef _VIGIL_COMPAT_H
#define _VIGIL_COMPAT_H

#include <linux/bits.h>
#include <linux/btf.h>
#include <linux/btf_ids.h>

/* 6.12 moved <asm/unaligned.h> to <linux/unaligned.h> (Kbuild tests it). */
#ifdef VIGIL_HAVE_LINUX_UNALIGNED
#include <linux/unaligned.h>
#else
#include <asm/unaligned.h>
#endif

/*
 * 6.3: the __bpf_kfunc tag (__used noinline and more). vigil's kfuncs are
 * global and declared, so out of line is all they need.
 */
#ifndef __bpf_kfunc
#define __bpf_kfunc noinline
#endif

/*
 * 6.8: __bpf_kfunc_{start,end}_defs(), which silence -Wmissing-prototypes
 * (a default warning from 6.8 on). vigil declares its kfuncs in
 * internal.h, so older kernels need nothing; static_assert(1) only takes
 * the semicolon after the macro.
 */
#ifndef __bpf_kfunc_start_defs
#define __bpf_kfunc_start_defs() static_assert(1)
#define __bpf_kfunc_end_defs() static_assert(1)
#endif

/* 6.9: BTF_KFUNCS_START/END (a set8 flagged as kfuncs); 6.0 has set8. */
#ifndef BTF_KFUNCS_START
#define BTF_KFUNCS_START(name) BTF_SET8_START(name)
#define BTF_KFUNCS_END(name) BTF_SET8_END(name)
#endif

/*
 * 6.5: struct btf_kfunc_id_set.filter, the verifier's per-program veto.
 * Kbuild sets VIGIL_HAVE_KFUNC_FILTER from the btf_kfunc_filter_t typedef
 * that came with it; without it the kfuncs check their call site instead
 * (kfunc.c).
 */
#ifndef VIGIL_HAVE_KFUNC_FILTER
#define VIGIL_HAVE_KFUNC_FILTER 0
#endif

/*
 * TPM 2.0 constants (TPM 2.0 Part 2) that <linux/tpm.h> names only from
 * 6.10 (the TPM2 HMAC session series), as enum members that #ifdef cannot
 * see: vigil's own names on every kernel.
 */
#define VIGIL_TPM_ALG_ECC		0x0023
#define VIGIL_TPM2_ECC_NIST_P256	0x0003
#define VIGIL_TPM2_RH_NULL		0x40000007
#define VIGIL_TPM2_OA_SENSITIVE_DATA_ORIGIN	BIT(5)
#define VIGIL_TPM2_OA_NO_DA		BIT(10)
#define VIGIL_TPM2_OA_SIGN		BIT(18)

#endif /* _VIGIL_COMPAT_H */
