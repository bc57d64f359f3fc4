#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The ABI header refuses a big-endian build: user space (a compiler that
# says __BYTE_ORDER__ is big-endian) and BPF (clang's bpfeb target), while
# the little-endian builds of the same source compile. The kernel's branch
# (asm/byteorder.h, __BIG_ENDIAN) needs a big-endian kernel tree to try:
# not available here, so not tried.
set -u
uapi=$1
fail=0
src='#include "vigil.h"
int vigil_abi_probe = VIGIL_ABI_MAJOR;'
bpf_src='typedef unsigned char __u8; typedef unsigned short __u16;
typedef unsigned int __u32; typedef unsigned long long __u64;
typedef signed char __s8; typedef short __s16; typedef int __s32; typedef long long __s64;
#include "vigil.h"
int vigil_abi_probe = VIGIL_ABI_MAJOR;'
expect() { # expect ok|refused NAME COMPILER-ARGS...
	local want=$1 name=$2 out rc
	shift 2
	out=$("$@" 2>&1)
	rc=$?
	if [ "$want" = ok ] && [ $rc -eq 0 ]; then
		echo "PASS $name"
	elif [ "$want" = refused ] && [ $rc -ne 0 ] && grep -q "little-endian only" <<<"$out"; then
		echo "PASS $name: $(grep -m1 -o 'vigil: the ABI[^"]*' <<<"$out")"
	else
		echo "FAIL $name (exit $rc): $(head -n 3 <<<"$out")"
		fail=1
	fi
}
expect ok user-le cc -fsyntax-only -x c -I"$uapi" - <<<"$src"
expect refused user-be cc -fsyntax-only -x c -I"$uapi" \
	-U__BYTE_ORDER__ -D__BYTE_ORDER__=__ORDER_BIG_ENDIAN__ - <<<"$src"
expect ok cxx-le c++ -fsyntax-only -x c++ -I"$uapi" - <<<"$src"
if command -v clang >/dev/null; then
	expect ok bpf-el clang -target bpfel -D__bpf__ -fsyntax-only -x c -I"$uapi" - <<<"$bpf_src"
	expect refused bpf-eb clang -target bpfeb -D__bpf__ -fsyntax-only -x c -I"$uapi" - <<<"$bpf_src"
else
	echo "FAIL bpf: clang not found (scripts/deps installs it)"
	fail=1
fi
exit $fail
