# SPDX-License-Identifier: GPL-2.0
# Remote attestation against the real module (anchor=ima), swtpm and IMA: a
# vigil-verifier on loopback (the verifier off the node, here in the same
# guest), the node's `vigilctl attest push` enrolling its EK and AK,
# activating the credential, then sending evidence for each nonce: the
# TPM's quote of PCR 10, the module's log since the last verified point,
# vigild's events, IMA's log and, for the new instance, the AK's
# certification of the checkpoint key. Every round must be trusted. Then:
# the same evidence sent again is refused (its nonce is spent), and root
# silences the producers (one .bss write): the next round is untrusted,
# naming producer_silent. (Runs before 20-vigild-ima, whose junk extend of
# PCR 10 leaves IMA's log unreplayable for the rest of the boot; the junk
# extend against the remote verifier is in its tamper matrix.)
dir=/tmp/remote-attest
rm -rf $dir
mkdir -p $dir
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up
tcti=device:$(vt_tpmrm)
vt_check ra-insmod insmod /vigil.ko anchor=ima checkpoint_ms=1000
vigild --state-dir $dir/state --ready-file $dir/ready --raw-out $dir/events.bin \
	--checkpoint-wait 3 -o $dir/out.json 2>$dir/vigild.err &
vpid=$!
if ! vt_wait_ready $dir/ready $vpid; then
	vt_fail ra-vigild-start "$(tail -n 5 $dir/vigild.err | tr '\n' '|' | cut -c1-300)"
	kill $vpid 2>/dev/null
	vt_rmmod vigil
	return 0 2>/dev/null || exit 0
fi
vigilctl agent run --name "ra@1" -- vigil-workload --burn-ms 20 --forks 2 --exit 0

# The policy: the module identity, parameters and producer set this node
# measured (what an operator takes from a known-good node).
digest_of() { # MEASURE kind
	vigilctl log --json | grep '"type":"measure"' | grep "\"kind\":$1[,}]" |
		sed -n 's/.*"digest":"\([0-9a-f]*\)".*/\1/p' | tail -n 1
}
module=$(digest_of 1)
params=$(digest_of 2)
producers=$(digest_of 5)
# allow_reload: earlier scripts of this boot loaded and unloaded the module
# (each instance sealed), so this instance is not the first of the boot.
cat >$dir/policy.json <<EOF
{"version": 1, "anchor": "ima", "allow_reload": true, "module_digests": ["$module"],
 "params_digests": ["$params"], "producer_set_digests": ["$producers"]}
EOF
vigil-verifier --state $dir/verifier --policy $dir/policy.json serve \
	--listen 127.0.0.1:8790 --pin-ek 2>$dir/verifier.err &
spid=$!
sleep 1
if [ -z "$module" ] || [ -z "$params" ] || [ -z "$producers" ] || ! kill -0 $spid 2>/dev/null; then
	vt_fail ra-verifier-start "policy '$module' '$params' '$producers': $(tail -n 3 $dir/verifier.err | tr '\n' '|')"
else
	vt_pass ra-verifier-start "policy from the node's MEASURE records"
fi

# Two rounds a checkpoint apart: enrolment and activation, then trusted twice.
sleep 2
vigilctl attest --dir $dir/attest --tcti $tcti push --verifier http://127.0.0.1:8790 \
	--events $dir/events.bin --count 2 --interval 2 >$dir/push.txt 2>$dir/push.err
rc=$?
trusted=$(grep -c '"trusted":true' $dir/push.txt)
if [ $rc -eq 0 ] && grep -q '^enrolled as node' $dir/push.txt && [ "$trusted" -ge 1 ]; then
	vt_pass ra-push-trusted "$trusted trusted: $(grep -m1 '"trusted":true' $dir/push.txt | cut -c1-200)"
else
	vt_fail ra-push-trusted "exit $rc: $(tail -n 3 $dir/push.txt | cut -c1-400 | tr '\n' '|') $(tail -n 3 $dir/push.err | tr '\n' '|')"
fi
if grep -q '"trusted":false' $dir/push.txt || [ "$trusted" -eq 0 ]; then
	vt_fail ra-no-untrusted "$(grep -m1 '"trusted":false' $dir/push.txt | cut -c1-300)"
else
	vt_pass ra-no-untrusted "every round trusted"
fi

# A replay: evidence for an issued nonce is decided once (a checkpoint
# first, so there is something new to attest).
vigil-ioctl-test commit checkpoint >/dev/null 2>&1
sleep 1
node=$(sed -n 's/.*"node":"\([0-9a-f]*\)".*/\1/p' $dir/attest/node.json)
vigil-verifier --state $dir/verifier --policy $dir/policy.json nonce --node "$node" \
	>$dir/nonce.json 2>$dir/nonce.err
field() { sed -n "s/.*\"$1\":\"\{0,1\}\([0-9a-f]*\)\"\{0,1\}.*/\1/p" $dir/nonce.json; }
# IMA's entries from the verifier's point (set after the first trusted round).
ima_point=
[ -n "$(field ima_reset_count)" ] && ima_point="--ima-from-entry $(field ima_from_entry) \
--ima-reset-count $(field ima_reset_count) --ima-restart-count $(field ima_restart_count)"
# shellcheck disable=SC2086
vigilctl attest --dir $dir/attest --tcti $tcti evidence --nonce "$(field nonce)" \
	--from-seq "$(field from_seq)" --events-after "$(field events_after)" \
	--instance "$(field instance)" --events $dir/events.bin $ima_point -o $dir/ev.json \
	2>$dir/ev.err
v() { vigil-verifier --state $dir/verifier --policy $dir/policy.json verify --evidence $dir/ev.json; }
v >$dir/v1.txt 2>&1
rc1=$?
v >$dir/v2.txt 2>&1
rc2=$?
if [ $rc1 -eq 0 ] && [ $rc2 -eq 1 ] && grep -q 'already answered' $dir/v2.txt; then
	vt_pass ra-replay-refused "$(head -n 1 $dir/v1.txt), then: $(grep -m1 nonce $dir/v2.txt | cut -c1-120)"
else
	vt_fail ra-replay-refused "exits $rc1 $rc2: $(tr '\n' '|' <$dir/v1.txt | cut -c1-200) / $(tr '\n' '|' <$dir/v2.txt | cut -c1-200) $(tail -n 2 $dir/ev.err)"
fi

# Silenced producers: .bss holds only vigil_active_gen; a generation no
# program has makes every producer return at once. The module's signed
# per-producer counters show it in the next checkpoints.
bpftool map update pinned /sys/fs/bpf/vigil/maps/bss key hex 00 00 00 00 \
	value hex ff ff ff 7f 00 00 00 00 2>$dir/bss.err
vigil-workload --forks 40 --exit 0  # more than the in-flight slack (8)
# The next checkpoint (asked for, not waited for: the heartbeat is 10 s).
vigil-ioctl-test commit checkpoint >/dev/null 2>&1
sleep 1
vigilctl attest --dir $dir/attest --tcti $tcti push --verifier http://127.0.0.1:8790 \
	--events $dir/events.bin --count 1 >$dir/push2.txt 2>$dir/push2.err
rc=$?
if [ $rc -eq 14 ] && grep '"trusted":false' $dir/push2.txt | grep -q 'producer_silent'; then
	vt_pass ra-silenced-untrusted "$(grep -m1 '"trusted":false' $dir/push2.txt | grep -o 'finding producer_silent[^"]*' | head -n 1 | cut -c1-160)"
else
	vt_fail ra-silenced-untrusted "exit $rc: $(tail -n 2 $dir/push2.txt | cut -c1-400 | tr '\n' '|') $(tail -n 2 $dir/push2.err | tr '\n' '|') $(cat $dir/bss.err)"
fi

kill $spid 2>/dev/null
kill $vpid 2>/dev/null
wait $vpid 2>/dev/null
vigilctl seal >/dev/null 2>&1
vt_rmmod vigil
