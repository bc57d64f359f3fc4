// SPDX-License-Identifier: GPL-2.0
/*
 * vigil-stress - concurrent committers (COMMIT ioctl, the same chain code
 * the kfunc runs), forced checkpoints and blocking readers, then a check
 * that no sequence number was lost or duplicated: every commit's seq is
 * unique, the log holds exactly one copy of each, and the readers saw
 * whole records in seq order.
 *
 * usage: vigil-stress [-t committers] [-n commits each] [-c checkpoints]
 *                     [-r readers]
 */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "vtlib.h"

static int nthreads = 4, ncommits = 500, ncheckpoints = 20, nreaders = 2;
static uint32_t run_kind;
static uint64_t *seqs;		/* [thread * ncommits + i] */
static atomic_int errors;
static atomic_int committers_left;

static void *committer(void *arg)
{
	long t = (long)arg;
	int fd = vt_open(O_RDWR);
	char payload[64];

	if (fd < 0) {
		atomic_fetch_add(&errors, 1);
		return NULL;
	}
	for (int i = 0; i < ncommits; i++) {
		struct vigil_commit c = { .size = sizeof(c), .kind = run_kind };

		c.len = snprintf(payload, sizeof(payload), "t%ld i%d", t, i);
		c.payload = (uintptr_t)payload;
		if (ioctl(fd, VIGIL_IOC_COMMIT, &c)) {
			fprintf(stderr, "COMMIT: %s\n", strerror(errno));
			atomic_fetch_add(&errors, 1);
			break;
		}
		seqs[t * ncommits + i] = c.seq;
	}
	close(fd);
	atomic_fetch_sub(&committers_left, 1);
	return NULL;
}

static void *checkpointer(void *arg)
{
	int fd = vt_open(O_RDWR);
	uint64_t last = 0;

	(void)arg;
	if (fd < 0) {
		atomic_fetch_add(&errors, 1);
		return NULL;
	}
	for (int i = 0; i < ncheckpoints; i++) {
		struct vigil_checkpoint_req *r = calloc(1, sizeof(*r));

		r->size = sizeof(*r);
		if (ioctl(fd, VIGIL_IOC_CHECKPOINT, r)) {
			fprintf(stderr, "CHECKPOINT: %s\n", strerror(errno));
			atomic_fetch_add(&errors, 1);
		} else {
			if (r->cp.last_seq < last) {
				fprintf(stderr, "checkpoint last_seq went back\n");
				atomic_fetch_add(&errors, 1);
			}
			last = r->cp.last_seq;
			if (r->sig.checkpoint_seq != r->cp.hdr.seq) {
				fprintf(stderr, "signature for %llu, checkpoint %llu\n",
					(unsigned long long)r->sig.checkpoint_seq,
					(unsigned long long)r->cp.hdr.seq);
				atomic_fetch_add(&errors, 1);
			}
		}
		free(r);
		usleep(5000);
	}
	close(fd);
	return NULL;
}

/* A blocking reader: whole records, strictly increasing log seqs. */
static void *reader(void *arg)
{
	int fd = vt_open(O_RDONLY);
	static __thread uint8_t buf[16384];
	uint64_t last = 0;
	long nrec = 0;

	(void)arg;
	if (fd < 0) {
		atomic_fetch_add(&errors, 1);
		return NULL;
	}
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, 200) == 0) {
			if (atomic_load(&committers_left) == 0)
				break;
			continue;
		}
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n <= 0) {
			fprintf(stderr, "reader: %zd %s\n", n, strerror(errno));
			atomic_fetch_add(&errors, 1);
			break;
		}
		for (ssize_t off = 0; off < n;) {
			struct vigil_rec_hdr *h = (void *)(buf + off);

			if (h->size < sizeof(*h) || off + h->size > n) {
				fprintf(stderr, "reader: split record\n");
				atomic_fetch_add(&errors, 1);
				goto out;
			}
			if (last && h->seq != last + 1) {
				fprintf(stderr, "reader: log seq %llu after %llu\n",
					(unsigned long long)h->seq,
					(unsigned long long)last);
				atomic_fetch_add(&errors, 1);
			}
			last = h->seq;
			nrec++;
			off += h->size;
		}
	}
out:
	close(fd);
	return (void *)nrec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	pthread_t th[64], cpt, rd[8];
	struct vt_log log;
	size_t total, found = 0, i;
	int opt, fail = 0;

	while ((opt = getopt(argc, argv, "t:n:c:r:")) != -1) {
		switch (opt) {
		case 't': nthreads = atoi(optarg); break;
		case 'n': ncommits = atoi(optarg); break;
		case 'c': ncheckpoints = atoi(optarg); break;
		case 'r': nreaders = atoi(optarg); break;
		default: return 2;
		}
	}
	if (nthreads < 1 || nthreads > 64 || nreaders > 8 || ncommits < 1)
		return 2;
	run_kind = 0x57000000 | (getpid() & 0xffffff);
	total = (size_t)nthreads * ncommits;
	seqs = calloc(total, sizeof(*seqs));
	atomic_store(&committers_left, nthreads);

	for (i = 0; i < (size_t)nreaders; i++)
		pthread_create(&rd[i], NULL, reader, NULL);
	pthread_create(&cpt, NULL, checkpointer, NULL);
	for (long t = 0; t < nthreads; t++)
		pthread_create(&th[t], NULL, committer, (void *)t);
	for (int t = 0; t < nthreads; t++)
		pthread_join(th[t], NULL);
	pthread_join(cpt, NULL);
	for (i = 0; i < (size_t)nreaders; i++) {
		void *n;

		pthread_join(rd[i], &n);
		printf("reader %zu: %ld records\n", i, (long)n);
	}

	/* every commit got a unique seq */
	qsort(seqs, total, sizeof(*seqs), cmp_u64);
	for (i = 0; i < total; i++) {
		if (!seqs[i] || (i && seqs[i] == seqs[i - 1])) {
			printf("FAIL: seq %llu zero or duplicated\n",
			       (unsigned long long)seqs[i]);
			fail = 1;
			break;
		}
	}
	/* the log holds exactly one copy of each of our events, same seqs */
	if (vt_read_log(&log)) {
		printf("FAIL: reading the log\n");
		return 1;
	}
	for (i = 0; i < log.nrec; i++) {
		struct vigil_log_event *le = (void *)log.rec[i];

		if (le->hdr.type != VIGIL_LOG_EVENT || le->ev.kind != run_kind)
			continue;
		if (!bsearch(&le->ev.hdr.seq, seqs, total, sizeof(*seqs), cmp_u64)) {
			printf("FAIL: logged seq %llu was not returned to a committer\n",
			       (unsigned long long)le->ev.hdr.seq);
			fail = 1;
		}
		found++;
	}
	if (found != total) {
		printf("FAIL: %zu of our events in the log, %zu committed\n", found,
		       total);
		fail = 1;
	}
	if (atomic_load(&errors)) {
		printf("FAIL: %d errors in threads\n", atomic_load(&errors));
		fail = 1;
	}
	printf("%s: %d committers x %d commits, %d checkpoints, %d readers, seqs %llu-%llu\n",
	       fail ? "stress FAILED" : "stress ok", nthreads, ncommits,
	       ncheckpoints, nreaders, (unsigned long long)seqs[0],
	       (unsigned long long)seqs[total - 1]);
	vt_log_free(&log);
	free(seqs);
	return fail;
}
