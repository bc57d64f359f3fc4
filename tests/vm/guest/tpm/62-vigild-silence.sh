# SPDX-License-Identifier: GPL-2.0
# Signed silence. A root attacker switches vigil's producers off without
# touching any record: (1) one write to vigil_active_gen in the pinned .bss
# makes every program return at once; (2) kill vigild and remove the link
# pins, which detaches the programs (raw_tp links have no LINK_DETACH), and
# restart it later. Nothing is committed either way, so the chain verifies;
# the module's signed per-producer counters show it (a stalled sched_switch
# counter is news: the idle timer checkpoint is not skipped), and vigild
# reports a producer_silent finding within three checkpoint periods
# (checkpoint_ms=1000 here); (3) a root program set of its own (a producer
# window opened by another process) is a producers_changed finding.
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
	vt_wait_finding $dir/$1.json producer_silent 35
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

# (2) detach: SIGKILL leaves the links pinned (the programs keep running);
# removing the pins drops the last reference and detaches them.
if ! run_vigild detach; then
	vt_fail silence-detach-start "$(tail -n 3 $dir/detach.err | tr '\n' '|')"
else
	sleep 2.5
	kill -KILL $vpid
	wait $vpid 2>/dev/null
	rm -f $pins/links/*
	sleep 3.5
	# The restarted collector verifies the checkpoints logged meanwhile.
	if ! run_vigild detach2; then
		vt_fail silence-detach "vigild did not restart: $(tail -n 3 $dir/detach2.err | tr '\n' '|')"
	elif silent_after detach2; then
		vt_pass silence-detach "$(grep -m1 producer_silent $dir/detach2.json | cut -c1-220)"
	else
		vt_fail silence-detach "no producer_silent finding for the checkpoints logged while the programs were detached"
	fi
	# A foreign program on vigil's ring buffer (it could write records into
	# it): vigild's audit of the BPF objects names it.
	vigil-forge --type exec --hold 3 >$dir/forge.out 2>&1 &
	fpid=$!
	if vt_wait_finding $dir/detach2.json foreign_program 40; then
		vt_pass silence-foreign-program "$(grep -m1 foreign_program $dir/detach2.json | cut -c1-200)"
	else
		vt_fail silence-foreign-program "no foreign_program finding: $(tr '\n' '|' <$dir/forge.out | cut -c1-200)"
	fi
	wait $fpid
	# (3) another producer set: a root process registers programs of its own.
	if command -v vigil-kmod-bench >/dev/null; then
		# Only what comes after it counts (vigild's own restart opened one).
		seen=$(grep -c '"kind":"producers_changed"' $dir/detach2.json)
		vigil-kmod-bench --hold 2 >$dir/bench.out 2>&1
		_i=0
		while [ $_i -lt 100 ] &&
			[ "$(grep -c '"kind":"producers_changed"' $dir/detach2.json)" -le "$seen" ]; do
			sleep 0.1
			_i=$((_i + 1))
		done
		if [ "$(grep -c '"kind":"producers_changed"' $dir/detach2.json)" -gt "$seen" ]; then
			vt_pass silence-new-producers "$(grep '"kind":"producers_changed"' $dir/detach2.json | tail -n 1 | cut -c1-220)"
		else
			vt_fail silence-new-producers "no producers_changed finding: $(tr '\n' '|' <$dir/bench.out | cut -c1-200)"
		fi
	fi
	# (4) an attack on the anchor, not on the events: one junk extend into
	# PCR 23. vigild says the anchor broke, once, and the verdicts after it
	# are unanchored, not tampered: the chain and signatures still hold.
	zeros=0000000000000000000000000000000000000000000000000000000000000000
	if TPM2TOOLS_TCTI=device:/dev/tpmrm0 tpm2 pcrextend 23:sha256=$zeros 2>$dir/extend.err; then
		vigil-ioctl-test commit >/dev/null 2>&1
		# The finding and the verdict come from the same decision.
		if vt_wait_finding $dir/detach2.json anchor_broken 80 && sleep 0.5 &&
			grep -q '"verdict":"unanchored"' $dir/detach2.json; then
			vt_pass silence-anchor-broken "$(grep -m1 anchor_broken $dir/detach2.json | cut -c1-200)"
		else
			vt_fail silence-anchor-broken "no anchor_broken finding and unanchored verdict: $(grep '"verdict"' $dir/detach2.json | tail -n 1 | cut -c1-200)"
		fi
		vt_check silence-anchor-not-tampered sh -c "test -s $dir/detach2.json && ! grep -q '\"verdict\":\"tampered\"' $dir/detach2.json"
	else
		vt_fail silence-anchor-broken "tpm2 pcrextend: $(cat $dir/extend.err)"
	fi
	kill -TERM $vpid
	wait $vpid 2>/dev/null
fi
