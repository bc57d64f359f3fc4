# SPDX-License-Identifier: GPL-2.0
# vigild keeps the module's log bounded. With log_max_bytes=65536 and a
# checkpoint every 100 ms, user-event COMMITs (592-byte log copies) and
# agent workloads write several times the cap in about 20 s (up to 60 s on
# a loaded host). Without TRIM
# the log fills within seconds, every checkpoint is deferred and verdicts
# stop; vigild TRIMs what it saved and decided, so:
#  - nothing is refused at the cap and the module dropped several caps'
#    worth of records (its newest BASE counts them);
#  - verdicts keep coming to the end, every one "verified", and no
#    `stalled` finding;
#  - the trimmed log and the saved log both still replay to the TPM's PCRs,
#    and the saved log holds every log seq once;
#  - the metrics show the log fill, the trims, the last verdict time and
#    build_info;
#  - a restart checks the saved anchor against the module's log; a raised
#    checkpoint_log_seq in verifier.json is refused (anchor_mismatch) unless
#    --reset-state, which says what it reset.
dir=/tmp/vigild-trim
state=$dir/state
mkdir -p $dir
rm -rf $state $dir/ready
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up
vt_rmmod vigil 2>/dev/null
if ! insmod /vigil.ko log_max_bytes=65536 checkpoint_ms=100; then
	vt_fail trim-insmod "insmod log_max_bytes=65536 failed"
	return 0 2>/dev/null || exit 0
fi

info() { # info FIELD: a number from GET_INFO
	vigilctl status --json | sed -n "s/.*\"$1\": \([0-9]*\).*/\1/p" | head -n 1
}
verdicts() { grep -c '"type":"checkpoint"' $dir/out.json; }

vigild --state-dir $state --no-records --metrics 127.0.0.1:9478 --ready-file $dir/ready \
	--state-interval 0.2 --checkpoint-wait 3 -o $dir/out.json 2>$dir/err.txt &
vpid=$!
if ! vt_wait_ready $dir/ready $vpid; then
	vt_fail trim-vigild-start "$(tail -n 5 $dir/err.txt | tr '\n' '|' | cut -c1-400)"
	kill $vpid 2>/dev/null
	vt_rmmod vigil
	return 0 2>/dev/null || exit 0
fi

trimmed() { # bytes the module trimmed, from its newest BASE
	grep ' base ' /sys/kernel/security/vigil/ascii_log | tail -n 1 |
		sed -n 's/.*trimmed=[0-9]*\/\([0-9]*\)B.*/\1/p'
}
# At least 20 s, and until three caps' worth was trimmed (a loaded host
# runs the workload slower), at most 60 s.
start=$(date +%s)
maxb=0
mid=
while :; do
	el=$(($(date +%s) - start))
	[ $el -ge 60 ] && break
	[ $el -ge 20 ] && [ "$(trimmed)" -ge $((3 * 65536)) ] 2>/dev/null && break
	vigil-stress -t 1 -n 20 -c 0 -r 0 >/dev/null 2>&1
	vigilctl agent run --name "trim@1" -- vigil-workload --burn-ms 5 --exit 0 >/dev/null 2>&1
	b=$(info log_bytes)
	[ "${b:-0}" -gt "$maxb" ] && maxb=$b
	[ -z "$mid" ] && [ $(($(date +%s) - start)) -ge 10 ] && mid=$(verdicts)
	sleep 0.2
done
sleep 4
end_seq=$(($(info next_seq) - 1))
refused=$(info log_refused)
first=$(info log_first_seq)
trimmed_bytes=$(trimmed)
wget -q -O $dir/metrics.txt http://127.0.0.1:9478/metrics
kill -TERM $vpid
wait $vpid
vrc=$?
cat $dir/err.txt >/dev/console

if [ "${refused:-1}" = 0 ] && [ "${first:-0}" -gt 1 ] && [ "${trimmed_bytes:-0}" -ge $((3 * 65536)) ] &&
	[ "$maxb" -le 65536 ]; then
	vt_pass trim-log-bounded "max $maxb of 65536 bytes held, ${trimmed_bytes} bytes trimmed, oldest log seq $first, 0 refused"
else
	vt_fail trim-log-bounded "max $maxb bytes, trimmed '${trimmed_bytes}', first '$first', refused '$refused'"
fi

grep '"type":"checkpoint"' $dir/out.json >$dir/v.json
total=$(wc -l <$dir/v.json)
other=$(grep -vc '"verdict":"verified"' $dir/v.json)
last=$(tail -n 1 $dir/v.json | sed -n 's/.*"last_seq":\([0-9]*\).*/\1/p')
if [ "${mid:-0}" -gt 0 ] && [ "$total" -ge $((mid + 10)) ] && [ "$other" = 0 ] &&
	[ "${last:-0}" -ge $((end_seq - 1)) ]; then
	vt_pass trim-verdicts-continue "$total verdicts ($mid after 10 s), all verified, the last up to seq $last of $end_seq"
else
	vt_fail trim-verdicts-continue "total $total mid '$mid' other $other last '$last' end $end_seq: $(grep -v '"verdict":"verified"' $dir/v.json | head -n 2 | cut -c1-300 | tr '\n' '|')"
fi
if grep -q '"kind":"stalled"' $dir/out.json; then
	vt_fail trim-no-stall "$(grep '"kind":"stalled"' $dir/out.json | head -n 1 | cut -c1-300)"
else
	vt_pass trim-no-stall "no stalled finding in $total verdicts"
fi
if grep -q '^vigil_module_log_trimmed_records_total [1-9]' $dir/metrics.txt &&
	grep -q '^vigil_module_log_fill_ratio 0' $dir/metrics.txt &&
	grep -q '^vigil_module_log_max_bytes 65536' $dir/metrics.txt &&
	grep -q '^vigil_last_verdict_timestamp_seconds [1-9]' $dir/metrics.txt &&
	grep -q '^vigil_build_info{version="[^"]*",abi="[0-9]*\.[0-9]*"} 1' $dir/metrics.txt &&
	grep -q '^vigil_stalled 0' $dir/metrics.txt; then
	vt_pass trim-metrics "$(grep -E '^vigil_(module_log|last_verdict|build_info)' $dir/metrics.txt | tr '\n' ' ' | cut -c1-300)"
else
	vt_fail trim-metrics "$(grep -E '^vigil_(module_log|last_verdict|build_info|stalled)' $dir/metrics.txt | tr '\n' '|' | cut -c1-400)"
fi
vt_check trim-vigild-clean-stop test "$vrc" = 0

# Both logs still replay: the module's from its newest BASE cut, the saved
# one from the start of the instance. The saved log has every log seq once.
vt_check trim-module-log-replays vigilctl replay
logf=$(ls $state/log-*.bin 2>/dev/null | head -n 1)
vt_check trim-saved-log-replays vigilctl replay --file "$logf"
vigilctl log --file "$logf" --json 2>/dev/null | sed -n 's/.*"seq":\([0-9]*\).*/\1/p' >$dir/seqs.txt
n=$(wc -l <$dir/seqs.txt)
gaps=$(awk 'NR==1 && $1!=1 {g++} NR>1 && $1!=p+1 {g++} {p=$1} END {print g+0}' $dir/seqs.txt)
if [ "$n" -gt 100 ] && [ "$gaps" = 0 ]; then
	vt_pass trim-saved-log-complete "log seqs 1..$(tail -n 1 $dir/seqs.txt), $n records, no gap"
else
	vt_fail trim-saved-log-complete "$n records, $gaps gaps: $(head -n 3 $dir/seqs.txt | tr '\n' ' ')"
fi

# A restart checks the saved anchor; an edited one is refused.
vigild --state-dir $state --no-records --metrics '' --duration 1 -o $dir/out2.json 2>$dir/err2.txt
rc=$?
if [ $rc = 0 ] && grep -q 'resuming verification after seq .* checked against the' $dir/err2.txt; then
	vt_pass trim-restart-anchor-checked "$(grep 'resuming' $dir/err2.txt | cut -c1-200)"
else
	vt_fail trim-restart-anchor-checked "exit $rc: $(tail -n 3 $dir/err2.txt | tr '\n' '|' | cut -c1-300)"
fi
cls=$(sed -n 's/.*"checkpoint_log_seq": \([0-9]*\).*/\1/p' $state/verifier.json)
sed -i "s/\"checkpoint_log_seq\": $cls/\"checkpoint_log_seq\": $((cls + 2))/" $state/verifier.json
vigild --state-dir $state --no-records --metrics '' --duration 1 -o $dir/out3.json 2>$dir/err3.txt
rc=$?
if [ $rc = 1 ] && grep -q 'anchor_mismatch' $dir/err3.txt && ! grep -q '"type":"checkpoint"' $dir/out3.json; then
	vt_pass trim-edited-anchor-refused "$(grep anchor_mismatch $dir/err3.txt | cut -c1-240)"
else
	vt_fail trim-edited-anchor-refused "log seq $cls -> $((cls + 2)), exit $rc: $(tail -n 3 $dir/err3.txt | tr '\n' '|' | cut -c1-300)"
fi
vigild --state-dir $state --no-records --metrics '' --duration 1 --reset-state -o $dir/out4.json 2>$dir/err4.txt
rc=$?
if [ $rc = 0 ] && grep -q -- '--reset-state: anchor_mismatch.*moved verifier.json' $dir/err4.txt; then
	vt_pass trim-reset-state-says-what "$(grep -- '--reset-state' $dir/err4.txt | cut -c1-240)"
else
	vt_fail trim-reset-state-says-what "exit $rc: $(tail -n 3 $dir/err4.txt | tr '\n' '|' | cut -c1-300)"
fi
# The BPF programs that called the kfuncs drop their module references
# asynchronously after vigild detached them.
sleep 2
vt_check trim-rmmod vt_rmmod vigil
