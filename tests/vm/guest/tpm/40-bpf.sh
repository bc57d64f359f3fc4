# SPDX-License-Identifier: GPL-2.0
# vigild with the module loaded: the BPF programs load with the kfunc, every
# event is committed with a distinct, increasing seq, and a known child's
# exec and exit carry its pid and exit code; the chain user space recomputes
# over the events it received equals the module's checkpoints and head.
dir=/tmp/vigild
mkdir -p $dir
rm -f $dir/ready
# Chain state before any program is attached: nothing commits until vigild runs.
vigilctl status --json >$dir/before.json 2>&1
start_head=$(sed -n 's/.*"chain_head": "\([0-9a-f]*\)".*/\1/p' $dir/before.json)
next_seq=$(sed -n 's/.*"next_seq": \([0-9]*\).*/\1/p' $dir/before.json)
vigild --all-processes --ready-file $dir/ready --raw-out $dir/events.bin >$dir/out.json 2>$dir/err.txt &
vpid=$!
if vt_wait_ready $dir/ready $vpid; then
	vt_pass bpf-vigild-attached "$(cat $dir/ready)"
else
	vt_fail bpf-vigild-attached "not ready: $(tail -n 5 $dir/err.txt | tr '\n' '|' | cut -c1-400)"
	kill $vpid 2>/dev/null
	return 0 2>/dev/null || exit 0
fi
if grep -q 'module=1' $dir/ready; then
	vt_pass bpf-module-kfunc "vigild found vigil_commit in /sys/kernel/btf/vigil"
else
	vt_fail bpf-module-kfunc "$(cat $dir/ready)"
fi

sh -c 'exit 7' &
child=$!
wait $child
child_rc=$?
/bin/true
sleep 1
kill -TERM $vpid
wait $vpid
vrc=$?
vt_records $dir/out.json >$dir/records.json
cat $dir/err.txt >/dev/console
if [ $vrc -eq 0 ] && grep -q 'vigild: summary' $dir/err.txt; then
	vt_pass bpf-vigild-clean-stop "$(grep 'vigild: summary' $dir/err.txt | cut -c1-200)"
else
	vt_fail bpf-vigild-clean-stop "exit $vrc: $(tail -n 3 $dir/err.txt | tr '\n' '|')"
fi

exec_line=$(grep '"type":"exec"' $dir/records.json | grep "\"pid\":$child,")
exit_line=$(grep '"type":"exit"' $dir/records.json | grep "\"pid\":$child,")
if [ -n "$exec_line" ] && echo "$exec_line" | grep -q '"committed":true'; then
	vt_pass bpf-child-exec "pid $child"
else
	vt_fail bpf-child-exec "pid $child: ${exec_line:-no exec event} ($(wc -l <$dir/records.json) events)"
fi
if [ "$child_rc" = 7 ] && echo "$exit_line" | grep -q '"exit_code":7,' &&
	echo "$exit_line" | grep -q '"signal":0,' && echo "$exit_line" | grep -q '"committed":true'; then
	vt_pass bpf-child-exit "pid $child exit_code 7"
else
	vt_fail bpf-child-exit "pid $child rc $child_rc: ${exit_line:-no exit event}"
fi

total=$(grep -c . $dir/records.json)
committed=$(grep -c '"committed":true' $dir/records.json)
grep -o '"seq":[0-9]*' $dir/records.json | cut -d: -f2 | sort -n >$dir/seqs
distinct=$(uniq $dir/seqs | wc -l)
zero=$(grep -c '^0$' $dir/seqs)
first=$(head -n 1 $dir/seqs)
last=$(tail -n 1 $dir/seqs)
if [ "$total" -ge 4 ] && [ "$committed" -eq "$total" ] && [ "$distinct" -eq "$total" ] &&
	[ "$zero" -eq 0 ] && [ "$last" -gt "$first" ]; then
	vt_pass bpf-seq-increasing "$total events committed, seq $first..$last, all distinct"
else
	vt_fail bpf-seq-increasing "total $total committed $committed distinct $distinct zero $zero seq $first..$last"
fi
if grep -q 'commit_failed=0 ' $dir/err.txt; then
	vt_pass bpf-no-commit-failures
else
	vt_fail bpf-no-commit-failures "$(grep 'vigild: summary' $dir/err.txt)"
fi

# The module counted the commits vigild saw.
mod_committed=$(vigilctl status --json | grep '"committed":' | tr -dc 0-9)
if [ -n "$mod_committed" ] && [ "$mod_committed" -ge "$committed" ]; then
	vt_pass bpf-module-counted "module committed $mod_committed >= $committed seen"
else
	vt_fail bpf-module-counted "module committed '${mod_committed}', vigild saw $committed"
fi

# User space recomputes the chain over the exact bytes vigild received, from
# the state read before it attached, and compares with the module. Wait for a
# timer checkpoint (checkpoint_ms) so one ends inside the window.
sleep 1.5
if [ -n "$start_head" ] && [ -n "$next_seq" ]; then
	vigilctl verify-chain --live --events $dir/events.bin --start-seq $((next_seq - 1)) \
		--start-head "$start_head" >$dir/verify.txt 2>&1
	rc=$?
	cat $dir/verify.txt >/dev/console
	if [ $rc -eq 0 ] && grep -q '^module head: match' $dir/verify.txt &&
		! grep -q '^checkpoints compared: 0 ' $dir/verify.txt &&
		grep -q '^checkpoint signatures: [1-9][0-9]* verified, 0 unsigned' $dir/verify.txt; then
		vt_pass bpf-chain-verified "$(grep -E '^(events|checkpoint)' $dir/verify.txt | tr '\n' ' ')"
	else
		vt_fail bpf-chain-verified "exit $rc: $(tr '\n' '|' <$dir/verify.txt | cut -c1-400)"
	fi
else
	vt_fail bpf-chain-verified "no chain state from vigilctl status --json"
fi
