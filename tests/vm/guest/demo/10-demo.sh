# SPDX-License-Identifier: GPL-2.0
# make demo: load vigil.ko, run vigild over a few small workloads and show
# their records verified; then what vigil is for: an agent's baseline learnt,
# vigild's alerts when the agent changes, and root's attacks with their
# verdicts. The summary goes out as LOG lines, which scripts/demo prints;
# every line comes from vigild, vigilctl or the kernel, and the checks (part
# of make check's VM suite) fail when an alert or a verdict does not come.
dir=/tmp/demo
mkdir -p $dir
say() { vt_log "$*"; }
# mark NAME: the guest's uptime at a step, on the console (for timing the demo).
mark() { echo "demo: $1 at $(cut -d' ' -f1 /proc/uptime) s" >/dev/console; }
indent() { while IFS= read -r l; do vt_log "  $l"; done; }

mark start
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
sleep 0.3  # let it exec first: killed before, it would still be the shell's fork
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
	grep -v 'exit_code 0 signal 0$' | head -n 8 | indent
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
# Every line but the per-checkpoint ones after the third (the result counts them all).
awk -v total="$(grep -c '^checkpoint log seq ' $dir/verify.txt)" '/^checkpoint log seq / {
		if (++n == 4) printf "... %d more checkpoint lines (counted in the result below)\n", total - 3
		if (n > 3) next
	} { print }' $dir/verify.txt | indent
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

# ---------------------------------------------------------------------------
# What vigil is for: an agent's behaviour learnt and watched, then root's
# attempts to hide. One vigild (state in $dir/state2) sees all of it; every
# line below is taken from its output, vigilctl's, or the kernel's answer.
learn=20      # vigild --learn-samples (default 100): a short demo
threshold=10  # vigild --threshold (default 6): QEMU/TCG on a shared CPU is noisy
steady=30     # steady jobs: $learn to learn from, the rest scored
state=$dir/state2
say ""
say "== an agent: vigild learns how it behaves"
mark agent
say "  vigild --learn-samples $learn --threshold $threshold   (defaults 100 and 6: a short demo on an emulated CPU)"
rm -f $dir/ready
vigild --state-dir $state --sample-ms 50 --learn-samples $learn --threshold $threshold --checkpoint-wait 3 \
	--ready-file $dir/ready -o $dir/agent.json 2>$dir/agent.err &
vpid=$!
if ! vt_wait_ready $dir/ready $vpid; then
	vt_fail demo-agent-vigild "$(tail -n 3 $dir/agent.err | tr '\n' '|')"
	vpid=
fi

# jfield LINE KEY: a string or number member of one of vigild's JSON lines
# (keys are unique in alert and checkpoint lines outside "baseline").
jfield() { echo "$1" | sed -n "s/.*\"$2\":\"\{0,1\}\([^\",}]*\).*/\1/p"; }
# ms NS: nanoseconds as milliseconds with one decimal.
ms() { awk -v n="$1" 'BEGIN { printf "%.1f ms", n / 1e6 }'; }
# show_alert LINE: one vigild alert in words, then the line itself (its
# "baseline" object, time and host/boot ids left out for width; the words
# before say so once).
show_alert() {
	_kind=$(jfield "$1" alert_kind)
	if [ "$_kind" = new_executable ]; then
		say "  ALERT new_executable: agent $(jfield "$1" agent) ran $(jfield "$1" executable) (record seq $(jfield "$1" seq))"
	else
		_f=$(jfield "$1" feature)
		_v=$(jfield "$1" value)
		_m=$(jfield "$1" median)
		if [ "$_f" = cpu_per_exec ] || [ "$_f" = lifetime ]; then _v=$(ms "$_v") _m=$(ms "$_m"); fi
		say "  ALERT $_kind: agent $(jfield "$1" agent), feature $_f = $_v (baseline median $_m), score $(jfield "$1" score | cut -d. -f1) >= threshold $(jfield "$1" threshold) (record seq $(jfield "$1" seq))"
	fi
	say "    $(echo "$1" | sed 's/"baseline":{[^}]*},//; s/,"\(time\|host_id\|boot_id\)":\("[^"]*"\|null\)//g')"
}

if [ -n "$vpid" ]; then
	# The agent: a job runner that runs every line it reads from a FIFO
	# (echo is a shell builtin, every other job is a fork + exec).
	mkfifo $dir/jobs
	trap '' PIPE  # an agent that died makes the job writes fail, not this script
	vigilctl agent run --name backup -- sh -c 'while read -r job; do $job; done' \
		<$dir/jobs >$dir/agent.out 2>&1 &
	apid=$!
	exec 3>$dir/jobs
	job() { echo "$*" >&3 2>/dev/null; }
	# jobs_done MARK TENTHS: every job given so far has run.
	jobs_done() {
		job echo "$1"
		vt_wait_line $dir/agent.out "^$1\$" "$2"
	}
	say "  'vigilctl agent run --name backup' tracks a job runner; it runs the same job $steady times:"
	say "    vigil-workload --burn-ms 40      (burns 40 ms of CPU; loading it under QEMU/TCG costs more)"
	i=0
	while [ $i -lt $steady ]; do
		job vigil-workload --burn-ms 40
		i=$((i + 1))
	done
	jobs_done steady-done 900 || vt_fail demo-agent-steady "the agent did not finish its jobs"
	# baselines.json is saved every second: wait until it holds every job.
	i=0
	while [ $i -lt 100 ]; do
		vigilctl baseline show --state-dir $state --agent backup >$dir/baseline.txt 2>&1 &&
			awk -v n=$steady '$1 == "cpu_per_exec" && $3 == "watching" && $4 >= n { ok = 1 } END { exit !ok }' \
				$dir/baseline.txt && break
		sleep 0.2
		i=$((i + 1))
	done
	mark baseline
	say "  vigild learnt its baseline from the first $learn jobs and scores every job after them (normal ones keep refining it):"
	say "  \$ vigilctl baseline show --agent backup     (columns cut to fit)"
	sed -n '/^agent /,/^pool /p' $dir/baseline.txt |
		grep -E '^agent |^ *(feature|cpu_per_exec|lifetime|max_rss|fault_rate|ctx_switch_rate) ' |
		awk '/^agent / { print; next } { printf "  %-16s %-10s %-9s %7s %9s %9s %9s\n", $1, $2, $3, $4, $5, $6, $7 }' | indent
	nsteady=$(grep -c '"type":"alert"' $dir/agent.json)
	say "  alerts while the agent behaved as it did while learning: $nsteady"
	grep '"type":"alert"' $dir/agent.json | head -n 3 | while IFS= read -r l; do show_alert "$l"; done
	if grep -q '^ *cpu_per_exec .*watching' $dir/baseline.txt; then
		vt_pass demo-baseline-learnt "$(grep '^ *cpu_per_exec ' $dir/baseline.txt | tr -s ' ' | cut -c1-160)"
	else
		vt_fail demo-baseline-learnt "$(head -n 5 $dir/baseline.txt | tr '\n' '|' | cut -c1-300)"
	fi

	say ""
	say "== the agent changes: one job burns 3 s of CPU instead of 40 ms"
	mark burst
	say "    vigil-workload --burn-ms 3000"
	job vigil-workload --burn-ms 3000
	jobs_done burst-done 600
	mark burst-ran
	vt_wait_line $dir/agent.json '"feature":"cpu_per_exec".*"type":"alert"' 150
	mark burst-alert
	say "  vigild's alerts, in words and as its JSON lines (-o; baseline{}, time and ids cut for width):"
	grep '"type":"alert"' $dir/agent.json | tail -n +$((nsteady + 1)) >$dir/burst.json
	while IFS= read -r l; do show_alert "$l"; done <$dir/burst.json
	cpu_alert=$(grep -m1 '"alert_kind":"outlier".*"feature":"cpu_per_exec"' $dir/burst.json)
	# The burst's own record: at least half its 3 s, not a late steady job.
	if [ -n "$cpu_alert" ] && echo "$cpu_alert" | grep -q '"agent":"backup"' &&
		awk -v v="$(jfield "$cpu_alert" value)" 'BEGIN { exit !(v >= 1.5e9) }'; then
		vt_pass demo-alert-cpu "value $(jfield "$cpu_alert" value), score $(jfield "$cpu_alert" score)"
	else
		vt_fail demo-alert-cpu "no cpu_per_exec outlier for backup: $(cut -c1-300 $dir/burst.json | tr '\n' '|')"
	fi
	# The alert stands on a committed record: the checkpoint covering it.
	aseq=$(jfield "$cpu_alert" seq)
	if [ -n "$aseq" ]; then
		covers() { awk -v s="$aseq" -F'"first_seq":|"last_seq":' \
			'{ split($2, a, ","); split($3, b, ","); if (a[1] + 0 <= s && s <= b[1] + 0) { print; exit } }'; }
		i=0
		while [ $i -lt 150 ] && [ -z "$(grep '"type":"checkpoint"' $dir/agent.json | covers)" ]; do
			sleep 0.1
			i=$((i + 1))
		done
		mark "verdict after $i polls"
		cp=$(grep '"type":"checkpoint"' $dir/agent.json | covers)
		verdict=$(jfield "$cp" verdict)
		say "  the record behind it (seq $aseq) is in checkpoint $(jfield "$cp" first_seq)..$(jfield "$cp" last_seq): $verdict (chain recomputed, TPM signature, PCR)"
		[ "$verdict" = verified ] && vt_pass demo-alert-attested "seq $aseq: $verdict" ||
			vt_fail demo-alert-attested "seq $aseq: '$verdict' $(echo "$cp" | cut -c1-200)"
	fi

	say ""
	say "== the agent runs a program it never ran while learning"
	mark exec
	cp /usr/bin/vigil-workload $dir/payload
	say "    $dir/payload --burn-ms 40      (a copy of its own job: same cost, only the path is new)"
	n0=$(grep -c '"type":"alert"' $dir/agent.json)
	job $dir/payload --burn-ms 40
	jobs_done exec-done 300
	vt_wait_line $dir/agent.json '"alert_kind":"new_executable"' 150
	grep '"type":"alert"' $dir/agent.json | tail -n +$((n0 + 1)) | while IFS= read -r l; do show_alert "$l"; done
	exe_alert=$(grep -m1 '"alert_kind":"new_executable"' $dir/agent.json)
	if echo "$exe_alert" | grep -q "\"executable\":\"$dir/payload\""; then
		vt_pass demo-alert-exec "$(jfield "$exe_alert" executable)"
	else
		vt_fail demo-alert-exec "no new_executable alert for $dir/payload: $(echo "$exe_alert" | cut -c1-200)"
	fi
fi

say ""
say "== attacks a root user tries, and what vigil shows"
mark attacks
if [ -n "$vpid" ]; then
	aid=$(grep '"type":"agent"' $dir/agent.json | grep -m1 '"name":"backup"' | sed -n 's/.*"agent_id":\([0-9]*\).*/\1/p')
	next=$(vigilctl status --json | sed -n 's/.*"next_seq": *\([0-9]*\).*/\1/p')
	say "  root writes a forged record into vigil's ring buffer, in agent backup's name (seq $next, marked committed):"
	if vigil-forge --type exec --seq "$next" --committed --agent-id "${aid:-0}" --comm vigil-workload \
		--filename /usr/bin/vigil-workload >$dir/forge.txt 2>&1; then
		job vigil-workload --burn-ms 40  # the genuine record that the module gives that seq
		vt_wait_line $dir/agent.json '"verdict":"tampered"' 200
		cp=$(grep -m1 '"verdict":"tampered"' $dir/agent.json)
		say "    vigild verdict for checkpoint $(jfield "$cp" first_seq)..$(jfield "$cp" last_seq): $(jfield "$cp" verdict) at seq $(jfield "$cp" bad_seq): $(jfield "$cp" reason | cut -c1-150)"
		taint=$(grep -m1 '"kind":"baseline_tainted"' $dir/agent.json)
		[ -n "$taint" ] && say "    vigild finding: baseline_tainted: $(jfield "$taint" reason | cut -c1-150)"
		[ "$(jfield "$cp" bad_seq)" = "$next" ] && vt_pass demo-attack-forged "tampered at seq $next" ||
			vt_fail demo-attack-forged "seq $next: $(echo "$cp" | cut -c1-300)"
	else
		vt_fail demo-attack-forged "$(tr '\n' '|' <$dir/forge.txt | cut -c1-300)"
	fi

	bpftool map update pinned /sys/fs/bpf/vigil/maps/bss key hex 00 00 00 00 \
		value hex ff ff ff 7f 00 00 00 00 2>/dev/null
	say "  root switches every vigil program off with one write to vigil_active_gen (pinned .bss):"
	vt_wait_finding $dir/agent.json producer_silent 150
	finding=$(grep -m1 '"kind":"producer_silent"' $dir/agent.json | sed -n 's/.*"reason":"\([^"]*\)".*/\1/p')
	say "    vigild finding: producer_silent: $finding"
	[ -n "$finding" ] && vt_pass demo-attack-silence || vt_fail demo-attack-silence "no finding"
	kill -TERM $vpid
	wait $vpid 2>/dev/null
	exec 3>&-  # end of the job list: the agent's shell exits
	wait $apid 2>/dev/null
fi
if command -v vigil-kmod-bench >/dev/null; then
	out=$(vigil-kmod-bench --foreign 2>&1 | tail -n 1)
	say "  a BPF program of root's own calls vigil_commit to forge a record:"
	say "    kernel: $out"
	echo "$out" | grep -q '^refused' && vt_pass demo-attack-foreign || vt_fail demo-attack-foreign "$out"
fi
if rmmod vigil 2>$dir/rmmod.err; then
	vt_fail demo-attack-rmmod "rmmod succeeded before the seal"
else
	say "  root unloads the module to drop the records since the last checkpoint:"
	say "    kernel: $(cat $dir/rmmod.err) (until 'vigilctl seal' wrote the final checkpoint and the log was read)"
	vt_pass demo-attack-rmmod
fi

vt_rmmod vigil && say "" && say "== vigil.ko sealed (final checkpoint read) and unloaded"
mark end
