// SPDX-License-Identifier: GPL-2.0
/*
 * anchor.c - records that anchor the log in the TPM: the replay base,
 * measurements into pcr_config, checkpoints into pcr_events (or IMA),
 * their signatures, and TRIM.
 *
 * Every "append, then extend" pair runs under anchor_lock, so PCR extends
 * happen in log order (IMA's rule: the log may hold a record the PCR has
 * not seen yet, never the reverse). Checkpoints run from an ordered
 * workqueue (timer, or a kick from the commit path through irq_work, which
 * is safe even from NMI) or from the CHECKPOINT ioctl. A failed extend
 * leaves its record, and every later one for that PCR, pending until a
 * retry succeeds; TRIM never folds a pending record.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/ima.h>
#include <linux/ktime.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "internal.h"

/**
 * vigil_rec_init() - zero a record and fill its header
 * @rec:  the whole record (struct vigil_rec_hdr first); not a pointer to
 *        its hdr member, which FORTIFY_SOURCE sees as a too-small object
 * @type: enum vigil_rec_type
 * @size: whole record size
 */
void vigil_rec_init(void *rec, u16 type, u32 size)
{
	struct vigil_rec_hdr *hdr = rec;

	memset(rec, 0, size);
	hdr->type = type;
	hdr->version = 1;
	hdr->size = size;
	hdr->ts_ns = ktime_get_boottime_ns();
}

static void vigil_tpm_error(const char *what, int err, u32 tpm_rc)
{
	atomic64_inc(&vigil.tpm_errors);
	if (tpm_rc)
		pr_warn_ratelimited("%s failed: TPM rc 0x%x\n", what, tpm_rc);
	else
		pr_warn_ratelimited("%s failed: %d\n", what, err);
}

/* The first log seq still to be extended into @pcr, 0 if none. */
static u64 *vigil_pending(u32 pcr)
{
	return pcr == vigil.p.pcr_config ? &vigil.pend_config :
					   &vigil.pend_events;
}

static int vigil_fold(unsigned int bank, u8 *value, const void *rec, u32 len);

/*
 * The value @pcr holds in @bank once every record for it before log seq
 * @end_seq was extended: the replay base folded with those records. Caller
 * holds anchor_lock.
 */
static int vigil_expected(u32 pcr, unsigned int bank, u64 end_seq, u8 *value)
{
	u64 first, next, records, bytes, seq;
	const struct vigil_log_entry *e;
	int ret;

	memcpy(value, pcr == vigil.p.pcr_config ? vigil.base_config[bank] :
						  vigil.base_events[bank],
	       vigil.tpm.bank[bank].size);
	vigil_log_stats(&first, &next, &records, &bytes);
	for (seq = first; seq < end_seq; seq++) {
		e = vigil_log_peek(seq);
		if (!e || e->pcr != pcr)
			continue;
		ret = vigil_fold(bank, value, e->data, e->size);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * A failed extend is ambiguous: a command that timed out may still have
 * run in the TPM (it did, in the SIGSTOPped-swtpm test). Extending again
 * would then fold the record twice. So before a retry, read the PCR: the
 * value after @e means it landed, the value before means it did not.
 * Return: 1 landed, 0 not, -EUCLEAN for neither (someone else extended or
 * reset the PCR), -errno when the TPM cannot tell. Caller holds anchor_lock.
 */
static int vigil_extend_landed(u32 pcr, u64 seq,
			       const struct vigil_log_entry *e)
{
	u8 want[VIGIL_BANK_DIGEST_MAX], cur[VIGIL_BANK_DIGEST_MAX];
	int landed = -EUCLEAN, ret;
	u32 i;

	for (i = 0; i < vigil.tpm.nr_banks; i++) {
		u16 n = vigil.tpm.bank[i].size;
		int this;

		ret = vigil_tpm_pcr_read(pcr, i, cur);
		if (!ret)
			ret = vigil_expected(pcr, i, seq, want);
		if (ret)
			return ret;
		if (!memcmp(cur, want, n)) {
			this = 0;
		} else {
			ret = vigil_fold(i, want, e->data, e->size);
			if (ret)
				return ret;
			this = memcmp(cur, want, n) ? -EUCLEAN : 1;
		}
		if (i == 0)
			landed = this;
		else if (this != landed)
			landed = -EUCLEAN;
	}
	return landed;
}

/*
 * Extend @pcr with every record for it from log seq @from on, in log
 * order. On a failure the record that failed and every later one for @pcr
 * stay pending (PCR order is log order) and are retried before the next
 * extend into @pcr or at the next checkpoint, after checking whether the
 * failed one landed anyway. Pending records are never trimmed, so they are
 * all still in the log. Caller holds anchor_lock.
 */
static int vigil_extend_from(u32 pcr, u64 from)
{
	u64 *pending = vigil_pending(pcr);
	const struct vigil_log_entry *e;
	u64 seq, next;
	int ret;

	/* pairs with vigil_log_publish(): entries below next are stored */
	next = smp_load_acquire(&vigil.log_next);
	for (seq = from; seq < next; seq++) {
		e = vigil_log_peek(seq);
		if (!e || e->pcr != pcr)
			continue;
		if (seq == *pending) {
			ret = vigil_extend_landed(pcr, seq, e);
			if (ret == 1) {
				pr_info("PCR %u: the extend of log seq %llu that failed had landed\n",
					pcr, seq);
				continue;
			}
			if (ret == -EUCLEAN) {
				atomic64_inc(&vigil.tpm_errors);
				pr_warn("PCR %u holds neither the value before nor after log seq %llu: extended or reset by someone else\n",
					pcr, seq);
			} else if (ret < 0) {
				vigil_tpm_error("PCR read before a retried extend", ret, 0);
				return ret;
			}
		}
		ret = vigil_tpm_extend(pcr, e->data, e->size);
		if (ret) {
			vigil_tpm_error("PCR extend", ret, 0);
			WRITE_ONCE(*pending, seq);
			return ret;
		}
	}
	WRITE_ONCE(*pending, 0);
	return 0;
}

/* Extend @pcr with the record at @seq, after the pending ones. */
static int vigil_extend_new(u32 pcr, u64 seq)
{
	u64 pending = *vigil_pending(pcr);

	return vigil_extend_from(pcr, pending ? pending : seq);
}

/* Retry the extends left pending in @pcr, if any. Caller holds anchor_lock. */
static void vigil_extend_retry(u32 pcr)
{
	u64 pending = *vigil_pending(pcr);

	if (pending)
		vigil_extend_from(pcr, pending);
}

/**
 * vigil_dev_anchor() - is the anchor a PCR that locality 0 can reset?
 *
 * Return: true for anchor=pcr with pcr_events 16 or 23 (development only).
 */
bool vigil_dev_anchor(void)
{
	return vigil.p.anchor == VIGIL_ANCHOR_PCR &&
	       (vigil.p.pcr_events == 16 || vigil.p.pcr_events == 23);
}

/*
 * Measure a record through IMA (anchor=ima): IMA appends it to its log and
 * extends PCR 10, which cannot be reset. Failures are counted as TPM
 * errors (IMA measures nothing without a CRITICAL_DATA policy rule).
 */
static void vigil_anchor_ima(const struct vigil_rec_hdr *rec)
{
	const char *kind;
	char name[48];
	int ret;

	switch (rec->type) {
	case VIGIL_LOG_MEASURE:
		kind = "measure";
		break;
	case VIGIL_LOG_KEY:
		kind = "key";
		break;
	default:
		kind = "checkpoint";
		break;
	}
	/* The instance: names stay unique across loads. */
	snprintf(name, sizeof(name), "vigil-%*phN-%s-%llu", 4, vigil.instance_id,
		 kind, rec->seq);
	ret = ima_measure_critical_data("vigil", name, rec, rec->size, false,
					NULL, 0);
	if (ret) {
		atomic64_inc(&vigil.tpm_errors);
		pr_warn_ratelimited("IMA measurement of %s failed: %d\n", name,
				    ret);
	}
}

/*
 * Append, then extend @pcr (if any) with it, and with anchor=ima measure
 * it through IMA as well: the identity, parameters, producer set and key
 * then sit in the same non-resettable anchor as the checkpoints. Caller
 * holds anchor_lock.
 * Return: 0, -EIO when the record was logged but not extended (now or
 * still pending), or the append's -errno (nothing logged).
 */
static int vigil_append_extend(struct vigil_rec_hdr *rec, u32 pcr,
			       u32 reserve)
{
	int ret;

	ret = vigil_log_append(rec, pcr, reserve, 0);
	if (ret)
		return ret;
	if (vigil.p.anchor == VIGIL_ANCHOR_IMA)
		vigil_anchor_ima(rec);
	if (pcr == VIGIL_PCR_NONE)
		return 0;
	return vigil_extend_new(pcr, rec->seq) ? -EIO : 0;
}

/* A BASE record with the given replay base, or NULL. */
static struct vigil_log_base *
vigil_base_build(u64 first_kept, u64 records_trimmed, u64 bytes_trimmed,
		 u8 (*config)[VIGIL_BANK_DIGEST_MAX],
		 u8 (*events)[VIGIL_BANK_DIGEST_MAX])
{
	struct vigil_log_base *b;
	u32 i;

	b = kmalloc(sizeof(*b), GFP_KERNEL);
	if (!b)
		return NULL;
	vigil_rec_init(b, VIGIL_LOG_BASE, sizeof(*b));
	b->first_kept_seq = first_kept;
	b->records_trimmed = records_trimmed;
	b->bytes_trimmed = bytes_trimmed;
	b->nr_banks = vigil.tpm.nr_banks;
	for (i = 0; i < vigil.tpm.nr_banks; i++) {
		b->bank[i].alg = vigil.tpm.bank[i].alg_id;
		memcpy(b->bank[i].config, config[i], vigil.tpm.bank[i].size);
		memcpy(b->bank[i].events, events[i], vigil.tpm.bank[i].size);
	}
	return b;
}

/* The BASE record written at load. Caller holds anchor_lock. */
static int vigil_append_base(void)
{
	struct vigil_log_base *b;
	int ret;

	b = vigil_base_build(1, 0, 0, vigil.base_config, vigil.base_events);
	if (!b)
		return -ENOMEM;
	ret = vigil_log_append(&b->hdr, VIGIL_PCR_NONE, 0, VIGIL_LOG_EXEMPT);
	kfree(b);
	return ret;
}

static int vigil_measure_locked(u32 kind, const char *name, const u8 *digest,
				u64 *log_seq)
{
	struct vigil_log_measure m;
	int ret;

	vigil_rec_init(&m, VIGIL_LOG_MEASURE, sizeof(m));
	m.kind = kind;
	m.pcr = vigil_tpm_present() ? vigil.p.pcr_config : VIGIL_PCR_NONE;
	strscpy(m.name, name, sizeof(m.name));
	memcpy(m.digest, digest, VIGIL_DIGEST_LEN);
	ret = vigil_append_extend(&m.hdr, m.pcr, 0);
	if (log_seq)
		*log_seq = m.hdr.seq;
	return ret;
}

/**
 * vigil_measure() - log a named digest and extend pcr_config with it
 * @kind:    enum vigil_measure_kind
 * @name:    NUL-terminated, at most VIGIL_NAME_LEN - 1 characters
 * @digest:  SHA-256 of the measured object
 * @log_seq: out: log seq of the MEASURE record (0 if not logged)
 *
 * Return: 0, -ENOSPC at the log cap, -EIO when the record is logged but
 * not extended (the extend failed, or earlier extends are still pending),
 * -errno.
 */
int vigil_measure(u32 kind, const char *name, const u8 *digest, u64 *log_seq)
{
	int ret;

	mutex_lock(&vigil.anchor_lock);
	/* After the seal the log ends with the final checkpoint. */
	if (READ_ONCE(vigil.sealed))
		ret = -ESHUTDOWN;
	else
		ret = vigil_measure_locked(kind, name, digest, log_seq);
	mutex_unlock(&vigil.anchor_lock);
	return ret;
}

/*
 * Have the producers that run all the time (sched_switch, sys_enter) stopped
 * since the last call? Caller holds anchor_lock.
 */
static bool vigil_producers_stalled(void)
{
	u64 alive[VIGIL_PROD_SLOTS], sum;
	bool stalled;

	vigil_alive_sum(alive);
	sum = alive[VIGIL_PROD_SWITCH] + alive[VIGIL_PROD_SYSCALL];
	/* An empty set was sealed (vigild stopped cleanly): nothing to run. */
	stalled = vigil.producers_sealed && sum != 0 && sum == vigil.tick_alive;
	vigil.tick_alive = sum;
	return stalled;
}

/*
 * Nothing new since the last checkpoint? Producers that stopped running are
 * news: that checkpoint is what shows the silence. Caller holds anchor_lock.
 */
static bool vigil_checkpoint_idle(void)
{
	bool stalled = vigil_producers_stalled();
	u64 next_seq;
	u8 head[VIGIL_DIGEST_LEN];

	vigil_chain_peek(&next_seq, head);
	return !stalled && next_seq - 1 == vigil.cp_prev_last &&
	       vigil_chain_drops_total() == vigil.cp_drops &&
	       (u64)atomic64_read(&vigil.busy) == vigil.cp_busy &&
	       (u64)atomic64_read(&vigil.log_refused) == vigil.cp_refused;
}

/* The timer's period: checkpoints, or heartbeats only. */
static u32 vigil_timer_ms(void)
{
	if (vigil.p.checkpoint_ms)
		return min(vigil.p.checkpoint_ms, vigil.p.heartbeat_ms);
	return vigil.p.heartbeat_ms;
}

/*
 * Is a heartbeat due? Half a timer period of slack: the work runs one
 * period after the previous checkpoint was logged, never much earlier.
 * Caller holds anchor_lock.
 */
static bool vigil_heartbeat_due(void)
{
	u64 since = ktime_get_boottime_ns() - vigil.last_cp_ns;
	u64 slack = (u64)vigil_timer_ms() * NSEC_PER_MSEC / 2;

	return since + slack >= (u64)vigil.p.heartbeat_ms * NSEC_PER_MSEC;
}

static void vigil_sign_checkpoint(struct vigil_log_signature *sig)
{
	u32 tpm_rc;
	int ret;

	if (!vigil_tpm_present()) {
		sig->status = VIGIL_SIG_NO_TPM;
		sig->error = -ENODEV;
		return;
	}
	if (!vigil.tpm.have_key) {
		sig->status = VIGIL_SIG_NO_KEY;
		sig->error = vigil.key_err;
		return;
	}
	ret = vigil_tpm_sign(sig->digest, sig->r, sig->s, &tpm_rc);
	if (ret) {
		vigil_tpm_error("TPM2_Sign", ret, tpm_rc);
		sig->status = VIGIL_SIG_TPM_ERROR;
		sig->error = tpm_rc ? (s32)tpm_rc : ret;
		memset(sig->r, 0, sizeof(sig->r));
		memset(sig->s, 0, sizeof(sig->s));
		return;
	}
	sig->status = VIGIL_SIG_OK;
}

/* Fill a checkpoint record from the current state. Caller holds anchor_lock. */
static void vigil_checkpoint_fill(struct vigil_log_checkpoint *cp, u32 reason)
{
	u64 next_seq;

	vigil_rec_init(cp, VIGIL_LOG_CHECKPOINT, sizeof(*cp));
	cp->hdr.version = VIGIL_CHECKPOINT_VERSION;
	vigil_chain_peek(&next_seq, cp->chain_head);
	cp->first_seq = vigil.cp_prev_last + 1;
	cp->last_seq = next_seq - 1;
	cp->drops_total = vigil_chain_drops_total();
	cp->busy_total = atomic64_read(&vigil.busy);
	cp->log_refused = atomic64_read(&vigil.log_refused);
	cp->reason = reason;
	cp->anchor = vigil.p.anchor;
	memcpy(cp->prev_digest, vigil.prev_cp_digest, VIGIL_DIGEST_LEN);
	memcpy(cp->instance_id, vigil.instance_id, VIGIL_ID_LEN);
	cp->rejected_total = atomic64_read(&vigil.rejected);
	cp->tpm_errors = atomic64_read(&vigil.tpm_errors);
	vigil_chain_committed(cp->committed);
	vigil_alive_sum(cp->alive);
	vigil_hits_sum(cp->hits);
	memcpy(cp->producers_digest, vigil.producers_digest, VIGIL_DIGEST_LEN);
	cp->producers_gen = vigil.producers_gen;
	if (vigil_tpm_present() && vigil_dev_anchor())
		cp->cp_flags |= VIGIL_CP_F_DEV_ANCHOR;
	if (READ_ONCE(vigil.window_owner))
		cp->cp_flags |= VIGIL_CP_F_WINDOW_OPEN;
	if (READ_ONCE(vigil.unmeasured))
		cp->cp_flags |= VIGIL_CP_F_UNMEASURED;
	if (reason == VIGIL_CP_UNLOAD)
		cp->cp_flags |= VIGIL_CP_F_SEALED;
}

/*
 * Retry every extend left pending, on the chip's successor if the driver
 * was rebound. Caller holds anchor_lock.
 */
static void vigil_extend_retry_all(void)
{
	u64 errors;

	if (!vigil_tpm_present())
		return;
	/*
	 * A lost chip shows as failed TPM operations; looking for its
	 * successor takes the chip and a locality, so only after one.
	 */
	errors = atomic64_read(&vigil.tpm_errors);
	if (errors != vigil.revive_errors) {
		vigil_tpm_revive();
		vigil.revive_errors = errors;
	}
	vigil_extend_retry(vigil.p.pcr_config);
	if (vigil.p.anchor == VIGIL_ANCHOR_PCR)
		vigil_extend_retry(vigil.p.pcr_events);
}

static int vigil_checkpoint_locked(u32 reason,
				   struct vigil_log_checkpoint *cp_out,
				   struct vigil_log_signature *sig_out)
{
	struct vigil_log_checkpoint cp;
	struct vigil_log_signature sig;
	u32 pcr = VIGIL_PCR_NONE;
	unsigned int flags = 0;
	int ret;

	/* First: a pending extend must never hold up what follows it. */
	vigil_extend_retry_all();
	if (reason == VIGIL_CP_TIMER && vigil_checkpoint_idle()) {
		if (!vigil_heartbeat_due())
			return -EAGAIN;
		reason = VIGIL_CP_HEARTBEAT;
	}

	vigil_checkpoint_fill(&cp, reason);
	if (vigil_tpm_present() && vigil.p.anchor == VIGIL_ANCHOR_PCR)
		pcr = vigil.p.pcr_events;
	/* The final checkpoint may use the headroom, like a SIGNATURE. */
	if (reason == VIGIL_CP_UNLOAD)
		flags = VIGIL_LOG_EXEMPT;
	ret = vigil_log_append(&cp.hdr, pcr, sizeof(sig), flags);
	if (ret) {
		if (ret == -ENOSPC)
			pr_warn_ratelimited("log full (%llu bytes): checkpoint deferred until TRIM\n",
					    vigil.p.log_max_bytes);
		return ret;
	}
	vigil_chain_close(cp.last_seq);
	vigil.cp_prev_last = cp.last_seq;
	vigil.cp_drops = cp.drops_total;
	vigil.cp_busy = cp.busy_total;
	vigil.cp_refused = cp.log_refused;
	vigil.last_cp_ns = ktime_get_boottime_ns();

	vigil_rec_init(&sig, VIGIL_LOG_SIGNATURE, sizeof(sig));
	sig.checkpoint_seq = cp.hdr.seq;
	sha256((const u8 *)&cp, sizeof(cp), sig.digest);
	memcpy(vigil.prev_cp_digest, sig.digest, VIGIL_DIGEST_LEN);

	if (pcr != VIGIL_PCR_NONE)
		vigil_extend_new(pcr, cp.hdr.seq);
	else if (vigil.p.anchor == VIGIL_ANCHOR_IMA)
		vigil_anchor_ima(&cp.hdr);
	vigil_sign_checkpoint(&sig);
	if (sig.status == VIGIL_SIG_OK)
		atomic64_inc(&vigil.cp_signed);
	else
		atomic64_inc(&vigil.cp_unsigned);
	ret = vigil_log_append(&sig.hdr, VIGIL_PCR_NONE, 0, VIGIL_LOG_EXEMPT);
	if (ret) {
		/* -ENOSPC is counted by vigil_log_append() */
		if (ret != -ENOSPC)
			atomic64_inc(&vigil.log_refused);
		pr_err("signature record for checkpoint %llu not logged: %d\n",
		       cp.hdr.seq, ret);
		sig.hdr.seq = 0;
		ret = 0;
	}
	if (cp_out)
		*cp_out = cp;
	if (sig_out)
		*sig_out = sig;
	return 0;
}

/**
 * vigil_checkpoint() - close the current batch, anchor and sign it
 * @reason:  enum vigil_cp_reason; VIGIL_CP_TIMER skips an idle batch
 *           unless a heartbeat is due (then the reason is HEARTBEAT)
 * @cp_out:  out (may be NULL): the checkpoint record
 * @sig_out: out (may be NULL): its signature record
 *
 * Appends a CHECKPOINT (first/last seq, chain head, counters, producer
 * liveness, previous checkpoint's digest), extends pcr_events with it in
 * every bank (anchor=pcr) or measures it through IMA (anchor=ima), then
 * appends a SIGNATURE: the TPM's ECDSA signature over SHA-256(checkpoint),
 * or why there is none. A TPM failure never blocks: the checkpoint is
 * logged unsigned with the error and the next one tries again; extends
 * left pending (in pcr_config too) are retried first. Nothing changes
 * unless the CHECKPOINT is logged. Once it is, the call succeeds: a
 * SIGNATURE that cannot be logged is counted in log_refused and left with
 * hdr.seq 0 in @sig_out.
 *
 * Return: 0, -EAGAIN for an idle timer batch (nothing logged), -ENOSPC
 * when the log is full (deferred, counted), -ESHUTDOWN after the seal,
 * -errno.
 */
int vigil_checkpoint(u32 reason, struct vigil_log_checkpoint *cp_out,
		     struct vigil_log_signature *sig_out)
{
	int ret;

	mutex_lock(&vigil.anchor_lock);
	if (READ_ONCE(vigil.sealed))
		ret = -ESHUTDOWN;
	else
		ret = vigil_checkpoint_locked(reason, cp_out, sig_out);
	mutex_unlock(&vigil.anchor_lock);
	return ret;
}

/**
 * vigil_measure_producers() - measure a sealed producer set
 * @name:    the MEASURE record's name
 * @digest:  SHA-256 of the set
 * @nr:      programs in it
 * @gen:     out: the set's generation (1, 2, ... per load)
 * @log_seq: out: log seq of the MEASURE record
 *
 * From the next checkpoint on, checkpoints carry @digest and @gen.
 *
 * Return: 0, or the error of the measurement (-EIO: logged, extend
 * pending; the set counts as sealed then too).
 */
int vigil_measure_producers(const char *name, const u8 *digest, u32 nr,
			    u32 *gen, u64 *log_seq)
{
	int ret;

	mutex_lock(&vigil.anchor_lock);
	ret = vigil_measure_locked(VIGIL_MEASURE_PRODUCERS, name, digest,
				   log_seq);
	if (!ret || ret == -EIO) {
		/* producers_lock too: GET_INFO reads them without anchor_lock */
		spin_lock(&vigil.producers_lock);
		vigil.producers_gen++;
		vigil.producers_sealed = nr;
		memcpy(vigil.producers_digest, digest, VIGIL_DIGEST_LEN);
		spin_unlock(&vigil.producers_lock);
	}
	*gen = vigil.producers_gen;
	mutex_unlock(&vigil.anchor_lock);
	return ret;
}

/**
 * vigil_measure_window() - measure that a producer window was opened
 * @name: who opened it ("window pid=<tgid> comm=<comm>")
 *
 * Before any program can be allowed: a window, even one that closes between
 * two checkpoints or is never sealed, is in the anchor and moves
 * producers_gen.
 *
 * Return: 0, or the error of the measurement (-EIO: logged, extend
 * pending; that counts as measured).
 */
int vigil_measure_window(const char *name)
{
	u8 digest[VIGIL_DIGEST_LEN];
	int ret;

	sha256(name, strlen(name), digest);
	mutex_lock(&vigil.anchor_lock);
	ret = vigil_measure_locked(VIGIL_MEASURE_WINDOW, name, digest, NULL);
	if (!ret || ret == -EIO) {
		spin_lock(&vigil.producers_lock);
		vigil.producers_gen++;
		spin_unlock(&vigil.producers_lock);
	}
	mutex_unlock(&vigil.anchor_lock);
	return ret;
}

/**
 * vigil_seal() - the final checkpoint, while /dev/vigil still exists
 * @cp_out:  out: the final checkpoint (reason UNLOAD, VIGIL_CP_F_SEALED)
 * @sig_out: out: its signature record
 * @log_end: out: log seq after the final records
 *
 * Refuses every commit from now on, then logs the final checkpoint (it may
 * use the log's headroom), anchored and signed like any other. The module
 * can be unloaded once a reader has read up to @log_end.
 *
 * Return: 0, -EALREADY when sealed before (outputs describe that seal's
 * end only through @log_end), -errno (nothing sealed).
 */
int vigil_seal(struct vigil_log_checkpoint *cp_out,
	       struct vigil_log_signature *sig_out, u64 *log_end)
{
	u64 first, next, records, bytes;
	int ret;

	mutex_lock(&vigil.anchor_lock);
	if (vigil.sealed) {
		*log_end = vigil.seal_log_end;
		ret = -EALREADY;
		goto out_unlock;
	}
	vigil_chain_seal();
	ret = vigil_checkpoint_locked(VIGIL_CP_UNLOAD, cp_out, sig_out);
	if (ret) {
		/*
		 * Nothing logged: accept commits again, the caller may retry.
		 * The timer work may have seen the seal and not re-armed.
		 */
		WRITE_ONCE(vigil.sealed, false);
		if (!READ_ONCE(vigil.stopping))
			mod_delayed_work(vigil.wq, &vigil.cp_work,
					 msecs_to_jiffies(vigil_timer_ms()));
		goto out_unlock;
	}
	vigil_log_stats(&first, &next, &records, &bytes);
	vigil.seal_log_first = first;
	/*
	 * pairs with vigil_note_drain(): sealed and seal_log_first are
	 * visible before the end
	 */
	smp_store_release(&vigil.seal_log_end, next);
	*log_end = next;
	pr_info("sealed: final checkpoint at log seq %llu, unload allowed once the log is read up to %llu\n",
		cp_out->hdr.seq, next);
out_unlock:
	mutex_unlock(&vigil.anchor_lock);
	return ret;
}

/* Fold one extended record into a replay base value. */
static int vigil_fold(unsigned int bank, u8 *value, const void *rec, u32 len)
{
	u8 buf[2 * VIGIL_BANK_DIGEST_MAX];
	u16 n = vigil.tpm.bank[bank].size;
	int ret;

	memcpy(buf, value, n);
	ret = vigil_tpm_hash(bank, rec, len, buf + n);
	if (ret)
		return ret;
	return vigil_tpm_hash(bank, buf, 2 * n, value);
}

/**
 * vigil_trim() - drop log records user space has persisted
 * @before_seq: drop records with log seq < @before_seq (<= next log seq)
 * @trimmed:    out: records dropped
 *
 * Folds the dropped records' extends into the replay base and appends a
 * BASE record with the PCR values at the cut, so a verifier that holds
 * only the records from @before_seq on can still replay. The BASE record
 * is built and its slot reserved before anything is dropped: a failed
 * TRIM changes nothing.
 *
 * Return: 0, -EINVAL for a seq beyond the log, -EAGAIN while a record
 * that would be dropped still waits for its PCR extend, -ENOSPC when the
 * BASE record would not fit, -errno.
 */
int vigil_trim(u64 before_seq, u64 *trimmed)
{
	u8 (*config)[VIGIL_BANK_DIGEST_MAX], (*events)[VIGIL_BANK_DIGEST_MAX];
	const struct vigil_log_entry *e;
	u64 first, next, records, bytes, freed = 0, nrec = 0, seq;
	struct vigil_log_base *b = NULL;
	u32 i;
	int ret;

	*trimmed = 0;
	config = kmalloc_array(2 * VIGIL_MAX_BANKS, sizeof(*config), GFP_KERNEL);
	if (!config)
		return -ENOMEM;
	mutex_lock(&vigil.anchor_lock);
	/* After the seal nothing unread may go: the drain reads it all. */
	if (READ_ONCE(vigil.sealed)) {
		ret = -ESHUTDOWN;
		goto out_unlock;
	}
	/* A pending extend that can go through now must not block the cut. */
	vigil_extend_retry_all();
	memcpy(config, vigil.base_config, sizeof(vigil.base_config));
	events = config + VIGIL_MAX_BANKS;
	memcpy(events, vigil.base_events, sizeof(vigil.base_events));

	vigil_log_stats(&first, &next, &records, &bytes);
	if (before_seq > next) {
		ret = -EINVAL;
		goto out_unlock;
	}
	if (before_seq <= first) {
		ret = 0;
		goto out_unlock;
	}
	if ((vigil.pend_config && vigil.pend_config < before_seq) ||
	    (vigil.pend_events && vigil.pend_events < before_seq)) {
		ret = -EAGAIN;
		goto out_unlock;
	}
	for (seq = first; seq < before_seq; seq++) {
		e = vigil_log_peek(seq);
		if (!e)
			continue;
		freed += e->size;
		nrec++;
		for (i = 0; i < vigil.tpm.nr_banks; i++) {
			ret = 0;
			if (e->pcr == vigil.p.pcr_config)
				ret = vigil_fold(i, config[i], e->data, e->size);
			else if (e->pcr == vigil.p.pcr_events)
				ret = vigil_fold(i, events[i], e->data, e->size);
			if (ret)
				goto out_unlock;
		}
	}
	if (bytes - freed + sizeof(struct vigil_log_base) > vigil.p.log_max_bytes) {
		atomic64_inc(&vigil.log_refused);
		ret = -ENOSPC;
		goto out_unlock;
	}

	b = vigil_base_build(before_seq, vigil.records_trimmed + nrec,
			     vigil.bytes_trimmed + freed, config, events);
	if (!b) {
		ret = -ENOMEM;
		goto out_unlock;
	}
	ret = vigil_log_replace_before(before_seq, &b->hdr, &records, &bytes);
	if (ret)
		goto out_unlock;
	WARN_ON_ONCE(records != nrec || bytes != freed);
	memcpy(vigil.base_config, config, sizeof(vigil.base_config));
	memcpy(vigil.base_events, events, sizeof(vigil.base_events));
	vigil.records_trimmed += records;
	vigil.bytes_trimmed += bytes;
	*trimmed = records;
out_unlock:
	mutex_unlock(&vigil.anchor_lock);
	kfree(b);
	kfree(config);
	return ret;
}

static void vigil_cp_work_fn(struct work_struct *work)
{
	u32 reason = test_bit(VIGIL_KICK_PENDING, &vigil.kick) ?
		     VIGIL_CP_EVENTS : VIGIL_CP_TIMER;

	vigil_checkpoint(reason, NULL, NULL);
	if (!READ_ONCE(vigil.stopping) && !READ_ONCE(vigil.sealed))
		queue_delayed_work(vigil.wq, &vigil.cp_work,
				   msecs_to_jiffies(vigil_timer_ms()));
}

static void vigil_kick_fn(struct irq_work *work)
{
	if (!READ_ONCE(vigil.stopping))
		mod_delayed_work(vigil.wq, &vigil.cp_work, 0);
}

/**
 * vigil_checkpoint_kick() - ask for a checkpoint soon, from any context
 *
 * Safe in NMI: queues an irq_work, which queues the checkpoint work from
 * interrupt context. The caller set VIGIL_KICK_PENDING.
 */
void vigil_checkpoint_kick(void)
{
	irq_work_queue(&vigil.kick_work);
}

static int vigil_measure_identity(void)
{
	char name[2 * VIGIL_NAME_LEN];	/* the digest covers it whole */
	u8 digest[VIGIL_DIGEST_LEN];
	const char *srcversion = THIS_MODULE->srcversion;
	int ret;

	/* The guard says what "only vigil's producers commit" rests on. */
	snprintf(name, sizeof(name), "vigil %s srcversion=%s guard=%s",
		 VIGIL_VERSION, srcversion ? srcversion : "none",
		 vigil_kfunc_guard() == VIGIL_KFUNC_GUARD_FILTER ?
		 "filter" : "callsite");
	sha256(name, strlen(name), digest);
	ret = vigil_measure_locked(VIGIL_MEASURE_MODULE, name, digest, NULL);
	if (ret)
		return ret;

	snprintf(name, sizeof(name), "c=%u e=%u a=%s ms=%u n=%u hb=%u r=%d cap=%llu",
		 vigil.p.pcr_config, vigil.p.pcr_events,
		 vigil.p.anchor == VIGIL_ANCHOR_IMA ? "ima" : "pcr",
		 vigil.p.checkpoint_ms, vigil.p.checkpoint_events,
		 vigil.p.heartbeat_ms, vigil.p.tpm_required,
		 vigil.p.log_max_bytes);
	sha256(name, strlen(name), digest);
	return vigil_measure_locked(VIGIL_MEASURE_PARAMS, name, digest, NULL);
}

static int vigil_make_key(void)
{
	struct vigil_log_key k;
	u32 tpm_rc;
	int ret;

	ret = vigil_tpm_create_key(&tpm_rc);
	if (ret) {
		vigil_tpm_error("creating the checkpoint key", ret, tpm_rc);
		vigil.key_err = tpm_rc ? (s32)tpm_rc : ret;
		pr_warn("no checkpoint key: checkpoints will be unsigned\n");
		return 0;
	}
	vigil_rec_init(&k, VIGIL_LOG_KEY, sizeof(k));
	k.pcr = vigil.p.pcr_config;
	k.curve = VIGIL_ECC_NIST_P256;
	k.sig_alg = VIGIL_ALG_ECDSA;
	memcpy(k.x, vigil.tpm.key_x, sizeof(k.x));
	memcpy(k.y, vigil.tpm.key_y, sizeof(k.y));
	memcpy(k.name, vigil.tpm.key_name, sizeof(k.name));
	return vigil_append_extend(&k.hdr, k.pcr, 0);
}

/**
 * vigil_anchor_init() - write the load-time records and start checkpoints
 *
 * BASE (the PCR values found), MEASURE of the module's identity and of
 * its parameters, KEY; then the checkpoint timer.
 *
 * Return: 0 or -errno.
 */
int vigil_anchor_init(void)
{
	u32 i;
	int ret;

	mutex_init(&vigil.anchor_lock);
	init_irq_work(&vigil.kick_work, vigil_kick_fn);
	INIT_DELAYED_WORK(&vigil.cp_work, vigil_cp_work_fn);
	vigil.stopping = false;
	vigil.kick = 0;
	atomic64_set(&vigil.cp_signed, 0);
	atomic64_set(&vigil.cp_unsigned, 0);
	atomic64_set(&vigil.tpm_errors, 0);
	vigil.pend_config = 0;
	vigil.pend_events = 0;
	vigil.producers_gen = 0;
	vigil.producers_sealed = 0;
	memset(vigil.producers_digest, 0, sizeof(vigil.producers_digest));
	vigil.seal_log_end = 0;
	atomic_set(&vigil.drained, 0);
	vigil.tick_alive = 0;
	vigil.last_cp_ns = ktime_get_boottime_ns();
	vigil.revive_errors = 0;

	for (i = 0; i < vigil.tpm.nr_banks; i++) {
		ret = vigil_tpm_pcr_read(vigil.p.pcr_config, i,
					 vigil.base_config[i]);
		if (!ret)
			ret = vigil_tpm_pcr_read(vigil.p.pcr_events, i,
						 vigil.base_events[i]);
		if (ret) {
			pr_err("reading PCR values from the TPM failed: %d\n",
			       ret);
			return ret;
		}
	}

	vigil.wq = alloc_ordered_workqueue("vigil", 0);
	if (!vigil.wq)
		return -ENOMEM;

	mutex_lock(&vigil.anchor_lock);
	ret = vigil_append_base();
	if (!ret)
		ret = vigil_measure_identity();
	if (!ret && vigil_tpm_present())
		ret = vigil_make_key();
	mutex_unlock(&vigil.anchor_lock);
	if (ret) {
		pr_err("writing the load-time records failed: %d\n", ret);
		goto out_destroy_wq;
	}

	/* Always armed: idle or not, a heartbeat is due every heartbeat_ms. */
	queue_delayed_work(vigil.wq, &vigil.cp_work,
			   msecs_to_jiffies(vigil_timer_ms()));
	return 0;

out_destroy_wq:
	destroy_workqueue(vigil.wq);
	return ret;
}

/**
 * vigil_anchor_exit() - stop checkpoints; no committer may be left
 */
void vigil_anchor_exit(void)
{
	WRITE_ONCE(vigil.stopping, true);
	irq_work_sync(&vigil.kick_work);
	cancel_delayed_work_sync(&vigil.cp_work);
	destroy_workqueue(vigil.wq);
}
