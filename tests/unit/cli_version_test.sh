#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Every program vigil builds answers --version with its name and the project
# version and exits 0, and refuses an unknown option with a message and exit
# code 2 (not CLI11's own codes, not a run with the option ignored).
#
# usage: cli_version_test.sh VERSION PROGRAM[:SUBCOMMAND]...
# (a program that requires a subcommand gets the unknown option after one)
set -uo pipefail

version=$1
shift
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

for arg in "$@"; do
	prog=${arg%%:*}
	sub=()
	[ "$arg" != "$prog" ] && sub=("${arg#*:}")
	name=$(basename "$prog")
	out=$(timeout 10 "$prog" --version 2>&1)
	rc=$?
	first=$(head -n1 <<<"$out")
	[ "$rc" -eq 0 ] || fail "$name --version exited $rc: $first"
	[ "$first" = "$name $version" ] || fail "$name --version printed '$first', want '$name $version'"
	grep -q '^ABI [0-9]*\.[0-9]* ' <<<"$out" || fail "$name --version names no ABI"

	err=$(timeout 10 "$prog" "${sub[@]}" --no-such-option 2>&1 >/dev/null)
	rc=$?
	[ "$rc" -eq 2 ] || fail "$name ${sub[*]} --no-such-option exited $rc, want 2"
	grep -q -- '--no-such-option' <<<"$err" || fail "$name --no-such-option: the error does not name it: $err"
	echo "ok: $name"
done
echo "$# programs, $fails failures"
[ "$fails" -eq 0 ]
