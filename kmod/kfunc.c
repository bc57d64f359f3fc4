// SPDX-License-Identifier: GPL-2.0
/*
 * kfunc.c - the functions BPF tracing programs call, and who may call them.
 *
 * Registered for BPF_PROG_TYPE_TRACING only (tp_btf, fentry/fexit, LSM,
 * and, through the kernel's mapping, perf_event and tracepoint programs).
 * Registering a second type after TRACING fails and frees the module's
 * whole kfunc table on 6.12, so exactly one registration is made and any
 * nonzero return fails the load.
 *
 * Only vigil's own producers may call the kfuncs. The set's .filter runs
 * while the verifier checks a program (in the loading task, process
 * context, after the program's tag was computed). It allows a program only
 * while a producer window is open and only when the loading task belongs
 * to the process that opened the window (PRODUCERS_OPEN on /dev/vigil),
 * and records it. PRODUCERS_SEAL closes the window and measures every
 * program it allowed into the anchor, so a verifier knows what could
 * commit. Any other program that calls a vigil kfunc fails to load.
 *
 * Kernels before 6.5 (Debian 12's 6.1) have no .filter: any root program
 * that calls the kfuncs loads. There the window owner registers each
 * program it loaded (PRODUCERS_ADD with the program's fd); the module
 * records it like the filter would, takes a reference on it (its JIT
 * images can be neither freed nor reused while it is registered) and adds
 * its images to a sorted table of address ranges. Each kfunc then checks
 * its return address: the x86-64 JIT emits a kfunc call as a direct call
 * from the program's image, so a call from any other image (a foreign
 * program, an freplace extension, a trampoline) is refused and counted as
 * rejected. GET_INFO reports which guard is in force (kfunc_guard).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bpf.h>
#include <linux/btf.h>
#include <linux/btf_ids.h>
#include <linux/filter.h>
#include <linux/kprobes.h>
#include <linux/module.h>
#include <linux/percpu.h>
#include <linux/pid.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/workqueue.h>

#include "compat.h"
#include "internal.h"

/* vigil_alive() calls by role, per CPU: no atomics, summed at checkpoints. */
static DEFINE_PER_CPU(u64 [VIGIL_PROD_SLOTS], vigil_alive_count);

#if !VIGIL_HAVE_KFUNC_FILTER
/*
 * The call-site guard. A sorted table of the JIT images of the registered
 * programs (main program and every subprogram), replaced as a whole under
 * vigil_cs_mutex and read under RCU: no lock on the call path, safe from
 * NMI, a binary search over a few dozen ranges.
 */
struct vigil_cs_range {
	unsigned long start;	/* first byte of the image */
	unsigned long end;	/* one past its last byte */
};

struct vigil_cs_table {
	struct rcu_head rcu;
	u32 nr;
	struct vigil_cs_range range[];
};

#define VIGIL_CS_MAX_PROGS	64
#define VIGIL_CS_MAX_RANGES	512

static struct vigil_cs_table __rcu *vigil_cs_table;
static DEFINE_MUTEX(vigil_cs_mutex);	/* vigil_cs_progs, table updates */
static struct bpf_prog *vigil_cs_progs[VIGIL_CS_MAX_PROGS];	/* referenced */
static u32 vigil_cs_nr_progs;
static void vigil_cs_reap(struct work_struct *work);
static DECLARE_DELAYED_WORK(vigil_cs_reaper, vigil_cs_reap);

/*
 * Whether @ret (a kfunc's return address) lies inside a registered image.
 * The return address of a direct call is the byte after the call
 * instruction, so it is > start and <= end.
 */
static bool vigil_cs_allowed(unsigned long ret)
{
	const struct vigil_cs_table *t;
	u32 lo = 0, hi;
	bool ok = false;

	rcu_read_lock();
	t = rcu_dereference(vigil_cs_table);
	if (t) {
		hi = t->nr;
		while (lo < hi) {	/* first range with start >= ret */
			u32 mid = lo + (hi - lo) / 2;

			if (t->range[mid].start < ret)
				lo = mid + 1;
			else
				hi = mid;
		}
		ok = lo > 0 && ret <= t->range[lo - 1].end;
	}
	rcu_read_unlock();
	return ok;
}

/*
 * Refuse (and count) a call whose return address @ret is not in a
 * registered image. @ret is taken in the kfunc itself, not in here.
 */
static __always_inline bool vigil_cs_refused(unsigned long ret)
{
	if (vigil_cs_allowed(ret))
		return false;
	atomic64_inc(&vigil.rejected);
	return true;
}
#else
static __always_inline bool vigil_cs_refused(unsigned long ret)
{
	return false;	/* the filter refused foreign programs at load */
}
#endif

/* The return address of the kfunc this is written in. */
#define VIGIL_CALLER() ((unsigned long)__builtin_return_address(0))

__bpf_kfunc_start_defs();

/**
 * vigil_commit() - commit an event record into the hash chain
 * @rec:     the record (e.g. a ring buffer reservation), may be NULL
 * @rec__sz: bytes at @rec the verifier lets the kernel read and write
 *
 * On success the module has written hdr.seq and set
 * VIGIL_REC_F_COMMITTED in hdr.flags of the record.
 *
 * Return: 0, -EINVAL for NULL or a bad type/version/size/flags (counted as
 * rejected), -EBUSY on re-entry from the same CPU (counted as busy),
 * -ESHUTDOWN once the module is sealed (counted as rejected), -EPERM when
 * called from outside a registered program (call-site guard, counted as
 * rejected).
 */
__bpf_kfunc int vigil_commit(void *rec, u32 rec__sz)
{
	if (vigil_cs_refused(VIGIL_CALLER()))
		return -EPERM;
	return vigil_chain_commit(rec, rec__sz);
}

/**
 * vigil_drop() - count an event the program could not deliver
 * @type: enum vigil_rec_type of the lost event
 *
 * Return: 0, -EINVAL for an unknown type (counted as type 0), or -EPERM
 * from outside a registered program (call-site guard, counted as rejected).
 */
__bpf_kfunc int vigil_drop(u32 type)
{
	if (vigil_cs_refused(VIGIL_CALLER()))
		return -EPERM;
	return vigil_chain_count_drop(type);
}

/**
 * vigil_alive() - a producer ran (after its own enable checks)
 * @role: enum vigil_producer_role of the calling program
 *
 * Counted per role and carried in every checkpoint: a producer that was
 * detached, replaced or switched off stops counting, and the signed
 * checkpoints show it. Safe in any context (per-CPU add).
 *
 * Return: 0, -EINVAL for an unknown role (counted in slot 0), or -EPERM
 * from outside a registered program (call-site guard, counted as rejected,
 * not as alive).
 */
__bpf_kfunc int vigil_alive(u32 role)
{
	if (vigil_cs_refused(VIGIL_CALLER()))
		return -EPERM;
	if (role == 0 || role > VIGIL_PROD_ROLE_MAX) {
		this_cpu_inc(vigil_alive_count[0]);
		return -EINVAL;
	}
	this_cpu_inc(vigil_alive_count[role]);
	return 0;
}

__bpf_kfunc_end_defs();

/*
 * A kretprobe replaces a function's return address with its trampoline:
 * the call-site guard would then refuse the real producers' calls (a root
 * user silencing chosen events). No kprobe may sit on the kfuncs.
 */
NOKPROBE_SYMBOL(vigil_commit);
NOKPROBE_SYMBOL(vigil_drop);
NOKPROBE_SYMBOL(vigil_alive);

BTF_KFUNCS_START(vigil_kfunc_ids)
BTF_ID_FLAGS(func, vigil_commit)
BTF_ID_FLAGS(func, vigil_drop)
BTF_ID_FLAGS(func, vigil_alive)
BTF_KFUNCS_END(vigil_kfunc_ids)

/**
 * vigil_slots_sum() - sum per-CPU counters, one per producer role
 * @counts: slot 0 of a DEFINE_PER_CPU(u64 [VIGIL_PROD_SLOTS], ...) array
 * @out:    VIGIL_PROD_SLOTS sums
 */
void vigil_slots_sum(const u64 __percpu *counts, u64 *out)
{
	int cpu, i;

	memset(out, 0, VIGIL_PROD_SLOTS * sizeof(*out));
	for_each_possible_cpu(cpu) {
		const u64 *c = per_cpu_ptr(counts, cpu);

		for (i = 0; i < VIGIL_PROD_SLOTS; i++)
			out[i] += READ_ONCE(c[i]);
	}
}

/**
 * vigil_alive_sum() - vigil_alive() calls since load, by role
 * @out: VIGIL_PROD_SLOTS counters
 */
void vigil_alive_sum(u64 *out)
{
	vigil_slots_sum(&vigil_alive_count[0], out);
}

/*
 * The entry of @prog, if the filter saw it before (it runs for every call
 * site). The aux pointer alone is not an identity: a program that passed
 * the filter and then failed to load frees its aux, and the next program
 * may get the same address. Every measured field must match too, or the
 * program gets its own entry (and is measured).
 */
static struct vigil_producer *vigil_producer_find(const struct bpf_prog *prog)
{
	struct vigil_producer *p;
	u32 i;

	for (i = 0; i < vigil.nr_producers; i++) {
		p = &vigil.producers[i];
		if (p->aux == prog->aux && !memcmp(p->tag, prog->tag, sizeof(p->tag)) &&
		    p->type == prog->type &&
		    p->attach_type == prog->expected_attach_type &&
		    p->attach_btf_id == prog->aux->attach_btf_id &&
		    p->len == prog->len &&
		    !strncmp(p->name, prog->aux->name, sizeof(p->name)))
			return p;
	}
	return NULL;
}

/*
 * Record @prog in the window's producer table (producers_lock held, the
 * window owner calling). Return: 0, or -ENOSPC when the table is full.
 */
static int vigil_producer_record_locked(const struct bpf_prog *prog)
{
	struct vigil_producer *p;

	if (vigil_producer_find(prog))
		return 0;
	if (vigil.nr_producers == VIGIL_MAX_PRODUCERS)
		return -ENOSPC;
	p = &vigil.producers[vigil.nr_producers++];
	memset(p, 0, sizeof(*p));
	p->aux = prog->aux;
	memcpy(p->tag, prog->tag, sizeof(p->tag));
	strscpy(p->name, prog->aux->name, sizeof(p->name));
	p->type = prog->type;
	p->attach_type = prog->expected_attach_type;
	p->attach_btf_id = prog->aux->attach_btf_id;
	p->len = prog->len;
	return 0;
}

/* Whether the calling task belongs to the process holding the window. */
static bool vigil_window_owner_locked(void)
{
	return vigil.window_owner && task_tgid(current) == vigil.window_owner;
}

#if VIGIL_HAVE_KFUNC_FILTER
/*
 * Called by the verifier for every call of one of our kfuncs in @prog.
 * Returns nonzero to hide the kfunc from @prog: the load then fails with
 * "calling kernel function ... is not allowed".
 */
static int vigil_kfunc_filter(const struct bpf_prog *prog, u32 kfunc_id)
{
	int ret = -EACCES;

	if (!btf_id_set8_contains(&vigil_kfunc_ids, kfunc_id))
		return 0;

	spin_lock(&vigil.producers_lock);
	if (vigil_window_owner_locked())
		ret = vigil_producer_record_locked(prog) ? -EACCES : 0;
	spin_unlock(&vigil.producers_lock);
	if (ret) {
		atomic64_inc(&vigil.rejected);
		pr_notice_ratelimited("refused BPF program '%s' (pid %d): not a registered vigil producer\n",
				      prog->aux->name, task_tgid_nr(current));
	}
	return ret;
}
#endif

static const struct btf_kfunc_id_set vigil_kfunc_set = {
	.owner = THIS_MODULE,
	.set = &vigil_kfunc_ids,
#if VIGIL_HAVE_KFUNC_FILTER
	.filter = vigil_kfunc_filter,
#endif
};

/**
 * vigil_kfunc_guard() - what keeps foreign programs from the kfuncs
 *
 * Return: VIGIL_KFUNC_GUARD_FILTER (refused at load, 6.5+) or
 * VIGIL_KFUNC_GUARD_CALLSITE (refused at call, registration by fd).
 */
u32 vigil_kfunc_guard(void)
{
	return VIGIL_HAVE_KFUNC_FILTER ? VIGIL_KFUNC_GUARD_FILTER :
					 VIGIL_KFUNC_GUARD_CALLSITE;
}

#if !VIGIL_HAVE_KFUNC_FILTER
/* Whether @prog has a call to one of our kfuncs (after the verifier's
 * fixup, a kfunc call's imm is BPF_CALL_IMM(address); the main program's
 * instructions cover every subprogram).
 */
static bool vigil_prog_calls_kfuncs(const struct bpf_prog *prog)
{
	const s32 ours[] = {
		(s32)BPF_CALL_IMM(vigil_commit),
		(s32)BPF_CALL_IMM(vigil_drop),
		(s32)BPF_CALL_IMM(vigil_alive),
	};
	u32 i, k;

	for (i = 0; i < prog->len; i++) {
		const struct bpf_insn *insn = &prog->insnsi[i];

		if (insn->code != (BPF_JMP | BPF_CALL) ||
		    insn->src_reg != BPF_PSEUDO_KFUNC_CALL)
			continue;
		for (k = 0; k < ARRAY_SIZE(ours); k++)
			if (insn->imm == ours[k])
				return true;
	}
	return false;
}

static int vigil_cs_range_cmp(const void *a, const void *b)
{
	const struct vigil_cs_range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* Append the JIT images of @prog to @t (room checked by the caller). */
static void vigil_cs_add_images(struct vigil_cs_table *t,
				const struct bpf_prog *prog)
{
	u32 i;

	if (!prog->aux->func_cnt) {
		t->range[t->nr].start = (unsigned long)prog->bpf_func;
		t->range[t->nr++].end = (unsigned long)prog->bpf_func +
					prog->jited_len;
		return;
	}
	for (i = 0; i < prog->aux->func_cnt; i++) {
		const struct bpf_prog *f = prog->aux->func[i];

		t->range[t->nr].start = (unsigned long)f->bpf_func;
		t->range[t->nr++].end = (unsigned long)f->bpf_func + f->jited_len;
	}
}

static u32 vigil_cs_nr_images(const struct bpf_prog *prog)
{
	return prog->aux->func_cnt ? prog->aux->func_cnt : 1;
}

/*
 * Publish a table of the images of vigil_cs_progs[] (vigil_cs_mutex held).
 * The old table is freed after a grace period; a caller that drops
 * programs waits for it (synchronize_rcu()) before putting them.
 */
static int vigil_cs_publish_locked(void)
{
	struct vigil_cs_table *t, *old;
	u32 i, n = 0;

	for (i = 0; i < vigil_cs_nr_progs; i++)
		n += vigil_cs_nr_images(vigil_cs_progs[i]);
	if (n > VIGIL_CS_MAX_RANGES)
		return -ENOSPC;
	t = kzalloc(struct_size(t, range, n), GFP_KERNEL);
	if (!t)
		return -ENOMEM;
	for (i = 0; i < vigil_cs_nr_progs; i++)
		vigil_cs_add_images(t, vigil_cs_progs[i]);
	sort(t->range, t->nr, sizeof(t->range[0]), vigil_cs_range_cmp, NULL);
	old = rcu_replace_pointer(vigil_cs_table, t,
				  lockdep_is_held(&vigil_cs_mutex));
	if (old)
		kfree_rcu(old, rcu);
	return 0;
}

/*
 * Drop every registered program nothing else holds (no fd, link, pin or
 * map: it can never run again), or all of them with @all. Their ranges
 * leave the table first, then a grace period passes, then the reference
 * goes (and with it, possibly, the image).
 */
static void vigil_cs_drop(bool all)
{
	struct bpf_prog *gone[VIGIL_CS_MAX_PROGS];
	u32 i, n = 0, kept = 0;

	mutex_lock(&vigil_cs_mutex);
	for (i = 0; i < vigil_cs_nr_progs; i++) {
		struct bpf_prog *prog = vigil_cs_progs[i];

		if (all || atomic64_read(&prog->aux->refcnt) == 1)
			gone[n++] = prog;
		else
			vigil_cs_progs[kept++] = prog;
	}
	vigil_cs_nr_progs = kept;
	if (n && vigil_cs_publish_locked()) {
		/* no memory for the smaller table: keep everything */
		memcpy(&vigil_cs_progs[kept], gone, n * sizeof(gone[0]));
		vigil_cs_nr_progs += n;
		n = 0;
	}
	mutex_unlock(&vigil_cs_mutex);
	if (!n)
		return;
	synchronize_rcu();
	for (i = 0; i < n; i++)
		bpf_prog_put(gone[i]);
}

static void vigil_cs_reap(struct work_struct *work)
{
	vigil_cs_drop(false);
	if (READ_ONCE(vigil_cs_nr_progs))
		schedule_delayed_work(&vigil_cs_reaper, HZ);
}

/*
 * Register @prog (referenced by the caller, who keeps its reference on
 * success) for the call-site guard. Called with the window held by the
 * caller; the caller recorded it for measurement already.
 */
static int vigil_cs_register(struct bpf_prog *prog)
{
	u32 i;
	int ret;

	mutex_lock(&vigil_cs_mutex);
	for (i = 0; i < vigil_cs_nr_progs; i++) {
		if (vigil_cs_progs[i] == prog) {
			mutex_unlock(&vigil_cs_mutex);
			return -EEXIST;
		}
	}
	if (vigil_cs_nr_progs == VIGIL_CS_MAX_PROGS) {
		mutex_unlock(&vigil_cs_mutex);
		return -ENOSPC;
	}
	vigil_cs_progs[vigil_cs_nr_progs++] = prog;
	ret = vigil_cs_publish_locked();
	if (ret)
		vigil_cs_nr_progs--;
	mutex_unlock(&vigil_cs_mutex);
	if (!ret)
		schedule_delayed_work(&vigil_cs_reaper, HZ);
	return ret;
}

/**
 * vigil_producers_add() - register a program loaded in the window
 * @file:    the /dev/vigil file that opened the window
 * @prog_fd: an fd of a loaded, JIT-compiled BPF_PROG_TYPE_TRACING program
 *
 * The call-site guard's stand-in for the filter: the window owner names
 * each program it loaded. It is recorded for measurement (same fields as
 * the filter records) and its images are allowed to call the kfuncs for
 * as long as it exists.
 *
 * Return: 0, -ENOMSG when it calls no vigil kfunc (nothing recorded),
 * -ENOENT when @file has no open window or the caller does not own it,
 * -EINVAL when not JIT-compiled, -ENOSPC when a table is full, or the
 * error of bpf_prog_get_type_dev() (-EBADF, -EINVAL for another type).
 */
int vigil_producers_add(struct file *file, int prog_fd)
{
	struct bpf_prog *prog;
	int ret;

	prog = bpf_prog_get_type_dev(prog_fd, BPF_PROG_TYPE_TRACING, false);
	if (IS_ERR(prog))
		return PTR_ERR(prog);
	if (!prog->jited || !prog->bpf_func) {
		ret = -EINVAL;
		goto out_put;
	}
	if (!vigil_prog_calls_kfuncs(prog)) {
		ret = -ENOMSG;
		goto out_put;
	}
	spin_lock(&vigil.producers_lock);
	if (vigil.window_file != file || !vigil_window_owner_locked())
		ret = -ENOENT;
	else
		ret = vigil_producer_record_locked(prog);
	spin_unlock(&vigil.producers_lock);
	if (ret)
		goto out_put;
	ret = vigil_cs_register(prog);
	if (ret == -EEXIST)
		ret = 0;	/* registered before: keep one reference */
	else if (!ret)
		return 0;
out_put:
	bpf_prog_put(prog);
	return ret;
}
#else
int vigil_producers_add(struct file *file, int prog_fd)
{
	return -EOPNOTSUPP;	/* the filter records programs at load */
}
#endif

/* Close the window; the caller puts the returned pid outside the lock. */
static struct pid *vigil_window_close_locked(void)
{
	struct pid *owner = vigil.window_owner;

	vigil.window_owner = NULL;
	vigil.window_file = NULL;
	return owner;
}

/**
 * vigil_producers_open() - open a producer window for the calling process
 * @file: the /dev/vigil file it was asked through
 *
 * The opening is measured (who opened it) before any program can be
 * allowed, so even a window that never gets sealed is in the anchor.
 *
 * Return: 0, -EBUSY when a window is open, -ESHUTDOWN once sealed, or the
 * error of the measurement (the window is not opened then).
 */
int vigil_producers_open(struct file *file)
{
	char name[VIGIL_NAME_LEN];
	int ret = 0;

	spin_lock(&vigil.producers_lock);
	if (READ_ONCE(vigil.sealed))
		ret = -ESHUTDOWN;
	else if (vigil.window_owner || vigil.window_file)
		ret = -EBUSY;
	else
		vigil.window_file = file;	/* reserved, not open yet */
	spin_unlock(&vigil.producers_lock);
	if (ret)
		return ret;

	snprintf(name, sizeof(name), "window pid=%d comm=%s",
		 task_tgid_nr(current), current->comm);
	ret = vigil_measure_window(name);
	spin_lock(&vigil.producers_lock);
	if (ret && ret != -EIO) {
		vigil.window_file = NULL;
	} else {
		vigil.window_owner = get_pid(task_tgid(current));
		vigil.nr_producers = 0;
		ret = 0;
	}
	spin_unlock(&vigil.producers_lock);
	return ret;
}

/*
 * Measure @nr programs of @set: one PRODUCER record each, then PRODUCERS.
 * A measurement logged with its extend pending (-EIO) counts; any other
 * failure marks the module as running unmeasured programs (a flag in every
 * checkpoint from then on) and is returned.
 */
static int vigil_producers_measure(const struct vigil_producer *set, u32 nr,
				   struct vigil_producers *out)
{
	struct sha256_state sctx;
	u8 digest[VIGIL_DIGEST_LEN];
	char name[VIGIL_NAME_LEN];
	int ret = 0, err = 0;
	u32 i;

	sha256_init(&sctx);
	for (i = 0; i < nr; i++) {
		struct {
			u8 tag[VIGIL_TAG_LEN];
			u32 type, attach_type, attach_btf_id, len;
		} id = {};

		memcpy(id.tag, set[i].tag, sizeof(id.tag));
		id.type = set[i].type;
		id.attach_type = set[i].attach_type;
		id.attach_btf_id = set[i].attach_btf_id;
		id.len = set[i].len;
		sha256((const u8 *)&id, sizeof(id), digest);
		sha256_update(&sctx, digest, sizeof(digest));
		snprintf(name, sizeof(name), "bpf %s tag=%*phN", set[i].name,
			 VIGIL_TAG_LEN, set[i].tag);
		ret = vigil_measure(VIGIL_MEASURE_PRODUCER, name, digest, NULL);
		if (ret && ret != -EIO && !err)
			err = ret;
	}
	sha256_final(&sctx, digest);
	snprintf(name, sizeof(name), "producers n=%u", nr);
	ret = vigil_measure_producers(name, digest, nr, &out->gen,
				      &out->log_seq);
	if (ret && ret != -EIO && !err)
		err = ret;
	out->nr = nr;
	memcpy(out->digest, digest, sizeof(digest));
	if (err) {
		WRITE_ONCE(vigil.unmeasured, true);
		pr_err("producer set of %u programs not fully measured: %d\n",
		       nr, err);
		return err;
	}
	return ret;
}

/* vigil_producers_seal() with the buffer allocated by @gfp. */
static int vigil_producers_seal_gfp(struct file *file,
				    struct vigil_producers *out, gfp_t gfp)
{
	struct vigil_producer *set;
	struct pid *owner;
	u32 nr;
	int ret;

	set = kmalloc_array(VIGIL_MAX_PRODUCERS, sizeof(*set), gfp);
	if (!set)
		return -ENOMEM;
	spin_lock(&vigil.producers_lock);
	if (vigil.window_file != file || !vigil.window_owner) {
		spin_unlock(&vigil.producers_lock);
		kfree(set);
		return -ENOENT;
	}
	owner = vigil_window_close_locked();
	nr = vigil.nr_producers;
	memcpy(set, vigil.producers, nr * sizeof(*set));
	spin_unlock(&vigil.producers_lock);
	put_pid(owner);

	ret = vigil_producers_measure(set, nr, out);
	kfree(set);
	return ret;
}

/**
 * vigil_producers_seal() - close the window and measure the allowed set
 * @file: the /dev/vigil file that opened it
 * @out:  gen, nr, digest and log_seq are filled
 *
 * One PRODUCER measurement per program (name "bpf <prog> tag=<tag>",
 * digest over tag, type, attach type, attach BTF id and length), then one
 * PRODUCERS measurement of the set (SHA-256 over the per-program digests
 * in load order). Both go to the anchor like every config record.
 *
 * Return: 0, -EIO when logged with extends pending, -ENOENT when @file has
 * no open window, -errno of the measurements (the window is closed either
 * way; the programs stay allowed and checkpoints say they are unmeasured).
 */
int vigil_producers_seal(struct file *file, struct vigil_producers *out)
{
	return vigil_producers_seal_gfp(file, out, GFP_KERNEL);
}

/**
 * vigil_producers_abandon() - seal the window if @file opened it
 * @file: a /dev/vigil file being released
 *
 * A process that closes its window without sealing it (or dies) gets it
 * sealed here: its programs are measured like any others.
 */
void vigil_producers_abandon(struct file *file)
{
	struct vigil_producers out = {};

	if (READ_ONCE(vigil.window_file) != file)
		return;
	/*
	 * The file goes away: a failed allocation must not leave the window
	 * open with a stale file pointer (a few KiB, process context).
	 */
	if (!vigil_producers_seal_gfp(file, &out, GFP_KERNEL | __GFP_NOFAIL))
		pr_warn("producer window closed without a seal: sealed it (%u programs)\n",
			out.nr);
}

/**
 * vigil_kfunc_init() - make the kfuncs callable from vigil's producers
 *
 * The registration cannot be undone; the kernel drops it with the
 * module's BTF at unload.
 *
 * Return: 0 or the error of register_btf_kfunc_id_set().
 */
int vigil_kfunc_init(void)
{
	int ret;

	spin_lock_init(&vigil.producers_lock);
	vigil.window_owner = NULL;
	vigil.window_file = NULL;
	vigil.nr_producers = 0;
	ret = register_btf_kfunc_id_set(BPF_PROG_TYPE_TRACING, &vigil_kfunc_set);
	if (ret)
		pr_err("registering the kfuncs for tracing programs failed: %d\n",
		       ret);
	return ret;
}

/**
 * vigil_kfunc_exit() - drop an open window's reference at unload
 */
void vigil_kfunc_exit(void)
{
	struct pid *owner;

#if !VIGIL_HAVE_KFUNC_FILTER
	cancel_delayed_work_sync(&vigil_cs_reaper);
	vigil_cs_drop(true);
	mutex_lock(&vigil_cs_mutex);
	kfree(rcu_replace_pointer(vigil_cs_table, NULL,
				  lockdep_is_held(&vigil_cs_mutex)));
	mutex_unlock(&vigil_cs_mutex);
#endif

	spin_lock(&vigil.producers_lock);
	owner = vigil_window_close_locked();
	spin_unlock(&vigil.producers_lock);
	put_pid(owner);
}
