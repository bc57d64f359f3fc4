# SPDX-License-Identifier: GPL-2.0
# An independent replay of the log (tpm2-tss + OpenSSL) reproduces
# pcr_config and pcr_events in every bank; checkpoints are signed and
# verify; the chain recomputed from the committed events matches.
vt_check kmod-checkpoint-signed vigil-ioctl-test checkpoint
vt_check kmod-replay vigil-replay --chain-complete --expect-signed --min-checkpoints 1
# A timer checkpoint happens by itself within checkpoint_ms (1 s) once
# there is something new to cover.
vigil-ioctl-test commit >/dev/null
sleep 3
if grep -q 'checkpoint anchor=pcr .* reason=timer' /sys/kernel/security/vigil/ascii_log; then
	vt_pass kmod-timer-checkpoint
else
	vt_fail kmod-timer-checkpoint "no timer checkpoint after 3 s"
fi
vt_check kmod-replay-after-timer vigil-replay --chain-complete --expect-signed --min-checkpoints 2
grep -c . /sys/kernel/security/vigil/ascii_log >/dev/null
