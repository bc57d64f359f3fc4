// SPDX-License-Identifier: GPL-2.0
/*
 * vigil-ioctl-test - the /dev/vigil ioctl and read() contract, one case
 * per argument (or --list). Bad input must get the right errno and change
 * nothing (GET_INFO counters and log extent are compared before/after).
 *
 * usage: vigil-ioctl-test --list | CASE...
 * Exit status 0 when every case passed.
 */
#include <poll.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "vtlib.h"

static int fd;
static int failures;

#define CHECK(cond, ...)                                  \
	do {                                              \
		if (!(cond)) {                            \
			printf("  FAIL %s:%d: ", __func__, __LINE__); \
			printf(__VA_ARGS__);              \
			printf("\n");                     \
			failures++;                       \
		}                                         \
	} while (0)

/* ioctl that must fail with @err */
#define EXPECT_ERR(cmd, arg, err)                                          \
	do {                                                               \
		errno = 0;                                                 \
		int _r = ioctl(fd, cmd, arg);                              \
		CHECK(_r == -1 && errno == (err), "%s: got %d errno %d (%s), want %s", \
		      #cmd, _r, errno, strerror(errno), strerror(err));    \
	} while (0)

struct snap {
	uint64_t next_seq, committed, log_next, log_records, log_bytes, cps;
};

static void snap(struct snap *s)
{
	struct vigil_info in;

	if (vt_info(fd, &in)) {
		failures++;
		return;
	}
	s->next_seq = in.next_seq;
	s->committed = in.committed;
	s->log_next = in.log_next_seq;
	s->log_records = in.log_records;
	s->log_bytes = in.log_bytes;
	s->cps = in.checkpoints_signed + in.checkpoints_unsigned;
}

/* Nothing that bad input could change has changed (timer checkpoints may). */
static void unchanged(const struct snap *a, const char *what)
{
	struct snap b;

	snap(&b);
	CHECK(a->next_seq == b.next_seq && a->committed == b.committed,
	      "%s changed the chain: next_seq %llu -> %llu", what,
	      (unsigned long long)a->next_seq, (unsigned long long)b.next_seq);
	if (a->cps == b.cps)
		CHECK(a->log_next == b.log_next && a->log_bytes == b.log_bytes,
		      "%s changed the log: next %llu -> %llu", what,
		      (unsigned long long)a->log_next,
		      (unsigned long long)b.log_next);
}

static void t_version(void)
{
	struct vigil_version v = { .size = sizeof(v) };

	CHECK(ioctl(fd, VIGIL_IOC_GET_VERSION, &v) == 0, "GET_VERSION: %s",
	      strerror(errno));
	CHECK(v.abi_major == VIGIL_ABI_MAJOR, "abi_major %u", v.abi_major);
	CHECK(v.module_version[0] && memchr(v.module_version, 0, sizeof(v.module_version)),
	      "module_version not a string");
	printf("  abi %u.%u module %s\n", v.abi_major, v.abi_minor, v.module_version);
}

static void t_info(void)
{
	struct vigil_info in;

	CHECK(vt_info(fd, &in) == 0, "GET_INFO");
	CHECK(in.size == sizeof(in), "size %u", in.size);
	CHECK(in.pcr_config == 16 && in.pcr_events == 23, "pcrs %u %u",
	      in.pcr_config, in.pcr_events);
	CHECK(in.log_records >= 3 && in.log_first_seq >= 1 &&
	      in.log_next_seq > in.log_first_seq, "log %llu records",
	      (unsigned long long)in.log_records);
	CHECK(in.next_seq == in.committed + 1, "next_seq %llu committed %llu",
	      (unsigned long long)in.next_seq, (unsigned long long)in.committed);
	if (in.tpm_flags & VIGIL_TPM_PRESENT) {
		CHECK(in.nr_banks >= 1 && in.nr_banks <= VIGIL_MAX_BANKS, "banks %u",
		      in.nr_banks);
		CHECK(in.tpm_flags & VIGIL_TPM_KEY, "no key with a TPM");
	} else {
		CHECK(in.nr_banks == 0, "banks %u without TPM", in.nr_banks);
		CHECK(!(in.tpm_flags & VIGIL_TPM_KEY), "key without TPM");
	}
	printf("  tpm_flags 0x%x banks %u committed %llu log %llu records\n",
	       in.tpm_flags, in.nr_banks, (unsigned long long)in.committed,
	       (unsigned long long)in.log_records);
}

static void t_bad_size(void)
{
	struct vigil_checkpoint_req cp = {};
	struct vigil_version v = {};
	struct vigil_measure m = {};
	struct vigil_trim t = {};
	struct snap s;
	/* room for a caller from a later ABI: a larger struct */
	union {
		struct vigil_info in;
		struct vigil_commit c;
		uint8_t bytes[4096];
	} big;

	snap(&s);
	v.size = sizeof(v) - 8;		/* below the first published size */
	EXPECT_ERR(VIGIL_IOC_GET_VERSION, &v, EINVAL);
	v.size = 0;
	EXPECT_ERR(VIGIL_IOC_GET_VERSION, &v, EINVAL);
	memset(&big, 0, sizeof(big));
	big.in.size = sizeof(big.in) + 8;	/* unknown tail not zero */
	big.bytes[sizeof(big.in) + 3] = 1;
	EXPECT_ERR(VIGIL_IOC_GET_INFO, &big, E2BIG);
	m.size = 1;
	strcpy(m.name, "x");
	EXPECT_ERR(VIGIL_IOC_MEASURE, &m, EINVAL);
	memset(&big, 0, sizeof(big));
	big.c.size = sizeof(big.c) * 2;
	big.bytes[sizeof(big.c) + 1] = 0xff;
	EXPECT_ERR(VIGIL_IOC_COMMIT, &big, E2BIG);
	cp.size = sizeof(cp) - 1;
	EXPECT_ERR(VIGIL_IOC_CHECKPOINT, &cp, EINVAL);
	t.size = 0xffffffff;
	EXPECT_ERR(VIGIL_IOC_TRIM, &t, E2BIG);
	unchanged(&s, "bad sizes");
}

/* A later ABI's larger struct with a zero tail works, and nothing past
 * this ABI's size is written back.
 */
static void t_extensible(void)
{
	union {
		struct vigil_info in;
		uint8_t bytes[sizeof(struct vigil_info) + 64];
	} big;

	memset(&big, 0, sizeof(big));
	big.in.size = sizeof(big);
	memset(big.bytes + sizeof(big.in), 0, 64);
	CHECK(ioctl(fd, VIGIL_IOC_GET_INFO, &big) == 0, "GET_INFO with a larger zero-tailed struct: %s",
	      strerror(errno));
	CHECK(big.in.next_seq >= 1, "GET_INFO filled nothing");
	for (unsigned int i = sizeof(big.in); i < sizeof(big); i++)
		CHECK(big.bytes[i] == 0, "byte %u past the struct was written", i);
}

/* A call that fails changes nothing: a result page that cannot be written
 * fails with EFAULT before the module acts.
 */
static void t_readonly_arg(void)
{
	struct vigil_commit *c;
	struct snap s;
	uint8_t *page;

	page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(page != MAP_FAILED, "mmap");
	if (page == MAP_FAILED)
		return;
	c = (struct vigil_commit *)page;
	c->size = sizeof(*c);
	c->kind = 7;
	mprotect(page, 4096, PROT_READ);
	snap(&s);
	EXPECT_ERR(VIGIL_IOC_COMMIT, c, EFAULT);
	unchanged(&s, "read-only COMMIT argument");
	mprotect(page, 4096, PROT_READ | PROT_WRITE);
	memset(page, 0, 4096);
	((struct vigil_checkpoint_req *)page)->size = sizeof(struct vigil_checkpoint_req);
	mprotect(page, 4096, PROT_READ);
	snap(&s);
	EXPECT_ERR(VIGIL_IOC_CHECKPOINT, page, EFAULT);
	unchanged(&s, "read-only CHECKPOINT argument");
	munmap(page, 4096);
}

/* Producer windows: one at a time, sealed only by the file that opened it. */
static void t_window(void)
{
	struct vigil_producers p = { .size = sizeof(p) };
	int fd2 = vt_open(O_RDWR);

	EXPECT_ERR(VIGIL_IOC_PRODUCERS_SEAL, &p, ENOENT);
	CHECK(ioctl(fd, VIGIL_IOC_PRODUCERS_OPEN, &p) == 0, "PRODUCERS_OPEN: %s", strerror(errno));
	EXPECT_ERR(VIGIL_IOC_PRODUCERS_OPEN, &p, EBUSY);
	if (fd2 >= 0) {
		errno = 0;
		CHECK(ioctl(fd2, VIGIL_IOC_PRODUCERS_SEAL, &p) == -1 && errno == ENOENT,
		      "another file sealed the window");
		close(fd2);
	}
	CHECK(ioctl(fd, VIGIL_IOC_PRODUCERS_SEAL, &p) == 0, "PRODUCERS_SEAL: %s", strerror(errno));
	CHECK(p.gen >= 1 && p.nr == 0, "empty set: gen %u nr %u", p.gen, p.nr);
	p.flags = 1;
	EXPECT_ERR(VIGIL_IOC_PRODUCERS_OPEN, &p, EINVAL);
}

/*
 * PRODUCERS_ADD (ABI 2.2): what GET_INFO's kfunc_guard says decides it.
 * With the filter the module records programs at load (EOPNOTSUPP); with
 * the call-site guard an fd that is no BPF program is refused before any
 * window check (EBADF, EINVAL), and flags/padding must be zero.
 */
static void t_producer_add(void)
{
	struct vigil_producer_add a = { .size = sizeof(a), .prog_fd = -1 };
	struct vigil_info in;

	vt_info(fd, &in);
	CHECK(in.kfunc_guard == VIGIL_KFUNC_GUARD_FILTER ||
	      in.kfunc_guard == VIGIL_KFUNC_GUARD_CALLSITE, "kfunc_guard %u", in.kfunc_guard);
	if (in.kfunc_guard == VIGIL_KFUNC_GUARD_FILTER) {
		EXPECT_ERR(VIGIL_IOC_PRODUCERS_ADD, &a, EOPNOTSUPP);
		return;
	}
	EXPECT_ERR(VIGIL_IOC_PRODUCERS_ADD, &a, EBADF);
	a.prog_fd = fd;	/* /dev/vigil, not a BPF program */
	EXPECT_ERR(VIGIL_IOC_PRODUCERS_ADD, &a, EINVAL);
	a.__pad = 1;
	EXPECT_ERR(VIGIL_IOC_PRODUCERS_ADD, &a, EINVAL);
	a.__pad = 0;
	a.flags = 1;
	EXPECT_ERR(VIGIL_IOC_PRODUCERS_ADD, &a, EINVAL);
}

/* After SEAL: read only the last record, after a seek (not a drain). */
static void t_skip_to_end(void)
{
	char buf[VIGIL_RECORD_MAX];
	struct vigil_info in;

	vt_info(fd, &in);
	CHECK(in.seal_log_end > 1, "not sealed");
	CHECK(lseek(fd, in.seal_log_end - 1, SEEK_SET) == (off_t)in.seal_log_end - 1, "lseek");
	CHECK(read(fd, buf, sizeof(buf)) > 0, "read of the last record: %s", strerror(errno));
}

/* After SEAL: commits, checkpoints and windows are refused. */
static void t_sealed(void)
{
	struct vigil_commit c = { .size = sizeof(c), .kind = 1 };
	struct vigil_producers p = { .size = sizeof(p) };
	struct vigil_seal *seal = calloc(1, sizeof(*seal));
	struct vigil_info in;

	seal->size = sizeof(*seal);
	CHECK(ioctl(fd, VIGIL_IOC_SEAL, seal) == 0, "SEAL: %s", strerror(errno));
	CHECK(seal->cp.reason == VIGIL_CP_UNLOAD && (seal->cp.cp_flags & VIGIL_CP_F_SEALED),
	      "final checkpoint reason %u flags %#x", seal->cp.reason, seal->cp.cp_flags);
	EXPECT_ERR(VIGIL_IOC_COMMIT, &c, ESHUTDOWN);
	EXPECT_ERR(VIGIL_IOC_PRODUCERS_OPEN, &p, ESHUTDOWN);
	{
		struct vigil_measure m = { .size = sizeof(m) };
		struct vigil_trim t = { .size = sizeof(t), .before_seq = seal->log_end };

		strcpy(m.name, "after-seal");
		EXPECT_ERR(VIGIL_IOC_MEASURE, &m, ESHUTDOWN);
		EXPECT_ERR(VIGIL_IOC_TRIM, &t, ESHUTDOWN);
	}
	errno = 0;
	CHECK(ioctl(fd, VIGIL_IOC_SEAL, seal) == -1 && errno == EALREADY, "second SEAL: %s",
	      strerror(errno));
	vt_info(fd, &in);
	CHECK(in.tpm_flags & VIGIL_TPM_SEALED, "GET_INFO not SEALED");
	CHECK(in.seal_log_end == seal->log_end, "seal_log_end %llu vs %llu",
	      (unsigned long long)in.seal_log_end, (unsigned long long)seal->log_end);
	free(seal);
}

static void t_bad_flags(void)
{
	struct vigil_checkpoint_req cp = { .size = sizeof(cp), .flags = 1 };
	struct vigil_version v = { .size = sizeof(v), .flags = 1 };
	struct vigil_measure m = { .size = sizeof(m), .flags = 0x80000000 };
	struct vigil_commit c = { .size = sizeof(c), .flags = 2 };
	struct vigil_info in = { .size = sizeof(in), .flags = 1 };
	struct vigil_trim t = { .size = sizeof(t), .flags = 1 };
	struct snap s;

	snap(&s);
	strcpy(m.name, "x");
	EXPECT_ERR(VIGIL_IOC_GET_VERSION, &v, EINVAL);
	EXPECT_ERR(VIGIL_IOC_GET_INFO, &in, EINVAL);
	EXPECT_ERR(VIGIL_IOC_MEASURE, &m, EINVAL);
	EXPECT_ERR(VIGIL_IOC_COMMIT, &c, EINVAL);
	EXPECT_ERR(VIGIL_IOC_CHECKPOINT, &cp, EINVAL);
	EXPECT_ERR(VIGIL_IOC_TRIM, &t, EINVAL);
	unchanged(&s, "non-zero flags");
}

static void t_bad_reserved(void)
{
	struct vigil_checkpoint_req cp = { .size = sizeof(cp) };
	struct vigil_version v = { .size = sizeof(v) };
	struct vigil_measure m = { .size = sizeof(m) };
	struct vigil_commit c = { .size = sizeof(c) };
	struct vigil_info in = { .size = sizeof(in) };
	struct vigil_trim t = { .size = sizeof(t) };
	struct snap s;

	snap(&s);
	strcpy(m.name, "x");
	v.__reserved[1] = 1;
	in.__reserved = 1;
	m.__reserved[1] = 1;
	c.__reserved[0] = 1;
	cp.__reserved[1] = 1;
	t.__reserved[0] = 1;
	EXPECT_ERR(VIGIL_IOC_GET_VERSION, &v, EINVAL);
	EXPECT_ERR(VIGIL_IOC_GET_INFO, &in, EINVAL);
	EXPECT_ERR(VIGIL_IOC_MEASURE, &m, EINVAL);
	EXPECT_ERR(VIGIL_IOC_COMMIT, &c, EINVAL);
	EXPECT_ERR(VIGIL_IOC_CHECKPOINT, &cp, EINVAL);
	EXPECT_ERR(VIGIL_IOC_TRIM, &t, EINVAL);
	unchanged(&s, "non-zero reserved");
}

static void t_bad_pointer(void)
{
	struct vigil_commit c = { .size = sizeof(c), .len = 16 };
	void *bad = (void *)16;
	struct snap s;

	snap(&s);
	EXPECT_ERR(VIGIL_IOC_GET_VERSION, bad, EFAULT);
	EXPECT_ERR(VIGIL_IOC_GET_INFO, bad, EFAULT);
	EXPECT_ERR(VIGIL_IOC_MEASURE, bad, EFAULT);
	EXPECT_ERR(VIGIL_IOC_COMMIT, bad, EFAULT);
	EXPECT_ERR(VIGIL_IOC_CHECKPOINT, bad, EFAULT);
	EXPECT_ERR(VIGIL_IOC_TRIM, bad, EFAULT);
	EXPECT_ERR(VIGIL_IOC_GET_INFO, NULL, EFAULT);
	/* kernel address as payload */
	c.payload = 0xffffffff81000000ULL;
	EXPECT_ERR(VIGIL_IOC_COMMIT, &c, EFAULT);
	c.payload = 16;
	EXPECT_ERR(VIGIL_IOC_COMMIT, &c, EFAULT);
	unchanged(&s, "bad pointers");
}

static void t_unknown_cmd(void)
{
	char buf[64] = {};
	struct snap s;

	snap(&s);
	EXPECT_ERR(_IOWR(VIGIL_IOC_MAGIC, 0x06, struct vigil_trim), buf, ENOTTY);
	EXPECT_ERR(_IOWR(VIGIL_IOC_MAGIC, 0x7f, char[64]), buf, ENOTTY);
	EXPECT_ERR(_IOR(VIGIL_IOC_MAGIC, 0x00, struct vigil_version), buf, ENOTTY);
	EXPECT_ERR(_IOWR('T', 0x01, struct vigil_info), buf, ENOTTY);
	EXPECT_ERR(0, buf, ENOTTY);
	unchanged(&s, "unknown commands");
}

static void t_huge_len(void)
{
	uint8_t payload[VIGIL_USER_PAYLOAD_MAX + 8] = {};
	struct vigil_commit c = { .size = sizeof(c) };
	struct snap s;

	snap(&s);
	c.payload = (uintptr_t)payload;
	c.len = VIGIL_USER_PAYLOAD_MAX + 1;
	EXPECT_ERR(VIGIL_IOC_COMMIT, &c, EINVAL);
	c.len = 0xffffffff;
	EXPECT_ERR(VIGIL_IOC_COMMIT, &c, EINVAL);
	c.len = 8;
	c.payload = 0;
	EXPECT_ERR(VIGIL_IOC_COMMIT, &c, EINVAL);
	unchanged(&s, "huge lengths");
}

static void t_bad_name(void)
{
	struct vigil_measure m = { .size = sizeof(m) };
	struct snap s;

	snap(&s);
	EXPECT_ERR(VIGIL_IOC_MEASURE, &m, EINVAL);	/* empty */
	memset(m.name, 'a', sizeof(m.name));		/* not terminated */
	EXPECT_ERR(VIGIL_IOC_MEASURE, &m, EINVAL);
	strcpy(m.name, "bad\nname");
	EXPECT_ERR(VIGIL_IOC_MEASURE, &m, EINVAL);
	strcpy(m.name, "bad\x80name");
	EXPECT_ERR(VIGIL_IOC_MEASURE, &m, EINVAL);
	unchanged(&s, "bad names");
}

static void t_bad_trim(void)
{
	struct vigil_trim t = { .size = sizeof(t) };
	struct vigil_info in;
	struct snap s;

	snap(&s);
	vt_info(fd, &in);
	t.before_seq = in.log_next_seq + 1000;
	EXPECT_ERR(VIGIL_IOC_TRIM, &t, EINVAL);
	t.before_seq = ~0ULL;
	EXPECT_ERR(VIGIL_IOC_TRIM, &t, EINVAL);
	unchanged(&s, "trim beyond the log");
}

static void t_unpriv(void)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		struct vigil_checkpoint_req cp = { .size = sizeof(cp) };
		struct vigil_measure m = { .size = sizeof(m) };
		struct vigil_commit c = { .size = sizeof(c) };
		struct vigil_trim t = { .size = sizeof(t) };
		struct vigil_info in;
		struct snap s;

		strcpy(m.name, "unpriv");
		snap(&s);
		if (setgid(65534) || setuid(65534)) {
			printf("  FAIL setuid: %s\n", strerror(errno));
			_exit(1);
		}
		/* the fd opened by root still reads, but privileged ioctls fail */
		EXPECT_ERR(VIGIL_IOC_MEASURE, &m, EPERM);
		EXPECT_ERR(VIGIL_IOC_COMMIT, &c, EPERM);
		EXPECT_ERR(VIGIL_IOC_CHECKPOINT, &cp, EPERM);
		EXPECT_ERR(VIGIL_IOC_TRIM, &t, EPERM);
		CHECK(vt_info(fd, &in) == 0, "GET_INFO as nobody");
		unchanged(&s, "unprivileged caller");
		/* and nobody cannot open the 0600 device at all */
		errno = 0;
		CHECK(open(VIGIL_DEVICE_PATH, O_RDONLY) < 0 && errno == EACCES,
		      "nobody opened /dev/vigil (errno %d)", errno);
		_exit(failures ? 1 : 0);
	}
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	      WEXITSTATUS(status) == 0, "unprivileged child failed");
}

static uint64_t commit_one(uint32_t kind, const char *payload)
{
	struct vigil_commit c = { .size = sizeof(c), .kind = kind };

	c.len = strlen(payload);
	c.payload = (uintptr_t)payload;
	if (ioctl(fd, VIGIL_IOC_COMMIT, &c)) {
		CHECK(0, "COMMIT: %s", strerror(errno));
		return 0;
	}
	return c.seq;
}

static void t_commit(void)
{
	struct vigil_info a, b;
	struct vt_log log;
	uint64_t seq;
	bool found = false;

	vt_info(fd, &a);
	seq = commit_one(42, "hello vigil");
	vt_info(fd, &b);
	CHECK(seq == a.next_seq, "seq %llu, next_seq was %llu",
	      (unsigned long long)seq, (unsigned long long)a.next_seq);
	CHECK(b.next_seq == a.next_seq + 1 && b.committed == a.committed + 1,
	      "next_seq %llu -> %llu", (unsigned long long)a.next_seq,
	      (unsigned long long)b.next_seq);
	CHECK(memcmp(a.chain_head, b.chain_head, 32), "chain head did not move");
	if (vt_read_log(&log) == 0) {
		for (size_t i = 0; i < log.nrec; i++) {
			struct vigil_log_event *le = (void *)log.rec[i];

			if (le->hdr.type == VIGIL_LOG_EVENT && le->ev.hdr.seq == seq) {
				found = true;
				CHECK(le->ev.kind == 42 && le->ev.len == 11 &&
				      !memcmp(le->ev.payload, "hello vigil", 11) &&
				      le->ev.pid == (uint32_t)getpid() && le->ev.uid == 0,
				      "LOG_EVENT content");
				CHECK(le->ev.hdr.flags & VIGIL_REC_F_COMMITTED, "not committed");
			}
		}
		vt_log_free(&log);
	}
	CHECK(found, "no LOG_EVENT for seq %llu", (unsigned long long)seq);
}

static void t_measure(void)
{
	struct vigil_measure m = { .size = sizeof(m) };
	struct vt_log log;
	bool found = false;

	strcpy(m.name, "test:policy.json");
	memset(m.digest, 0xab, sizeof(m.digest));
	CHECK(ioctl(fd, VIGIL_IOC_MEASURE, &m) == 0, "MEASURE: %s", strerror(errno));
	CHECK(m.log_seq > 0, "log_seq 0");
	if (vt_read_log(&log) == 0) {
		for (size_t i = 0; i < log.nrec; i++) {
			struct vigil_log_measure *r = (void *)log.rec[i];

			if (r->hdr.seq == m.log_seq) {
				found = r->hdr.type == VIGIL_LOG_MEASURE &&
					r->kind == VIGIL_MEASURE_USER &&
					!strcmp(r->name, m.name) &&
					!memcmp(r->digest, m.digest, 32);
			}
		}
		vt_log_free(&log);
	}
	CHECK(found, "no matching MEASURE record at %llu", (unsigned long long)m.log_seq);
}

static void t_read_rules(void)
{
	int rfd = vt_open(O_RDONLY | O_NONBLOCK);
	uint8_t small[24], big[4096];
	struct vigil_rec_hdr *h = (void *)big;
	struct pollfd pfd = { .fd = rfd, .events = POLLIN };
	struct vigil_info in;
	ssize_t n;
	off_t end;

	if (rfd < 0) {
		failures++;
		return;
	}
	vt_info(fd, &in);
	errno = 0;
	n = read(rfd, small, sizeof(small));
	CHECK(n == -1 && errno == EINVAL, "short buffer: %zd errno %d", n, errno);
	n = read(rfd, big, 40);	/* BASE (1152 bytes) is first: still too small */
	CHECK(n == -1 && errno == EINVAL, "40-byte buffer: %zd errno %d", n, errno);
	n = read(rfd, big, sizeof(struct vigil_log_base));
	CHECK(n == sizeof(struct vigil_log_base) && h->type == VIGIL_LOG_BASE &&
	      h->seq == in.log_first_seq, "first read: %zd bytes type 0x%x seq %llu",
	      n, h->type, (unsigned long long)h->seq);
	CHECK(lseek(rfd, 0, SEEK_CUR) == (off_t)in.log_first_seq + 1,
	      "position after one record: %lld", (long long)lseek(rfd, 0, SEEK_CUR));
	/* whole records only */
	n = read(rfd, big, sizeof(big));
	CHECK(n > 0, "second read %zd", n);
	for (ssize_t off = 0; n > 0 && off < n;) {
		struct vigil_rec_hdr *r = (void *)(big + off);

		CHECK(r->size >= 32 && r->size % 8 == 0 && off + r->size <= n,
		      "split or bad record at %zd", off);
		if (r->size < 32)
			break;
		off += r->size;
	}
	/* at the end: EAGAIN and no POLLIN */
	end = lseek(rfd, 0, SEEK_END);
	CHECK(end >= (off_t)in.log_next_seq, "SEEK_END %lld", (long long)end);
	errno = 0;
	n = read(rfd, big, sizeof(big));
	CHECK(n == -1 && errno == EAGAIN, "read at end: %zd errno %d", n, errno);
	CHECK(poll(&pfd, 1, 0) == 0, "POLLIN at the end");
	commit_one(7, "poll me");
	CHECK(poll(&pfd, 1, 1000) == 1 && (pfd.revents & POLLIN), "no POLLIN after a commit");
	n = read(rfd, big, sizeof(big));
	CHECK(n == sizeof(struct vigil_log_event) || (n > 0 && h->seq >= (uint64_t)end),
	      "read after commit: %zd", n);
	/* rewind to a given seq */
	CHECK(lseek(rfd, in.log_first_seq + 1, SEEK_SET) == (off_t)in.log_first_seq + 1, "SEEK_SET");
	n = read(rfd, big, sizeof(big));
	CHECK(n > 0 && h->seq == in.log_first_seq + 1, "read after SEEK_SET: seq %llu",
	      (unsigned long long)h->seq);
	CHECK(lseek(rfd, -1, SEEK_SET) == -1 && errno == EINVAL, "negative seek");
	close(rfd);
}

/* Force a checkpoint; print it for the scripts (IMA test). */
static void t_checkpoint(void)
{
	struct vigil_checkpoint_req *r = calloc(1, sizeof(*r));
	struct vigil_info a, b;
	uint8_t d[32];
	char hex[65];

	vt_info(fd, &a);
	r->size = sizeof(*r);
	CHECK(ioctl(fd, VIGIL_IOC_CHECKPOINT, r) == 0, "CHECKPOINT: %s", strerror(errno));
	vt_info(fd, &b);
	vt_sha256(&r->cp, sizeof(r->cp), NULL, 0, d);
	vt_hex(hex, d, 32);
	CHECK(r->cp.hdr.type == VIGIL_LOG_CHECKPOINT && r->cp.reason == VIGIL_CP_IOCTL &&
	      r->cp.last_seq == a.next_seq - 1 && r->cp.first_seq <= r->cp.last_seq + 1,
	      "checkpoint type 0x%x reason %u seq %llu-%llu", r->cp.hdr.type, r->cp.reason,
	      (unsigned long long)r->cp.first_seq, (unsigned long long)r->cp.last_seq);
	CHECK(!memcmp(r->cp.chain_head, a.chain_head, 32), "head differs from GET_INFO");
	CHECK(r->sig.checkpoint_seq == r->cp.hdr.seq && !memcmp(r->sig.digest, d, 32),
	      "signature record does not match");
	if (a.tpm_flags & VIGIL_TPM_KEY)
		CHECK(r->sig.status == VIGIL_SIG_OK &&
		      vt_ecdsa_verify(a.key_x, a.key_y, d, r->sig.r, r->sig.s) == 1,
		      "status %u error %d or bad signature", r->sig.status, r->sig.error);
	else
		CHECK(r->sig.status == VIGIL_SIG_NO_TPM, "status %u without TPM", r->sig.status);
	CHECK(b.checkpoints_signed + b.checkpoints_unsigned >
	      a.checkpoints_signed + a.checkpoints_unsigned, "checkpoint counters");
	printf("checkpoint %llu digest %s status %u error %d\n",
	       (unsigned long long)r->cp.hdr.seq, hex, r->sig.status, r->sig.error);
	free(r);
}

/* TRIM all but the last 3 records; a BASE record says where the log starts. */
static void t_trim(void)
{
	struct vigil_trim t = { .size = sizeof(t) };
	struct vigil_info a, b;
	struct vigil_log_base *base = NULL;
	struct vt_log log;
	uint64_t held_before;

	vt_info(fd, &a);
	t.before_seq = a.log_next_seq - 3;
	CHECK(t.before_seq > a.log_first_seq, "log too short to trim");
	held_before = t.before_seq - a.log_first_seq;
	CHECK(ioctl(fd, VIGIL_IOC_TRIM, &t) == 0, "TRIM: %s", strerror(errno));
	vt_info(fd, &b);
	CHECK(t.trimmed == held_before, "trimmed %llu, expected %llu",
	      (unsigned long long)t.trimmed, (unsigned long long)held_before);
	CHECK(b.log_first_seq == t.before_seq, "first seq %llu after trim to %llu",
	      (unsigned long long)b.log_first_seq, (unsigned long long)t.before_seq);
	CHECK(b.log_records + t.trimmed >= a.log_records + 1, "record counts");
	if (vt_read_log(&log) == 0) {
		CHECK(log.nrec && log.rec[0]->seq == t.before_seq, "log starts at %llu",
		      log.nrec ? (unsigned long long)log.rec[0]->seq : 0ULL);
		for (size_t i = 0; i < log.nrec; i++)
			if (log.rec[i]->type == VIGIL_LOG_BASE)
				base = (void *)log.rec[i];
		CHECK(base && base->first_kept_seq == t.before_seq &&
		      base->records_trimmed >= t.trimmed, "no BASE record for the cut");
		vt_log_free(&log);
	}
	/* trimming what is gone already changes nothing */
	vt_info(fd, &a);
	t.before_seq = a.log_first_seq;
	CHECK(ioctl(fd, VIGIL_IOC_TRIM, &t) == 0 && t.trimmed == 0, "no-op trim");
	vt_info(fd, &b);
	CHECK(b.log_next_seq == a.log_next_seq || b.checkpoints_signed + b.checkpoints_unsigned !=
	      a.checkpoints_signed + a.checkpoints_unsigned, "no-op trim wrote a record");
}

/*
 * With the module loaded as log_max_bytes=65536 checkpoint_ms=0
 * checkpoint_events=0: fill the log with commits until the cap refuses
 * one; MEASURE and CHECKPOINT are refused too, each counted; nothing is
 * chained for a refused commit; after a TRIM everything works again and
 * the next checkpoint carries the refused count.
 */
static void t_logcap(void)
{
	struct vigil_checkpoint_req *r = calloc(1, sizeof(*r));
	struct vigil_measure m = { .size = sizeof(m) };
	struct vigil_trim t = { .size = sizeof(t) };
	struct vigil_commit c = { .size = sizeof(c) };
	struct vigil_info a, b;
	int n = 0;

	vt_info(fd, &a);
	CHECK(a.log_max_bytes == 65536 && a.checkpoint_ms == 0 && a.checkpoint_events == 0,
	      "load the module with log_max_bytes=65536 checkpoint_ms=0 checkpoint_events=0");
	for (;;) {
		if (ioctl(fd, VIGIL_IOC_COMMIT, &c) == 0) {
			n++;
			if (n > 1000)
				break;
			continue;
		}
		CHECK(errno == ENOSPC, "COMMIT failed with %s, want ENOSPC", strerror(errno));
		break;
	}
	vt_info(fd, &b);
	CHECK(n > 50 && n < 120, "%d commits fit in 64 KiB", n);
	CHECK(b.log_refused == a.log_refused + 1, "log_refused %llu -> %llu",
	      (unsigned long long)a.log_refused, (unsigned long long)b.log_refused);
	CHECK(b.next_seq == a.next_seq + (uint64_t)n, "a refused commit was chained");
	CHECK(b.log_bytes <= b.log_max_bytes, "log_bytes %llu over the cap",
	      (unsigned long long)b.log_bytes);
	/* smaller records still fit: fill the rest with measurements */
	strcpy(m.name, "filler");
	for (int k = 0; k < 10 && ioctl(fd, VIGIL_IOC_MEASURE, &m) == 0; k++)
		;
	EXPECT_ERR(VIGIL_IOC_MEASURE, &m, ENOSPC);
	r->size = sizeof(*r);
	EXPECT_ERR(VIGIL_IOC_CHECKPOINT, r, ENOSPC);
	vt_info(fd, &a);
	CHECK(a.log_refused == b.log_refused + 3, "refusals not counted: %llu",
	      (unsigned long long)a.log_refused);
	CHECK(a.next_seq == b.next_seq, "chain moved while refusing");
	CHECK(a.checkpoints_signed + a.checkpoints_unsigned ==
	      b.checkpoints_signed + b.checkpoints_unsigned, "a checkpoint was made at the cap");

	t.before_seq = a.log_next_seq - 1;
	CHECK(ioctl(fd, VIGIL_IOC_TRIM, &t) == 0, "TRIM at the cap: %s", strerror(errno));
	CHECK(ioctl(fd, VIGIL_IOC_COMMIT, &c) == 0, "COMMIT after TRIM: %s", strerror(errno));
	memset(r, 0, sizeof(*r));
	r->size = sizeof(*r);
	CHECK(ioctl(fd, VIGIL_IOC_CHECKPOINT, r) == 0, "CHECKPOINT after TRIM: %s",
	      strerror(errno));
	CHECK(r->cp.log_refused == a.log_refused, "checkpoint carries log_refused %llu, want %llu",
	      (unsigned long long)r->cp.log_refused, (unsigned long long)a.log_refused);
	CHECK(r->cp.first_seq == 1 && r->cp.last_seq == a.next_seq,
	      "checkpoint covers %llu-%llu, want 1-%llu", (unsigned long long)r->cp.first_seq,
	      (unsigned long long)r->cp.last_seq, (unsigned long long)a.next_seq);
	printf("  %d commits filled the log; %llu refusals recorded in checkpoint %llu\n", n,
	       (unsigned long long)r->cp.log_refused, (unsigned long long)r->cp.hdr.seq);
	free(r);
}

/* After the TPM went away: a forced checkpoint returns, unsigned, with why. */
static void t_checkpoint_tpm_error(void)
{
	struct vigil_checkpoint_req *r = calloc(1, sizeof(*r));
	struct vigil_info a, b;

	vt_info(fd, &a);
	r->size = sizeof(*r);
	CHECK(ioctl(fd, VIGIL_IOC_CHECKPOINT, r) == 0, "CHECKPOINT: %s", strerror(errno));
	vt_info(fd, &b);
	CHECK(r->sig.status == VIGIL_SIG_TPM_ERROR && r->sig.error != 0,
	      "status %u error %d, want TPM_ERROR", r->sig.status, r->sig.error);
	CHECK(b.tpm_errors > a.tpm_errors, "tpm_errors %llu -> %llu",
	      (unsigned long long)a.tpm_errors, (unsigned long long)b.tpm_errors);
	CHECK(b.checkpoints_unsigned == a.checkpoints_unsigned + 1, "unsigned count");
	printf("checkpoint %llu status %u error %d (0x%x)\n", (unsigned long long)r->cp.hdr.seq,
	       r->sig.status, r->sig.error, (unsigned)r->sig.error);
	free(r);
}

/*
 * Two processes reading one open file (shared position), one record per
 * read(): every record is returned once, to one of them, never to both.
 */
#define SHARED_MAX 4095
#define SHARED_N 1000
static void t_shared_fd(void)
{
	struct vigil_commit c = { .size = sizeof(c) };
	uint64_t *seen, *mine;
	struct vigil_info in;
	int rfd, dup = 0;
	size_t n = 0;
	pid_t pid;

	vt_info(fd, &in);
	for (int i = 0; i < SHARED_N; i++)
		if (ioctl(fd, VIGIL_IOC_COMMIT, &c)) {
			CHECK(0, "COMMIT: %s", strerror(errno));
			break;
		}
	seen = mmap(NULL, 2 * (SHARED_MAX + 1) * sizeof(*seen), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	rfd = vt_open(O_RDONLY | O_NONBLOCK);
	CHECK(seen != MAP_FAILED && rfd >= 0, "set-up");
	if (seen == MAP_FAILED || rfd < 0)
		return;
	/* from the first commit on: events, checkpoints, signatures (< 600 B) */
	CHECK(lseek(rfd, in.log_next_seq, SEEK_SET) == (off_t)in.log_next_seq, "lseek");
	pid = fork();
	CHECK(pid >= 0, "fork: %s", strerror(errno));
	mine = seen + (pid == 0 ? SHARED_MAX + 1 : 0);
	for (;;) {
		static uint8_t buf[600];
		ssize_t r = read(rfd, buf, sizeof(buf));

		if (r <= 0)
			break;
		for (ssize_t off = 0; off + (ssize_t)sizeof(struct vigil_rec_hdr) <= r;) {
			struct vigil_rec_hdr *h = (void *)(buf + off);

			if (h->size < sizeof(*h))
				break;
			if (n < SHARED_MAX)
				mine[1 + n++] = h->seq;
			off += h->size;
		}
	}
	mine[0] = n;
	if (pid == 0)
		_exit(0);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	close(rfd);
	for (uint64_t i = 0; i < seen[0]; i++)
		for (uint64_t j = 0; j < seen[SHARED_MAX + 1]; j++)
			if (seen[1 + i] == seen[SHARED_MAX + 2 + j])
				dup++;
	CHECK(seen[0] + seen[SHARED_MAX + 1] >= SHARED_N, "read %llu + %llu records",
	      (unsigned long long)seen[0], (unsigned long long)seen[SHARED_MAX + 1]);
	CHECK(dup == 0, "%d records returned to both readers", dup);
	printf("  shared fd: %llu + %llu records, %d twice\n",
	       (unsigned long long)seen[0], (unsigned long long)seen[SHARED_MAX + 1], dup);
	munmap(seen, 2 * (SHARED_MAX + 1) * sizeof(*seen));
}

/* A "extend_pending_<which>: N" line of the securityfs status, or ~0. */
static uint64_t status_pending(const char *which)
{
	FILE *f = fopen("/sys/kernel/security/vigil/status", "r");
	char line[256], key[64];
	unsigned long long v = ~0ULL;

	snprintf(key, sizeof(key), "extend_pending_%s: %%llu", which);
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, key, &v) == 1)
			break;
	if (f)
		fclose(f);
	return v;
}

/*
 * After the TPM went away (a checkpoint's extend failed already): a MEASURE
 * is logged but not extended (EIO with log_seq), it and every later record
 * for its PCR stay pending in log order, TRIM refuses to fold a pending
 * record (EAGAIN, nothing changes) and folds only extended ones up to the
 * first pending record. Prints the BASE of that cut ("base-cut ...") so
 * the script can compare it with the PCR values read before the TPM died.
 */
static void t_extend_pending(void)
{
	struct vigil_measure m = { .size = sizeof(m) };
	struct vigil_trim t = { .size = sizeof(t) };
	struct vigil_log_base *base = NULL;
	uint64_t p1, p2, pev, cut;
	struct vigil_info a, b;
	struct vt_log log;
	char hex[2 * 64 + 1];

	pev = status_pending("events");
	CHECK(pev != ~0ULL && pev > 0, "extend_pending_events %llu, want a seq",
	      (unsigned long long)pev);
	strcpy(m.name, "test:after-tpm-gone");
	memset(m.digest, 0xcd, sizeof(m.digest));
	errno = 0;
	CHECK(ioctl(fd, VIGIL_IOC_MEASURE, &m) == -1 && errno == EIO,
	      "MEASURE without a TPM: %s, want EIO", strerror(errno));
	p1 = m.log_seq;
	CHECK(p1 > 0, "MEASURE: no log_seq with EIO");
	CHECK(status_pending("config") == p1, "extend_pending_config %llu, want %llu",
	      (unsigned long long)status_pending("config"), (unsigned long long)p1);
	m.log_seq = 0;
	errno = 0;
	CHECK(ioctl(fd, VIGIL_IOC_MEASURE, &m) == -1 && errno == EIO,
	      "second MEASURE: %s, want EIO", strerror(errno));
	p2 = m.log_seq;
	CHECK(p2 > p1, "second MEASURE log_seq %llu", (unsigned long long)p2);
	CHECK(status_pending("config") == p1, "pending moved to %llu, want %llu",
	      (unsigned long long)status_pending("config"), (unsigned long long)p1);

	/* a pending record must not be folded */
	vt_info(fd, &a);
	t.before_seq = p1 + 1;
	EXPECT_ERR(VIGIL_IOC_TRIM, &t, EAGAIN);
	t.before_seq = pev + 1;
	EXPECT_ERR(VIGIL_IOC_TRIM, &t, EAGAIN);
	vt_info(fd, &b);
	CHECK(a.log_first_seq == b.log_first_seq && a.log_records <= b.log_records,
	      "refused TRIM changed the log: first %llu -> %llu",
	      (unsigned long long)a.log_first_seq, (unsigned long long)b.log_first_seq);

	/* up to the first pending record: only extended records are folded */
	cut = pev < p1 ? pev : p1;
	t.before_seq = cut;
	t.trimmed = 0;
	CHECK(ioctl(fd, VIGIL_IOC_TRIM, &t) == 0, "TRIM to %llu: %s",
	      (unsigned long long)cut, strerror(errno));
	if (vt_read_log(&log) == 0) {
		for (size_t i = 0; i < log.nrec; i++)
			if (log.rec[i]->type == VIGIL_LOG_BASE)
				base = (void *)log.rec[i];
		CHECK(base && base->first_kept_seq == cut, "no BASE for the cut at %llu",
		      (unsigned long long)cut);
		for (uint32_t k = 0; base && k < base->nr_banks; k++) {
			int n = vt_alg_size(base->bank[k].alg);

			if (n <= 0)
				continue;
			vt_hex(hex, base->bank[k].config, n);
			printf("base-cut alg=0x%04x config=%s", base->bank[k].alg, hex);
			vt_hex(hex, base->bank[k].events, n);
			printf(" events=%s\n", hex);
		}
		vt_log_free(&log);
	}
	CHECK(status_pending("config") == p1 && status_pending("events") == pev,
	      "TRIM moved the pending seqs");
	printf("pending config from %llu, events from %llu; trimmed %llu before %llu\n",
	       (unsigned long long)p1, (unsigned long long)pev,
	       (unsigned long long)t.trimmed, (unsigned long long)cut);
}

static const struct {
	const char *name;
	void (*fn)(void);
} cases[] = {
	{ "version", t_version },
	{ "info", t_info },
	{ "bad-size", t_bad_size },
	{ "bad-flags", t_bad_flags },
	{ "bad-reserved", t_bad_reserved },
	{ "bad-pointer", t_bad_pointer },
	{ "unknown-cmd", t_unknown_cmd },
	{ "huge-len", t_huge_len },
	{ "bad-name", t_bad_name },
	{ "bad-trim", t_bad_trim },
	{ "unpriv", t_unpriv },
	{ "commit", t_commit },
	{ "measure", t_measure },
	{ "read-rules", t_read_rules },
	{ "shared-fd", t_shared_fd },
	{ "checkpoint", t_checkpoint },
	{ "trim", t_trim },
	{ "logcap", t_logcap },
	{ "checkpoint-tpm-error", t_checkpoint_tpm_error },
	{ "extend-pending", t_extend_pending },
	{ "extensible", t_extensible },
	{ "readonly-arg", t_readonly_arg },
	{ "window", t_window },
	{ "producer-add", t_producer_add },
	{ "sealed", t_sealed },
	{ "skip-to-end", t_skip_to_end },
};

int main(int argc, char **argv)
{
	size_t i;
	int a;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2) {
		fprintf(stderr, "usage: %s --list | CASE...\n", argv[0]);
		return 2;
	}
	if (!strcmp(argv[1], "--list")) {
		/* the cases that need a special module set-up are not listed */
		for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
			if (strcmp(cases[i].name, "logcap") &&
			    strcmp(cases[i].name, "checkpoint-tpm-error") &&
			    strcmp(cases[i].name, "extend-pending") &&
			    strcmp(cases[i].name, "sealed") &&
			    strcmp(cases[i].name, "skip-to-end"))
				printf("%s\n", cases[i].name);
		return 0;
	}
	fd = vt_open(O_RDWR);
	if (fd < 0)
		return 1;
	for (a = 1; a < argc; a++) {
		for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
			if (!strcmp(argv[a], cases[i].name))
				break;
		if (i == sizeof(cases) / sizeof(cases[0])) {
			printf("unknown case %s\n", argv[a]);
			failures++;
			continue;
		}
		int before = failures;

		cases[i].fn();
		printf("%s %s\n", failures == before ? "ok" : "FAILED", argv[a]);
	}
	close(fd);
	return failures ? 1 : 0;
}
