# SPDX-License-Identifier: GPL-2.0
# A CPU-bound agent gets samples even when it is not switched out (Debian
# 6.12, module loaded): vigild attaches the perf_event program
# vigil_sample_tick to a cpu-clock event on each CPU, which closes the
# running agent's slice every sample_ms / 2. A sample emitted at
# sched_switch always counts the switch that emitted it, so samples with
# no switch come from the timer; they are committed like any record (the
# module's kfunc is reachable from perf_event programs). Not on 6.1, where
# perf_event programs cannot call module kfuncs: no tick there.
dir=/tmp/vigild-spin
mkdir -p $dir
rm -f $dir/ready
vigild --sample-ms 50 --ready-file $dir/ready >$dir/out.json 2>$dir/err.txt &
vpid=$!
if ! vt_wait_ready $dir/ready $vpid; then
	vt_fail spin-vigild-attached "$(tail -n 5 $dir/err.txt | tr '\n' '|' | cut -c1-400)"
	kill $vpid 2>/dev/null
	return 0 2>/dev/null || exit 0
fi
vigilctl agent run --name spinner -- vigil-workload --burn-ms 1500
sleep 0.3
kill -TERM $vpid
wait $vpid
id=$(grep '"type":"agent"' $dir/out.json | grep '"name":"spinner"' | head -n 1 |
	sed -n 's/.*"agent_id":\([0-9]*\).*/\1/p')
grep '"type":"sample"' $dir/out.json | grep "\"agent_id\":$id," >$dir/samples.json
total=$(grep -c . $dir/samples.json)
switchless=$(grep -c '"nivcsw":0,"nvcsw":0,' $dir/samples.json)
uncommitted=$(grep -vc '"committed":true' $dir/samples.json)
guard=$(vigilctl status --json | sed -n 's/.*"kfunc_guard": "\([a-z]*\)".*/\1/p')
if [ "$guard" = callsite ]; then
	# Debian 12's 6.1: perf_event programs get no module kfuncs, so vigild
	# loads no timer tick there; every sample comes from a switch.
	if [ -n "$id" ] && [ "$total" -ge 1 ] && [ "$switchless" = 0 ] && [ "$uncommitted" = 0 ]; then
		vt_pass spin-timer-samples "no timer tick on $(uname -r): $total samples, all at switches, all committed"
	else
		vt_fail spin-timer-samples "agent '$id': $switchless of $total without a switch (no tick expected), $uncommitted uncommitted"
	fi
elif [ -n "$id" ] && [ "$switchless" -ge 3 ] && [ "$uncommitted" = 0 ]; then
	vt_pass spin-timer-samples "$switchless of $total samples without a switch, all committed"
else
	vt_fail spin-timer-samples "agent '$id': $switchless of $total without a switch, $uncommitted uncommitted: $(head -n 2 $dir/samples.json | cut -c1-300 | tr '\n' '|')"
fi
