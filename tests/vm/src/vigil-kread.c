// SPDX-License-Identifier: GPL-2.0
/*
 * vigil-kread - play a root attacker who reads kernel memory with BPF (the
 * module's key secrets, for instance), to show what each lockdown level
 * stops. Reads up to 64 bytes at ADDR (hex, e.g. from /proc/kallsyms) with
 * one of kread.bpf.c's programs and prints them.
 *
 * usage: vigil-kread helper|cast|printf ADDR [LEN]
 * Exit 3: the kernel refused the program; 4: no bpf_rdonly_cast (cast, 6.1).
 *   helper  bpf_probe_read_kernel()   (refused by lockdown=confidentiality)
 *   cast    bpf_rdonly_cast() + loads (not checked against lockdown)
 *   printf  bpf_snprintf("%s")        (not checked either; stops at a NUL)
 *
 * Output: "text: <bytes, non-printable as \xNN>" and "hex: <bytes>".
 * Exit codes: 0 read, 1 error (the read itself failed), 2 usage,
 * 3 the kernel refused to load the program (verifier log on stderr).
 */
#include <ctype.h>
#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "kread.skel.h"

int main(int argc, char **argv)
{
	LIBBPF_OPTS(bpf_test_run_opts, run);
	struct bpf_program *prog;
	unsigned long long addr;
	struct kread *skel;
	size_t len = 64, i;
	char *end;
	int err, rc = 1;

	if (argc < 3 || argc > 4 || (strcmp(argv[1], "helper") &&
				     strcmp(argv[1], "cast") && strcmp(argv[1], "printf"))) {
		fprintf(stderr, "usage: vigil-kread helper|cast|printf ADDR [LEN<=64]\n");
		return 2;
	}
	errno = 0;
	addr = strtoull(argv[2], &end, 16);
	if (errno || *end || !addr) {
		fprintf(stderr, "vigil-kread: bad address '%s'\n", argv[2]);
		return 2;
	}
	if (argc == 4) {
		len = strtoul(argv[3], &end, 10);
		if (*end || len == 0 || len > 64) {
			fprintf(stderr, "vigil-kread: bad length '%s'\n", argv[3]);
			return 2;
		}
	}

	skel = kread__open();
	if (!skel) {
		fprintf(stderr, "vigil-kread: open: %s\n", strerror(errno));
		return 1;
	}
	/* 6.1 has no bpf_rdonly_cast (6.2+): that read does not exist there. */
	if (!strcmp(argv[1], "cast")) {
		struct btf *vmlinux = btf__load_vmlinux_btf();
		bool have = vmlinux && btf__find_by_name_kind(vmlinux, "bpf_rdonly_cast",
							      BTF_KIND_FUNC) > 0;

		btf__free(vmlinux);
		if (!have) {
			fprintf(stderr, "vigil-kread: this kernel has no bpf_rdonly_cast kfunc\n");
			rc = 4;
			goto out;
		}
	}
	/* Only the chosen program: a refusal of another must not stop it. */
	bpf_object__for_each_program(prog, skel->obj)
		bpf_program__set_autoload(prog, false);
	if (!strcmp(argv[1], "helper"))
		prog = skel->progs.kread_helper;
	else if (!strcmp(argv[1], "cast"))
		prog = skel->progs.kread_cast;
	else
		prog = skel->progs.kread_printf;
	bpf_program__set_autoload(prog, true);
	err = kread__load(skel);
	if (err) {
		fprintf(stderr, "vigil-kread: the kernel refused the %s program: %s\n",
			argv[1], strerror(-err));
		rc = 3;
		goto out;
	}
	skel->bss->addr = addr;
	skel->bss->ret = -1;
	err = bpf_prog_test_run_opts(bpf_program__fd(prog), &run);
	if (err) {
		fprintf(stderr, "vigil-kread: test run: %s\n", strerror(errno));
		goto out;
	}
	if (skel->bss->ret) {
		fprintf(stderr, "vigil-kread: the %s read failed: %lld\n", argv[1],
			(long long)skel->bss->ret);
		goto out;
	}
	printf("text: ");
	for (i = 0; i < len; i++) {
		unsigned char c = skel->bss->buf[i];

		if (isprint(c) && c != '\\')
			putchar(c);
		else
			printf("\\x%02x", c);
	}
	printf("\nhex:");
	for (i = 0; i < len; i++)
		printf(" %02x", skel->bss->buf[i]);
	printf("\n");
	rc = 0;
out:
	kread__destroy(skel);
	return rc;
}
