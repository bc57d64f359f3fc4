# SPDX-License-Identifier: GPL-2.0
# anchor=ima: checkpoints are measured through ima_measure_critical_data()
# (kernel booted with ima_policy=critical_data) and show up in IMA's log
# with SHA-256(checkpoint record); pcr_events is left alone.
IMALOG=/sys/kernel/security/ima/ascii_runtime_measurements
vt_check kmod-ima-insmod insmod /vigil.ko anchor=ima
vt_check kmod-ima-status grep -q '^anchor: ima' /sys/kernel/security/vigil/status
out=$(vigil-ioctl-test commit checkpoint 2>&1)
line=$(echo "$out" | grep '^checkpoint ')
seq=$(echo "$line" | awk '{print $2}')
digest=$(echo "$line" | awk '{print $4}')
if [ -n "$seq" ] && grep -q "vigil-[0-9a-f]*-checkpoint-$seq " $IMALOG; then
	if grep "vigil-[0-9a-f]*-checkpoint-$seq " $IMALOG | grep -q "$digest"; then
		vt_pass kmod-ima-checkpoint-in-log "IMA entry for checkpoint $seq has its SHA-256"
	else
		vt_fail kmod-ima-checkpoint-in-log "entry: $(grep "vigil-[0-9a-f]*-checkpoint-$seq " $IMALOG), want $digest"
	fi
else
	vt_fail kmod-ima-checkpoint-in-log "no vigil-[0-9a-f]*-checkpoint-$seq in IMA's log ($out)"
	grep vigil $IMALOG | tail -n 3 >/dev/console
fi
vt_check kmod-ima-pcr10 sh -c "grep \"vigil-[0-9a-f]*-checkpoint-$seq \" $IMALOG | grep -q '^10 '"
vt_check kmod-ima-ascii grep -q 'checkpoint anchor=ima' /sys/kernel/security/vigil/ascii_log
vt_check kmod-ima-replay vigil-replay --chain-complete --expect-signed --min-checkpoints 1
n=$(grep -c "vigil-[0-9a-f]*-checkpoint-" $IMALOG)
vt_log "IMA log holds $n vigil checkpoints"
# The key binding and the identity are anchored in IMA too (PCR 10), not only
# in the resettable pcr_config (16): IMA's copy of the KEY record decodes and
# carries the live module's key.
key_line=$(grep ' vigil-[0-9a-f]*-key-[0-9]* ' $IMALOG | tail -n 1)
if [ -n "$key_line" ]; then
	echo "$key_line" | awk '{print $NF}' | xxd -r -p >/tmp/ima-key.bin
	ima_x=$(vigilctl log --json --file /tmp/ima-key.bin | sed -n 's/.*"x":"\([0-9a-f]*\)".*/\1/p')
	live_x=$(vigilctl status --json | sed -n 's/.*"key_x": "\([0-9a-f]*\)".*/\1/p')
	if [ -n "$ima_x" ] && [ "$ima_x" = "$live_x" ]; then
		vt_pass kmod-ima-key-anchored "IMA's KEY record carries the live key ${live_x%????????????????????????????????????????????????}..."
	else
		vt_fail kmod-ima-key-anchored "IMA key x '$ima_x', live '$live_x'"
	fi
else
	vt_fail kmod-ima-key-anchored "no vigil-key entry in IMA's log"
fi
# The producer set too: a window opened and sealed is two more measurements
# in IMA's log (who opened it, then the set).
before=$(grep -c ' vigil-[0-9a-f]*-measure-[0-9]* ' $IMALOG)
vigil-ioctl-test window >/dev/null 2>&1
after=$(grep -c ' vigil-[0-9a-f]*-measure-[0-9]* ' $IMALOG)
vt_check kmod-ima-producers-anchored test "$after" -eq $((before + 2))
vt_check kmod-ima-identity-anchored sh -c "grep -c ' vigil-[0-9a-f]*-measure-[0-9]* ' $IMALOG | grep -qv '^[01]\$'"
vt_check kmod-ima-dev-anchor-flag-off sh -c 'vigilctl status --json | grep -q "\"dev_anchor\": false"'
# The attack on the development anchor: PCR 16 (pcr_config) resets from
# locality 0, PCR 10 does not. After the reset, the PCR 16 replay breaks,
# while IMA's copies (checked above) still name the genuine key.
tpm() { TPM2TOOLS_TCTI=device:/dev/tpmrm0 tpm2 "$@"; }
if tpm pcrreset 16 >/dev/null 2>&1; then
	vt_pass kmod-ima-pcr16-resettable "PCR 16 reset by root"
	if vigil-replay --quiet >/tmp/ima-replay.txt 2>&1; then
		vt_fail kmod-ima-reset-detected "replay still matches after PCR 16 was reset"
	else
		vt_pass kmod-ima-reset-detected "$(grep -m1 FAIL /tmp/ima-replay.txt | cut -c1-160)"
	fi
else
	vt_fail kmod-ima-pcr16-resettable "tpm2 pcrreset 16 failed"
fi
if tpm pcrreset 10 >/dev/null 2>&1; then
	vt_fail kmod-ima-pcr10-fixed "PCR 10 was reset from locality 0"
else
	vt_pass kmod-ima-pcr10-fixed "PCR 10 refuses the reset (locality)"
fi
vt_check kmod-ima-rmmod vt_rmmod vigil
