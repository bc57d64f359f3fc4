// SPDX-License-Identifier: GPL-2.0
/*
 * vigil-forge - play a root attacker: write a forged record into vigil's
 * BPF ring buffer from a BPF program that is not vigil's. The collector
 * must flag it; this tool only writes it.
 *
 * The ring buffer is found the way an attacker would: walk every BPF map
 * id, keep the ring buffers named like vigil's (or take --map-id / --pin).
 * forge.bpf.c's placeholder ring buffer is swapped for that map with
 * bpf_map__reuse_fd() before load; the record is built here, handed over
 * in .bss and written with bpf_ringbuf_output() on one getppid().
 *
 * Exit codes: 0 written, 1 error, 2 usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "vigil.h"
#include "forge.skel.h"

/* vigil's ring buffer (bpf/vigil.bpf.h), as map info reports the name */
#define VIGIL_RB_NAME	"vigil_events"

#define MAX_CANDIDATES	64

static const char usage_text[] =
"Usage: vigil-forge [OPTIONS]\n"
"Write one forged record into vigil's BPF ring buffer from a foreign BPF\n"
"program (a test of the collector's defences). Needs root.\n"
"\n"
"Target (default: the ring buffer named \"" VIGIL_RB_NAME "\", newest id if several):\n"
"  --map-id N        use the BPF map with this id (must be a ring buffer)\n"
"  --pin PATH        use the ring buffer pinned at PATH (bpffs)\n"
"  --list            list the candidate ring buffers and exit\n"
"\n"
"Record (a valid header: type, version 1, size of the type, ts_ns = now\n"
"in CLOCK_BOOTTIME; body from this process):\n"
"  --type T          exec|exit|fork|sample|agent (default exec)\n"
"  --seq N           hdr.seq (default 0)\n"
"  --committed       set VIGIL_REC_F_COMMITTED in hdr.flags\n"
"  --flags N         hdr.flags value (before --committed is or-ed in)\n"
"  --agent-id N      hdr.agent_id (default 0)\n"
"  --pid N           pid field of the body (default this process)\n"
"  --comm STR        comm of exec/exit/fork records (default this process's)\n"
"  --filename STR    filename of an exec record (default this executable)\n"
"  --name STR        name of an agent record (default \"forged\")\n"
"\n"
"Copy (replay or tamper with a real record):\n"
"  --copy-of FILE    take the bytes of a record from FILE: records back to\n"
"                    back, hdr.size bytes each (vigild --raw-out)\n"
"  --index K         which record of FILE, from 0 (default 0); the bytes are\n"
"                    kept except for --seq/--committed/--flags/--agent-id\n"
"                    when given\n"
"  --flip-byte OFF   xor byte OFF of the record with 0xff (after all else;\n"
"                    the length written stays the record's)\n"
"\n"
"  --hold SECS       keep the foreign program loaded this long after writing\n"
"  -v, --verbose     libbpf debug output\n"
"  -h, --help        this text\n"
"\n"
"Prints one line: \"forged: type=... seq=... flags=... size=... map_id=...\".\n"
"Exit codes: 0 written, 1 error, 2 usage.\n";

struct opts {
	const char *type;
	bool type_set;
	uint64_t seq;
	bool seq_set;
	bool committed;
	uint32_t flags;
	bool flags_set;
	uint32_t agent_id;
	bool agent_id_set;
	uint32_t pid;
	bool pid_set;
	const char *comm;
	const char *filename;
	const char *name;
	const char *copy_of;
	uint64_t index;
	bool index_set;
	uint64_t flip;
	bool flip_set;
	uint32_t map_id;
	const char *pin;
	bool list;
	unsigned int hold;
	bool verbose;
};

static bool verbose;

static int print_libbpf(enum libbpf_print_level level, const char *fmt,
			va_list args)
{
	if (level == LIBBPF_DEBUG && !verbose)
		return 0;
	return vfprintf(stderr, fmt, args);
}

static int parse_u64(const char *s, const char *what, uint64_t max,
		     uint64_t *out)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end || *s == '-' || v > max) {
		fprintf(stderr, "vigil-forge: bad %s '%s'\n", what, s);
		return -1;
	}
	*out = v;
	return 0;
}

static const struct {
	const char *name;
	uint16_t type;
	uint32_t size;
} types[] = {
	{ "exec", VIGIL_EV_EXEC, sizeof(struct vigil_ev_exec) },
	{ "exit", VIGIL_EV_EXIT, sizeof(struct vigil_ev_exit) },
	{ "fork", VIGIL_EV_FORK, sizeof(struct vigil_ev_fork) },
	{ "sample", VIGIL_EV_SAMPLE, sizeof(struct vigil_ev_sample) },
	{ "agent", VIGIL_EV_AGENT, sizeof(struct vigil_ev_agent) },
	{ "user", VIGIL_EV_USER, sizeof(struct vigil_ev_user) },
};

static const char *type_name(uint16_t type)
{
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (types[i].type == type)
			return types[i].name;
	return "unknown";
}

static uint64_t boot_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* Copies a string into a fixed field, NUL-padded, always terminated. */
static void set_str(char *dst, size_t len, const char *src)
{
	memset(dst, 0, len);
	strncpy(dst, src, len - 1);
}

/* Builds a fresh record of o->type; returns its size or 0. */
static uint32_t build_record(const struct opts *o, uint8_t *buf)
{
	char comm[VIGIL_COMM_LEN] = "", exe[VIGIL_PATH_LEN] = "";
	struct vigil_rec_hdr *hdr = (struct vigil_rec_hdr *)buf;
	uint32_t pid = o->pid_set ? o->pid : (uint32_t)getpid();
	uint32_t tid = o->pid_set ? o->pid : (uint32_t)syscall(SYS_gettid);
	uint32_t ppid = (uint32_t)getppid();	/* before the program is attached */
	uint32_t uid = (uint32_t)getuid();
	uint16_t type = 0;
	uint32_t size = 0;
	ssize_t n;

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcmp(o->type, types[i].name) && types[i].type != VIGIL_EV_USER) {
			type = types[i].type;
			size = types[i].size;
		}
	if (!type) {
		fprintf(stderr, "vigil-forge: unknown --type '%s' (exec|exit|fork|sample|agent)\n",
			o->type);
		return 0;
	}
	if ((o->filename && type != VIGIL_EV_EXEC) ||
	    (o->comm && type != VIGIL_EV_EXEC && type != VIGIL_EV_EXIT &&
	     type != VIGIL_EV_FORK) ||
	    (o->name && type != VIGIL_EV_AGENT)) {
		fprintf(stderr, "vigil-forge: --comm is for exec/exit/fork, --filename for exec, --name for agent\n");
		return 0;
	}

	prctl(PR_GET_NAME, comm);
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n < 0)
		strcpy(exe, "/usr/bin/vigil-forge");

	memset(buf, 0, size);
	hdr->type = type;
	hdr->version = 1;
	hdr->size = size;

	switch (type) {
	case VIGIL_EV_EXEC: {
		struct vigil_ev_exec *ev = (void *)buf;

		ev->pid = pid;
		ev->tid = tid;
		ev->ppid = ppid;
		ev->uid = uid;
		ev->old_pid = pid;
		set_str(ev->comm, sizeof(ev->comm), o->comm ? o->comm : comm);
		set_str(ev->filename, sizeof(ev->filename),
			o->filename ? o->filename : exe);
		break;
	}
	case VIGIL_EV_EXIT: {
		struct vigil_ev_exit *ev = (void *)buf;

		ev->pid = pid;
		ev->tid = tid;
		ev->ppid = ppid;
		ev->uid = uid;
		ev->lifetime_ns = 1000000;
		ev->utime_ns = 100000;
		ev->stime_ns = 100000;
		ev->maxrss_kb = 1024;
		ev->min_flt = 100;
		ev->nvcsw = 1;
		set_str(ev->comm, sizeof(ev->comm), o->comm ? o->comm : comm);
		break;
	}
	case VIGIL_EV_FORK: {
		struct vigil_ev_fork *ev = (void *)buf;

		ev->pid = pid;
		ev->tid = tid;
		ev->ppid = ppid;
		ev->uid = uid;
		set_str(ev->comm, sizeof(ev->comm), o->comm ? o->comm : comm);
		break;
	}
	case VIGIL_EV_SAMPLE: {
		struct vigil_ev_sample *ev = (void *)buf;
		int cpu = sched_getcpu();

		ev->pid = pid;
		ev->cpu = cpu < 0 ? 0 : (uint32_t)cpu;
		ev->interval_ns = 1000000000;
		ev->oncpu_ns = 1000000;
		ev->nvcsw = 1;
		break;
	}
	case VIGIL_EV_AGENT: {
		struct vigil_ev_agent *ev = (void *)buf;

		ev->action = VIGIL_AGENT_REGISTER;
		ev->how = VIGIL_AGENT_BY_PID;
		ev->pid = pid;
		ev->uid = uid;
		set_str(ev->name, sizeof(ev->name), o->name ? o->name : "forged");
		break;
	}
	}
	hdr->ts_ns = boot_ns();
	return size;
}

/* Copies record o->index of o->copy_of into buf; returns its size or 0. */
static uint32_t copy_record(const struct opts *o, uint8_t *buf)
{
	struct vigil_rec_hdr hdr;
	uint64_t i = 0;
	long off = 0;
	FILE *f;

	f = fopen(o->copy_of, "rb");
	if (!f) {
		fprintf(stderr, "vigil-forge: %s: %s\n", o->copy_of, strerror(errno));
		return 0;
	}
	for (;;) {
		if (fread(&hdr, sizeof(hdr), 1, f) != 1) {
			fprintf(stderr, "vigil-forge: %s: %llu records, no index %llu\n",
				o->copy_of, (unsigned long long)i,
				(unsigned long long)o->index);
			goto fail;
		}
		if (hdr.size < sizeof(hdr) || hdr.size % 8 ||
		    hdr.size > VIGIL_RECORD_MAX) {
			fprintf(stderr, "vigil-forge: %s: record %llu at offset %ld has a bad size %u\n",
				o->copy_of, (unsigned long long)i, off, hdr.size);
			goto fail;
		}
		if (i == o->index)
			break;
		off += hdr.size;
		if (fseek(f, off, SEEK_SET)) {
			fprintf(stderr, "vigil-forge: %s: %s\n", o->copy_of, strerror(errno));
			goto fail;
		}
		i++;
	}
	memcpy(buf, &hdr, sizeof(hdr));
	if (fread(buf + sizeof(hdr), hdr.size - sizeof(hdr), 1, f) != 1) {
		fprintf(stderr, "vigil-forge: %s: record %llu is truncated\n",
			o->copy_of, (unsigned long long)i);
		goto fail;
	}
	fclose(f);
	return hdr.size;
fail:
	fclose(f);
	return 0;
}

struct cand {
	uint32_t id;
	uint32_t max_entries;
	char name[BPF_OBJ_NAME_LEN];
};

/*
 * Returns the number of ring buffers named like vigil's; the newest max of
 * them are in c[], oldest first.
 */
static int scan_maps(struct cand *c, int max)
{
	uint32_t id = 0;
	int n = 0, slot;

	for (;;) {
		struct bpf_map_info info;
		uint32_t len = sizeof(info);
		int fd;

		if (bpf_map_get_next_id(id, &id)) {
			if (errno == ENOENT)
				break;
			fprintf(stderr, "vigil-forge: BPF_MAP_GET_NEXT_ID: %s\n",
				strerror(errno));
			return -1;
		}
		fd = bpf_map_get_fd_by_id(id);
		if (fd < 0) {
			if (errno == ENOENT)
				continue;	/* freed in the meantime */
			fprintf(stderr, "vigil-forge: BPF_MAP_GET_FD_BY_ID %u: %s\n",
				id, strerror(errno));
			return -1;
		}
		memset(&info, 0, sizeof(info));
		if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
			fprintf(stderr, "vigil-forge: map %u: BPF_OBJ_GET_INFO_BY_FD: %s\n",
				id, strerror(errno));
			close(fd);
			return -1;
		}
		close(fd);
		if (info.type != BPF_MAP_TYPE_RINGBUF ||
		    strncmp(info.name, VIGIL_RB_NAME, BPF_OBJ_NAME_LEN - 1))
			continue;
		/* keep the newest max: ids come in increasing order */
		slot = n < max ? n : max - 1;
		if (n >= max)
			memmove(c, c + 1, (max - 1) * sizeof(*c));
		c[slot].id = info.id;
		c[slot].max_entries = info.max_entries;
		memcpy(c[slot].name, info.name, sizeof(c[slot].name));
		n++;
	}
	return n;
}

/* Opens the target ring buffer; returns an fd and fills *id, or -1. */
static int open_target(const struct opts *o, uint32_t *id)
{
	struct cand c[MAX_CANDIDATES];
	struct bpf_map_info info;
	uint32_t len = sizeof(info);
	int fd, n;

	if (o->pin) {
		fd = bpf_obj_get(o->pin);
		if (fd < 0) {
			fprintf(stderr, "vigil-forge: %s: %s\n", o->pin, strerror(errno));
			return -1;
		}
	} else if (o->map_id) {
		fd = bpf_map_get_fd_by_id(o->map_id);
		if (fd < 0) {
			fprintf(stderr, "vigil-forge: no BPF map with id %u: %s\n",
				o->map_id, strerror(errno));
			return -1;
		}
	} else {
		n = scan_maps(c, MAX_CANDIDATES);
		if (n < 0)
			return -1;
		if (!n) {
			fprintf(stderr, "vigil-forge: no BPF ring buffer named \"%s\" (is vigild running?); "
				"use --map-id or --pin\n", VIGIL_RB_NAME);
			return -1;
		}
		if (n > MAX_CANDIDATES)
			n = MAX_CANDIDATES;
		if (n > 1) {
			fprintf(stderr, "vigil-forge: %d ring buffers named \"%s\", ids", n,
				VIGIL_RB_NAME);
			for (int i = 0; i < n; i++)
				fprintf(stderr, " %u", c[i].id);
			fprintf(stderr, ": using the newest, %u (--map-id to choose)\n",
				c[n - 1].id);
		}
		fd = bpf_map_get_fd_by_id(c[n - 1].id);
		if (fd < 0) {
			fprintf(stderr, "vigil-forge: map %u: %s\n", c[n - 1].id,
				strerror(errno));
			return -1;
		}
	}
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		fprintf(stderr, "vigil-forge: BPF_OBJ_GET_INFO_BY_FD: %s\n", strerror(errno));
		goto fail;
	}
	if (info.type != BPF_MAP_TYPE_RINGBUF) {
		fprintf(stderr, "vigil-forge: map %u (\"%s\") is not a ring buffer (type %u)\n",
			info.id, info.name, info.type);
		goto fail;
	}
	if (strncmp(info.name, VIGIL_RB_NAME, BPF_OBJ_NAME_LEN - 1))
		fprintf(stderr, "vigil-forge: note: map %u is named \"%s\", not \"%s\"\n",
			info.id, info.name, VIGIL_RB_NAME);
	*id = info.id;
	return fd;
fail:
	close(fd);
	return -1;
}

static int list_candidates(void)
{
	struct cand c[MAX_CANDIDATES];
	int n = scan_maps(c, MAX_CANDIDATES);

	if (n < 0)
		return 1;
	if (n > MAX_CANDIDATES)
		n = MAX_CANDIDATES;
	for (int i = 0; i < n; i++)
		printf("map_id=%u name=%s max_entries=%u\n", c[i].id, c[i].name,
		       c[i].max_entries);
	if (!n)
		fprintf(stderr, "vigil-forge: no BPF ring buffer named \"%s\"\n",
			VIGIL_RB_NAME);
	return n ? 0 : 1;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option lopts[] = {
		{ "type", required_argument, NULL, 't' },
		{ "seq", required_argument, NULL, 's' },
		{ "committed", no_argument, NULL, 'C' },
		{ "flags", required_argument, NULL, 'F' },
		{ "agent-id", required_argument, NULL, 'a' },
		{ "pid", required_argument, NULL, 'p' },
		{ "comm", required_argument, NULL, 'c' },
		{ "filename", required_argument, NULL, 'f' },
		{ "name", required_argument, NULL, 'N' },
		{ "copy-of", required_argument, NULL, 'o' },
		{ "index", required_argument, NULL, 'i' },
		{ "flip-byte", required_argument, NULL, 'x' },
		{ "map-id", required_argument, NULL, 'm' },
		{ "pin", required_argument, NULL, 'P' },
		{ "list", no_argument, NULL, 'l' },
		{ "hold", required_argument, NULL, 'H' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	uint64_t v;
	int opt;

	o->type = "exec";
	while ((opt = getopt_long(argc, argv, "vh", lopts, NULL)) != -1) {
		switch (opt) {
		case 't':
			o->type = optarg;
			o->type_set = true;
			break;
		case 's':
			if (parse_u64(optarg, "--seq", UINT64_MAX, &o->seq))
				return -1;
			o->seq_set = true;
			break;
		case 'C': o->committed = true; break;
		case 'F':
			if (parse_u64(optarg, "--flags", UINT32_MAX, &v))
				return -1;
			o->flags = (uint32_t)v;
			o->flags_set = true;
			break;
		case 'a':
			if (parse_u64(optarg, "--agent-id", UINT32_MAX, &v))
				return -1;
			o->agent_id = (uint32_t)v;
			o->agent_id_set = true;
			break;
		case 'p':
			if (parse_u64(optarg, "--pid", UINT32_MAX, &v))
				return -1;
			o->pid = (uint32_t)v;
			o->pid_set = true;
			break;
		case 'c': o->comm = optarg; break;
		case 'f': o->filename = optarg; break;
		case 'N': o->name = optarg; break;
		case 'o': o->copy_of = optarg; break;
		case 'i':
			if (parse_u64(optarg, "--index", UINT64_MAX, &o->index))
				return -1;
			o->index_set = true;
			break;
		case 'x':
			if (parse_u64(optarg, "--flip-byte", VIGIL_RECORD_MAX - 1, &o->flip))
				return -1;
			o->flip_set = true;
			break;
		case 'm':
			if (parse_u64(optarg, "--map-id", UINT32_MAX, &v))
				return -1;
			if (!v) {
				fprintf(stderr, "vigil-forge: --map-id must be > 0\n");
				return -1;
			}
			o->map_id = (uint32_t)v;
			break;
		case 'P': o->pin = optarg; break;
		case 'l': o->list = true; break;
		case 'H':
			if (parse_u64(optarg, "--hold", 3600, &v))
				return -1;
			o->hold = (unsigned int)v;
			break;
		case 'v': o->verbose = true; break;
		case 'h': fputs(usage_text, stdout); exit(0);
		default: return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vigil-forge: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (o->map_id && o->pin) {
		fprintf(stderr, "vigil-forge: --map-id and --pin exclude each other\n");
		return -1;
	}
	if (o->copy_of &&
	    (o->type_set || o->comm || o->filename || o->name || o->pid_set)) {
		fprintf(stderr, "vigil-forge: --copy-of takes the body from the file: no --type/--comm/--filename/--name/--pid\n");
		return -1;
	}
	if (o->index_set && !o->copy_of) {
		fprintf(stderr, "vigil-forge: --index needs --copy-of\n");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static uint8_t buf[VIGIL_RECORD_MAX];
	struct vigil_rec_hdr *hdr = (struct vigil_rec_hdr *)buf;
	struct opts o = {};
	struct forge *skel = NULL;
	uint32_t size, map_id = 0;
	int fd = -1, err, ret = 1;

	if (parse_args(argc, argv, &o)) {
		fputs("Try 'vigil-forge --help'.\n", stderr);
		return 2;
	}
	verbose = o.verbose;
	libbpf_set_print(print_libbpf);
	setvbuf(stdout, NULL, _IOLBF, 0);

	if (geteuid() != 0) {
		fprintf(stderr, "vigil-forge: must run as root (walking and opening other "
			"programs' BPF maps needs CAP_SYS_ADMIN)\n");
		return 1;
	}
	if (o.list)
		return list_candidates();

	/* The record first: a usage error should not touch the kernel. */
	size = o.copy_of ? copy_record(&o, buf) : build_record(&o, buf);
	if (!size)
		return o.copy_of ? 1 : 2;
	if (o.seq_set)
		hdr->seq = o.seq;
	if (o.agent_id_set)
		hdr->agent_id = o.agent_id;
	if (o.flags_set)
		hdr->flags = o.flags;
	if (o.committed)
		hdr->flags |= VIGIL_REC_F_COMMITTED;
	if (o.flip_set) {
		if (o.flip >= size) {
			fprintf(stderr, "vigil-forge: --flip-byte %llu is past the record's %u bytes\n",
				(unsigned long long)o.flip, size);
			return 2;
		}
		buf[o.flip] ^= 0xff;
	}

	fd = open_target(&o, &map_id);
	if (fd < 0)
		return 1;

	skel = forge__open();
	if (!skel) {
		fprintf(stderr, "vigil-forge: opening the BPF object: %s\n", strerror(errno));
		goto out;
	}
	err = bpf_map__reuse_fd(skel->maps.target, fd);
	if (err) {
		fprintf(stderr, "vigil-forge: reusing map %u: %s\n", map_id, strerror(-err));
		goto out;
	}
	skel->rodata->target_pid = (uint32_t)getpid();
	skel->rodata->target_nr = SYS_getppid;
	err = forge__load(skel);
	if (err) {
		fprintf(stderr, "vigil-forge: loading the BPF program: %s (-v for the verifier log)\n",
			strerror(-err));
		goto out;
	}
	memcpy(skel->bss->rec, buf, size);
	skel->bss->rec_len = size;
	err = forge__attach(skel);
	if (err) {
		fprintf(stderr, "vigil-forge: attaching raw_tp/sys_enter: %s\n", strerror(-err));
		goto out;
	}
	syscall(SYS_getppid);
	forge__detach(skel);

	if (skel->bss->runs != 1) {
		fprintf(stderr, "vigil-forge: the program ran %llu times, expected once\n",
			(unsigned long long)skel->bss->runs);
		goto out;
	}
	if (skel->bss->out_ret || skel->bss->written != 1) {
		fprintf(stderr, "vigil-forge: bpf_ringbuf_output() into map %u failed: %s%s\n",
			map_id, strerror((int)-skel->bss->out_ret),
			skel->bss->out_ret == -EAGAIN ? " (ring buffer full)" : "");
		goto out;
	}
	printf("forged: type=%s(0x%x) seq=%llu flags=0x%x size=%u hdr_size=%u agent_id=%u ts_ns=%llu map_id=%u%s%s",
	       type_name(hdr->type), hdr->type, (unsigned long long)hdr->seq, hdr->flags, size,
	       hdr->size, hdr->agent_id, (unsigned long long)hdr->ts_ns, map_id,
	       o.copy_of ? " copy_of=" : "", o.copy_of ? o.copy_of : "");
	if (o.copy_of)
		printf(" index=%llu", (unsigned long long)o.index);
	if (o.flip_set)
		printf(" flipped_byte=%llu", (unsigned long long)o.flip);
	printf("\n");
	fflush(stdout);
	if (o.hold)
		sleep(o.hold);	/* the program stays loaded on vigil's map */
	ret = 0;
out:
	forge__destroy(skel);
	close(fd);
	return ret;
}
