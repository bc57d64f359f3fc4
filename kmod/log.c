// SPDX-License-Identifier: GPL-2.0
/*
 * log.c - the append-only measurement log and its securityfs views.
 *
 * Records live in an xarray indexed by log seq (1, 2, ...). Writers hold
 * log_lock; readers (read() on /dev/vigil, the securityfs text view) use
 * RCU and never block writers. Only TRIM removes records, always the
 * oldest ones, and frees them after a grace period.
 *
 * Memory is bounded by log_max_bytes (bytes of records held). At the cap
 * a new record is refused with -ENOSPC and counted in log_refused: a
 * MEASURE or COMMIT ioctl fails (the event is not chained), a checkpoint
 * is deferred (the chain keeps running, the next checkpoint covers the
 * gap and carries the refused count). A headroom below the cap is kept
 * for the BASE record a TRIM writes and for the SIGNATURE that follows a
 * checkpoint, so neither is ever refused.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/poll.h>
#include <linux/rcupdate.h>
#include <linux/sched/signal.h>
#include <linux/security.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "internal.h"

#define VIGIL_LOG_HEADROOM	(sizeof(struct vigil_log_base) + \
				 sizeof(struct vigil_log_signature))

/**
 * vigil_log_init() - start an empty log
 *
 * Return: 0.
 */
int vigil_log_init(void)
{
	mutex_init(&vigil.log_lock);
	xa_init(&vigil.log);
	init_waitqueue_head(&vigil.log_wait);
	vigil.log_first = 1;
	vigil.log_next = 1;
	vigil.log_bytes = 0;
	vigil.log_records = 0;
	atomic64_set(&vigil.log_refused, 0);
	return 0;
}

/**
 * vigil_log_exit() - free every record; no reader may be left
 */
void vigil_log_exit(void)
{
	struct vigil_log_entry *e;
	unsigned long idx;

	xa_for_each(&vigil.log, idx, e)
		kfree(e);
	xa_destroy(&vigil.log);
}

static struct vigil_log_entry *vigil_log_entry_alloc(u32 size)
{
	return kmalloc(struct_size_t(struct vigil_log_entry, data,
				     DIV_ROUND_UP(size, sizeof(u64))),
		       GFP_KERNEL);
}

/* Room for @size (+ @reserve) bytes? Caller holds log_lock. */
static bool vigil_log_room(u32 size, u32 reserve, unsigned int flags)
{
	u64 limit = vigil.p.log_max_bytes;

	if (!(flags & VIGIL_LOG_EXEMPT))
		limit -= VIGIL_LOG_HEADROOM;
	return vigil.log_bytes + size + reserve <= limit;
}

/* Publish a record at log_next; caller holds log_lock and reserved it. */
static void vigil_log_publish(struct vigil_log_entry *e)
{
	xa_store(&vigil.log, vigil.log_next, e, GFP_KERNEL);
	vigil.log_bytes += e->size;
	vigil.log_records++;
	/* pairs with smp_load_acquire() in readers: the entry is visible */
	smp_store_release(&vigil.log_next, vigil.log_next + 1);
}

/**
 * vigil_log_append() - append a record
 * @rec:     the record; hdr.size must be set, hdr.seq is assigned here
 *           (and written back to @rec)
 * @pcr:     PCR the caller will extend with it, VIGIL_PCR_NONE if none
 * @reserve: extra bytes that must stay free for a record that follows
 * @flags:   VIGIL_LOG_EXEMPT to allow the headroom below the cap
 *
 * Return: 0, -ENOSPC at the cap (counted in log_refused), -ENOMEM.
 */
int vigil_log_append(struct vigil_rec_hdr *rec, u32 pcr, u32 reserve,
		     unsigned int flags)
{
	struct vigil_log_entry *e;
	u32 size = rec->size;
	int ret;

	if (WARN_ON_ONCE(size < sizeof(*rec) || size > VIGIL_RECORD_MAX))
		return -EINVAL;
	e = vigil_log_entry_alloc(size);
	if (!e)
		return -ENOMEM;

	mutex_lock(&vigil.log_lock);
	if (!vigil_log_room(size, reserve, flags)) {
		ret = -ENOSPC;
		atomic64_inc(&vigil.log_refused);
		goto out_unlock;
	}
	ret = xa_reserve(&vigil.log, vigil.log_next, GFP_KERNEL);
	if (ret)
		goto out_unlock;
	rec->seq = vigil.log_next;
	e->pcr = pcr;
	e->size = size;
	memcpy(e->data, rec, size);
	vigil_log_publish(e);
	mutex_unlock(&vigil.log_lock);
	wake_up_interruptible(&vigil.log_wait);
	return 0;

out_unlock:
	mutex_unlock(&vigil.log_lock);
	kfree(e);
	return ret;
}

/**
 * vigil_log_commit_event() - chain a COMMIT ioctl event and log a copy
 * @le: a LOG_EVENT record whose ev part is a filled vigil_ev_user
 *
 * Room and the xarray slot are secured before the event is chained, so a
 * chained event always has its log copy, and copies appear in chain order.
 *
 * Return: 0 (le->ev.hdr.seq is the chain seq), -ENOSPC at the cap, -ENOMEM,
 * or the chain's -EINVAL/-EBUSY.
 */
int vigil_log_commit_event(struct vigil_log_event *le)
{
	struct vigil_log_entry *e;
	int ret;

	e = vigil_log_entry_alloc(sizeof(*le));
	if (!e)
		return -ENOMEM;

	mutex_lock(&vigil.log_lock);
	if (!vigil_log_room(sizeof(*le), 0, 0)) {
		ret = -ENOSPC;
		atomic64_inc(&vigil.log_refused);
		goto out_unlock;
	}
	ret = xa_reserve(&vigil.log, vigil.log_next, GFP_KERNEL);
	if (ret)
		goto out_unlock;
	ret = vigil_chain_commit(&le->ev, sizeof(le->ev));
	if (ret) {
		xa_release(&vigil.log, vigil.log_next);
		goto out_unlock;
	}
	le->hdr.seq = vigil.log_next;
	e->pcr = VIGIL_PCR_NONE;
	e->size = sizeof(*le);
	memcpy(e->data, le, sizeof(*le));
	vigil_log_publish(e);
	mutex_unlock(&vigil.log_lock);
	wake_up_interruptible(&vigil.log_wait);
	return 0;

out_unlock:
	mutex_unlock(&vigil.log_lock);
	kfree(e);
	return ret;
}

/**
 * vigil_log_peek() - a record, for callers that keep it alive
 * @seq: log seq
 *
 * Only TRIM removes records and it holds anchor_lock, so a caller holding
 * anchor_lock may use the result without RCU.
 *
 * Return: the entry or NULL.
 */
const struct vigil_log_entry *vigil_log_peek(u64 seq)
{
	lockdep_assert_held(&vigil.anchor_lock);
	return xa_load(&vigil.log, seq);
}

/**
 * vigil_log_replace_before() - drop the records with seq < @before_seq and
 * append @rec (TRIM's BASE record)
 * @before_seq: first seq to keep, at most log_next
 * @rec:        the record; hdr.seq is assigned here (and written back)
 * @records:    out: records dropped
 * @bytes:      out: bytes dropped
 *
 * The entry and the slot for @rec are secured first: on failure nothing
 * was dropped. @rec uses the headroom (the caller checked it fits once the
 * records are dropped). Caller holds anchor_lock.
 *
 * Return: 0, -ENOMEM, -EINVAL for a bad record size.
 */
int vigil_log_replace_before(u64 before_seq, struct vigil_rec_hdr *rec,
			     u64 *records, u64 *bytes)
{
	struct vigil_log_entry *e, *old;
	u32 size = rec->size;
	u64 seq;
	int ret;

	*records = 0;
	*bytes = 0;
	if (WARN_ON_ONCE(size < sizeof(*rec) || size > VIGIL_RECORD_MAX))
		return -EINVAL;
	e = vigil_log_entry_alloc(size);
	if (!e)
		return -ENOMEM;
	mutex_lock(&vigil.log_lock);
	ret = xa_reserve(&vigil.log, vigil.log_next, GFP_KERNEL);
	if (ret) {
		mutex_unlock(&vigil.log_lock);
		kfree(e);
		return ret;
	}
	for (seq = vigil.log_first; seq < before_seq; seq++) {
		old = xa_erase(&vigil.log, seq);
		if (!old)
			continue;
		(*records)++;
		*bytes += old->size;
		kfree_rcu(old, rcu);
	}
	vigil.log_bytes -= *bytes;
	vigil.log_records -= *records;
	WRITE_ONCE(vigil.log_first, before_seq);
	rec->seq = vigil.log_next;
	e->pcr = VIGIL_PCR_NONE;
	e->size = size;
	memcpy(e->data, rec, size);
	vigil_log_publish(e);
	mutex_unlock(&vigil.log_lock);
	wake_up_interruptible(&vigil.log_wait);
	return 0;
}

/**
 * vigil_log_stats() - the log's current extent
 * @first:   out: oldest seq held (or log_next when empty)
 * @next:    out: seq of the next record
 * @records: out: records held
 * @bytes:   out: bytes held
 */
void vigil_log_stats(u64 *first, u64 *next, u64 *records, u64 *bytes)
{
	mutex_lock(&vigil.log_lock);
	*first = vigil.log_first;
	*next = vigil.log_next;
	*records = vigil.log_records;
	*bytes = vigil.log_bytes;
	mutex_unlock(&vigil.log_lock);
}

/* The seq a reader at @pos reads next. */
static u64 vigil_log_cursor(loff_t pos)
{
	u64 first = READ_ONCE(vigil.log_first);

	return (u64)pos < first ? first : (u64)pos;
}

/**
 * vigil_log_readable() - has a reader at @pos something to read?
 * @pos: the reader's cursor (next log seq wanted)
 *
 * Return: true when a record at or after @pos exists.
 */
bool vigil_log_readable(loff_t pos)
{
	/* pairs with vigil_log_publish(): the entry below log_next is stored */
	return vigil_log_cursor(pos) < smp_load_acquire(&vigil.log_next);
}

/**
 * vigil_log_read() - copy whole records to user space
 * @buf:      user buffer
 * @count:    its size
 * @pos:      cursor: next log seq wanted (0 = oldest held); advanced
 * @nonblock: return -EAGAIN instead of waiting for a record
 *
 * Copies as many whole records as fit, never part of one. Records that
 * were trimmed are skipped: the reader sees a jump in hdr.seq, and the
 * BASE record written by the trim says where the log now starts. When a
 * TRIM removed every record the reader was about to copy, it waits again
 * (or returns -EAGAIN) rather than return 0, which would read as EOF.
 *
 * Return: bytes copied; -EINVAL when @count cannot hold the next record
 * (VIGIL_RECORD_MAX always can); -EAGAIN; -ERESTARTSYS; -EFAULT when
 * nothing could be copied; -ENOMEM.
 */
ssize_t vigil_log_read(char __user *buf, size_t count, loff_t *pos,
		       bool nonblock)
{
	struct vigil_log_entry *e;
	size_t copied = 0;
	u64 seq, next;
	void *kbuf;
	u32 size;
	int ret = 0;

	if (!count)
		return 0;
	kbuf = kmalloc(VIGIL_RECORD_MAX, GFP_KERNEL);
	if (!kbuf)
		return -ENOMEM;
	for (;;) {
		for (;;) {
			seq = vigil_log_cursor(*pos);
			/* pairs with vigil_log_publish(): entries below next are stored */
			next = smp_load_acquire(&vigil.log_next);
			if (seq < next)
				break;
			if (nonblock) {
				ret = -EAGAIN;
				goto out_free;
			}
			ret = wait_event_interruptible(vigil.log_wait,
						       vigil_log_readable(*pos));
			if (ret)
				goto out_free;
		}

		for (; seq < next; seq++) {
			rcu_read_lock();
			e = xa_load(&vigil.log, seq);
			size = e ? e->size : 0;
			if (e && size <= count - copied)
				memcpy(kbuf, e->data, size);
			rcu_read_unlock();
			if (!e)
				continue;	/* trimmed meanwhile */
			if (size > count - copied) {
				if (!copied)
					ret = -EINVAL;
				break;
			}
			if (copy_to_user(buf + copied, kbuf, size)) {
				if (!copied)
					ret = -EFAULT;
				break;
			}
			copied += size;
		}
		if (copied || ret)
			break;
		/* everything up to next was trimmed: wait for what follows */
		*pos = seq;
	}
out_free:
	kfree(kbuf);
	if (ret)
		return ret;
	*pos = seq;
	return copied;
}

/* --- securityfs: /sys/kernel/security/vigil/{ascii_log,status} -------- */

static void *vigil_seq_find(loff_t *pos)
{
	unsigned long idx = *pos;
	void *e;

	if (idx < READ_ONCE(vigil.log_first))
		idx = READ_ONCE(vigil.log_first);
	e = xa_find(&vigil.log, &idx, ULONG_MAX, XA_PRESENT);
	if (e)
		*pos = idx;
	return e;
}

static void *vigil_seq_start(struct seq_file *m, loff_t *pos)
	__acquires(RCU)
{
	rcu_read_lock();
	return vigil_seq_find(pos);
}

static void *vigil_seq_next(struct seq_file *m, void *v, loff_t *pos)
{
	++*pos;
	return vigil_seq_find(pos);
}

static void vigil_seq_stop(struct seq_file *m, void *v)
	__releases(RCU)
{
	rcu_read_unlock();
}

static const char *vigil_alg_name(u16 alg)
{
	switch (alg) {
	case VIGIL_ALG_SHA1:
		return "sha1";
	case VIGIL_ALG_SHA256:
		return "sha256";
	case VIGIL_ALG_SHA384:
		return "sha384";
	case VIGIL_ALG_SHA512:
		return "sha512";
	case VIGIL_ALG_SM3_256:
		return "sm3_256";
	default:
		return "unknown";
	}
}

static const char *vigil_reason_name(u32 reason)
{
	switch (reason) {
	case VIGIL_CP_TIMER:
		return "timer";
	case VIGIL_CP_EVENTS:
		return "events";
	case VIGIL_CP_IOCTL:
		return "ioctl";
	case VIGIL_CP_UNLOAD:
		return "unload";
	case VIGIL_CP_HEARTBEAT:
		return "heartbeat";
	default:
		return "unknown";
	}
}

static const char *vigil_sig_name(u32 status)
{
	switch (status) {
	case VIGIL_SIG_OK:
		return "ok";
	case VIGIL_SIG_NO_TPM:
		return "no-tpm";
	case VIGIL_SIG_TPM_ERROR:
		return "tpm-error";
	case VIGIL_SIG_NO_KEY:
		return "no-key";
	default:
		return "unknown";
	}
}

static u16 vigil_alg_size(u16 alg)
{
	switch (alg) {
	case VIGIL_ALG_SHA1:
		return 20;
	case VIGIL_ALG_SHA384:
		return 48;
	case VIGIL_ALG_SHA512:
		return 64;
	default:
		return 32;
	}
}

static void vigil_show_pcr(struct seq_file *m, u32 pcr)
{
	if (pcr == VIGIL_PCR_NONE)
		seq_puts(m, " pcr=none");
	else
		seq_printf(m, " pcr=%u", pcr);
}

static int vigil_seq_show(struct seq_file *m, void *v)
{
	const struct vigil_log_entry *e = v;
	const struct vigil_rec_hdr *hdr = (const void *)e->data;
	u8 digest[SHA256_DIGEST_SIZE];
	u32 i;

	seq_printf(m, "%llu %llu.%09llu", hdr->seq, hdr->ts_ns / NSEC_PER_SEC,
		   hdr->ts_ns % NSEC_PER_SEC);
	switch (hdr->type) {
	case VIGIL_LOG_BASE: {
		const struct vigil_log_base *b = (const void *)hdr;

		seq_printf(m, " base first_kept=%llu trimmed=%llu/%lluB",
			   b->first_kept_seq, b->records_trimmed,
			   b->bytes_trimmed);
		for (i = 0; i < b->nr_banks && i < VIGIL_MAX_BANKS; i++) {
			u16 n = vigil_alg_size(b->bank[i].alg);

			seq_printf(m, " %s:config=%*phN,events=%*phN",
				   vigil_alg_name(b->bank[i].alg),
				   n, b->bank[i].config, n, b->bank[i].events);
		}
		if (!b->nr_banks)
			seq_puts(m, " no-tpm");
		break;
	}
	case VIGIL_LOG_MEASURE: {
		const struct vigil_log_measure *ms = (const void *)hdr;

		seq_puts(m, " measure");
		vigil_show_pcr(m, ms->pcr);
		seq_printf(m, " kind=%u sha256=%*phN name=%.*s", ms->kind,
			   VIGIL_DIGEST_LEN, ms->digest, VIGIL_NAME_LEN,
			   ms->name);
		break;
	}
	case VIGIL_LOG_KEY: {
		const struct vigil_log_key *k = (const void *)hdr;

		seq_puts(m, " key");
		vigil_show_pcr(m, k->pcr);
		seq_printf(m, " ecdsa-p256 x=%*phN y=%*phN name=%*phN",
			   VIGIL_ECC_COORD_LEN, k->x, VIGIL_ECC_COORD_LEN,
			   k->y, (int)sizeof(k->name), k->name);
		break;
	}
	case VIGIL_LOG_CHECKPOINT: {
		const struct vigil_log_checkpoint *cp = (const void *)hdr;

		sha256((const u8 *)cp, sizeof(*cp), digest);
		seq_printf(m, " checkpoint %s seq=%llu-%llu drops=%llu busy=%llu refused=%llu reason=%s head=%*phN digest=%*phN",
			   cp->anchor == VIGIL_ANCHOR_IMA ? "anchor=ima" : "anchor=pcr",
			   cp->first_seq, cp->last_seq, cp->drops_total,
			   cp->busy_total, cp->log_refused,
			   vigil_reason_name(cp->reason), VIGIL_DIGEST_LEN,
			   cp->chain_head, VIGIL_DIGEST_LEN, digest);
		break;
	}
	case VIGIL_LOG_SIGNATURE: {
		const struct vigil_log_signature *s = (const void *)hdr;

		seq_printf(m, " signature checkpoint=%llu status=%s",
			   s->checkpoint_seq, vigil_sig_name(s->status));
		if (s->status == VIGIL_SIG_OK)
			seq_printf(m, " r=%*phN s=%*phN", VIGIL_ECC_COORD_LEN,
				   s->r, VIGIL_ECC_COORD_LEN, s->s);
		else
			seq_printf(m, " error=%d", s->error);
		break;
	}
	case VIGIL_LOG_EVENT: {
		const struct vigil_log_event *le = (const void *)hdr;

		seq_printf(m, " event seq=%llu kind=%u pid=%u uid=%u len=%u",
			   le->ev.hdr.seq, le->ev.kind, le->ev.pid, le->ev.uid,
			   le->ev.len);
		break;
	}
	default:
		seq_printf(m, " type=0x%04x size=%u", hdr->type, hdr->size);
		break;
	}
	seq_putc(m, '\n');
	return 0;
}

static const struct seq_operations vigil_seq_ops = {
	.start = vigil_seq_start,
	.next = vigil_seq_next,
	.stop = vigil_seq_stop,
	.show = vigil_seq_show,
};

static int vigil_ascii_open(struct inode *inode, struct file *file)
{
	return seq_open(file, &vigil_seq_ops);
}

static const struct file_operations vigil_ascii_fops = {
	.owner = THIS_MODULE,
	.open = vigil_ascii_open,
	.read = seq_read,
	.llseek = seq_lseek,
	.release = seq_release,
};

static int vigil_status_show(struct seq_file *m, void *v)
{
	u64 first, next, records, bytes, next_seq;
	u8 head[VIGIL_DIGEST_LEN];
	u32 i;

	vigil_log_stats(&first, &next, &records, &bytes);
	vigil_chain_peek(&next_seq, head);
	seq_printf(m, "version: %s\nabi: %u.%u\n", VIGIL_VERSION,
		   VIGIL_ABI_MAJOR, VIGIL_ABI_MINOR);
	if (vigil_tpm_present()) {
		seq_puts(m, "tpm: present\nbanks:");
		for (i = 0; i < vigil.tpm.nr_banks; i++)
			seq_printf(m, " %s", vigil_alg_name(vigil.tpm.bank[i].alg_id));
		seq_printf(m, "\nkey: %s\n",
			   vigil.tpm.have_key ? "yes" : "no (checkpoints unsigned)");
	} else {
		seq_puts(m, "tpm: absent (degraded: checkpoints unsigned, nothing anchored)\n");
	}
	seq_printf(m, "pcr_config: %u\npcr_events: %u\nanchor: %s\n",
		   vigil.p.pcr_config, vigil.p.pcr_events,
		   vigil.p.anchor == VIGIL_ANCHOR_IMA ? "ima" : "pcr");
	seq_printf(m, "instance_id: %*phN\nchain_head: %*phN\nnext_seq: %llu\n",
		   VIGIL_ID_LEN, vigil.instance_id, VIGIL_DIGEST_LEN, head,
		   next_seq);
	seq_printf(m, "committed: %llu\nrejected: %lld\nbusy: %lld\ndropped: %llu\n",
		   vigil_chain_committed(NULL),
		   atomic64_read(&vigil.rejected), atomic64_read(&vigil.busy),
		   vigil_chain_drops_total());
	seq_printf(m, "checkpoints_signed: %lld\ncheckpoints_unsigned: %lld\ntpm_errors: %lld\n",
		   atomic64_read(&vigil.cp_signed),
		   atomic64_read(&vigil.cp_unsigned),
		   atomic64_read(&vigil.tpm_errors));
	seq_printf(m, "tpm_stale_objects_flushed: %llu\n", READ_ONCE(vigil.tpm.swept));
	seq_printf(m, "extend_pending_config: %llu\nextend_pending_events: %llu\n",
		   READ_ONCE(vigil.pend_config), READ_ONCE(vigil.pend_events));
	seq_printf(m, "log_records: %llu\nlog_bytes: %llu\nlog_max_bytes: %llu\nlog_first_seq: %llu\nlog_next_seq: %llu\nlog_refused: %lld\n",
		   records, bytes, vigil.p.log_max_bytes, first, next,
		   atomic64_read(&vigil.log_refused));
	return 0;
}

static int vigil_status_open(struct inode *inode, struct file *file)
{
	return single_open(file, vigil_status_show, NULL);
}

static const struct file_operations vigil_status_fops = {
	.owner = THIS_MODULE,
	.open = vigil_status_open,
	.read = seq_read,
	.llseek = seq_lseek,
	.release = single_release,
};

/**
 * vigil_securityfs_init() - create /sys/kernel/security/vigil/
 *
 * Return: 0 or -errno.
 */
int vigil_securityfs_init(void)
{
	int ret;

	vigil.sfs_dir = securityfs_create_dir("vigil", NULL);
	if (IS_ERR(vigil.sfs_dir))
		return PTR_ERR(vigil.sfs_dir);
	vigil.sfs_log = securityfs_create_file("ascii_log", 0400, vigil.sfs_dir,
					       NULL, &vigil_ascii_fops);
	if (IS_ERR(vigil.sfs_log)) {
		ret = PTR_ERR(vigil.sfs_log);
		goto out_remove_dir;
	}
	vigil.sfs_status = securityfs_create_file("status", 0400, vigil.sfs_dir,
						  NULL, &vigil_status_fops);
	if (IS_ERR(vigil.sfs_status)) {
		ret = PTR_ERR(vigil.sfs_status);
		goto out_remove_log;
	}
	return 0;

out_remove_log:
	securityfs_remove(vigil.sfs_log);
out_remove_dir:
	securityfs_remove(vigil.sfs_dir);
	return ret;
}

/**
 * vigil_securityfs_exit() - remove /sys/kernel/security/vigil/
 */
void vigil_securityfs_exit(void)
{
	securityfs_remove(vigil.sfs_status);
	securityfs_remove(vigil.sfs_log);
	securityfs_remove(vigil.sfs_dir);
}
