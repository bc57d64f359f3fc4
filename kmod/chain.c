// SPDX-License-Identifier: GPL-2.0
/*
 * chain.c - sequence numbers and the SHA-256 hash chain of committed events.
 *
 * The commit runs in whatever context a tracing BPF program runs in (NMI,
 * hard IRQ, scheduler with the rq lock held), so it never sleeps, never
 * allocates and never touches the TPM. A program that fires inside the
 * commit itself (kprobe on sha256_update, perf NMI) must not deadlock:
 * interrupts are off and a per-CPU busy flag turns nesting into -EBUSY,
 * which is counted and reported in every checkpoint.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/hardirq.h>
#include <linux/irqflags.h>
#include <linux/percpu.h>
#include <linux/random.h>
#include <linux/string.h>

#include "internal.h"

static DEFINE_PER_CPU(int, vigil_commit_busy);

static const char vigil_chain_label[] = "vigil-chain-v1";

/**
 * vigil_chain_init() - start a new chain for this load
 *
 * chain_0 = SHA-256("vigil-chain-v1" || instance_id), first seq is 1.
 */
void vigil_chain_init(void)
{
	struct sha256_state sctx;
	int i;

	raw_spin_lock_init(&vigil.chain_lock);
	get_random_bytes(vigil.instance_id, sizeof(vigil.instance_id));
	sha256_init(&sctx);
	sha256_update(&sctx, vigil_chain_label, sizeof(vigil_chain_label) - 1);
	sha256_update(&sctx, vigil.instance_id, sizeof(vigil.instance_id));
	sha256_final(&sctx, vigil.head);
	vigil.next_seq = 1;
	vigil.cp_last_seq = 0;
	vigil.sealed = false;
	vigil.kick = 0;
	atomic64_set(&vigil.rejected, 0);
	atomic64_set(&vigil.busy, 0);
	for (i = 0; i < VIGIL_EV_NR_TYPES; i++) {
		atomic64_set(&vigil.drops[i], 0);
		vigil.committed[i] = 0;
	}
}

/*
 * Process-context users of the chain lock also raise the busy flag: an NMI
 * program that commits while this CPU holds the lock then gets -EBUSY
 * instead of spinning on a lock its own CPU holds.
 */
static void vigil_chain_lock(unsigned long *irqflags)
	__acquires(&vigil.chain_lock)
{
	local_irq_save(*irqflags);
	this_cpu_write(vigil_commit_busy, 1);
	raw_spin_lock(&vigil.chain_lock);
}

static void vigil_chain_unlock(unsigned long irqflags)
	__releases(&vigil.chain_lock)
{
	raw_spin_unlock(&vigil.chain_lock);
	this_cpu_write(vigil_commit_busy, 0);
	local_irq_restore(irqflags);
}

/* The struct size of each event type; 0 for unknown types. */
static u32 vigil_ev_size(u16 type)
{
	BUILD_BUG_ON(VIGIL_EV_TYPE_MAX != VIGIL_EV_SAMPLE);
	switch (type) {
	case VIGIL_EV_EXEC:
		return sizeof(struct vigil_ev_exec);
	case VIGIL_EV_EXIT:
		return sizeof(struct vigil_ev_exit);
	case VIGIL_EV_USER:
		return sizeof(struct vigil_ev_user);
	case VIGIL_EV_FORK:
		return sizeof(struct vigil_ev_fork);
	case VIGIL_EV_AGENT:
		return sizeof(struct vigil_ev_agent);
	case VIGIL_EV_SAMPLE:
		return sizeof(struct vigil_ev_sample);
	default:
		return 0;
	}
}

/**
 * vigil_chain_commit() - assign a seq to an event and fold it into the chain
 * @rec:      the event record, starting with struct vigil_rec_hdr
 * @buf_size: bytes the caller may read and write at @rec
 *
 * Checks that hdr.type is a known event type, hdr.version is 1, hdr.flags
 * is 0 and hdr.size is that type's struct size and fits in @buf_size.
 * Then, under the chain lock, sets hdr.seq = n and VIGIL_REC_F_COMMITTED
 * in hdr.flags and computes chain_n = SHA-256(chain_{n-1} || rec[0 ..
 * hdr.size)). Safe in any context, NMI included: there the lock is only
 * tried, and a held lock is a -EBUSY like nesting.
 *
 * Return: 0, -EINVAL for a bad record (counted as rejected), -EBUSY when
 * called while this CPU is already inside a commit or from NMI while the
 * lock is held (counted as busy), -ESHUTDOWN after the seal (counted as
 * rejected).
 */
int vigil_chain_commit(void *rec, u32 buf_size)
{
	struct vigil_rec_hdr *hdr = rec;
	struct sha256_state sctx;
	unsigned long irqflags;
	bool kick = false;
	u16 type;
	u32 size;
	u64 seq;

	if (!rec || buf_size < sizeof(*hdr))
		goto reject;
	size = READ_ONCE(hdr->size);
	type = READ_ONCE(hdr->type);
	if (READ_ONCE(hdr->version) != 1 || READ_ONCE(hdr->flags) != 0 ||
	    size != vigil_ev_size(type) || size > buf_size)
		goto reject;

	local_irq_save(irqflags);
	if (this_cpu_read(vigil_commit_busy))
		goto busy;
	this_cpu_write(vigil_commit_busy, 1);
	if (in_nmi()) {
		if (!raw_spin_trylock(&vigil.chain_lock)) {
			this_cpu_write(vigil_commit_busy, 0);
			goto busy;
		}
	} else {
		raw_spin_lock(&vigil.chain_lock);
	}
	/* Under the lock: the seal's final checkpoint covers every commit. */
	if (unlikely(vigil.sealed)) {
		raw_spin_unlock(&vigil.chain_lock);
		this_cpu_write(vigil_commit_busy, 0);
		local_irq_restore(irqflags);
		atomic64_inc(&vigil.rejected);
		return -ESHUTDOWN;
	}

	seq = vigil.next_seq++;
	hdr->seq = seq;
	hdr->flags |= VIGIL_REC_F_COMMITTED;
	sha256_init(&sctx);
	sha256_update(&sctx, vigil.head, sizeof(vigil.head));
	sha256_update(&sctx, rec, size);
	sha256_final(&sctx, vigil.head);
	vigil.committed[type]++;
	/*
	 * Once per batch: the bit is cleared only when the checkpoint moves
	 * cp_last_seq (vigil_chain_close(), same lock), so commits racing
	 * with a checkpoint do not queue another one for the same batch.
	 */
	if (vigil.p.checkpoint_events &&
	    seq - vigil.cp_last_seq >= vigil.p.checkpoint_events)
		kick = !test_and_set_bit(VIGIL_KICK_PENDING, &vigil.kick);

	raw_spin_unlock(&vigil.chain_lock);
	this_cpu_write(vigil_commit_busy, 0);
	local_irq_restore(irqflags);

	if (kick)
		vigil_checkpoint_kick();
	return 0;

busy:
	local_irq_restore(irqflags);
	atomic64_inc(&vigil.busy);
	return -EBUSY;
reject:
	atomic64_inc(&vigil.rejected);
	return -EINVAL;
}

/**
 * vigil_chain_seal() - refuse every commit from now on
 *
 * After it returns, no commit is in flight and vigil_chain_peek() gives
 * the chain's final state.
 */
void vigil_chain_seal(void)
{
	unsigned long irqflags;

	vigil_chain_lock(&irqflags);
	WRITE_ONCE(vigil.sealed, true);
	vigil_chain_unlock(irqflags);
}

/**
 * vigil_chain_count_drop() - count an event the BPF side could not deliver
 * @type: its event type; unknown types are counted in slot 0
 *
 * Return: 0, or -EINVAL for an unknown type (still counted).
 */
int vigil_chain_count_drop(u32 type)
{
	if (type == 0 || type >= VIGIL_EV_NR_TYPES) {
		atomic64_inc(&vigil.drops[0]);
		return -EINVAL;
	}
	atomic64_inc(&vigil.drops[type]);
	return 0;
}

/**
 * vigil_chain_drops_total() - sum of the drop counters
 *
 * Return: drops reported since load, all types.
 */
u64 vigil_chain_drops_total(void)
{
	u64 sum = 0;
	int i;

	for (i = 0; i < VIGIL_EV_NR_TYPES; i++)
		sum += atomic64_read(&vigil.drops[i]);
	return sum;
}

/**
 * vigil_chain_close() - a checkpoint covering up to @last_seq was logged
 * @last_seq: its last seq (from vigil_chain_peek())
 *
 * The next count trigger fires checkpoint_events commits after @last_seq.
 */
void vigil_chain_close(u64 last_seq)
{
	unsigned long irqflags;

	vigil_chain_lock(&irqflags);
	vigil.cp_last_seq = last_seq;
	clear_bit(VIGIL_KICK_PENDING, &vigil.kick);
	vigil_chain_unlock(irqflags);
}

/**
 * vigil_chain_committed() - events committed since load
 * @by_type: out (may be NULL): VIGIL_EV_NR_TYPES counts, by event type
 *
 * Return: the total.
 */
u64 vigil_chain_committed(u64 *by_type)
{
	unsigned long irqflags;
	u64 total = 0;
	int i;

	vigil_chain_lock(&irqflags);
	for (i = 0; i < VIGIL_EV_NR_TYPES; i++) {
		total += vigil.committed[i];
		if (by_type)
			by_type[i] = vigil.committed[i];
	}
	vigil_chain_unlock(irqflags);
	return total;
}

/**
 * vigil_chain_peek() - read the chain state without closing a batch
 * @next_seq: out: seq the next commit gets
 * @head:     out: current chain value
 */
void vigil_chain_peek(u64 *next_seq, u8 *head)
{
	unsigned long irqflags;

	vigil_chain_lock(&irqflags);
	*next_seq = vigil.next_seq;
	memcpy(head, vigil.head, VIGIL_DIGEST_LEN);
	vigil_chain_unlock(irqflags);
}
