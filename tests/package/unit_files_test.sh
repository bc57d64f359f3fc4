#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The packaging files other than the packages themselves:
#   - both units pass `systemd-analyze verify` (ExecStart pointed at the
#     build's vigild and the source's vigil-ima-policy, no man page lookup);
#   - vigild.service's exposure (`systemd-analyze security --offline`) is at
#     most MAX_EXPOSURE, with the capability set docs/vigild.md names;
#   - vigild parses /etc/vigil/vigild.conf (debian/vigild.conf);
#   - /etc/modprobe.d/vigil.conf sets anchor=ima and only real parameters;
#   - vigil-ima-policy writes the rule only when that loses no boot rule.
# usage: unit_files_test.sh SOURCE_DIR VIGILD
set -euo pipefail
top=$1 vigild=$2
max_exposure=3.0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }
ok() { echo "ok: $*"; }

command -v systemd-analyze >/dev/null || {
	echo "FAIL: systemd-analyze missing (package systemd, scripts/deps): the units were not checked"
	exit 1
}

# --- systemd-analyze verify ---
mkdir -p "$tmp/units"
sed "s|^ExecStart=/usr/sbin/vigild |ExecStart=$(realpath "$vigild") |" \
	"$top/debian/vigil.vigild.service" >"$tmp/units/vigild.service"
sed "s|^ExecStart=/usr/lib/vigil/vigil-ima-policy|ExecStart=$top/debian/vigil-ima-policy|" \
	"$top/debian/vigil-dkms.vigil-ima-policy.service" >"$tmp/units/vigil-ima-policy.service"
if out=$(SYSTEMD_UNIT_PATH="$tmp/units:" systemd-analyze verify --man=no \
	"$tmp/units/vigild.service" "$tmp/units/vigil-ima-policy.service" 2>&1); then
	if [ -n "$out" ]; then bad "systemd-analyze verify warns:"; echo "$out"; else ok "systemd-analyze verify"; fi
else
	bad "systemd-analyze verify:"; echo "$out"
fi

# --- systemd-analyze security ---
security=$(systemd-analyze security --offline=true "$tmp/units/vigild.service" 2>&1 || true)
exposure=$(echo "$security" | sed -n 's/.*Overall exposure level for vigild.service: \([0-9.]*\).*/\1/p')
if [ -z "$exposure" ]; then
	bad "no exposure level from systemd-analyze security:"; echo "$security" | tail -5
elif awk -v e="$exposure" -v m="$max_exposure" 'BEGIN { exit !(e <= m) }'; then
	ok "exposure $exposure (at most $max_exposure)"
else
	bad "exposure $exposure is above $max_exposure"; echo "$security" | grep '✗'
fi
caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$top/debian/vigil.vigild.service")
[ "$caps" = "CAP_BPF CAP_PERFMON CAP_SYS_ADMIN CAP_SYS_RESOURCE" ] ||
	bad "CapabilityBoundingSet is '$caps'"
grep -q "^CapabilityBoundingSet=$caps\$" <(sed -n '/Under systemd/,/^## /p' "$top/docs/vigild.md" |
	grep -o 'CapabilityBoundingSet=[A-Z_ ]*' | sed 's/ *$//') ||
	bad "docs/vigild.md does not name CapabilityBoundingSet=$caps"
grep -q "exposure.*$exposure" "$top/docs/vigild.md" ||
	bad "docs/vigild.md does not record the exposure $exposure"

# --- the packaged configuration parses (the usage error comes after the
# file was read: CLI11 stops on an unknown name in it first) ---
rc=0
out=$("$vigild" --config "$top/debian/vigild.conf" --no-state --reset-state 2>&1) || rc=$?
if [ "$rc" -eq 2 ] && echo "$out" | grep -q -- '--reset-state needs a state directory'; then
	ok "vigild reads debian/vigild.conf"
else
	bad "vigild --config debian/vigild.conf: exit $rc: $out"
fi
ExecStart=$(sed -n 's/^ExecStart=//p' "$top/debian/vigil.vigild.service")
[ "$ExecStart" = "/usr/sbin/vigild --config /etc/vigil/vigild.conf" ] || bad "ExecStart=$ExecStart"

# --- module options ---
opts=$(sed -n 's/^options vigil //p' "$top/debian/vigil-dkms.vigil.modprobe")
echo " $opts " | grep -q ' anchor=ima ' || bad "modprobe options '$opts' lack anchor=ima"
for o in $opts; do
	name=${o%%=*}
	grep -q "^module_param($name," "$top/kmod/main.c" || bad "modprobe option $name is no module_param"
done
for p in pcr_events=16 pcr_events=23 anchor=pcr; do
	echo " $opts " | grep -q " $p " && bad "modprobe options use the development anchor ($p)"
done
[ "$fail" -eq 0 ] && ok "modprobe options: $opts"

# --- vigil-ima-policy ---
rule='measure func=CRITICAL_DATA label=vigil'
grep -q 'ima_measure_critical_data("vigil",' "$top/kmod/anchor.c" ||
	bad "the module's IMA label is no longer \"vigil\" (the rule names it)"
ima() { # ima CMDLINE POLICY_EXISTS: run the script, print "rc policy-content"
	local cmd=$1 exists=$2 rc=0
	rm -f "$tmp/policy"
	printf '%s\n' "$cmd" >"$tmp/cmdline"
	[ "$exists" = yes ] && : >"$tmp/policy"
	sh "$top/debian/vigil-ima-policy" "$tmp/policy" "$tmp/cmdline" >/dev/null 2>&1 || rc=$?
	echo "$rc $(cat "$tmp/policy" 2>/dev/null || echo '(none)')"
}
expect() { # expect WHAT GOT WANT
	if [ "$2" = "$3" ]; then ok "ima-policy: $1"; else bad "ima-policy: $1: got '$2', want '$3'"; fi
}
expect "no boot policy: writes the rule" \
	"$(ima 'BOOT_IMAGE=/vmlinuz root=/dev/vda1 ro quiet' yes)" "0 $rule"
expect "ima_policy=tcb: writes nothing, fails" "$(ima 'root=/dev/vda1 ima_policy=tcb' yes)" "1 "
expect "ima_appraise_tcb: writes nothing, fails" "$(ima 'ima_appraise_tcb root=/dev/vda1' yes)" "1 "
expect "ima_policy=tcb|critical_data: nothing to do" \
	"$(ima 'ima_policy=tcb|critical_data' yes)" "0 "
expect "ima_policy=critical_data twice-given: nothing to do" \
	"$(ima 'ima_policy=tcb ima_policy=critical_data' yes)" "0 "
expect "policy already loaded this boot: fails" "$(ima 'root=/dev/vda1' no)" "1 (none)"

if [ "$fail" -eq 0 ]; then echo "PASS"; else echo "FAILED"; fi
exit "$fail"
