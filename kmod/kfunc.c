// SPDX-License-Identifier: GPL-2.0
/*
 * kfunc.c - the functions BPF tracing programs call.
 *
 * Registered for BPF_PROG_TYPE_TRACING only (tp_btf, fentry/fexit, LSM,
 * and, through the kernel's mapping, perf_event and tracepoint programs).
 * Registering a second type after TRACING fails and frees the module's
 * whole kfunc table on 6.12, so exactly one registration is made and any
 * nonzero return fails the load.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bpf.h>
#include <linux/btf.h>
#include <linux/btf_ids.h>
#include <linux/module.h>

#include "internal.h"

__bpf_kfunc_start_defs();

/**
 * vigil_commit() - commit an event record into the hash chain
 * @rec:     the record (e.g. a ring buffer reservation), may be NULL
 * @rec__sz: bytes at @rec the verifier lets the kernel read and write
 *
 * On success the module has written hdr.seq and set
 * VIGIL_REC_F_COMMITTED in hdr.flags of the record.
 *
 * Return: 0, -EINVAL for NULL or a bad type/version/size (counted as
 * rejected), -EBUSY on re-entry from the same CPU (counted as busy).
 */
__bpf_kfunc int vigil_commit(void *rec, u32 rec__sz)
{
	return vigil_chain_commit(rec, rec__sz);
}

/**
 * vigil_drop() - count an event the program could not deliver
 * @type: enum vigil_rec_type of the lost event
 *
 * Return: 0, or -EINVAL for an unknown type (counted as type 0).
 */
__bpf_kfunc int vigil_drop(u32 type)
{
	return vigil_chain_count_drop(type);
}

__bpf_kfunc_end_defs();

BTF_KFUNCS_START(vigil_kfunc_ids)
BTF_ID_FLAGS(func, vigil_commit)
BTF_ID_FLAGS(func, vigil_drop)
BTF_KFUNCS_END(vigil_kfunc_ids)

static const struct btf_kfunc_id_set vigil_kfunc_set = {
	.owner = THIS_MODULE,
	.set = &vigil_kfunc_ids,
};

/**
 * vigil_kfunc_init() - make the kfuncs callable from tracing programs
 *
 * The registration cannot be undone; the kernel drops it with the
 * module's BTF at unload.
 *
 * Return: 0 or the error of register_btf_kfunc_id_set().
 */
int vigil_kfunc_init(void)
{
	int ret;

	ret = register_btf_kfunc_id_set(BPF_PROG_TYPE_TRACING, &vigil_kfunc_set);
	if (ret)
		pr_err("registering the kfuncs for tracing programs failed: %d\n",
		       ret);
	return ret;
}
