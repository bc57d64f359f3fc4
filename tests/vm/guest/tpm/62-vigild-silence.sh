# SPDX-License-Identifier: GPL-2.0
# Signed silence. A root attacker switches vigil's producers off without
# touching any record: (1) one write to vigil_active_gen in the pinned .bss
# makes every program return at once; (2) `bpftool link detach` takes the
# sched_switch program off its hook. Nothing is committed either way, so the
# chain verifies; the module's signed per-producer counters in the next
# checkpoints show it, and vigild reports a producer_silent finding within
# three checkpoint periods (checkpoint_ms=1000 here).
dir=/tmp/silence
pins=/sys/fs/bpf/vigil
mkdir -p $dir
rm -rf $dir/state $dir/ready
if ! command -v bpftool >/dev/null; then
	vt_fail silence-bpftool "bpftool missing from the initramfs"
	return 0 2>/dev/null || exit 0
fi

run_vigild() { # run_vigild NAME
	rm -f $dir/ready
	vigild --state-dir $dir/state --sample-ms 50 --ready-file $dir/ready \
		--checkpoint-wait 3 -o $dir/$1.json 2>$dir/$1.err &
	vpid=$!
	vt_wait_ready $dir/ready $vpid
}

silent_after() { # silent_after NAME: a producer_silent finding within 3.5 s
	_i=0
	while [ $_i -lt 35 ]; do
		grep -q '"kind":"producer_silent"' $dir/$1.json && return 0
		sleep 0.1
		_i=$((_i + 1))
	done
	return 1
}

# (1) the .bss write
if ! run_vigild bss; then
	vt_fail silence-bss-start "$(tail -n 3 $dir/bss.err | tr '\n' '|')"
else
	sleep 2.5
	if grep -q '"kind":"producer_silent"' $dir/bss.json; then
		vt_fail silence-honest "producer_silent while the producers run: $(grep producer_silent $dir/bss.json | head -n 1 | cut -c1-200)"
	else
		vt_pass silence-honest "no producer_silent finding over honest checkpoints"
	fi
	# .bss holds only vigil_active_gen (8 bytes): set it to a generation no
	# program has.
	bpftool map update pinned $pins/maps/bss key hex 00 00 00 00 \
		value hex ff ff ff 7f 00 00 00 00 2>$dir/bss-attack.err
	if silent_after bss; then
		vt_pass silence-bss "$(grep -m1 producer_silent $dir/bss.json | cut -c1-220)"
	else
		vt_fail silence-bss "no producer_silent finding 3.5 s after the .bss write: $(tr '\n' '|' <$dir/bss-attack.err | cut -c1-200)"
	fi
	kill -TERM $vpid
	wait $vpid 2>/dev/null
fi

# (2) link detach (vigild restarts with fresh programs: gen 0 .bss is not
# reused since it stopped cleanly)
if ! run_vigild detach; then
	vt_fail silence-detach-start "$(tail -n 3 $dir/detach.err | tr '\n' '|')"
else
	sleep 2.5
	id=$(bpftool link show 2>/dev/null | awk '/vigil_sched_sw/ { sub(":", "", $1); print $1; exit }')
	if [ -z "$id" ]; then
		id=$(bpftool link show 2>/dev/null | grep -B1 -A1 sched_switch | awk '/^[0-9]+:/ { sub(":", "", $1); print $1; exit }')
	fi
	if [ -n "$id" ] && bpftool link detach id "$id" 2>$dir/detach-attack.err; then
		if silent_after detach; then
			vt_pass silence-detach "$(grep -m1 producer_silent $dir/detach.json | cut -c1-220)"
		else
			vt_fail silence-detach "no producer_silent finding 3.5 s after detaching link $id"
		fi
	else
		vt_fail silence-detach "could not detach the sched_switch link (id '$id'): $(bpftool link show 2>&1 | head -n 6 | tr '\n' '|' | cut -c1-300)"
	fi
	kill -TERM $vpid
	wait $vpid 2>/dev/null
fi
