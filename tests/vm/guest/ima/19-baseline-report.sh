# SPDX-License-Identifier: GPL-2.0
# Signed baseline reports against the real module (anchor=ima), swtpm and
# IMA: vigild learns baselines from a workload and saves them; the node
# enrols its AK with a vigil-verifier (--pin-ek, activation); `vigilctl
# baseline report` MEASUREs the saved state's digest ("baseline"), which
# the module measures through IMA into PCR 10, and quotes PCR 10 with the
# verifier's nonce. `vigil-verifier check-report` accepts the report with
# the node's enrolled AK and refuses an edited copy, another nonce, and a
# report whose snapshot was swapped with its digest recomputed. (Runs after
# 18-remote-attest and before 20-vigild-ima, whose junk extend of PCR 10
# leaves IMA's log unreplayable for the rest of the boot.)
dir=/tmp/baseline-report
rm -rf $dir
mkdir -p $dir
tcti=device:$(vt_tpmrm)
vt_check br-insmod insmod /vigil.ko anchor=ima checkpoint_ms=1000
vigild --state-dir $dir/state --ready-file $dir/ready --checkpoint-wait 3 \
	-o $dir/out.json 2>$dir/vigild.err &
vpid=$!
if ! vt_wait_ready $dir/ready $vpid; then
	vt_fail br-vigild-start "$(tail -n 5 $dir/vigild.err | tr '\n' '|' | cut -c1-300)"
	kill $vpid 2>/dev/null
	vt_rmmod vigil
	return 0 2>/dev/null || exit 0
fi
for i in 1 2 3; do
	vigilctl agent run --name "br@1" -- vigil-workload --burn-ms 10 --forks 2 --exit 0
done
sleep 1
kill $vpid 2>/dev/null # vigild saves its baselines on the way out
wait $vpid 2>/dev/null
if [ -s $dir/state/baselines.json ] && vigilctl baseline --state-dir $dir/state show --json \
	>$dir/show.json 2>$dir/show.err && grep -q 'br' $dir/show.json; then
	vt_pass br-baselines-saved "$(wc -c <$dir/state/baselines.json) bytes"
else
	vt_fail br-baselines-saved "$(tail -n 2 $dir/show.err | tr '\n' '|') $(tail -n 3 $dir/vigild.err | tr '\n' '|')"
fi

# Enrolment: the verifier holds the node's AK after activation.
cat >$dir/policy.json <<EOF
{"version": 1, "anchor": "ima", "module_digests": ["$(printf '%064d' 1)"],
 "params_digests": ["$(printf '%064d' 2)"], "producer_set_digests": ["$(printf '%064d' 3)"]}
EOF
V="vigil-verifier --state $dir/verifier --policy $dir/policy.json"
vigilctl attest --dir $dir/attest --tcti $tcti enrol-request -o $dir/req.json 2>$dir/enrol.err &&
	$V enrol --request $dir/req.json --pin-ek >$dir/challenge.json 2>>$dir/enrol.err &&
	vigilctl attest --dir $dir/attest --tcti $tcti activate --challenge $dir/challenge.json \
		>$dir/secret 2>>$dir/enrol.err
node=$(sed -n 's/.*"node":"\([0-9a-f]*\)".*/\1/p' $dir/attest/node.json 2>/dev/null)
if [ -n "$node" ] && $V activate --node "$node" --secret "$(cat $dir/secret)" >/dev/null 2>>$dir/enrol.err; then
	vt_pass br-enrolled "node $(echo $node | cut -c1-16)..."
else
	vt_fail br-enrolled "$(tail -n 3 $dir/enrol.err | tr '\n' '|')"
fi

# The report, for the verifier's nonce.
nonce=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
uptime_ms() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
t0=$(uptime_ms)
vigilctl baseline --state-dir $dir/state report -o $dir/report.json --nonce $nonce \
	--dir $dir/attest --tcti $tcti >$dir/report.out 2>$dir/report.err
rc=$?
ms=$(($(uptime_ms) - t0))
if [ $rc -eq 0 ] && [ -s $dir/report.json ]; then
	vt_pass br-report-written "${ms} ms, $(wc -c <$dir/report.json) bytes: $(head -n 1 $dir/report.out | cut -c1-160)"
else
	vt_fail br-report-written "exit $rc: $(tail -n 4 $dir/report.err | tr '\n' '|' | cut -c1-400)"
fi
check() { # REPORT [NONCE]
	vigil-verifier check-report --state $dir/verifier --node "$node" --report "$1" \
		--nonce "${2:-$nonce}"
}
check $dir/report.json >$dir/check.txt 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q '^valid: .*fresh' $dir/check.txt; then
	vt_pass br-report-valid "$(head -n 1 $dir/check.txt | cut -c1-220)"
else
	vt_fail br-report-valid "exit $rc: $(tr '\n' '|' <$dir/check.txt | cut -c1-400)"
fi

# An edited copy: one hex digit of the snapshot's digest.
sha=$(sed -n 's/.*"snapshot_sha256":"\([0-9a-f]*\)".*/\1/p' $dir/report.json)
first=$(echo "$sha" | cut -c1)
[ "$first" = 0 ] && other=1 || other=0
sed "s/\"snapshot_sha256\":\"$sha\"/\"snapshot_sha256\":\"$other$(echo "$sha" | cut -c2-)\"/" \
	$dir/report.json >$dir/edited.json
check $dir/edited.json >$dir/edited.txt 2>&1
rc=$?
if [ $rc -eq 1 ] && ! cmp -s $dir/report.json $dir/edited.json &&
	grep -q 'snapshot: its SHA-256 is' $dir/edited.txt && grep -q 'quote: .*extraData' $dir/edited.txt; then
	vt_pass br-edited-refused "$(sed -n 2p $dir/edited.txt | cut -c1-160)"
else
	vt_fail br-edited-refused "exit $rc: $(tr '\n' '|' <$dir/edited.txt | cut -c1-400)"
fi
# Another nonce: a stale report.
check $dir/report.json 00112233 >$dir/stale.txt 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -q "nonce: the report's nonce" $dir/stale.txt; then
	vt_pass br-stale-refused "$(sed -n 2p $dir/stale.txt | cut -c1-160)"
else
	vt_fail br-stale-refused "exit $rc: $(tr '\n' '|' <$dir/stale.txt | cut -c1-300)"
fi
# No AK: the node side says so.
vigilctl baseline --state-dir $dir/state report -o $dir/none.json --dir $dir/no-attest \
	--tcti $tcti >/dev/null 2>$dir/noak.err
rc=$?
if [ $rc -eq 1 ] && grep -q 'no AK in' $dir/noak.err && [ ! -e $dir/none.json ]; then
	vt_pass br-no-ak "$(head -n 1 $dir/noak.err | cut -c1-160)"
else
	vt_fail br-no-ak "exit $rc: $(head -n 2 $dir/noak.err | tr '\n' '|')"
fi

vigilctl seal >/dev/null 2>&1
vt_rmmod vigil

# anchor=pcr: the MEASURE would reach only resettable PCRs; refused.
if insmod /vigil.ko anchor=pcr 2>$dir/pcr.err; then
	vigilctl baseline --state-dir $dir/state report -o $dir/pcr.json --dir $dir/attest \
		--tcti $tcti >/dev/null 2>$dir/pcr.err
	rc=$?
	if [ $rc -eq 1 ] && grep -q 'needs anchor=ima' $dir/pcr.err && [ ! -e $dir/pcr.json ]; then
		vt_pass br-anchor-pcr-refused "$(head -n 1 $dir/pcr.err | cut -c1-160)"
	else
		vt_fail br-anchor-pcr-refused "exit $rc: $(head -n 2 $dir/pcr.err | tr '\n' '|')"
	fi
	vigilctl seal >/dev/null 2>&1
	vt_rmmod vigil
else
	vt_fail br-anchor-pcr-refused "insmod anchor=pcr: $(head -n 1 $dir/pcr.err)"
fi
