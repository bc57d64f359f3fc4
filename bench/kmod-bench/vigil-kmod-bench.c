// SPDX-License-Identifier: GPL-2.0
/*
 * vigil-kmod-bench - commit cost and checkpoint latency of vigil.ko, and a
 * check that the kfuncs are callable from BPF and keep their contract.
 *
 *   vigil-kmod-bench --check      kfunc contract from a tp_btf program
 *   vigil-kmod-bench --foreign    load WITHOUT registering as a producer:
 *                                 exit 0 only if the module refuses it (at
 *                                 load with the kfunc filter; on 6.1 every
 *                                 call, see foreign_callsite())
 *   vigil-kmod-bench --hold SECS  load and attach, print "attached", sleep
 *   vigil-kmod-bench [-n ITERS] [-r RUNS] [-c CHECKPOINTS]
 *       per-record cost of reserve+fill+submit (ring buffer only) against
 *       reserve+fill+vigil_commit+submit, timed inside BPF; then the
 *       latency of forced checkpoints (PCR extend in every bank + TPM2
 *       ContextLoad/Sign/FlushContext), timed around the ioctl.
 * Prints "BENCH: key=value ..." lines.
 */
#include <getopt.h>
#include <stdbool.h>
#include <time.h>

#include <bpf/libbpf.h>

#include "kmod_bench.skel.h"
#include "vtlib.h"

static int fails;

#define CHECK(cond, ...)                                 \
	do {                                             \
		if (!(cond)) {                           \
			printf("FAIL: " __VA_ARGS__);    \
			printf("\n");                    \
			fails++;                         \
		}                                        \
	} while (0)

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static int on_record(void *ctx, void *data, size_t len)
{
	uint64_t *count = ctx;

	(void)data;
	(void)len;
	(*count)++;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int do_check(struct kmod_bench *skel, int fd)
{
	struct vigil_info a, b;

	vt_info(fd, &a);
	skel->bss->mode = 2;
	getppid();
	vt_info(fd, &b);
	CHECK(skel->bss->runs == 1, "program ran %llu times", (unsigned long long)skel->bss->runs);
	CHECK(skel->bss->chk_valid == 0, "valid commit returned %d", skel->bss->chk_valid);
	CHECK(skel->bss->chk_valid_seq == a.next_seq, "valid commit got seq %llu, next was %llu",
	      (unsigned long long)skel->bss->chk_valid_seq, (unsigned long long)a.next_seq);
	CHECK(skel->bss->chk_valid_flags & VIGIL_REC_F_COMMITTED, "COMMITTED flag not set");
	CHECK(skel->bss->chk_bad_type == -EINVAL, "bad type: %d", skel->bss->chk_bad_type);
	CHECK(skel->bss->chk_bad_size == -EINVAL, "bad size: %d", skel->bss->chk_bad_size);
	CHECK(skel->bss->chk_null_calls > 0 &&
	      skel->bss->chk_null_einval == skel->bss->chk_null_calls,
	      "NULL record: %u calls, %u -EINVAL", skel->bss->chk_null_calls,
	      skel->bss->chk_null_einval);
	CHECK(skel->bss->chk_types == 0x1f, "per-type commits: mask 0x%x, want 0x1f",
	      skel->bss->chk_types);
	CHECK(b.committed == a.committed + 6 && b.next_seq == a.next_seq + 6,
	      "committed %llu -> %llu", (unsigned long long)a.committed,
	      (unsigned long long)b.committed);
	CHECK(b.rejected == a.rejected + 64 + 2, "rejected %llu -> %llu (want +66)",
	      (unsigned long long)a.rejected, (unsigned long long)b.rejected);
	CHECK(skel->bss->chk_drop_ok == 0 && skel->bss->chk_drop_bad == -EINVAL,
	      "vigil_drop returned %d / %d", skel->bss->chk_drop_ok, skel->bss->chk_drop_bad);
	CHECK(b.dropped == a.dropped + 4, "dropped %llu -> %llu (want +4)",
	      (unsigned long long)a.dropped, (unsigned long long)b.dropped);
	CHECK(memcmp(a.chain_head, b.chain_head, 32), "chain head did not move");
	CHECK(skel->bss->chk_alive == 0, "vigil_alive returned %d", skel->bss->chk_alive);
	printf("%s: kfunc commit seq %llu, %u NULL records rejected, drops counted\n",
	       fails ? "kfunc check FAILED" : "kfunc check ok",
	       (unsigned long long)skel->bss->chk_valid_seq, skel->bss->chk_null_calls);
	return fails ? 1 : 0;
}

/* alive[] counters of a fresh checkpoint (they are in checkpoints only). */
static int alive_now(int fd, uint64_t *alive)
{
	struct vigil_checkpoint_req *req = calloc(1, sizeof(*req));
	int ret;

	if (!req)
		return -1;
	req->size = sizeof(*req);
	ret = ioctl(fd, VIGIL_IOC_CHECKPOINT, req);
	if (!ret)
		memcpy(alive, req->cp.alive, sizeof(req->cp.alive));
	free(req);
	return ret;
}

/*
 * The attack on a kernel without the kfunc filter (6.1, kfunc_guard
 * CALLSITE): a root program that was never registered loads and runs the
 * whole contract check, every kfunc call in it (vigil_commit 72 times,
 * from the program and from a bpf_loop callback, vigil_drop 4 times,
 * vigil_alive once) must be refused with -EPERM and counted as rejected,
 * nothing may be committed or dropped, and the alive counters must not
 * move.
 */
static int foreign_callsite(struct kmod_bench *skel, int fd)
{
	uint64_t alive_a[VIGIL_PROD_SLOTS], alive_b[VIGIL_PROD_SLOTS];
	struct vigil_info a, b;

	if (kmod_bench__load(skel)) {
		printf("FAIL: the foreign program did not load (kfunc_guard CALLSITE loads it)\n");
		return 1;
	}
	if (kmod_bench__attach(skel)) {
		printf("FAIL: attach\n");
		return 1;
	}
	CHECK(alive_now(fd, alive_a) == 0, "CHECKPOINT: %s", strerror(errno));
	vt_info(fd, &a);
	skel->bss->mode = 2;
	getppid();
	vt_info(fd, &b);
	CHECK(alive_now(fd, alive_b) == 0, "CHECKPOINT: %s", strerror(errno));
	CHECK(skel->bss->runs == 1, "program ran %llu times", (unsigned long long)skel->bss->runs);
	CHECK(skel->bss->chk_valid == -EPERM, "valid commit returned %d, want -EPERM",
	      skel->bss->chk_valid);
	CHECK(skel->bss->chk_valid_seq == 0 &&
	      !(skel->bss->chk_valid_flags & VIGIL_REC_F_COMMITTED),
	      "the record got seq %llu flags 0x%x", (unsigned long long)skel->bss->chk_valid_seq,
	      skel->bss->chk_valid_flags);
	CHECK(skel->bss->chk_bad_type == -EPERM && skel->bss->chk_bad_size == -EPERM,
	      "bad type/size: %d / %d", skel->bss->chk_bad_type, skel->bss->chk_bad_size);
	CHECK(skel->bss->chk_types == 0, "per-type commits succeeded: mask 0x%x",
	      skel->bss->chk_types);
	CHECK(skel->bss->chk_null_calls > 0 && skel->bss->chk_null_einval == 0,
	      "NULL records: %u calls, %u reached the record checks", skel->bss->chk_null_calls,
	      skel->bss->chk_null_einval);
	CHECK(skel->bss->chk_drop_ok == -EPERM && skel->bss->chk_drop_bad == -EPERM,
	      "vigil_drop returned %d / %d", skel->bss->chk_drop_ok, skel->bss->chk_drop_bad);
	CHECK(skel->bss->chk_alive == -EPERM, "vigil_alive returned %d", skel->bss->chk_alive);
	CHECK(b.committed == a.committed && b.next_seq == a.next_seq &&
	      !memcmp(a.chain_head, b.chain_head, 32),
	      "committed %llu -> %llu: the chain moved", (unsigned long long)a.committed,
	      (unsigned long long)b.committed);
	CHECK(b.dropped == a.dropped, "dropped %llu -> %llu", (unsigned long long)a.dropped,
	      (unsigned long long)b.dropped);
	CHECK(b.rejected == a.rejected + 3 + 5 + 64 + 4 + 1, "rejected %llu -> %llu (want +77)",
	      (unsigned long long)a.rejected, (unsigned long long)b.rejected);
	CHECK(alive_b[VIGIL_PROD_SYSCALL] == alive_a[VIGIL_PROD_SYSCALL],
	      "alive[syscall] %llu -> %llu", (unsigned long long)alive_a[VIGIL_PROD_SYSCALL],
	      (unsigned long long)alive_b[VIGIL_PROD_SYSCALL]);
	printf("%s: rejected %llu -> %llu, committed %llu, alive[syscall] %llu\n",
	       fails ? "ATTACK SUCCEEDED" : "refused at call",
	       (unsigned long long)a.rejected, (unsigned long long)b.rejected,
	       (unsigned long long)(b.committed - a.committed),
	       (unsigned long long)alive_b[VIGIL_PROD_SYSCALL]);
	return fails ? 1 : 0;
}

static double run_mode(struct kmod_bench *skel, struct ring_buffer *ring, int mode,
		       int iters, int runs)
{
	skel->bss->mode = mode;
	skel->bss->iters = iters;
	skel->bss->elapsed_ns = 0;
	skel->bss->runs = 0;
	skel->bss->n_full = 0;
	for (int r = 0; r < runs; r++) {
		getppid();
		ring_buffer__consume(ring);
	}
	CHECK(skel->bss->n_full == 0, "ring full %llu times", (unsigned long long)skel->bss->n_full);
	return (double)skel->bss->elapsed_ns / ((double)iters * skel->bss->runs);
}

int main(int argc, char **argv)
{
	int iters = 2000, runs = 20, ncp = 30, rounds = 5, hold = -1, opt, fd;
	bool check = false, foreign = false;
	struct vigil_producers prod = { .size = sizeof(prod) };
	struct kmod_bench *skel;
	struct ring_buffer *ring;
	uint64_t consumed = 0;
	static const struct option opts[] = {
		{ "check", no_argument, NULL, 'k' },
		{ "hold", required_argument, NULL, 'H' },
		{ "foreign", no_argument, NULL, 'F' },
		{}
	};

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt_long(argc, argv, "n:r:c:", opts, NULL)) != -1) {
		switch (opt) {
		case 'k': check = true; break;
		case 'H': hold = atoi(optarg); break;
		case 'F': foreign = true; break;
		case 'n': iters = atoi(optarg); break;
		case 'r': runs = atoi(optarg); break;
		case 'c': ncp = atoi(optarg); break;
		default: return 2;
		}
	}
	fd = vt_open(O_RDWR);
	if (fd < 0)
		return 1;
	skel = kmod_bench__open();
	if (!skel) {
		fprintf(stderr, "open BPF object failed\n");
		return 1;
	}
	skel->rodata->target_pid = getpid();
	if (foreign) {
		/* An attacker's program: root, but not loaded in a producer window. */
		struct vigil_info a, b;

		vt_info(fd, &a);
		if (a.kfunc_guard == VIGIL_KFUNC_GUARD_CALLSITE) {
			int ret = foreign_callsite(skel, fd);

			kmod_bench__destroy(skel);
			return ret;
		}
		if (!kmod_bench__load(skel)) {
			printf("ATTACK SUCCEEDED: a program outside the producer window loaded with the vigil kfuncs\n");
			kmod_bench__destroy(skel);
			return 1;
		}
		vt_info(fd, &b);
		printf("refused at load; rejected %llu -> %llu\n",
		       (unsigned long long)a.rejected, (unsigned long long)b.rejected);
		kmod_bench__destroy(skel);
		return b.rejected > a.rejected ? 0 : 1;
	}
	if (ioctl(fd, VIGIL_IOC_PRODUCERS_OPEN, &prod)) {
		perror("VIGIL_IOC_PRODUCERS_OPEN");
		return 1;
	}
	if (kmod_bench__load(skel)) {
		fprintf(stderr, "load failed (module BTF? kfunc registration?)\n");
		return 1;
	}
	{
		/* Without the kfunc filter the module learns the program from us. */
		struct vigil_producer_add add = { .size = sizeof(add) };
		struct vigil_info info;

		vt_info(fd, &info);
		add.prog_fd = bpf_program__fd(skel->progs.on_sys_enter);
		if (info.kfunc_guard == VIGIL_KFUNC_GUARD_CALLSITE &&
		    ioctl(fd, VIGIL_IOC_PRODUCERS_ADD, &add)) {
			perror("VIGIL_IOC_PRODUCERS_ADD");
			return 1;
		}
	}
	if (ioctl(fd, VIGIL_IOC_PRODUCERS_SEAL, &prod)) {
		perror("VIGIL_IOC_PRODUCERS_SEAL");
		return 1;
	}
	if (kmod_bench__attach(skel)) {
		fprintf(stderr, "load/attach failed (module BTF? kfunc registration?)\n");
		return 1;
	}
	if (hold >= 0) {
		close(fd);	/* only the BPF program holds the module now */
		printf("attached\n");
		sleep(hold);
		kmod_bench__destroy(skel);
		return 0;
	}
	if (check) {
		int ret = do_check(skel, fd);

		kmod_bench__destroy(skel);
		return ret;
	}

	ring = ring_buffer__new(bpf_map__fd(skel->maps.rb), on_record, &consumed, NULL);
	if (!ring)
		return 1;
	{
		double base[16], commit[16], ratio[16];
		struct vigil_info a, b;

		if (rounds > 16)
			rounds = 16;
		vt_info(fd, &a);
		run_mode(skel, ring, 0, iters, 2);	/* warm-up */
		for (int r = 0; r < rounds; r++) {
			base[r] = run_mode(skel, ring, 0, iters, runs);
			commit[r] = run_mode(skel, ring, 1, iters, runs);
			ratio[r] = commit[r] / base[r];
		}
		vt_info(fd, &b);
		CHECK(b.committed - a.committed == (uint64_t)rounds * runs * iters,
		      "committed %llu, expected %llu", (unsigned long long)(b.committed - a.committed),
		      (unsigned long long)rounds * runs * iters);
		for (int i = 0; i < rounds; i++)	/* sort each series */
			for (int j = i + 1; j < rounds; j++) {
				double t;

				if (ratio[j] < ratio[i]) { t = ratio[i]; ratio[i] = ratio[j]; ratio[j] = t; }
				if (commit[j] < commit[i]) { t = commit[i]; commit[i] = commit[j]; commit[j] = t; }
				if (base[j] < base[i]) { t = base[i]; base[i] = base[j]; base[j] = t; }
			}
		printf("BENCH: commit record=160B iters=%d runs=%d rounds=%d ringbuf_ns=%.0f commit_ns=%.0f ratio_median=%.2f ratio_min=%.2f ratio_max=%.2f consumed=%llu\n",
		       iters, runs, rounds, base[rounds / 2], commit[rounds / 2],
		       ratio[rounds / 2], ratio[0], ratio[rounds - 1],
		       (unsigned long long)consumed);
	}
	ring_buffer__free(ring);
	kmod_bench__destroy(skel);

	{
		uint64_t *lat = calloc(ncp, sizeof(*lat));
		struct vigil_checkpoint_req *req = calloc(1, sizeof(*req));
		int signed_ok = 0;

		for (int i = 0; i < ncp; i++) {
			uint64_t t0;

			memset(req, 0, sizeof(*req));
			req->size = sizeof(*req);
			t0 = now_ns();
			if (ioctl(fd, VIGIL_IOC_CHECKPOINT, req)) {
				CHECK(0, "CHECKPOINT: %s", strerror(errno));
				break;
			}
			lat[i] = now_ns() - t0;
			signed_ok += req->sig.status == VIGIL_SIG_OK;
		}
		qsort(lat, ncp, sizeof(*lat), cmp_u64);
		printf("BENCH: checkpoint n=%d signed=%d p50_ms=%.2f p95_ms=%.2f max_ms=%.2f\n",
		       ncp, signed_ok, lat[ncp / 2] / 1e6, lat[ncp * 95 / 100] / 1e6,
		       lat[ncp - 1] / 1e6);
		free(lat);
		free(req);
	}
	close(fd);
	return fails ? 1 : 0;
}
