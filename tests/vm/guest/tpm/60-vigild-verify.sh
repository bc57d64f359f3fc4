# SPDX-License-Identifier: GPL-2.0
# vigild as the verifier, end to end (Debian 6.12, module + swtpm):
#  - agent workloads under module + BPF + vigild: every checkpoint verdict
#    is "verified" (chain recomputed, TPM signature, PCR replay);
#  - vigild MEASUREs its binary and configuration into pcr_config;
#  - a separate BPF program (vigil-forge, as a root attacker could) writes
#    a forged committed record into vigil's ring buffer: vigild flags the
#    conflict and the checkpoint covering it is "tampered" at that seq;
#  - SIGKILL, records committed while vigild is down, restart: the pinned
#    programs and ring buffer are taken over and the next checkpoints verify;
#  - the Prometheus endpoint on loopback, `vigilctl baseline show`, and a
#    corrupt state file that stops vigild without being touched.
dir=/tmp/vigild-verify
state=$dir/state
mkdir -p $dir
rm -rf $state $dir/ready
# The metrics endpoint listens on loopback; the initramfs leaves lo down.
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up

start_vigild() { # start_vigild OUTPUT ERR
	vigild --state-dir $state --sample-ms 50 --metrics 127.0.0.1:9477 --ready-file $dir/ready \
		--raw-out $dir/events.bin --checkpoint-wait 3 -o "$1" 2>"$2" &
	vpid=$!
	vt_wait_ready $dir/ready $vpid
}

if ! start_vigild $dir/out1.json $dir/err1.txt; then
	vt_fail verify-vigild-start "$(tail -n 5 $dir/err1.txt | tr '\n' '|' | cut -c1-400)"
	kill $vpid 2>/dev/null
	return 0 2>/dev/null || exit 0
fi
vt_pass verify-vigild-start "$(grep -E 'anchor check|verification starts' $dir/err1.txt | tr '\n' ' ' | cut -c1-300)"

# Honest workloads of two roles, then a timer checkpoint (checkpoint_ms=1000).
for i in 1 2 3; do
	vigilctl agent run --name "web@$i" -- vigil-workload --burn-ms 30 --forks 3 --exit 0
done
vigilctl agent run --name "db@1" -- vigil-workload --touch-mib 8 --exit 0
sleep 2.5

# The attacker: a committed record claiming the next seq, before the real one.
next=$(vigilctl status --json | sed -n 's/.*"next_seq": \([0-9]*\).*/\1/p')
if vigil-forge --type exec --seq "$next" --committed --comm forged >$dir/forge.txt 2>&1; then
	vt_pass verify-forge-written "$(cut -c1-160 <$dir/forge.txt)"
else
	vt_fail verify-forge-written "$(tr '\n' '|' <$dir/forge.txt | cut -c1-300)"
fi
vigilctl agent run --name "web@4" -- vigil-workload --burn-ms 10 --exit 0
sleep 2.5
vigilctl agent run --name "web@5" -- vigil-workload --burn-ms 10 --exit 0
sleep 2.5

wget -q -O $dir/metrics.txt http://127.0.0.1:9477/metrics
if grep -q '^vigil_checkpoints_total{verdict="verified"} [1-9]' $dir/metrics.txt &&
	grep -q '^vigil_records_total{type="exec"} [1-9]' $dir/metrics.txt &&
	grep -q '^vigil_bpf_drops_total{type="exec"} 0' $dir/metrics.txt &&
	grep -q '^vigil_agents [1-9]' $dir/metrics.txt &&
	grep -q '^vigil_agent_records_total{agent="web@1"} [1-9]' $dir/metrics.txt; then
	vt_pass verify-metrics "$(grep -E '^vigil_checkpoints_total' $dir/metrics.txt | tr '\n' ' ')"
else
	vt_fail verify-metrics "$(head -c 400 $dir/metrics.txt | tr '\n' '|')"
fi

# SIGKILL; a tracked agent keeps committing while vigild is down.
vigilctl agent run --name "bg@1" -- sh -c 'sleep 1; for i in 1 2 3 4 5; do /bin/true; done' &
bg=$!
sleep 0.3
kill -KILL $vpid
wait $vpid 2>/dev/null
wait $bg
rm -f $dir/ready
if [ -d /sys/fs/bpf/vigil ] && [ -n "$(ls /sys/fs/bpf/vigil 2>/dev/null)" ]; then
	vt_pass verify-pins-survive-kill "$(ls /sys/fs/bpf/vigil | tr '\n' ' ')"
else
	vt_fail verify-pins-survive-kill "nothing pinned under /sys/fs/bpf/vigil"
fi
if ! start_vigild $dir/out2.json $dir/err2.txt; then
	vt_fail verify-vigild-restart "$(tail -n 5 $dir/err2.txt | tr '\n' '|' | cut -c1-400)"
	kill $vpid 2>/dev/null
	return 0 2>/dev/null || exit 0
fi
vt_pass verify-vigild-restart "$(grep -E 'adopt|resuming|state in' $dir/err2.txt | tr '\n' ' ' | cut -c1-300)"
vigilctl agent run --name "web@6" -- vigil-workload --burn-ms 10 --exit 0
sleep 3
vigilctl agent list --json >$dir/agents.json 2>&1
kill -TERM $vpid
wait $vpid
vrc=$?
cat $dir/err1.txt $dir/err2.txt >/dev/console

cat $dir/out1.json $dir/out2.json | grep '"type":"checkpoint"' >$dir/verdicts.json
grep '"type":"checkpoint"' $dir/out1.json >$dir/v1.json
grep '"type":"checkpoint"' $dir/out2.json >$dir/v2.json
verified1=$(grep -c '"verdict":"verified"' $dir/v1.json)
tampered1=$(grep -c '"verdict":"tampered"' $dir/v1.json)
other1=$(grep -vc '"verdict":"\(verified\|tampered\)"' $dir/v1.json)
forged_cp=$(grep '"verdict":"tampered"' $dir/v1.json | grep "\"bad_seq\":$next,")
if [ "$tampered1" = 1 ] && [ -n "$forged_cp" ] && echo "$forged_cp" | grep -q 'forged'; then
	vt_pass verify-forged-flagged "$(echo "$forged_cp" | cut -c1-300)"
else
	vt_fail verify-forged-flagged "seq $next; tampered $tampered1: $(grep -v '"verdict":"verified"' $dir/v1.json | head -n 3 | cut -c1-300 | tr '\n' '|')"
fi
if grep '"type":"finding"' $dir/out1.json | grep '"kind":"conflict"' | grep -q "\"seq\":$next,"; then
	vt_pass verify-forged-finding "conflict at seq $next"
else
	vt_fail verify-forged-finding "$(grep '"type":"finding"' $dir/out1.json | head -n 3 | tr '\n' '|' | cut -c1-300)"
fi
if [ "$verified1" -ge 2 ] && [ "$other1" = 0 ] &&
	grep '"verdict":"verified"' $dir/v1.json | grep -q '"pcr_checked":true,"reason"\|"pcr_checked":true'; then
	vt_pass verify-all-verified "$verified1 verified, $tampered1 tampered (the forged one), nothing else"
else
	vt_fail verify-all-verified "verified $verified1 tampered $tampered1 other $other1: $(grep -v '"verdict":"verified"' $dir/v1.json | head -n 3 | cut -c1-300 | tr '\n' '|')"
fi
verified2=$(grep -c '"verdict":"verified"' $dir/v2.json)
other2=$(grep -vc '"verdict":"verified"' $dir/v2.json)
# Resumed from the saved anchor (not from the log's last checkpoint, which
# would skip what was committed while vigild was down): the first verdict
# after the restart starts right after it, and bg@1's five execs, committed
# while vigild was down, reached the output.
resumed=$(sed -n 's/.*resuming verification after seq \([0-9]*\).*/\1/p' $dir/err2.txt | head -n 1)
first2=$(head -n 1 $dir/v2.json | sed -n 's/.*"first_seq":\([0-9]*\).*/\1/p')
bg_id=$(grep '"type":"agent"' $dir/out1.json $dir/out2.json | grep '"name":"bg@1"' | head -n 1 |
	sed -n 's/.*"agent_id":\([0-9]*\).*/\1/p')
# Its AGENT record may have been consumed (and journaled, so verified) in
# the moment before the SIGKILL without its line printed: ask the maps.
[ -n "$bg_id" ] || bg_id=$(grep '"name":"bg@1"' $dir/agents.json |
	sed -n 's/.*"id":\([0-9]*\).*/\1/p' | head -n 1)
bg_execs=$(cat $dir/out1.json $dir/out2.json | grep '"type":"exec"' | grep "\"agent_id\":$bg_id," |
	grep '"committed":true' | grep -c '/bin/true')
if [ "$verified2" -ge 1 ] && [ "$other2" = 0 ] && [ -n "$resumed" ] &&
	[ "$first2" = $((resumed + 1)) ] && [ "$bg_execs" -ge 5 ]; then
	vt_pass verify-after-restart "resumed after seq $resumed, next verdict from $first2, $verified2 verified, bg@1's $bg_execs execs delivered"
else
	vt_fail verify-after-restart "resumed '$resumed' first '$first2' bg '$bg_id' execs $bg_execs verified $verified2 other $other2: $(grep -v '"verdict":"verified"' $dir/v2.json | head -n 3 | cut -c1-300 | tr '\n' '|')"
fi
# The saved log of this module instance is the module's log: every record
# once, in order, across the SIGKILL (nothing lost, nothing appended twice).
logf=$(ls $state/log-*.bin 2>/dev/null | head -n 1)
vigilctl log --file "$logf" --json 2>&1 | sed -n 's/.*"seq":\([0-9]*\).*/\1/p' >$dir/saved-seqs.txt
vigilctl log --json 2>&1 | sed -n 's/.*"seq":\([0-9]*\).*/\1/p' >$dir/module-seqs.txt
saved_n=$(wc -l <$dir/saved-seqs.txt)
if [ -n "$logf" ] && [ "$saved_n" -ge 4 ] &&
	head -n "$saved_n" $dir/module-seqs.txt | cmp -s - $dir/saved-seqs.txt; then
	vt_pass verify-saved-log "$(basename "$logf"): $saved_n records, log seqs $(head -n 1 $dir/saved-seqs.txt)..$(tail -n 1 $dir/saved-seqs.txt) as in the module's log"
else
	vt_fail verify-saved-log "'$logf' $saved_n records: $(head -n "$saved_n" $dir/module-seqs.txt | diff - $dir/saved-seqs.txt | head -n 4 | tr '\n' '|')"
fi
if [ $vrc -eq 0 ] && grep -q 'vigild: summary' $dir/err2.txt; then
	vt_pass verify-clean-stop "$(grep 'vigild: summary' $dir/err2.txt | grep -o 'verified=.*' | cut -c1-200)"
else
	vt_fail verify-clean-stop "exit $vrc: $(tail -n 3 $dir/err2.txt | tr '\n' '|')"
fi

# Self-measurement: in vigild's output and in the module's log.
vigilctl log --json >$dir/log.json 2>&1
if [ "$(grep -c '"type":"measure"' $dir/out1.json)" = 2 ] &&
	head -n 2 $dir/out1.json | grep -q '"name":"vigild-config"' &&
	grep '"type":"measure"' $dir/log.json | grep -q '"name":"vigild-config"' &&
	grep '"type":"measure"' $dir/log.json | grep -q '"name":"vigild"'; then
	vt_pass verify-self-measured "$(grep '"type":"measure"' $dir/out1.json | head -n 1 | cut -c1-160)"
else
	vt_fail verify-self-measured "$(grep -c '"type":"measure"' $dir/out1.json) measure lines; log: $(grep -c vigild $dir/log.json)"
fi
vigilctl replay >$dir/replay.txt 2>&1
vt_check verify-replay-with-measures sh -c "cat $dir/replay.txt; ! grep -q MISMATCH $dir/replay.txt"

# State: saved atomically, shown by vigilctl, never reset silently.
vigilctl baseline show --state-dir $state >$dir/show.txt 2>&1
if grep -q 'web@1' $dir/show.txt && grep -q 'db@1' $dir/show.txt; then
	vt_pass verify-baseline-show "$(head -n 3 $dir/show.txt | tr '\n' '|' | cut -c1-200)"
else
	vt_fail verify-baseline-show "$(head -n 5 $dir/show.txt | tr '\n' '|' | cut -c1-300)"
fi
if [ -s $state/verifier.json ] && [ -s "$logf" ] && [ -s $state/verdicts.jsonl ] &&
	[ ! -e $state/baselines.json.tmp ]; then
	vt_pass verify-state-files "$(ls $state | tr '\n' ' ')"
else
	vt_fail verify-state-files "$(ls -la $state | tr '\n' '|')"
fi
head -c 100 $state/baselines.json >$dir/cut.json
cp $dir/cut.json $state/baselines.json
before=$(md5sum <$state/baselines.json)
vigild --state-dir $state --metrics '' --duration 1 >/dev/null 2>$dir/corrupt.txt
crc=$?
after=$(md5sum <$state/baselines.json)
if [ $crc = 1 ] && grep -q 'baselines.json' $dir/corrupt.txt && [ "$before" = "$after" ]; then
	vt_pass verify-corrupt-state-refused "$(grep baselines.json $dir/corrupt.txt | cut -c1-200)"
else
	vt_fail verify-corrupt-state-refused "exit $crc, unchanged=$([ "$before" = "$after" ] && echo yes || echo no): $(tail -n 2 $dir/corrupt.txt | tr '\n' '|')"
fi
vigild --state-dir $state --metrics '' --duration 1 --reset-state >/dev/null 2>$dir/reset.txt
rrc=$?
if [ $rrc = 0 ] && ls $state | grep -q 'baselines.json.corrupt-'; then
	vt_pass verify-reset-state "$(grep -- '--reset-state' $dir/reset.txt | cut -c1-200)"
else
	vt_fail verify-reset-state "exit $rrc: $(tail -n 2 $dir/reset.txt | tr '\n' '|')"
fi
