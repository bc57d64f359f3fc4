// SPDX-License-Identifier: GPL-2.0
/*
 * vigil-fexit - attach an fexit BPF program to FUNC (a vmlinux or module
 * function, found by name in the kernel's BTF), as a root attacker would
 * on vigil's kfuncs, then detach it.
 *
 * usage: vigil-fexit [--hold SECS] FUNC
 * Prints "attached: fexit on FUNC" once attached; with --hold keeps it
 * attached for SECS seconds (or until SIGTERM/SIGINT), then detaches.
 * Exit 0 attached (and detached again), 3 the kernel refused (no BTF for
 * FUNC, load or attach refused; the reason on stdout), 2 usage.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "fexit.skel.h"

static void on_signal(int sig)
{
	(void)sig;	/* only ends sleep() early */
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	const char *func = argv[argc - 1];
	struct bpf_link *link;
	struct fexit *skel;
	long hold = 0;
	char *end;
	int err;

	if (argc == 4 && !strcmp(argv[1], "--hold")) {
		hold = strtol(argv[2], &end, 10);
		if (*end || hold < 0 || hold > 3600) {
			fprintf(stderr, "vigil-fexit: bad --hold '%s'\n", argv[2]);
			return 2;
		}
	} else if (argc != 2) {
		fprintf(stderr, "usage: %s [--hold SECS] FUNC\n", argv[0]);
		return 2;
	}
	if (!func[0]) {
		fprintf(stderr, "usage: %s [--hold SECS] FUNC\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	skel = fexit__open();
	if (!skel) {
		fprintf(stderr, "vigil-fexit: open: %s\n", strerror(errno));
		return 2;
	}
	err = bpf_program__set_attach_target(skel->progs.fexit_any, 0, func);
	if (!err)
		err = fexit__load(skel);
	if (err) {
		printf("refused at load: %s: %s\n", func, strerror(-err));
		fexit__destroy(skel);
		return 3;
	}
	link = bpf_program__attach(skel->progs.fexit_any);
	if (!link) {
		printf("refused at attach: %s: %s\n", func, strerror(errno));
		fexit__destroy(skel);
		return 3;
	}
	printf("attached: fexit on %s\n", func);
	if (hold) {
		sigaction(SIGTERM, &sa, NULL);
		sigaction(SIGINT, &sa, NULL);
		sleep(hold);
	}
	bpf_link__destroy(link);
	fexit__destroy(skel);
	return 0;
}
