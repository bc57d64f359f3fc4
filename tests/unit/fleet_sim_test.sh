#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# vigil-fleet-sim against a real `vigil-verifier serve` (file-backed, HTTP on
# loopback): three simulated nodes, each with its own swtpm, enrol and push
# four rounds; every verdict is trusted except the one round where node 1
# forges an event after the TPM signed the checkpoint over it, which the
# verifier refuses as tampered (and node 1 is trusted again after). Then
# SIGTERM mid-run: the simulator stops, every swtpm child is gone, its
# directory removed. A missing swtpm or jq fails the test.
#
# usage: fleet_sim_test.sh VIGIL_FLEET_SIM VIGIL_VERIFIER
set -uo pipefail
sim=$1
verifier=$2
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
command -v swtpm >/dev/null || { echo "FAIL: swtpm not in PATH (scripts/deps)"; exit 1; }
command -v jq >/dev/null || { echo "FAIL: jq not in PATH (scripts/deps)"; exit 1; }

work=$(mktemp -d /tmp/vigil-fleet-sim-test-XXXXXX)
verifier_pid=
sim_pid=
cleanup() {
	[ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null
	[ -n "$verifier_pid" ] && kill "$verifier_pid" 2>/dev/null && wait "$verifier_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

# swtpm processes whose state lives under $1 (only this test's).
swtpms_under() { pgrep -f "swtpm socket .*$1" | wc -l; }

"$sim" --write-policy "$work/policy.json" || { echo "FAIL: --write-policy"; exit 1; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$verifier" --state "$work/state" --policy "$work/policy.json" serve --listen "127.0.0.1:$port" \
	--pin-ek >"$work/verdicts.log" 2>"$work/verifier.err" &
verifier_pid=$!
for _ in $(seq 100); do
	grep -q listening "$work/verifier.err" && break
	sleep 0.1
done
grep -q listening "$work/verifier.err" || { echo "FAIL: the verifier did not start:"; cat "$work/verifier.err"; exit 1; }

# Usage errors exit 2 and start nothing.
"$sim" --verifier "127.0.0.1:$port" --nodes 3 --tamper 3:1 >/dev/null 2>&1
[ $? -eq 2 ] || fail "--tamper 3:1 with 3 nodes should be a usage error (2)"
"$sim" --verifier nohostport >/dev/null 2>&1
[ $? -eq 2 ] || fail "--verifier without a port should be a usage error (2)"

mkdir "$work/sim"
"$sim" --verifier "127.0.0.1:$port" --nodes 3 --rounds 4 --interval 0.3 --tamper 1:2 \
	--work-dir "$work/sim" --verifier-pid "$verifier_pid" --json >"$work/report.json" 2>"$work/sim.err"
rc=$?
[ "$rc" -eq 0 ] || fail "the simulator exited $rc (want 0: every verdict as expected)"
r=$work/report.json
check() { # check JQ_EXPR WANT
	local got
	got=$(jq -r "$1" "$r" 2>/dev/null)
	[ "$got" = "$2" ] || fail "$1 = $got, want $2"
}
check .enrolled 3
check .evidence_pushed 12
check .trusted 11
check .untrusted 1
check .tampered_refused 1
check .errors 0
check .as_expected true
check '.per_node[0].trusted' 4
check '.per_node[2].trusted' 4
check '.per_node[1].trusted' 3
check '.per_node[1].untrusted' 1
check '.per_node[1].untrusted_reasons[0] | test("^round 2: .*tampered")' true
check '.latency_ms.verify.n' 12
check '[.per_node[].node | test("^000b[0-9a-f]{64}$")] | all' true
# The verifier's own verdict stream says the same, per node.
node1=$(jq -r '.per_node[1].node' "$r")
[ "$(grep -c '"event":"verdict"' "$work/verdicts.log")" -eq 12 ] || fail "want 12 verdict lines"
[ "$(grep '"event":"verdict"' "$work/verdicts.log" | grep -c '"trusted":false')" -eq 1 ] ||
	fail "want exactly one untrusted verdict line"
grep '"trusted":false' "$work/verdicts.log" | grep -q "\"node\":\"$node1\"" ||
	fail "the untrusted verdict is not node 1's"
[ "$(swtpms_under "$work/sim")" -eq 0 ] || fail "swtpm processes left after the run"
[ -z "$(ls -A "$work/sim")" ] || fail "the simulator left files in its work dir: $(ls "$work/sim")"

# SIGTERM mid-run: a clean stop, no swtpm left, its directory removed.
"$sim" --verifier "127.0.0.1:$port" --nodes 2 --duration 60 --interval 0.2 --work-dir "$work/sim" \
	--json >"$work/stopped.json" 2>"$work/stopped.err" &
sim_pid=$!
for _ in $(seq 100); do
	[ "$(swtpms_under "$work/sim")" -eq 2 ] && break
	sleep 0.1
done
[ "$(swtpms_under "$work/sim")" -eq 2 ] || fail "two swtpm children expected while running"
sleep 2
kill -TERM "$sim_pid"
stopped=
for _ in $(seq 100); do
	kill -0 "$sim_pid" 2>/dev/null || { stopped=1; break; }
	sleep 0.1
done
[ -n "$stopped" ] || fail "the simulator did not stop within 10 s of SIGTERM"
wait "$sim_pid" 2>/dev/null
sim_pid=
r=$work/stopped.json
check .interrupted true
check '.evidence_pushed > 0' true
check .untrusted 0
[ "$(swtpms_under "$work/sim")" -eq 0 ] || fail "swtpm processes left after SIGTERM"
[ -z "$(ls -A "$work/sim")" ] || fail "files left after SIGTERM: $(ls "$work/sim")"

if [ "$fails" -ne 0 ]; then
	echo "simulator stderr:"; tail -20 "$work/sim.err"
	echo "report:"; jq 'del(.per_node[].node)' "$work/report.json" 2>/dev/null | head -60
	exit 1
fi
echo "ok: 3 nodes x 4 rounds, 11 trusted, the forged round refused as tampered; clean SIGTERM"
