#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# vigil(4) agrees with the module: every ioctl of the ABI header, every log
# record type and every module parameter is named in the page.
# usage: man_page_device_test.sh PAGE UAPI_HEADER KMOD_MAIN_C
set -euo pipefail
page=$1 header=$2 main_c=$3
text=$(sed 's/\\-/-/g; s/\\(en/-/g' "$page")
rc=0
want=$({
	grep -oE '^#define VIGIL_IOC_[A-Z_]+[[:space:]]+_IO' "$header" | awk '{print $2}'
	grep -oE '^[[:space:]]VIGIL_LOG_[A-Z]+[[:space:]]*=' "$header" | tr -d ' \t='
	grep -oE '^module_param\([a-z_]+' "$main_c" | sed 's/module_param(//'
} | sort -u)
[ -n "$want" ] || { echo "FAIL: nothing found in $header / $main_c"; exit 1; }
missing=()
for w in $want; do
	grep -qw -- "$w" <<<"$text" || missing+=("$w")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "FAIL: $(basename "$page") does not name: ${missing[*]}"
	rc=1
fi
# groff-base is in scripts/deps: without it the page goes unchecked, a failure.
if ! command -v groff >/dev/null; then
	echo "FAIL: groff missing (scripts/deps installs groff-base): the page was not rendered"
	rc=1
else
	warn=$(groff -man -ww -z "$page" 2>&1 || true)
	[ -z "$warn" ] || { echo "FAIL: groff warns: $warn"; rc=1; }
fi
[ $rc = 0 ] && echo "PASS: $(basename "$page") names all $(echo "$want" | wc -l) ioctls, log record types and module parameters"
exit $rc
