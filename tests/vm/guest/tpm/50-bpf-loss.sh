# SPDX-License-Identifier: GPL-2.0
# Loss is recorded, never silent: with a stopped collector and a one-page
# ring buffer, the BPF programs count the records they cannot deliver,
# report each one to the module (vigil_drop), the next checkpoint carries
# the total, and vigild's verdict on it is "loss". Then the same events
# without the module's commit (--no-module) arrive unflagged as committed.
dir=/tmp/vigild-loss
mkdir -p $dir

json_num() { sed -n "s/.*\"$1\": *\([0-9]*\).*/\1/p" | head -n 1; }

dropped_before=$(vigilctl status --json | json_num dropped)
vigild --all-processes --ready-file $dir/ready --ringbuf-bytes 4096 >$dir/out.json 2>$dir/err.txt &
vpid=$!
if ! vt_wait_ready $dir/ready $vpid; then
	vt_fail bpf-loss-attached "$(tail -n 3 $dir/err.txt | tr '\n' '|')"
	kill $vpid 2>/dev/null
	return 0 2>/dev/null || exit 0
fi
kill -STOP $vpid
i=0
while [ $i -lt 40 ]; do
	/bin/true
	i=$((i + 1))
done
kill -CONT $vpid
# Long enough for a timer checkpoint (checkpoint_ms=1000) to carry the drops
# and for vigild to decide it.
sleep 2.5
kill -TERM $vpid
wait $vpid
summary=$(grep 'vigild: summary' $dir/err.txt)
drops=$(echo "$summary" | sed -n 's/.* drops=\([0-9]*\).*/\1/p')
full=$(echo "$summary" | sed -n 's/.* ringbuf_full=\([0-9]*\).*/\1/p')
if [ -n "$drops" ] && [ "$drops" -gt 0 ] && [ "$drops" = "$full" ]; then
	vt_pass bpf-loss-counted "$drops records dropped and counted"
else
	vt_fail bpf-loss-counted "$summary"
fi
if echo "$summary" | grep -q 'drop_report_failed=0 '; then
	vt_pass bpf-loss-reported-to-module
else
	vt_fail bpf-loss-reported-to-module "$summary"
fi
dropped_after=$(vigilctl status --json | json_num dropped)
# vigild's verdicts: the checkpoints that attest drops are "loss", with the
# count, and no other verdict carries drops. (Drops after the last decided
# checkpoint are in none yet, so the sum can be below vigild's count.)
grep '"type":"checkpoint"' $dir/out.json >$dir/verdicts.json
loss_drops=0
for n in $(grep '"verdict":"loss"' $dir/verdicts.json | sed -n 's/.*"new_drops":\([0-9]*\).*/\1/p'); do
	loss_drops=$((loss_drops + n))
done
other_drops=$(grep -v '"verdict":"loss"' $dir/verdicts.json | grep -c '"new_drops":[1-9]')
if [ "$loss_drops" -gt 0 ] && [ "$other_drops" = 0 ]; then
	vt_pass bpf-loss-verdict "$(grep -c '"verdict":"loss"' $dir/verdicts.json) loss verdicts attesting $loss_drops drops ($drops by this vigild)"
else
	vt_fail bpf-loss-verdict "loss verdicts attest ${loss_drops} drops, vigild dropped ${drops:-?}, $other_drops other verdicts with drops: $(head -n 2 $dir/verdicts.json | cut -c1-300 | tr '\n' '|')"
fi
if [ -n "$drops" ] && [ -n "$dropped_before" ] && [ -n "$dropped_after" ] &&
	[ $((dropped_after - dropped_before)) -ge "$drops" ]; then
	vt_pass bpf-loss-module-count "module dropped $dropped_before -> $dropped_after"
else
	vt_fail bpf-loss-module-count "module dropped ${dropped_before:-?} -> ${dropped_after:-?}, vigild drops ${drops:-?}"
fi
# A timer checkpoint (checkpoint_ms) carries the total into the anchored log.
sleep 1.5
cp_drops=$(vigilctl log --json | grep '"type":"checkpoint"' | tail -n 1 |
	sed -n 's/.*"drops_total":\([0-9]*\).*/\1/p')
if [ -n "$cp_drops" ] && [ -n "$dropped_after" ] && [ "$cp_drops" -ge "$dropped_after" ]; then
	vt_pass bpf-loss-in-checkpoint "last checkpoint drops_total=$cp_drops"
else
	vt_fail bpf-loss-in-checkpoint "last checkpoint drops_total='${cp_drops}', module dropped '${dropped_after}'"
fi

# --no-module: the programs load without the kfunc calls; nothing is committed.
committed_before=$(vigilctl status --json | json_num committed)
rm -f $dir/ready
vigild --all-processes --no-module --ready-file $dir/ready >$dir/nm.json 2>$dir/nm.txt &
vpid=$!
vt_wait_ready $dir/ready $vpid
sh -c 'exit 9' &
child=$!
wait $child
sleep 0.5
kill -TERM $vpid
wait $vpid
committed_after=$(vigilctl status --json | json_num committed)
exit_line=$(grep '"type":"exit"' $dir/nm.json | grep "\"pid\":$child,")
if echo "$exit_line" | grep -q '"exit_code":9,' && echo "$exit_line" | grep -q '"committed":false' &&
	echo "$exit_line" | grep -q '"no_module":true' && ! grep -q '"committed":true' $dir/nm.json &&
	[ "$committed_before" = "$committed_after" ]; then
	vt_pass bpf-no-module-mode "exit 9 seen uncommitted; module committed stays $committed_after"
else
	vt_fail bpf-no-module-mode "committed $committed_before -> $committed_after: ${exit_line:-no exit event}"
fi
