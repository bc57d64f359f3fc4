/* SPDX-License-Identifier: GPL-2.0 */
/*
 * internal.h - state and functions shared by the files of vigil.ko.
 *
 * Lock order (Debian's kernel has no lockdep, so it is argued here):
 *
 *   vigil.anchor_lock (mutex)  ->  vigil.log_lock (mutex)  ->  vigil.chain_lock (raw spinlock)
 *
 * anchor_lock serialises every "append a record, then extend a PCR" pair,
 * the extends left pending after a TPM failure, the signing key,
 * checkpoints and TRIM: PCR extends must happen in log order or a replay
 * would not reproduce the PCR. It is held across TPM
 * calls (they sleep). log_lock protects the writers' side of the log and
 * is never held across a TPM call, so COMMIT and readers do not wait for
 * the TPM. chain_lock protects the hash chain and is taken with interrupts
 * off, from any context a tracing BPF program runs in, including NMI
 * (where it is only tried: a CPU interrupted by NMI while holding it would
 * spin forever). producers_lock is a leaf spinlock taken by the kfunc
 * filter while a program is verified and by the window ioctls; nothing is
 * taken under it.
 */
#ifndef VIGIL_INTERNAL_H
#define VIGIL_INTERNAL_H

#include <linux/atomic.h>
#include <linux/irq_work.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>
#include <crypto/sha2.h>

#include <uapi/vigil.h>

#define VIGIL_VERSION		"0.1.0"
#define VIGIL_BANK_DIGEST_MAX	64	/* SHA-512 */
#define VIGIL_KEY_AUTH_LEN	32
#define VIGIL_KEY_UNIQUE_LEN	32

struct tpm_chip;
struct crypto_shash;
struct dentry;
struct file;
struct pid;

/**
 * struct vigil_params - validated module parameters
 * @pcr_config:        PCR for the module's identity, the key and MEASURE
 * @pcr_events:        PCR for checkpoints (anchor=pcr)
 * @anchor:            enum vigil_anchor
 * @checkpoint_ms:     timer period, 0 = no timer checkpoints
 * @checkpoint_events: events per checkpoint, 0 = no count trigger
 * @tpm_required:      refuse to load without a TPM 2.0
 * @log_max_bytes:     cap on the bytes of records the log holds
 * @heartbeat_ms:      longest time between two checkpoints, idle or not
 */
struct vigil_params {
	u32 pcr_config;
	u32 pcr_events;
	u32 anchor;
	u32 checkpoint_ms;
	u32 checkpoint_events;
	u32 heartbeat_ms;
	bool tpm_required;
	u64 log_max_bytes;
};

/**
 * struct vigil_bank - one allocated PCR bank
 * @alg_id: TPM algorithm id
 * @size:   digest size in bytes
 * @tfm:    hash for this bank, NULL if the kernel has none (see tpm.c)
 */
struct vigil_bank {
	u16 alg_id;
	u16 size;
	struct crypto_shash *tfm;
};

/* The parts of TPM2_CreatePrimary's response kept for KEY_CREATION. */
enum vigil_creation_part {
	VIGIL_CREATION_PUBLIC,		/* TPM2B_PUBLIC outPublic */
	VIGIL_CREATION_DATA,		/* TPM2B_CREATION_DATA */
	VIGIL_CREATION_HASH,		/* TPM2B_DIGEST creationHash */
	VIGIL_CREATION_TICKET,		/* TPMT_TK_CREATION */
	VIGIL_CREATION_PARTS,
};

/**
 * struct vigil_creation - what the TPM said when it created the key
 * @buf: the parts back to back, as the TPM marshalled them (kmalloc'd)
 * @len: bytes of each part, in enum vigil_creation_part order
 */
struct vigil_creation {
	u8 *buf;
	u32 len[VIGIL_CREATION_PARTS];
};

/**
 * struct vigil_tpm - the TPM as the module sees it
 * @chip:     the chip, NULL in degraded mode
 * @nr_banks: allocated PCR banks (0 without a TPM)
 * @bank:     the banks, in the chip's order
 * @have_key: the checkpoint key exists (its context is saved)
 * @key_auth: secret auth value of the key
 * @key_unique: secret unique.x of the key's template
 * @key_ctx:  TPMS_CONTEXT of the key from TPM2_ContextSave
 * @key_ctx_len: bytes in @key_ctx
 * @key_x:    public point, x
 * @key_y:    public point, y
 * @key_name: TPM name of the key (nameAlg || SHA-256(public))
 * @creation: the key's public area, creation data, hash and ticket from
 *            the last CreatePrimary (the load's, or a re-derive's)
 * @sweep:    a command timed out: flush stale transient objects first
 * @swept:    transient objects flushed that way since load
 *
 * Everything but @nr_banks and @bank is protected by anchor_lock; @chip
 * is replaced under it when the driver is rebound (vigil_tpm_revive()).
 */
struct vigil_tpm {
	struct tpm_chip *chip;
	u32 nr_banks;
	struct vigil_bank bank[VIGIL_MAX_BANKS];
	bool have_key;
	u8 key_auth[VIGIL_KEY_AUTH_LEN];
	u8 key_unique[VIGIL_KEY_UNIQUE_LEN];
	u8 *key_ctx;
	u32 key_ctx_len;
	u8 key_x[VIGIL_ECC_COORD_LEN];
	u8 key_y[VIGIL_ECC_COORD_LEN];
	u8 key_name[34];
	struct vigil_creation creation;
	bool sweep;
	u64 swept;
};

/**
 * struct vigil_log_entry - one record held by the log
 * @rcu:  frees the entry after readers are done
 * @pcr:  PCR this record was extended into, VIGIL_PCR_NONE if none
 * @size: record bytes (equals hdr.size)
 * @data: the record, starting with struct vigil_rec_hdr
 */
struct vigil_log_entry {
	struct rcu_head rcu;
	u32 pcr;
	u32 size;
	u64 data[];
};

/**
 * struct vigil_producer - a BPF program the filter allowed to call the kfuncs
 * @aux:           the program's bpf_prog_aux while it is verified (identity
 *                 within the window only; never dereferenced)
 * @tag:           the program's tag (SHA-1 prefix of its instructions)
 * @name:          its name
 * @type:          enum bpf_prog_type
 * @attach_type:   enum bpf_attach_type
 * @attach_btf_id: the BTF id of its hook
 * @len:           instructions when it was checked
 */
struct vigil_producer {
	const void *aux;
	u8 tag[VIGIL_TAG_LEN];
	char name[16];
	u32 type;
	u32 attach_type;
	u32 attach_btf_id;
	u32 len;
};

/* vigil.kick: bit set while a count-triggered checkpoint is pending */
#define VIGIL_KICK_PENDING	0

/* Log append flags */
#define VIGIL_LOG_EXEMPT	BIT(0)	/* may use the headroom below the cap */

/**
 * struct vigil - the module's state (one instance)
 * @p:              parameters
 * @tpm:            TPM state
 * @instance_id:    random per load
 * @chain_lock:     protects @next_seq, @head, @cp_last_seq, @kick,
 *                  @committed
 * @next_seq:       seq the next committed event gets
 * @head:           chain value after @next_seq - 1
 * @cp_last_seq:    last seq covered by a closed checkpoint
 * @committed:      events committed, by type (the sum is the total)
 * @rejected:       commits refused for bad type, size, flags or pointer,
 *                  or after the seal, and kfunc calls refused at load (not
 *                  a registered producer)
 * @sealed:         SEAL done: commits refused, windows refused
 * @unmeasured:     programs were allowed whose measurement failed
 * @producers_lock: protects the window and the producer table below it
 *                  (a spinlock: the filter must not sleep); also taken,
 *                  under anchor_lock, to change producers_gen,
 *                  producers_sealed and producers_digest, so GET_INFO
 *                  reads them without waiting for the TPM
 * @window_owner:   tgid of the process with an open window, NULL if none
 * @window_file:    the /dev/vigil file that opened it
 * @nr_producers:   entries in @producers
 * @producers:      programs allowed in the current or last window
 * @busy:           commits refused on re-entry
 * @drops:          BPF delivery failures per event type (0 = unknown type)
 * @kick:           bit 0 set while a count-triggered checkpoint is pending
 * @kick_work:      irq_work that queues the checkpoint from any context
 * @anchor_lock:    see the lock order above; protects the fields below it
 *                  down to @bytes_trimmed
 * @prev_cp_digest: SHA-256 of the last checkpoint record
 * @cp_prev_last:   last seq covered by the last logged checkpoint
 * @cp_drops:       drops total in the last checkpoint
 * @cp_busy:        busy total in the last checkpoint
 * @cp_refused:     log_refused in the last checkpoint
 * @base_config:    replay start value of pcr_config per bank at @log_first
 * @base_events:    same for pcr_events
 * @pend_config:    first log seq not yet extended into pcr_config, 0 if
 *                  none (it and every later record for that PCR wait)
 * @pend_events:    same for pcr_events
 * @records_trimmed: records dropped by TRIM since load
 * @bytes_trimmed:  bytes dropped by TRIM since load
 * @key_err:        why there is no key (-errno or TPM rc), 0 if there is
 * @producers_gen:  producer windows opened and sealed since load (changed
 *                  under producers_lock too)
 * @producers_sealed: programs in the last sealed set
 * @producers_digest: digest of the last sealed set
 * @last_cp_ns:     boottime of the last logged checkpoint (heartbeat)
 * @revive_errors:  tpm_errors when the chip was last checked for a rebind
 * @tick_alive:     sched_switch + sys_enter runs at the last timer tick
 * @seal_log_end:   log seq after the final records, 0 before the seal
 * @seal_log_first: oldest log seq held at the seal (TRIM is refused after)
 * @drained:        a reader read up to @seal_log_end; the module's
 *                  reference to itself was dropped
 * @log_lock:       protects the writers' side of the log fields below
 * @log:            log seq -> struct vigil_log_entry, read under RCU
 * @log_first:      oldest seq held
 * @log_next:       seq the next record gets
 * @log_bytes:      record bytes held
 * @log_records:    records held
 * @log_refused:    records refused at the cap
 * @log_wait:       readers waiting for records
 * @cp_signed:      checkpoints with a TPM signature
 * @cp_unsigned:    checkpoints without one
 * @tpm_errors:     failed TPM operations
 * @wq:             ordered workqueue for checkpoints
 * @cp_work:        the checkpoint work
 * @stopping:       set at unload, stops re-arming
 * @sfs_dir:        securityfs directory
 * @sfs_log:        securityfs ascii log
 * @sfs_status:     securityfs status
 */
struct vigil {
	struct vigil_params p;
	struct vigil_tpm tpm;
	u8 instance_id[VIGIL_ID_LEN];

	raw_spinlock_t chain_lock;
	u64 next_seq;
	u8 head[VIGIL_DIGEST_LEN];
	u64 cp_last_seq;
	u64 committed[VIGIL_EV_NR_TYPES];
	atomic64_t rejected;
	bool sealed;
	bool unmeasured;
	spinlock_t producers_lock;	/* window and producer table */
	struct pid *window_owner;
	struct file *window_file;
	u32 nr_producers;
	struct vigil_producer producers[VIGIL_MAX_PRODUCERS];
	atomic64_t busy;
	atomic64_t drops[VIGIL_EV_NR_TYPES];
	unsigned long kick;
	struct irq_work kick_work;

	struct mutex anchor_lock;	/* see the lock order at the top */
	u8 prev_cp_digest[VIGIL_DIGEST_LEN];
	u64 cp_prev_last;
	u64 cp_drops;
	u64 cp_busy;
	u64 cp_refused;
	u8 base_config[VIGIL_MAX_BANKS][VIGIL_BANK_DIGEST_MAX];
	u8 base_events[VIGIL_MAX_BANKS][VIGIL_BANK_DIGEST_MAX];
	u64 pend_config;
	u64 pend_events;
	u64 records_trimmed;
	u64 bytes_trimmed;
	s32 key_err;
	u32 producers_gen;
	u32 producers_sealed;
	u8 producers_digest[VIGIL_DIGEST_LEN];
	u64 last_cp_ns;
	u64 revive_errors;
	u64 tick_alive;
	u64 seal_log_end;
	u64 seal_log_first;
	atomic_t drained;

	struct mutex log_lock;		/* writers of the log fields below */
	struct xarray log;
	u64 log_first;
	u64 log_next;
	u64 log_bytes;
	u64 log_records;
	atomic64_t log_refused;
	wait_queue_head_t log_wait;

	atomic64_t cp_signed;
	atomic64_t cp_unsigned;
	atomic64_t tpm_errors;
	struct workqueue_struct *wq;
	struct delayed_work cp_work;
	bool stopping;

	struct dentry *sfs_dir;
	struct dentry *sfs_log;
	struct dentry *sfs_status;
};

extern struct vigil vigil;

/* chain.c */
void vigil_chain_init(void);
int vigil_chain_commit(void *rec, u32 buf_size);
int vigil_chain_count_drop(u32 type);
void vigil_chain_seal(void);
u64 vigil_chain_drops_total(void);
void vigil_chain_close(u64 last_seq);
void vigil_chain_peek(u64 *next_seq, u8 *head);
u64 vigil_chain_committed(u64 *by_type);

/* log.c */
int vigil_log_init(void);
void vigil_log_exit(void);
int vigil_log_append(struct vigil_rec_hdr *rec, u32 pcr, u32 reserve,
		     unsigned int flags);
ssize_t vigil_log_read(char __user *buf, size_t count, loff_t *pos,
		       bool nonblock);
bool vigil_log_readable(loff_t pos);
int vigil_log_commit_event(struct vigil_log_event *le);
const struct vigil_log_entry *vigil_log_peek(u64 seq);
int vigil_log_replace_before(u64 before_seq, struct vigil_rec_hdr *rec,
			     u64 *records, u64 *bytes);
void vigil_log_stats(u64 *first, u64 *next, u64 *records, u64 *bytes);
int vigil_securityfs_init(void);
void vigil_securityfs_exit(void);

/* tpm.c */
int vigil_tpm_init(void);
void vigil_tpm_exit(void);
bool vigil_tpm_present(void);
bool vigil_tpm_revive(void);
int vigil_tpm_pcr_read(u32 pcr, unsigned int bank, u8 *out);
int vigil_tpm_hash(unsigned int bank, const void *data, u32 len, u8 *out);
int vigil_tpm_extend(u32 pcr, const void *rec, u32 len);
int vigil_tpm_create_key(u32 *tpm_rc);
int vigil_tpm_sign(const u8 *digest, u8 *r, u8 *s, u32 *tpm_rc);
int vigil_tpm_key_creation(u8 **blobs, u32 *len);

/* anchor.c */
int vigil_anchor_init(void);
void vigil_anchor_exit(void);
int vigil_measure(u32 kind, const char *name, const u8 *digest, u64 *log_seq);
int vigil_checkpoint(u32 reason, struct vigil_log_checkpoint *cp_out,
		     struct vigil_log_signature *sig_out);
int vigil_trim(u64 before_seq, u64 *trimmed);
int vigil_measure_producers(const char *name, const u8 *digest, u32 nr,
			    u32 *gen, u64 *log_seq);
int vigil_measure_window(const char *name);
int vigil_seal(struct vigil_log_checkpoint *cp_out,
	       struct vigil_log_signature *sig_out, u64 *log_end);
bool vigil_dev_anchor(void);
void vigil_checkpoint_kick(void);
void vigil_rec_init(void *rec, u16 type, u32 size);

/* watch.c */
int vigil_watch_init(void);
void vigil_watch_exit(void);
void vigil_hits_sum(u64 *out);

/* chardev.c */
int vigil_chardev_init(void);
void vigil_chardev_exit(void);

/* kfunc.c: the kfuncs (declared for sparse; BPF sees them through BTF) */
int vigil_commit(void *rec, u32 rec__sz);
int vigil_drop(u32 type);
int vigil_alive(u32 role);
int vigil_kfunc_init(void);
void vigil_kfunc_exit(void);
void vigil_alive_sum(u64 *out);
void vigil_slots_sum(const u64 __percpu *counts, u64 *out);
int vigil_producers_open(struct file *file);
int vigil_producers_seal(struct file *file, struct vigil_producers *out);
void vigil_producers_abandon(struct file *file);
int vigil_producers_add(struct file *file, int prog_fd);
u32 vigil_kfunc_guard(void);

#endif /* VIGIL_INTERNAL_H */
