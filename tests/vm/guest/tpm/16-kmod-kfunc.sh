# SPDX-License-Identifier: GPL-2.0
# The kfuncs from a real BPF program (tp_btf/sys_enter): a valid record gets
# the next seq and the COMMITTED flag; NULL (a failed ring-buffer
# reservation passed unchecked), a bad type and a bad size get -EINVAL and
# are counted as rejected; vigil_drop counts per type.
if command -v vigil-kmod-bench >/dev/null; then
	vt_check kmod-kfunc-bpf vigil-kmod-bench --check
else
	vt_skip kmod-kfunc-bpf "vigil-kmod-bench not built (clang/bpftool/libbpf)"
fi
