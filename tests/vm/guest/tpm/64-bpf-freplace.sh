# SPDX-License-Identifier: GPL-2.0
# freplace: root loads a BPF_PROG_TYPE_EXT program that replaces a helper
# inside vigil's running programs (the agent lookup, so its own processes
# are never tracked; or the commit helper, so nothing commits). It calls no
# vigil kfunc, so the producer filter never sees it. vigil's helpers are
# static functions (one compilation unit), which the kernel refuses to
# replace; with global helpers both attacks loaded and attached.
dir=/tmp/freplace
mkdir -p $dir
rm -rf $dir/state $dir/ready
vigild --state-dir $dir/state --sample-ms 50 --ready-file $dir/ready -o $dir/out.json 2>$dir/err &
vpid=$!
if ! vt_wait_ready $dir/ready $vpid; then
	vt_fail freplace-vigild "$(tail -n 3 $dir/err | tr '\n' '|')"
	return 0 2>/dev/null || exit 0
fi
vt_check freplace-agent-lookup vigil-freplace vigil_exec vigil_agent_of_current
vt_check freplace-fork-lookup vigil-freplace vigil_fork vigil_agent_of_pid
kill -TERM $vpid
wait $vpid 2>/dev/null
