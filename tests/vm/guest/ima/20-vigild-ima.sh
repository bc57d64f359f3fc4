# SPDX-License-Identifier: GPL-2.0
# vigild with anchor=ima: a verdict is "verified" only once IMA's binary log
# replays to PCR 10 of the TPM and holds the module's records byte for byte;
# `verify-chain --live` checks the same. Then root extends PCR 10 directly
# (it cannot reset it): IMA's log no longer reaches the TPM, vigild reports
# anchor_broken once and the verdicts after it are "unanchored", not
# "tampered" (chain and signatures still hold) and never "verified".
dir=/tmp/vigild-ima
state=$dir/state
mkdir -p $dir
rm -rf $state $dir/ready
vt_check ima-vigild-insmod insmod /vigil.ko anchor=ima checkpoint_ms=1000
vigild --state-dir $state --ready-file $dir/ready --raw-out $dir/events.bin \
	--checkpoint-wait 3 -o $dir/out.json 2>$dir/err.txt &
vpid=$!
if ! vt_wait_ready $dir/ready $vpid; then
	vt_fail ima-vigild-start "$(tail -n 5 $dir/err.txt | tr '\n' '|' | cut -c1-400)"
	kill $vpid 2>/dev/null
	vt_rmmod vigil
	return 0 2>/dev/null || exit 0
fi
vt_pass ima-vigild-start "$(grep -m1 'anchor check' $dir/err.txt | cut -c1-200)"
start_seq=$(vigilctl status --json | sed -n 's/.*"next_seq": \([0-9]*\).*/\1/p')
vigilctl agent run --name "ima@1" -- vigil-workload --burn-ms 20 --forks 2 --exit 0
# A verdict over the workload's events (not only an idle heartbeat).
ima_verified() {
	grep '"verdict":"verified"' $dir/out.json | grep '"events":[1-9]' |
		grep -q "in IMA's log replayed to PCR 10"
}
_i=0
while [ $_i -lt 100 ] && ! ima_verified; do
	sleep 0.1
	_i=$((_i + 1))
done
if ima_verified; then
	vt_pass ima-verified "$(grep '"verdict":"verified"' $dir/out.json | grep -m1 '"events":[1-9]' | sed 's/.*"reason"/"reason"/' | cut -c1-200)"
else
	vt_fail ima-verified "$(grep '"verdict"' $dir/out.json | tail -n 2 | tr '\n' '|' | cut -c1-400) $(tail -n 3 $dir/err.txt | tr '\n' '|')"
fi
if grep -q '"verdict":"\(tampered\|unanchored\|signed\)"' $dir/out.json; then
	vt_fail ima-no-bad-verdict "$(grep -m1 '"verdict":"\(tampered\|unanchored\|signed\)"' $dir/out.json | cut -c1-300)"
else
	vt_pass ima-no-bad-verdict "$(grep -c '"verdict":"verified"' $dir/out.json) verified"
fi
# The node-side offline check runs the same anchor check.
vigilctl verify-chain --live --events $dir/events.bin --start-seq $((start_seq - 1)) \
	>$dir/chain.txt 2>&1
rc=$?
case $rc in
0 | 11) vt_pass ima-verify-chain-live "exit $rc: $(grep -m1 '^checkpoints compared' $dir/chain.txt)" ;;
*) vt_fail ima-verify-chain-live "exit $rc: $(tail -n 4 $dir/chain.txt | tr '\n' '|' | cut -c1-300)" ;;
esac
# The attack on the anchor: one junk extend into PCR 10.
zeros=0000000000000000000000000000000000000000000000000000000000000000
lines=$(wc -l <$dir/out.json)
if TPM2TOOLS_TCTI=device:$(vt_tpmrm) tpm2 pcrextend 10:sha256=$zeros 2>$dir/extend.err; then
	vigil-ioctl-test commit >/dev/null 2>&1
	if vt_wait_finding $dir/out.json anchor_broken 80 && sleep 0.5 &&
		grep -q '"verdict":"unanchored"' $dir/out.json; then
		vt_pass ima-anchor-broken "$(grep -m1 anchor_broken $dir/out.json | cut -c1-240)"
	else
		vt_fail ima-anchor-broken "no anchor_broken finding and unanchored verdict: $(grep '"verdict"' $dir/out.json | tail -n 1 | cut -c1-240)"
	fi
	n=$(grep -c '"kind":"anchor_broken"' $dir/out.json)
	vt_check ima-anchor-broken-once test "$n" -eq 1
	vigil-ioctl-test commit >/dev/null 2>&1
	sleep 2
	after=$(tail -n +$((lines + 1)) $dir/out.json | grep -o '"verdict":"[a-z]*"' | sort | uniq -c | tr '\n' ' ')
	if echo "$after" | grep -q '"\(tampered\|verified\)"'; then
		vt_fail ima-not-tampered "after the extend: $after"
	else
		vt_pass ima-not-tampered "verdicts after the extend: $after"
	fi
else
	vt_fail ima-anchor-broken "tpm2 pcrextend 10: $(cut -c1-200 <$dir/extend.err)"
fi
kill $vpid
wait $vpid 2>/dev/null
vt_check ima-vigild-rmmod vt_rmmod vigil
