// SPDX-License-Identifier: GPL-2.0
/*
 * commit.bpf.c - the one place that calls the module's kfuncs: commits
 * records into the module's hash chain and reports drops (see vigil.bpf.h
 * for why this lives in its own object).
 *
 * The calls are guarded by loader-set read-only flags: when the module is
 * absent the verifier prunes them as dead code, so the unresolved weak
 * kfuncs never reach it (bpf_ksym_exists() does not work for module kfuncs
 * with libbpf 1.1.2).
 */
#include "vigil.bpf.h"

/* Module kfuncs (kmod/kfunc.c). Weak: the object loads without the module. */
extern int vigil_commit(void *rec, __u32 rec__sz) __ksym __weak;
extern int vigil_drop(__u32 type) __ksym __weak;
extern int vigil_alive(__u32 role) __ksym __weak;

/*
 * Global (separately verified) functions: their pointer arguments may be
 * NULL as far as the verifier knows, hence the checks.
 */
#define VIGIL_DEFINE_COMMIT(name, rec_type)					\
	static __noinline int name(rec_type *rec)				\
	{									\
		if (!rec)							\
			return -1;						\
		if (!have_module) {						\
			rec->hdr.flags |= VIGIL_REC_F_NO_MODULE;		\
			return 0;						\
		}								\
		if (vigil_commit(rec, sizeof(*rec)) < 0) {			\
			vigil_count_error(VIGIL_BPF_ERR_COMMIT);		\
			return -1;						\
		}								\
		return 0;							\
	}

VIGIL_DEFINE_COMMIT(vigil_commit_exec, struct vigil_ev_exec)
VIGIL_DEFINE_COMMIT(vigil_commit_exit, struct vigil_ev_exit)
VIGIL_DEFINE_COMMIT(vigil_commit_fork, struct vigil_ev_fork)
VIGIL_DEFINE_COMMIT(vigil_commit_agent, struct vigil_ev_agent)
VIGIL_DEFINE_COMMIT(vigil_commit_sample, struct vigil_ev_sample)

static __noinline int vigil_note_drop(__u32 type)
{
	__u64 *v = bpf_map_lookup_elem(&vigil_drops, &type);

	if (v)
		*v += 1;
	vigil_count_error(VIGIL_BPF_ERR_RESERVE);
	if (have_module && have_drop_kfunc) {
		if (vigil_drop(type) < 0) {
			vigil_count_error(VIGIL_BPF_ERR_DROP_REPORT);
			return -1;
		}
	}
	return 0;
}

/*
 * Every producer calls this once per run, after its own enable check: the
 * module counts the calls per role and signs the counts into every
 * checkpoint, so a producer that is detached, replaced or switched off
 * (vigil_active_gen) shows up as a counter that stopped. Inlined: it runs
 * on every context switch, and without the module it is no code at all.
 */
static __always_inline int vigil_note_alive(__u32 role)
{
	if (have_module && have_alive_kfunc)
		vigil_alive(role);
	return 0;
}
