#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# A man page agrees with the program's --help: every long option --help
# lists is documented in the page, and the page documents no option the
# program does not have.
# usage: man_page_test.sh PROGRAM PAGE
# The subcommands --help lists count too (their own --help), and each must
# have its .SS section.
set -euo pipefail
prog=$1 page=$2
[ -x "$prog" ] || { echo "FAIL: $prog is not an executable"; exit 1; }
[ -f "$page" ] || { echo "FAIL: no man page $page"; exit 1; }

# Options as --help lists them (the option column: the first word of the
# lines starting with spaces then '-'), and as the page names them in its
# .TP items.
subcommands() { # subcommands ARGS...: what `PROGRAM ARGS --help` lists
	"$prog" "$@" --help | sed -n '/^Subcommands:/,$p' | { grep -E '^  [a-z]' || true; } | awk '{print $1}'
}
subs=$(subcommands)
help_opts=$({
	"$prog" --help
	for sub in $subs; do
		"$prog" "$sub" --help
		# one level further (vigilctl agent run, attest push, ...)
		for subsub in $(subcommands "$sub"); do "$prog" "$sub" "$subsub" --help; done
	done
} | grep -E '^  +-' | sed -E 's/^ +//; s/ .*//' | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u)
page_opts=$(sed -n '/^\.TP/{n;p}' "$page" | sed 's/\\-/-/g' | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u)
[ -n "$help_opts" ] || { echo "FAIL: $prog --help lists no option"; exit 1; }

undocumented=$(comm -23 <(echo "$help_opts") <(echo "$page_opts"))
unknown=$(comm -13 <(echo "$help_opts") <(echo "$page_opts"))
rc=0
for sub in $subs; do
	grep -qE "^\.SS $(sed 's/-/\\\\?-/g' <<<"$sub")\$" "$page" || {
		echo "FAIL: $(basename "$page") has no section for the subcommand $sub"
		rc=1
	}
done
if [ -n "$undocumented" ]; then
	echo "FAIL: $(basename "$page") does not document: $(echo $undocumented)"
	rc=1
fi
if [ -n "$unknown" ]; then
	echo "FAIL: $(basename "$page") documents options $(basename "$prog") does not have: $(echo $unknown)"
	rc=1
fi
# The page must render without warnings.
# groff-base is in scripts/deps: without it the page goes unchecked, a failure.
if ! command -v groff >/dev/null; then
	echo "FAIL: groff missing (scripts/deps installs groff-base): the page was not rendered"
	rc=1
else
	warn=$(groff -man -ww -z "$page" 2>&1 || true)
	[ -z "$warn" ] || { echo "FAIL: groff warns: $warn"; rc=1; }
fi
[ $rc = 0 ] && echo "PASS: $(basename "$page"): all $(echo "$help_opts" | wc -l) options of --help documented, none extra; subcommands: $(echo $subs)"
exit $rc
