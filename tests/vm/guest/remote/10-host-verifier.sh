# SPDX-License-Identifier: GPL-2.0
# Continuous remote attestation by a verifier OFF the node: vigil-verifier
# runs on the host (tests/vm/host/remote.sh) and talks to this guest over a
# virtio-serial port, no IP. `vigilctl attest push --count 0` enrols the
# node, then sends evidence every 3 s while a workload runs. Each phase
# below is marked on the host ("VMTEST: HOST mark NAME"); the host checks
# its own verdict stream against the marks after the boot
# (tests/vm/host/remote-check.py):
#   pcr-reset        root resets PCRs 16 and 23: harmless, still trusted
#                    (anchor=ima: the quote covers PCR 10, not them);
#   kill-vigild      SIGKILL the collector: no evidence can be formed (its
#                    events are missing), the verifier says "overdue"
#                    within its deadline (25 s) + 20 s;
#   vigild-restart   the collector back: it takes over the pinned programs
#                    and seals the same producer set again (a reseal: the
#                    liveness counts go on across it), reads what the
#                    module and the ring buffer kept: trusted again;
#   producer-detach  kill vigild, remove the link pins (detaches the
#                    programs) for longer than the idle heartbeat (10 s):
#                    untrusted, producer_silent (the node stays untrusted
#                    from here, and each later attack adds its own reason);
#   reload           seal, rmmod, insmod, a new vigild: the new instance is
#                    refused while the old one's tail was never verified.
# The guest's own checks below follow the same rounds from the verifier's
# answers (what the node is told); the host's are the remote verdicts.
dir=/tmp/remote
pins=/sys/fs/bpf/vigil
rm -rf $dir
mkdir -p $dir
tcti=device:$(vt_tpmrm)

if [ -z "$(cat /sys/class/virtio-ports/*/name 2>/dev/null | grep org.vigil.attest)" ]; then
	vt_fail rh-port "no virtio-serial port org.vigil.attest in /sys/class/virtio-ports"
	return 0 2>/dev/null || exit 0
fi
vt_pass rh-port "$(grep -l org.vigil.attest /sys/class/virtio-ports/*/name | cut -d/ -f5)"

vt_check rh-insmod insmod /vigil.ko anchor=ima checkpoint_ms=1000

start_vigild() { # start_vigild NAME EVENTS
	rm -f $dir/ready
	vigild --state-dir $dir/state.$2 --ready-file $dir/ready --raw-out $dir/$2 \
		--checkpoint-wait 3 -o $dir/out.$1.json 2>$dir/vigild.$1.err &
	vpid=$!
	vt_wait_ready $dir/ready $vpid
}
start_push() { # start_push EVENTS
	vigilctl attest --dir $dir/attest --tcti $tcti push --verifier serial:org.vigil.attest \
		--events $dir/$1 --count 0 --interval 3 >>$dir/push.txt 2>>$dir/push.err &
	ppid=$!
}
# wait_rounds PATTERN N TENTHS: N more push rounds matching PATTERN.
wait_rounds() {
	_base=$(grep -c "$1" $dir/push.txt)
	_i=0
	while [ $_i -lt "$3" ]; do
		[ $(($(grep -c "$1" $dir/push.txt) - _base)) -ge "$2" ] && return 0
		sleep 0.1
		_i=$((_i + 1))
	done
	return 1
}
last_round() { tail -n 1 $dir/push.txt | cut -c1-200; }

if ! start_vigild first events.bin; then
	vt_fail rh-vigild-start "$(tail -n 5 $dir/vigild.first.err | tr '\n' '|' | cut -c1-300)"
	vt_rmmod vigil
	return 0 2>/dev/null || exit 0
fi
# A light agent workload, all along.
: >$dir/work.on
(
	while [ -f $dir/work.on ]; do
		vigilctl agent run --name "rh@1" -- \
			vigil-workload --burn-ms 5 --forks 1 --exit 0 >/dev/null 2>&1
		sleep 1
	done
) &
wpid=$!

digest_of() { # MEASURE kind
	vigilctl log --json | grep '"type":"measure"' | grep "\"kind\":$1[,}]" |
		sed -n 's/.*"digest":"\([0-9a-f]*\)".*/\1/p' | tail -n 1
}
vt_host verifier-start "$(digest_of 1)" "$(digest_of 2)" "$(digest_of 5)"
sleep 2
: >$dir/push.txt
start_push events.bin
if wait_rounds '"trusted":true' 2 900; then
	vt_pass rh-trusted "$(grep -m1 '^enrolled' $dir/push.txt); $(grep -c '"trusted":true' $dir/push.txt) trusted rounds over virtio-serial"
else
	vt_fail rh-trusted "$(tail -n 3 $dir/push.txt | cut -c1-300 | tr '\n' '|') $(tail -n 3 $dir/push.err | tr '\n' '|')"
fi

vt_host mark pcr-reset
tpm() { TPM2TOOLS_TCTI=device:/dev/tpmrm0 tpm2 "$@"; }
if tpm pcrreset 16 >/dev/null 2>&1 && tpm pcrreset 23 >/dev/null 2>&1; then
	if wait_rounds '"trusted":true' 2 600; then
		vt_pass rh-pcr-reset "PCRs 16 and 23 reset; still trusted: $(last_round | cut -c1-80)"
	else
		vt_fail rh-pcr-reset "no trusted round after the reset: $(last_round)"
	fi
else
	vt_fail rh-pcr-reset "tpm2 pcrreset 16/23 failed"
fi

# The workload goes on: its events wait in the ring buffer (256 KiB), and
# no checkpoint since can be shown with all its events.
vt_host mark kill-vigild
kill -KILL $vpid
wait $vpid 2>/dev/null
sleep 50 # the host verifier's deadline (25 s) and its bound (+20 s)
if tail -n 3 $dir/push.txt | grep -q '"trusted":true'; then
	vt_fail rh-kill-vigild "trusted rounds while the collector is dead: $(last_round)"
else
	vt_pass rh-kill-vigild "no evidence without the collector: $(last_round | cut -c1-120)"
fi

vt_host mark vigild-restart
if start_vigild restart events.bin; then
	if wait_rounds '"trusted":true' 2 900; then
		vt_pass rh-vigild-restart "trusted again: $(last_round | cut -c1-120)"
	else
		vt_fail rh-vigild-restart "$(last_round)"
	fi
else
	vt_fail rh-vigild-restart "vigild did not restart: $(tail -n 3 $dir/vigild.restart.err | tr '\n' '|')"
fi

vt_host mark producer-detach
kill -KILL $vpid
wait $vpid 2>/dev/null
rm -f $pins/links/*
sleep 12 # a heartbeat checkpoint with the programs detached
if start_vigild detached events.bin && wait_rounds 'producer_silent' 1 900; then
	vt_pass rh-producer-detach "$(grep -o 'finding producer_silent[^"]*' $dir/push.txt | tail -n 1 | cut -c1-120)"
else
	vt_fail rh-producer-detach "$(last_round) $(tail -n 2 $dir/vigild.detached.err | tr '\n' '|')"
fi

# The reload: everything a root attacker does to start over clean.
vt_host mark reload
kill $ppid 2>/dev/null
wait $ppid 2>/dev/null
kill -TERM $vpid
wait $vpid 2>/dev/null
if vt_rmmod vigil && insmod /vigil.ko anchor=ima checkpoint_ms=1000 &&
	start_vigild reloaded events2.bin; then
	start_push events2.bin
	if wait_rounds 'never verified' 1 900; then
		vt_pass rh-reload "$(grep -o 'module: the followed instance[^"]*' $dir/push.txt | tail -n 1 | cut -c1-160)"
	else
		vt_fail rh-reload "$(last_round)"
	fi
else
	vt_fail rh-reload "the reload failed: $(dmesg | tail -n 3 | tr '\n' '|')"
fi
vt_host mark end

rm -f $dir/work.on
kill $ppid 2>/dev/null
wait $wpid 2>/dev/null
kill -TERM $vpid
wait $vpid 2>/dev/null
vt_rmmod vigil
