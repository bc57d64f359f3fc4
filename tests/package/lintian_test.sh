#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# lintian on what `make package` built: no error and no warning that is not
# overridden (each override is explained in debian/*.lintian-overrides).
# usage: lintian_test.sh PACKAGES_DIR
set -euo pipefail
dir=$1
changes=("$dir"/vigil_*.changes)
[ -f "${changes[0]}" ] || { echo "FAIL: no vigil_*.changes in $dir (make package)"; exit 1; }
command -v lintian >/dev/null || { echo "FAIL: no lintian (make deps)"; exit 1; }
rc=0
out=$(lintian --fail-on error,warning --show-overrides --tag-display-limit 0 "${changes[@]}" 2>&1) || rc=$?
echo "$out"
if [ "$rc" -ne 0 ] || echo "$out" | grep -qE '^[EW]: '; then
	echo "FAIL: lintian reports errors or warnings (exit $rc)"
	exit 1
fi
echo "PASS: lintian clean ($(echo "$out" | grep -c '^O: ' || true) overridden)"
