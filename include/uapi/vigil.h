/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note OR BSD-2-Clause */
/*
 * vigil.h - the one definition of vigil's ABI: event records, log records,
 * ioctl numbers and argument structs, versions and limits.
 *
 * It compiles in four worlds: the kernel (__KERNEL__), BPF programs
 * (__bpf__, after vmlinux.h, which already defines __u32 and friends),
 * and user space in C and C++. Only fixed-width types, explicit padding,
 * sizes that are multiples of 8, every struct size-asserted.
 *
 * Rules: record types are append-only and retired numbers stay reserved;
 * a changed body gets a new per-type version; an incompatible change bumps
 * VIGIL_ABI_MAJOR. All integers are little-endian (the only byte order the
 * module is built for), which is what the hashing rules in
 * docs/kernel-module.md assume.
 */
#ifndef _UAPI_VIGIL_H
#define _UAPI_VIGIL_H

#if defined(__bpf__)
/* vmlinux.h provides __u8 ... __u64 */
#elif defined(__KERNEL__)
#include <linux/types.h>
#include <linux/ioctl.h>
#else
#include <linux/types.h>
#include <linux/ioctl.h>
#endif

/* The ABI is little-endian only (records are hashed as they lie in
 * memory): anything else is refused at build time. The kernel says its
 * byte order with __LITTLE_ENDIAN/__BIG_ENDIAN, gcc and clang (BPF's
 * bpfel/bpfeb targets included) with __BYTE_ORDER__.
 */
#if defined(__KERNEL__)
#include <asm/byteorder.h>
#if defined(__BIG_ENDIAN)
#error "vigil: the ABI is little-endian only; this kernel is big-endian"
#endif
#elif defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "vigil: the ABI is little-endian only; this target is not"
#endif

/* C++11 static_assert, or C11 _Static_assert (gcc and clang accept it in
 * every C mode, the kernel's gnu11 and BPF included).
 */
#if defined(__cplusplus)
#define VIGIL_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define VIGIL_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

#define VIGIL_ABI_MAJOR		2
#define VIGIL_ABI_MINOR		2	/* 1: KEY_CREATION; 2: kfunc_guard, PRODUCERS_ADD */

#define VIGIL_DEVICE_NAME	"vigil"
#define VIGIL_DEVICE_PATH	"/dev/vigil"

/* Limits */
#define VIGIL_COMM_LEN		16	/* TASK_COMM_LEN */
#define VIGIL_PATH_LEN		256	/* exec filename, truncated */
#define VIGIL_NAME_LEN		64	/* measurement / agent names */
#define VIGIL_DIGEST_LEN	32	/* SHA-256 */
#define VIGIL_ID_LEN		16	/* instance id */
#define VIGIL_MAX_BANKS		8	/* PCR banks reported by GET_INFO */
#define VIGIL_RECORD_MAX	2048	/* largest record, any type */
#define VIGIL_ECC_COORD_LEN	32	/* P-256 */
#define VIGIL_MAX_PRODUCERS	16	/* BPF programs in one sealed producer set */
#define VIGIL_TAG_LEN		8	/* BPF program tag (BPF_TAG_SIZE) */

/* TPM algorithm ids (TCG Algorithm Registry) as reported for PCR banks */
#define VIGIL_ALG_SHA1		0x0004
#define VIGIL_ALG_SHA256	0x000B
#define VIGIL_ALG_SHA384	0x000C
#define VIGIL_ALG_SHA512	0x000D
#define VIGIL_ALG_SM3_256	0x0012
#define VIGIL_ALG_ECDSA		0x0018	/* vigil_log_key.sig_alg */
#define VIGIL_ECC_NIST_P256	0x0003	/* vigil_log_key.curve */

/*
 * Record types. Events (0x0001-0x7fff) are produced by BPF programs or the
 * COMMIT ioctl and go through the hash chain. Log records (0x8000-0xffff)
 * are written by the module into its measurement log.
 */
enum vigil_rec_type {
	VIGIL_EV_EXEC		= 0x0001,
	VIGIL_EV_EXIT		= 0x0002,
	VIGIL_EV_USER		= 0x0003,	/* COMMIT ioctl payload */
	VIGIL_EV_FORK		= 0x0004,	/* a tracked task forked */
	VIGIL_EV_AGENT		= 0x0005,	/* agent registration (name, once) */
	VIGIL_EV_SAMPLE		= 0x0006,	/* per-agent periodic metrics */

	VIGIL_LOG_MEASURE	= 0x8001,	/* extended into pcr_config */
	VIGIL_LOG_KEY		= 0x8002,	/* checkpoint key, extended into pcr_config */
	VIGIL_LOG_CHECKPOINT	= 0x8003,	/* extended into pcr_events */
	VIGIL_LOG_SIGNATURE	= 0x8004,	/* TPM signature over a checkpoint */
	VIGIL_LOG_EVENT		= 0x8005,	/* copy of a COMMIT ioctl record */
	VIGIL_LOG_BASE		= 0x8006,	/* replay base: PCR values at load or trim */
};

#define VIGIL_EV_TYPE_MAX	0x0006	/* highest event type known to this ABI */
#define VIGIL_EV_NR_TYPES	(VIGIL_EV_TYPE_MAX + 1)

/* vigil_rec_hdr.flags */
#define VIGIL_REC_F_COMMITTED	(1U << 0)	/* seq assigned and chained by the module */
#define VIGIL_REC_F_NO_MODULE	(1U << 1)	/* emitted while no module was present */

/**
 * struct vigil_rec_hdr - common header of every record (events and log)
 * @type:     enum vigil_rec_type
 * @version:  per-type body version (1, and 2 for VIGIL_LOG_CHECKPOINT)
 * @size:     whole record in bytes, header included, multiple of 8
 * @seq:      events: chain sequence number (0 when not committed);
 *            log records: log sequence number
 * @ts_ns:    CLOCK_BOOTTIME nanoseconds (ktime_get_boot_ns)
 * @agent_id: tracked agent (0 when none)
 * @flags:    VIGIL_REC_F_*
 */
struct vigil_rec_hdr {
	__u16 type;
	__u16 version;
	__u32 size;
	__u64 seq;
	__u64 ts_ns;
	__u32 agent_id;
	__u32 flags;
};

/* Exec of a new program image (sched_process_exec). */
struct vigil_ev_exec {
	struct vigil_rec_hdr hdr;
	__u32 pid;		/* tgid, as user space calls it */
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__u32 old_pid;		/* pid before exec (differs for a non-leader exec) */
	__u32 __reserved;
	char comm[VIGIL_COMM_LEN];
	char filename[VIGIL_PATH_LEN];
};

/* Exit of a whole process (last thread of a thread group). */
struct vigil_ev_exit {
	struct vigil_rec_hdr hdr;
	__u32 pid;
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__s32 exit_code;	/* (status >> 8) & 0xff when exited normally */
	__u32 exit_signal;	/* terminating signal, 0 when exited normally */
	__u32 core_dumped;
	__u32 __reserved;
	__u64 lifetime_ns;
	__u64 utime_ns;
	__u64 stime_ns;
	__u64 maxrss_kb;
	__u64 min_flt;
	__u64 maj_flt;
	__u64 nvcsw;
	__u64 nivcsw;
	__u64 read_bytes;	/* rchar: bytes passed to read-like calls */
	__u64 write_bytes;	/* wchar */
	char comm[VIGIL_COMM_LEN];
};

/* A user-space event committed through VIGIL_IOC_COMMIT. */
#define VIGIL_USER_PAYLOAD_MAX	512
/*
 * vigil_ev_user.kind values vigil's own tools use (others are free):
 * UNTRACK is committed by `vigilctl agent untrack` before it removes the
 * agent from the maps (payload: "untrack <name> id <agent id>").
 */
#define VIGIL_USER_KIND_VIGIL	0x76670000U	/* "vg": vigil's own kinds */
#define VIGIL_USER_KIND_UNTRACK	(VIGIL_USER_KIND_VIGIL | 1)
struct vigil_ev_user {
	struct vigil_rec_hdr hdr;
	__u32 pid;		/* committer, filled by the module */
	__u32 uid;		/* committer, filled by the module */
	__u32 kind;		/* free for the caller: hook id, action type */
	__u32 len;		/* payload bytes used */
	__u8 payload[VIGIL_USER_PAYLOAD_MAX];
};

/* vigil_ev_fork.flags */
#define VIGIL_FORK_F_THREAD	(1U << 0)	/* CLONE_THREAD: a new thread, same process */

/* A tracked task created a child task (sched_process_fork). */
struct vigil_ev_fork {
	struct vigil_rec_hdr hdr;
	__u32 pid;		/* child's tgid */
	__u32 tid;		/* child's tid */
	__u32 ppid;		/* parent's tgid */
	__u32 uid;
	__u32 flags;		/* VIGIL_FORK_F_* */
	__u32 __reserved;
	char comm[VIGIL_COMM_LEN];
};

/* vigil_ev_agent.action */
enum vigil_agent_action {
	VIGIL_AGENT_REGISTER	= 1,	/* the agent's first record in this chain */
	VIGIL_AGENT_UNTRACK	= 2,	/* tracking ended */
};

/* vigil_ev_agent.how */
enum vigil_agent_how {
	VIGIL_AGENT_BY_PID	= 1,	/* a process tree, from pid */
	VIGIL_AGENT_BY_CGROUP	= 2,	/* every task in cgroup_id */
};

/* An agent's name, recorded once so other records carry only hdr.agent_id. */
struct vigil_ev_agent {
	struct vigil_rec_hdr hdr;
	__u32 action;		/* enum vigil_agent_action */
	__u32 how;		/* enum vigil_agent_how */
	__u32 pid;		/* root process (VIGIL_AGENT_BY_PID) */
	__u32 uid;
	__u64 cgroup_id;	/* VIGIL_AGENT_BY_CGROUP */
	char name[VIGIL_NAME_LEN];	/* NUL-terminated */
};

/* vigil_ev_sample.flags */
#define VIGIL_SAMPLE_F_HW	(1U << 0)	/* cycles/instructions are measurements */
#define VIGIL_SAMPLE_F_SYSCALLS	(1U << 1)	/* syscalls is a measurement */

/*
 * Per-agent metrics since the agent's previous sample, emitted from the
 * scheduler path at most every sample_ms per agent. Counters without their
 * flag are not measured (no PMU, syscall counting off): never read a 0
 * there as a measurement.
 */
struct vigil_ev_sample {
	struct vigil_rec_hdr hdr;
	__u32 pid;		/* task whose switch emitted the sample */
	__u32 cpu;
	__u32 flags;		/* VIGIL_SAMPLE_F_* */
	__u32 __reserved;
	__u64 interval_ns;	/* since the previous sample of this agent */
	__u64 oncpu_ns;
	__u64 nvcsw;
	__u64 nivcsw;
	__u64 min_flt;
	__u64 maj_flt;
	__u64 cycles;
	__u64 instructions;
	__u64 syscalls;
};

/* --- Log records (read from /dev/vigil) --------------------------------- */

/* What a measurement is about (vigil_log_measure.kind). */
enum vigil_measure_kind {
	VIGIL_MEASURE_MODULE	= 1,	/* the module's own identity at load */
	VIGIL_MEASURE_PARAMS	= 2,	/* module parameters at load */
	VIGIL_MEASURE_USER	= 3,	/* MEASURE ioctl */
	VIGIL_MEASURE_PRODUCER	= 4,	/* one BPF program allowed to commit */
	VIGIL_MEASURE_PRODUCERS	= 5,	/* a sealed producer set (digest of the set) */
	VIGIL_MEASURE_SEAL	= 6,	/* reserved */
	VIGIL_MEASURE_WINDOW	= 7,	/* a producer window was opened (by whom) */
};

/*
 * What each vigil BPF program is, for the liveness counters in every
 * checkpoint (vigil_alive() kfunc). One role per program of bpf/.
 */
enum vigil_producer_role {
	VIGIL_PROD_EXEC		= 1,	/* tp_btf/sched_process_exec */
	VIGIL_PROD_EXIT		= 2,	/* tp_btf/sched_process_exit */
	VIGIL_PROD_FORK		= 3,	/* tp_btf/sched_process_fork */
	VIGIL_PROD_SWITCH	= 4,	/* tp_btf/sched_switch (samples) */
	VIGIL_PROD_SYSCALL	= 5,	/* tp_btf/sys_enter (syscall counts) */
};

#define VIGIL_PROD_ROLE_MAX	5
#define VIGIL_PROD_SLOTS	8	/* array size for roles, index 0 unused */
#define VIGIL_CHECKPOINT_VERSION 2	/* hdr.version of VIGIL_LOG_CHECKPOINT */

/*
 * A digest measured into pcr_config. Extended with H_bank(whole record) in
 * every allocated bank (see docs/kernel-module.md for the replay rule).
 */
struct vigil_log_measure {
	struct vigil_rec_hdr hdr;
	__u32 kind;		/* enum vigil_measure_kind */
	__u32 pcr;		/* PCR that was extended, or VIGIL_PCR_NONE */
	char name[VIGIL_NAME_LEN];	/* NUL-terminated */
	__u8 digest[VIGIL_DIGEST_LEN];	/* SHA-256 of the measured object */
};

#define VIGIL_PCR_NONE		0xffffffffU

/* The checkpoint signing key (TPM-resident ECC P-256, ECDSA-SHA256). */
struct vigil_log_key {
	struct vigil_rec_hdr hdr;
	__u32 pcr;		/* pcr_config, or VIGIL_PCR_NONE when no TPM */
	__u16 curve;		/* TPM_ECC_NIST_P256 = 0x0003 */
	__u16 sig_alg;		/* TPM_ALG_ECDSA = 0x0018 */
	__u8 x[VIGIL_ECC_COORD_LEN];
	__u8 y[VIGIL_ECC_COORD_LEN];
	__u8 name[34];		/* TPM name: nameAlg (BE16) || SHA-256(public) */
	__u8 __reserved[6];
};

/* vigil_log_checkpoint.reason: why a checkpoint was closed */
enum vigil_cp_reason {
	VIGIL_CP_TIMER		= 1,
	VIGIL_CP_EVENTS		= 2,
	VIGIL_CP_IOCTL		= 3,
	VIGIL_CP_UNLOAD		= 4,	/* the final one (SEAL ioctl) */
	VIGIL_CP_HEARTBEAT	= 5,	/* idle, taken because heartbeat_ms passed */
};

/* vigil_log_checkpoint.cp_flags */
#define VIGIL_CP_F_DEV_ANCHOR	(1U << 0)	/* anchored in a resettable PCR (16/23) */
#define VIGIL_CP_F_SEALED	(1U << 1)	/* final: no commit is accepted after it */
#define VIGIL_CP_F_WINDOW_OPEN	(1U << 2)	/* a producer registration window is open */
#define VIGIL_CP_F_UNMEASURED	(1U << 3)	/* programs were allowed that are not measured */

/*
 * A closed batch of the chain. Extended into pcr_events (anchor=pcr) or
 * measured through IMA (anchor=ima) as H_bank(whole record); signed as
 * SHA-256(whole record). Version 2 (ABI 2): the counters from rejected_total
 * on show what the producers did, so that silence is signed too.
 */
struct vigil_log_checkpoint {
	struct vigil_rec_hdr hdr;
	__u64 first_seq;	/* first event seq in this batch (last_seq+1 if empty) */
	__u64 last_seq;		/* last event seq in this batch */
	__u64 drops_total;	/* records the BPF side could not deliver, since load */
	__u64 busy_total;	/* commits refused on re-entry, since load */
	__u64 log_refused;	/* log records refused at the cap, since load */
	__u32 reason;		/* enum vigil_cp_reason */
	__u32 anchor;		/* enum vigil_anchor */
	__u8 chain_head[VIGIL_DIGEST_LEN];	/* chain value after last_seq */
	__u8 prev_digest[VIGIL_DIGEST_LEN];	/* SHA-256 of the previous checkpoint */
	__u8 instance_id[VIGIL_ID_LEN];		/* random per module load */
	__u64 rejected_total;	/* commits refused (bad record, not a producer, sealed) */
	__u64 tpm_errors;	/* failed TPM operations, since load */
	__u64 committed[VIGIL_EV_NR_TYPES + 1];	/* commits by event type, since load */
	__u64 alive[VIGIL_PROD_SLOTS];	/* vigil_alive() calls by producer role, since load */
	__u64 hits[VIGIL_PROD_SLOTS];	/* tracepoint firings per role (module probes) */
	__u8 producers_digest[VIGIL_DIGEST_LEN];	/* of the sealed set, zero if none */
	__u32 producers_gen;	/* producer sets sealed since load, 0 = none */
	__u32 cp_flags;		/* VIGIL_CP_F_* */
};

/* vigil_log_signature.status */
enum vigil_sig_status {
	VIGIL_SIG_OK		= 0,	/* r, s hold a TPM ECDSA signature */
	VIGIL_SIG_NO_TPM	= 1,	/* degraded mode: no TPM at all */
	VIGIL_SIG_TPM_ERROR	= 2,	/* the TPM failed: see error */
	VIGIL_SIG_NO_KEY	= 3,	/* the signing key could not be made */
};

/* The TPM's signature over a checkpoint, or why there is none. Not extended. */
struct vigil_log_signature {
	struct vigil_rec_hdr hdr;
	__u64 checkpoint_seq;	/* log seq of the checkpoint it signs */
	__u32 status;		/* enum vigil_sig_status */
	__s32 error;		/* -errno, or a positive TPM response code */
	__u8 digest[VIGIL_DIGEST_LEN];	/* SHA-256 of the checkpoint record */
	__u8 r[VIGIL_ECC_COORD_LEN];
	__u8 s[VIGIL_ECC_COORD_LEN];
};

/* A copy of a COMMIT ioctl record, so readers see user events. Not extended. */
struct vigil_log_event {
	struct vigil_rec_hdr hdr;
	struct vigil_ev_user ev;
};

/*
 * Replay base. Written first at load with the PCR values the module found,
 * and again at every TRIM cut (records with log seq < first_kept_seq are
 * gone). A verifier replays pcr_config and pcr_events from the values in
 * the newest base record it holds. Not extended.
 */
struct vigil_log_base {
	struct vigil_rec_hdr hdr;
	__u64 first_kept_seq;
	__u64 records_trimmed;
	__u64 bytes_trimmed;
	__u16 nr_banks;
	__u16 __reserved[3];
	struct {
		__u16 alg;
		__u16 __pad[3];
		__u8 config[64];	/* pcr_config value, alg-sized prefix used */
		__u8 events[64];	/* pcr_events value */
	} bank[VIGIL_MAX_BANKS];
};

/* --- ioctls ------------------------------------------------------------- */

/*
 * Every ioctl argument starts with size and flags. Structs grow only at the
 * end (copy_struct_from_user() rules): the module accepts any size from the
 * first published one (VIGIL_SIZE_VER0_*) on, zero-fills what an older
 * caller did not send, refuses (-E2BIG) non-zero bytes it does not know,
 * and writes back at most the caller's size.
 */
#define VIGIL_SIZE_VER0_VERSION		64
#define VIGIL_SIZE_VER0_INFO		352
#define VIGIL_SIZE_VER0_MEASURE		128
#define VIGIL_SIZE_VER0_COMMIT		48
#define VIGIL_SIZE_VER0_CHECKPOINT	576
#define VIGIL_SIZE_VER0_TRIM		40
#define VIGIL_SIZE_VER0_PRODUCERS	72
#define VIGIL_SIZE_VER0_SEAL		584
#define VIGIL_SIZE_VER0_KEY_CREATION	64	/* ABI 2.1 */
#define VIGIL_SIZE_VER0_PRODUCER_ADD	32	/* ABI 2.2 */

#define VIGIL_IOC_MAGIC		0xBC

enum vigil_anchor {
	VIGIL_ANCHOR_PCR	= 0,	/* extend pcr_events directly */
	VIGIL_ANCHOR_IMA	= 1,	/* ima_measure_critical_data() */
};

struct vigil_version {
	__u32 size;		/* in: sizeof(struct vigil_version) */
	__u32 flags;		/* in: 0 */
	__u32 abi_major;	/* out */
	__u32 abi_minor;	/* out */
	char module_version[32];	/* out: NUL-terminated */
	__u64 __reserved[2];	/* in: 0 */
};

/* vigil_info.tpm_flags */
#define VIGIL_TPM_PRESENT	(1U << 0)	/* a TPM 2.0 chip was found */
#define VIGIL_TPM_KEY		(1U << 1)	/* the checkpoint key exists */
#define VIGIL_TPM_REQUIRED	(1U << 2)	/* loaded with tpm_required=1 */
#define VIGIL_TPM_DEV_ANCHOR	(1U << 3)	/* resettable PCR 16/23: development only */
#define VIGIL_TPM_SEALED	(1U << 4)	/* sealed: no commits; unload once drained */
#define VIGIL_TPM_WINDOW_OPEN	(1U << 5)	/* a producer registration window is open */

/*
 * vigil_info.kfunc_guard (ABI 2.2; 0 from an older module): what keeps BPF
 * programs other than the registered producers from calling the kfuncs.
 * FILTER (kernel 6.5+): the kfunc set's filter refuses them at load; the
 * window owner's programs are recorded as the verifier sees them.
 * CALLSITE (older kernels, Debian 12's 6.1): any root program that calls
 * the kfuncs loads, but every call from outside the JIT image of a program
 * registered with PRODUCERS_ADD is refused (-EPERM) and counted in
 * rejected; the window owner must register each program it loaded.
 */
#define VIGIL_KFUNC_GUARD_FILTER	1
#define VIGIL_KFUNC_GUARD_CALLSITE	2

struct vigil_info {
	__u32 size;		/* in: sizeof(struct vigil_info) */
	__u32 flags;		/* in: 0 */
	__u32 tpm_flags;	/* out: VIGIL_TPM_* */
	__u32 nr_banks;		/* out: allocated PCR banks */
	__u16 bank_alg[VIGIL_MAX_BANKS];	/* out: TPM alg ids */
	__u32 pcr_config;
	__u32 pcr_events;
	__u32 anchor;		/* enum vigil_anchor */
	__u32 checkpoint_ms;
	__u32 checkpoint_events;
	__u32 __pad;
	__u8 instance_id[VIGIL_ID_LEN];
	__u8 key_x[VIGIL_ECC_COORD_LEN];	/* valid with VIGIL_TPM_KEY */
	__u8 key_y[VIGIL_ECC_COORD_LEN];
	__u8 chain_head[VIGIL_DIGEST_LEN];	/* current chain value */
	__u64 next_seq;		/* seq the next committed event gets */
	__u64 committed;	/* events committed since load */
	__u64 dropped;		/* BPF-side delivery failures reported */
	__u64 busy;		/* commits refused on re-entry */
	__u64 rejected;		/* commits refused for bad type or size */
	__u64 checkpoints_signed;
	__u64 checkpoints_unsigned;
	__u64 log_records;	/* records held now */
	__u64 log_bytes;	/* bytes held now */
	__u64 log_first_seq;	/* oldest log seq held */
	__u64 log_next_seq;	/* seq the next log record gets */
	__u64 log_max_bytes;	/* cap */
	__u64 log_refused;	/* records refused at the cap (-ENOSPC, deferred) */
	__u64 tpm_errors;	/* failed TPM operations (extend, sign) */
	__u32 heartbeat_ms;	/* longest time between two checkpoints */
	__u32 producers_gen;	/* producer sets sealed since load */
	__u32 nr_producers;	/* programs in the current set */
	__u32 __pad2;
	__u8 producers_digest[VIGIL_DIGEST_LEN];	/* of the current set */
	__u64 seal_log_end;	/* SEALED: log seq after the final records */
	__u32 kfunc_guard;	/* VIGIL_KFUNC_GUARD_* (ABI 2.2) */
	__u32 __pad3;
	__u64 __reserved;
};

struct vigil_measure {
	__u32 size;
	__u32 flags;		/* 0 */
	char name[VIGIL_NAME_LEN];	/* NUL-terminated, non-empty, printable */
	__u8 digest[VIGIL_DIGEST_LEN];
	__u64 log_seq;		/* out: log seq of the measurement record */
	__u64 __reserved[2];
};

struct vigil_commit {
	__u32 size;
	__u32 flags;		/* 0 */
	__u32 kind;		/* copied into vigil_ev_user.kind */
	__u32 len;		/* payload bytes, <= VIGIL_USER_PAYLOAD_MAX */
	__u64 payload;		/* user pointer to len bytes */
	__u64 seq;		/* out: chain seq */
	__u64 __reserved[2];
};

struct vigil_checkpoint_req {
	__u32 size;
	__u32 flags;		/* 0 */
	struct vigil_log_checkpoint cp;	/* out: the closed checkpoint */
	struct vigil_log_signature sig;	/* out: its signature record */
	__u64 __reserved[2];
};

struct vigil_trim {
	__u32 size;
	__u32 flags;		/* 0 */
	__u64 before_seq;	/* drop log records with seq < before_seq */
	__u64 trimmed;		/* out: records dropped */
	__u64 __reserved[2];
};

/*
 * Producer registration. PRODUCERS_OPEN opens a window for the calling
 * process: every BPF program it loads until PRODUCERS_SEAL that calls a
 * vigil kfunc is allowed and recorded; any other program is refused at
 * load. PRODUCERS_SEAL closes the window and measures the set (a MEASURE
 * record per program, then one for the set) into the anchor.
 */
struct vigil_producers {
	__u32 size;
	__u32 flags;		/* 0 */
	__u32 gen;		/* out (SEAL): producer_gen of the sealed set */
	__u32 nr;		/* out (SEAL): programs in it */
	__u8 digest[VIGIL_DIGEST_LEN];	/* out (SEAL): SHA-256 of the set */
	__u64 log_seq;		/* out (SEAL): log seq of the PRODUCERS record */
	__u64 __reserved[2];
};

/*
 * PRODUCERS_ADD (ABI 2.2): with kfunc_guard CALLSITE, register a program
 * the window owner loaded in its open window (@prog_fd, a JIT-compiled
 * tracing program). It is recorded and measured at PRODUCERS_SEAL like
 * the filter records programs, and may call the kfuncs for as long as it
 * exists. Errors: ENOMSG (it calls no vigil kfunc: nothing recorded),
 * ENOENT (no window of this file and process), EOPNOTSUPP (kfunc_guard
 * FILTER: the filter records programs at load), EBADF, EINVAL, ENOSPC.
 */
struct vigil_producer_add {
	__u32 size;
	__u32 flags;		/* 0 */
	__s32 prog_fd;		/* in */
	__u32 __pad;		/* in: 0 */
	__u64 __reserved[2];	/* in: 0 */
};

/*
 * SEAL: write the final checkpoint (reason UNLOAD, VIGIL_CP_F_SEALED) while
 * /dev/vigil still exists, refuse every commit from then on, and let the
 * module be unloaded once a reader has read the log up to seal_log_end.
 * Until then rmmod fails with EAGAIN (the module holds a reference to
 * itself).
 */
struct vigil_seal {
	__u32 size;
	__u32 flags;		/* 0 */
	struct vigil_log_checkpoint cp;	/* out: the final checkpoint */
	struct vigil_log_signature sig;	/* out: its signature record */
	__u64 log_end;		/* out: read up to here (exclusive) to allow unload */
	__u64 __reserved[2];
};

/*
 * KEY_CREATION (ABI 2.1): what TPM2_CreatePrimary returned for the
 * checkpoint key, and the key's saved context, so that user space can have
 * the key certified by an attestation key (TPM2_CertifyCreation) without
 * any secret of the module: the context is encrypted by the TPM and the
 * key's auth value never leaves the module; CertifyCreation needs no
 * authorisation for the certified object. The five blobs are written to
 * @buf back to back in the order of the length fields, each exactly as the
 * TPM marshalled it (big-endian TPM structures). When @buf_len is smaller
 * than @needed, nothing is written to @buf and the ioctl fails with
 * ENOSPC, with @needed and the lengths set.
 */
struct vigil_key_creation {
	__u32 size;
	__u32 flags;		/* 0 */
	__u64 buf;		/* in: user pointer to buf_len bytes */
	__u32 buf_len;		/* in: bytes at buf */
	__u32 needed;		/* out: bytes of the five blobs together */
	__u32 public_len;	/* out: TPM2B_PUBLIC (outPublic) */
	__u32 creation_data_len;	/* out: TPM2B_CREATION_DATA */
	__u32 creation_hash_len;	/* out: TPM2B_DIGEST (creationHash) */
	__u32 ticket_len;	/* out: TPMT_TK_CREATION (creationTicket) */
	__u32 context_len;	/* out: TPMS_CONTEXT (TPM2_ContextSave) */
	__u32 __reserved[5];	/* in: 0 */
};

#define VIGIL_IOC_GET_VERSION	_IOWR(VIGIL_IOC_MAGIC, 0x00, struct vigil_version)
#define VIGIL_IOC_GET_INFO	_IOWR(VIGIL_IOC_MAGIC, 0x01, struct vigil_info)
#define VIGIL_IOC_MEASURE	_IOWR(VIGIL_IOC_MAGIC, 0x02, struct vigil_measure)
#define VIGIL_IOC_COMMIT	_IOWR(VIGIL_IOC_MAGIC, 0x03, struct vigil_commit)
#define VIGIL_IOC_CHECKPOINT	_IOWR(VIGIL_IOC_MAGIC, 0x04, struct vigil_checkpoint_req)
#define VIGIL_IOC_TRIM		_IOWR(VIGIL_IOC_MAGIC, 0x05, struct vigil_trim)
#define VIGIL_IOC_PRODUCERS_OPEN _IOWR(VIGIL_IOC_MAGIC, 0x06, struct vigil_producers)
#define VIGIL_IOC_PRODUCERS_SEAL _IOWR(VIGIL_IOC_MAGIC, 0x07, struct vigil_producers)
#define VIGIL_IOC_SEAL		_IOWR(VIGIL_IOC_MAGIC, 0x08, struct vigil_seal)
#define VIGIL_IOC_KEY_CREATION	_IOWR(VIGIL_IOC_MAGIC, 0x09, struct vigil_key_creation)
#define VIGIL_IOC_PRODUCERS_ADD	_IOWR(VIGIL_IOC_MAGIC, 0x0A, struct vigil_producer_add)

/* --- size asserts ------------------------------------------------------- */

VIGIL_STATIC_ASSERT(sizeof(struct vigil_rec_hdr) == 32, "vigil_rec_hdr");
VIGIL_STATIC_ASSERT(sizeof(struct vigil_ev_exec) == 328, "vigil_ev_exec");
VIGIL_STATIC_ASSERT(sizeof(struct vigil_ev_exit) == 160, "vigil_ev_exit");
VIGIL_STATIC_ASSERT(sizeof(struct vigil_ev_user) == 560, "vigil_ev_user");
VIGIL_STATIC_ASSERT(sizeof(struct vigil_ev_fork) == 72, "vigil_ev_fork");
VIGIL_STATIC_ASSERT(sizeof(struct vigil_ev_agent) == 120, "vigil_ev_agent");
VIGIL_STATIC_ASSERT(sizeof(struct vigil_ev_sample) == 120, "vigil_ev_sample");
VIGIL_STATIC_ASSERT(sizeof(struct vigil_log_measure) == 136, "vigil_log_measure");
VIGIL_STATIC_ASSERT(sizeof(struct vigil_log_key) == 144, "vigil_log_key");
VIGIL_STATIC_ASSERT(sizeof(struct vigil_log_checkpoint) == 408, "vigil_log_checkpoint");
VIGIL_STATIC_ASSERT(sizeof(struct vigil_log_signature) == 144, "vigil_log_signature");
VIGIL_STATIC_ASSERT(sizeof(struct vigil_log_event) == 592, "vigil_log_event");
VIGIL_STATIC_ASSERT(sizeof(struct vigil_log_base) == 1152, "vigil_log_base");
VIGIL_STATIC_ASSERT(sizeof(struct vigil_version) == 64, "vigil_version");
VIGIL_STATIC_ASSERT(sizeof(struct vigil_info) == 352, "vigil_info");
VIGIL_STATIC_ASSERT(sizeof(struct vigil_measure) == 128, "vigil_measure");
VIGIL_STATIC_ASSERT(sizeof(struct vigil_commit) == 48, "vigil_commit");
VIGIL_STATIC_ASSERT(sizeof(struct vigil_checkpoint_req) == 576, "vigil_checkpoint_req");
VIGIL_STATIC_ASSERT(sizeof(struct vigil_trim) == 40, "vigil_trim");
VIGIL_STATIC_ASSERT(sizeof(struct vigil_producers) == 72, "vigil_producers");
VIGIL_STATIC_ASSERT(sizeof(struct vigil_seal) == 584, "vigil_seal");
VIGIL_STATIC_ASSERT(sizeof(struct vigil_key_creation) == 64, "vigil_key_creation");
VIGIL_STATIC_ASSERT(sizeof(struct vigil_producer_add) == 32, "vigil_producer_add");

#endif /* _UAPI_VIGIL_H */
