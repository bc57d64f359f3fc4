# SPDX-License-Identifier: GPL-2.0
# make demo: load vigil.ko, run vigild over a few small workloads, force a
# checkpoint, and print what a person wants to see. The summary goes out as
# LOG lines, which scripts/demo prints; a few checks keep the demo honest.
dir=/tmp/demo
mkdir -p $dir
say() { vt_log "$*"; }
indent() { while IFS= read -r l; do vt_log "  $l"; done; }

vt_check demo-insmod insmod /vigil.ko || exit 0
say "== vigil.ko loaded into $(uname -r), $VMTEST_NCPU CPUs, TPM: swtpm (TIS)"
vigilctl status 2>&1 | indent

# Chain state before any program is attached: the user-space recomputation starts here.
start_json=$(vigilctl status --json)
vigild --all-processes --ready-file $dir/ready --raw-out $dir/events.bin >$dir/events.json 2>$dir/vigild.err &
vpid=$!
vt_wait_ready $dir/ready $vpid || { vt_fail demo-vigild "$(tail -n 3 $dir/vigild.err)"; exit 0; }

say ""
say "== workloads"
say "  ls /            ; sh -c 'exit 3'   ; sha256sum vigil.ko"
say "  sort a pipeline ; sleep killed with SIGKILL"
ls / >/dev/null
sh -c 'exit 3'
sha256sum /vigil.ko >/dev/null
seq 1 2000 | sort -rn | head -n 1 >/dev/null
sleep 30 &
victim=$!
kill -9 $victim
wait $victim 2>/dev/null
sleep 1.3
kill -TERM $vpid
wait $vpid
vt_records $dir/events.json >$dir/records.json

say ""
say "== events seen by vigild (ring buffer, committed in the kernel by the kfunc)"
total=$(grep -c . $dir/records.json)
execs=$(grep -c '"type":"exec"' $dir/records.json)
exits=$(grep -c '"type":"exit"' $dir/records.json)
committed=$(grep -c '"committed":true' $dir/records.json)
seqs=$(grep -o '"seq":[0-9]*' $dir/records.json | cut -d: -f2 | sort -n)
first=$(echo "$seqs" | head -n 1)
last=$(echo "$seqs" | tail -n 1)
say "  $total records: $execs exec, $exits exit; $committed committed; sequence $first..$last"
grep '"type":"exit"' $dir/records.json |
	sed -n 's/.*"comm":"\([^"]*\)".*"exit_code":\([-0-9]*\),.*"pid":\([0-9]*\),.*"signal":\([0-9]*\),.*/exit: \1 pid \3 exit_code \2 signal \4/p' |
	head -n 8 | indent
grep -q . $dir/records.json && [ "$committed" -eq "$total" ] && vt_pass demo-events "$total committed" ||
	vt_fail demo-events "$total records, $committed committed"

say ""
say "== checkpoint verdicts by vigild (chain recomputed, TPM signature, PCR path)"
grep '"type":"checkpoint"' $dir/events.json >$dir/verdicts.json
nverdicts=$(grep -c . $dir/verdicts.json)
nverified=$(grep -c '"verdict":"verified"' $dir/verdicts.json)
sed -n 's/.*"events":\([0-9]*\),"first_seq":\([0-9]*\),"last_seq":\([0-9]*\).*"pcr_checked":\([a-z]*\).*"verdict":"\([a-z]*\)".*/\5: events \2..\3 (\1 records), pcr_checked=\4/p' \
	$dir/verdicts.json | head -n 6 | indent
grep '"type":"measure"' $dir/events.json | sed -n 's/.*"digest":"\(.\{16\}\).*"name":"\([^"]*\)".*/measured into pcr_config: \2 \1.../p' | indent
[ "$nverdicts" -ge 1 ] && [ "$nverified" -eq "$nverdicts" ] &&
	vt_pass demo-verdicts "$nverified of $nverdicts checkpoints verified" ||
	vt_fail demo-verdicts "$nverified of $nverdicts verified: $(grep -v '"verdict":"verified"' $dir/verdicts.json | head -n 2)"

say ""
say "== chain recomputed in user space from the records vigild received"
start_head=$(echo "$start_json" | sed -n 's/.*"chain_head": *"\([0-9a-f]*\)".*/\1/p')
next_seq=$(echo "$start_json" | sed -n 's/.*"next_seq": *\([0-9]*\).*/\1/p')
vigilctl verify-chain --live --events $dir/events.bin --start-seq $((next_seq - 1)) \
	--start-head "$start_head" >$dir/verify.txt 2>&1
rc=$?
indent <$dir/verify.txt
[ $rc -eq 0 ] && vt_pass demo-chain || vt_fail demo-chain "exit $rc"

say ""
say "== log (/dev/vigil): the module's measurement log"
vigilctl log >$dir/log.txt 2>&1
say "  $(awk '{print $1}' $dir/log.txt | sort | uniq -c | awk '{printf "%s%s %s", sep, $1, $2; sep=", "}')"
grep '^checkpoint' $dir/log.txt | tail -n 1 |
	sed -n 's/.*seq=\([0-9]*\) .*first_seq=\([0-9]*\) .*last_seq=\([0-9]*\) .*/last checkpoint: log seq \1 covers events \2..\3/p' | indent
grep -q '^signature.*status=0' $dir/log.txt && say "  checkpoints signed by the TPM (ECDSA P-256, the module's key; root can read its secret from kernel memory, so proof against root rests on the anchor)"

say ""
say "== PCRs replayed from the log vs. read from the TPM (tpm2-tss, /dev/tpmrm0)"
vigilctl replay >$dir/replay.txt 2>&1
rc=$?
awk '/^[a-z0-9_]+ pcr_/ { name = $1 " " $2 }
	/^ *replayed / { val = $2 }
	/^ *(match|MISMATCH)/ { printf "%-22s %.16s...  %s\n", name, val, $1 }' $dir/replay.txt | indent
tail -n 1 $dir/replay.txt | indent
[ $rc -eq 0 ] && vt_pass demo-replay || vt_fail demo-replay "exit $rc: $(tail -n 3 $dir/replay.txt)"

say ""
say "== attacks a root user tries, and what vigil shows"
if command -v vigil-kmod-bench >/dev/null; then
	out=$(vigil-kmod-bench --foreign 2>&1 | tail -n 1)
	say "  a BPF program of root's own calls vigil_commit to forge a record:"
	say "    $out"
	echo "$out" | grep -q '^refused' && vt_pass demo-attack-foreign || vt_fail demo-attack-foreign "$out"
fi
rm -f $dir/ready
vigild --state-dir $dir/state2 --sample-ms 50 --ready-file $dir/ready -o $dir/attack.json 2>$dir/attack.err &
vpid=$!
if vt_wait_ready $dir/ready $vpid; then
	sleep 2.5
	bpftool map update pinned /sys/fs/bpf/vigil/maps/bss key hex 00 00 00 00 \
		value hex ff ff ff 7f 00 00 00 00 2>/dev/null
	say "  root switches every vigil program off with one write to vigil_active_gen (pinned .bss):"
	vt_wait_finding $dir/attack.json producer_silent 50
	finding=$(grep -m1 '"kind":"producer_silent"' $dir/attack.json | sed -n 's/.*"reason":"\([^"]*\)".*/\1/p')
	say "    vigild: producer_silent: $finding"
	[ -n "$finding" ] && vt_pass demo-attack-silence || vt_fail demo-attack-silence "no finding"
	kill -TERM $vpid
	wait $vpid 2>/dev/null
fi
if rmmod vigil 2>$dir/rmmod.err; then
	vt_fail demo-attack-rmmod "rmmod succeeded before the seal"
else
	say "  root unloads the module to drop the records since the last checkpoint:"
	say "    $(cat $dir/rmmod.err) (until 'vigilctl seal' wrote the final checkpoint and the log was read)"
	vt_pass demo-attack-rmmod
fi

vt_rmmod vigil && say "" && say "== vigil.ko sealed (final checkpoint read) and unloaded"
