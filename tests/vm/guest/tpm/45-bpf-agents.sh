# SPDX-License-Identifier: GPL-2.0
# Agents with the module loaded (Debian 6.12): vigild records only what
# `vigilctl agent run` starts, every record carries the agent id and is
# committed, one registration record per agent precedes its records, the
# scheduler emits samples (no PMU under QEMU: no hardware counters), the
# sequence numbers vigild sees are contiguous and the chain verifies.
dir=/tmp/vigild-agents
mkdir -p $dir
rm -f $dir/ready
vigilctl status --json >$dir/before.json 2>&1
start_head=$(sed -n 's/.*"chain_head": "\([0-9a-f]*\)".*/\1/p' $dir/before.json)
next_seq=$(sed -n 's/.*"next_seq": \([0-9]*\).*/\1/p' $dir/before.json)

vigilctl agent list >$dir/nodaemon.txt 2>&1
rc=$?
if [ $rc -eq 7 ] && grep -q 'vigild is not running' $dir/nodaemon.txt; then
	vt_pass agents-need-vigild "exit 7: $(head -n 1 $dir/nodaemon.txt | cut -c1-120)"
else
	vt_fail agents-need-vigild "exit $rc: $(head -n 2 $dir/nodaemon.txt | tr '\n' '|')"
fi

vigild --sample-ms 20 --syscalls --ready-file $dir/ready --raw-out $dir/events.bin \
	>$dir/out.json 2>$dir/err.txt &
vpid=$!
if ! vt_wait_ready $dir/ready $vpid; then
	vt_fail agents-vigild-attached "$(tail -n 5 $dir/err.txt | tr '\n' '|' | cut -c1-400)"
	kill $vpid 2>/dev/null
	return 0 2>/dev/null || exit 0
fi
vt_pass agents-vigild-attached "$(grep -E 'recording|samples' $dir/err.txt | tr '\n' ' ' | cut -c1-300)"

sh -c 'exit 4' &
stranger=$!
wait $stranger
vigilctl agent run --name vm-burn -- vigil-workload --burn-ms 200 --forks 5 --pingpong 500 \
	--exit 3
burn_rc=$?
vigilctl agent run --name vm-kill -- vigil-workload --touch-mib 16 --signal 9
kill_rc=$?
vigilctl agent list >$dir/list.txt 2>&1
# Untracking is itself committed into the chain before the maps change.
sleep 1000 &
sleeper=$!
vigilctl agent track --name vm-gone --pid $sleeper >/dev/null 2>&1
if vigilctl agent untrack --name vm-gone >$dir/untrack.txt 2>&1 &&
	seq=$(sed -n 's/^untracking committed at seq \([0-9]*\)$/\1/p' $dir/untrack.txt) && [ -n "$seq" ] &&
	vigilctl log --json | grep '"kind":1986461697' | grep -q "\"seq\":$seq,"; then
	vt_pass agents-untrack-committed "$(cat $dir/untrack.txt)"
else
	vt_fail agents-untrack-committed "$(tr '\n' '|' <$dir/untrack.txt | cut -c1-200)"
fi
kill $sleeper
wait $sleeper 2>/dev/null
sleep 0.5
kill -TERM $vpid
wait $vpid
vt_records $dir/out.json >$dir/records.json
cat $dir/err.txt >/dev/console

nreg=$(grep -c '"type":"agent"' $dir/records.json)
if [ "$nreg" = 2 ] && grep '"type":"agent"' $dir/records.json | grep -q '"name":"vm-burn"' &&
	grep '"type":"agent"' $dir/records.json | grep -q '"name":"vm-kill"' &&
	[ "$(grep -c . $dir/list.txt)" = 2 ]; then
	vt_pass agents-registered "2 registration records; list: $(tr '\n' ' ' <$dir/list.txt)"
else
	vt_fail agents-registered "$nreg registration records; list: $(tr '\n' '|' <$dir/list.txt)"
fi

total=$(grep -c . $dir/records.json)
untracked=$(grep -c '"agent_id":0,' $dir/records.json)
uncommitted=$(grep -c '"committed":false' $dir/records.json)
if [ "$total" -gt 10 ] && [ "$untracked" = 0 ] && [ "$uncommitted" = 0 ] &&
	! grep -q "\"pid\":$stranger," $dir/records.json; then
	vt_pass agents-only-tracked "$total records, all committed with an agent id; pid $stranger absent"
else
	vt_fail agents-only-tracked "total $total untracked $untracked uncommitted $uncommitted"
fi

burn_exit=$(grep '"type":"exit"' $dir/records.json | grep '"comm":"vigil-workload"' | grep '"exit_code":3,')
kill_exit=$(grep '"type":"exit"' $dir/records.json | grep '"comm":"vigil-workload"' | grep '"signal":9,')
nfork=$(grep -c '"type":"fork"' $dir/records.json)
if [ "$burn_rc" = 3 ] && [ "$kill_rc" = 137 ] && [ -n "$burn_exit" ] && [ -n "$kill_exit" ] &&
	[ "$nfork" -ge 6 ]; then
	vt_pass agents-exits "exit 3 and SIGKILL recorded, $nfork forks"
else
	vt_fail agents-exits "rc $burn_rc/$kill_rc forks $nfork: ${burn_exit:-no exit 3} ${kill_exit:-no signal 9}"
fi

nsample=$(grep -c '"type":"sample"' $dir/records.json)
nhw=$(grep '"type":"sample"' $dir/records.json | grep -c '"hw_counters":true')
nsys=$(grep '"type":"sample"' $dir/records.json | grep -c '"syscalls":[0-9]')
if [ "$nsample" -ge 2 ] && [ "$nhw" = 0 ] && [ "$nsys" = "$nsample" ] &&
	grep -q 'no hardware performance counters' $dir/err.txt; then
	vt_pass agents-samples "$nsample samples, syscalls counted, no PMU reported and no cycles claimed"
else
	vt_fail agents-samples "samples $nsample hw $nhw syscalls $nsys: $(grep samples $dir/err.txt)"
fi

grep -o '"seq":[0-9]*' $dir/records.json | cut -d: -f2 | sort -n >$dir/seqs
first=$(head -n 1 $dir/seqs)
last=$(tail -n 1 $dir/seqs)
distinct=$(uniq $dir/seqs | wc -l)
if [ -n "$first" ] && [ "$first" -gt 0 ] && [ "$distinct" = "$total" ] &&
	[ $((last - first + 1)) = "$total" ] && grep -q ' drops=0 ' $dir/err.txt; then
	vt_pass agents-seq-contiguous "seq $first..$last, $total records, no drops"
else
	vt_fail agents-seq-contiguous "seq $first..$last distinct $distinct total $total: $(grep summary $dir/err.txt | cut -c1-200)"
fi

sleep 1.5
vigilctl verify-chain --live --events $dir/events.bin --start-seq $((next_seq - 1)) \
	--start-head "$start_head" >$dir/verify.txt 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q '^module head: match' $dir/verify.txt; then
	vt_pass agents-chain-verified "$(grep -E '^(events|checkpoints)' $dir/verify.txt | tr '\n' ' ')"
else
	vt_fail agents-chain-verified "exit $rc: $(tr '\n' '|' <$dir/verify.txt | cut -c1-400)"
fi
