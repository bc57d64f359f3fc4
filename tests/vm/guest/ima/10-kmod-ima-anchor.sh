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
if [ -n "$seq" ] && grep -q "vigil-checkpoint-$seq " $IMALOG; then
	if grep "vigil-checkpoint-$seq " $IMALOG | grep -q "$digest"; then
		vt_pass kmod-ima-checkpoint-in-log "IMA entry for checkpoint $seq has its SHA-256"
	else
		vt_fail kmod-ima-checkpoint-in-log "entry: $(grep "vigil-checkpoint-$seq " $IMALOG), want $digest"
	fi
else
	vt_fail kmod-ima-checkpoint-in-log "no vigil-checkpoint-$seq in IMA's log ($out)"
	grep vigil $IMALOG | tail -n 3 >/dev/console
fi
vt_check kmod-ima-pcr10 sh -c "grep \"vigil-checkpoint-$seq \" $IMALOG | grep -q '^10 '"
vt_check kmod-ima-ascii grep -q 'checkpoint anchor=ima' /sys/kernel/security/vigil/ascii_log
vt_check kmod-ima-replay vigil-replay --chain-complete --expect-signed --min-checkpoints 1
n=$(grep -c 'vigil-checkpoint-' $IMALOG)
vt_log "IMA log holds $n vigil checkpoints"
vt_check kmod-ima-rmmod vt_rmmod vigil
