# SPDX-License-Identifier: GPL-2.0
# swtpm stalls (SIGSTOP from the host) while the module extends and signs.
# Under QEMU the guest's TPM commands either time out in the driver or wait
# until swtpm resumes (QEMU's TPM backend blocks); a command that timed out
# may still run once swtpm resumes. Whatever happened: nothing hangs past
# the stall, signing goes on afterwards, a timed-out extend is not folded
# twice (the module checks the PCR before it retries: the replay matches),
# and no transient object stays loaded in the TPM (the module flushes what a
# timed-out command left), so /dev/tpmrm0 users keep their object slots.
vt_check stall-insmod insmod /vigil.ko checkpoint_ms=0 checkpoint_events=0 heartbeat_ms=3600000
vt_check stall-signed-before vigil-ioctl-test commit checkpoint
vt_host stop-tpm 12
sleep 1
t0=$(date +%s)
vigil-ioctl-test commit checkpoint-tpm-error >/tmp/stall-cp.out 2>&1
took=$(($(date +%s) - t0))
vt_log "checkpoint during the stall: $(grep -m1 '^checkpoint' /tmp/stall-cp.out) after $took s"
vt_check stall-no-hang test "$took" -le 40
# wait for swtpm to resume
while [ $(($(date +%s) - t0)) -lt 13 ]; do sleep 1; done
i=0
until vigil-ioctl-test commit checkpoint >/tmp/stall.out 2>&1 || [ $i -ge 5 ]; do
	i=$((i + 1))
	sleep 2
done
vt_check stall-signed-after sh -c 'grep -q "status 0 " /tmp/stall.out'
vt_check stall-replay vigil-replay --quiet
vt_log "$(grep tpm_stale /sys/kernel/security/vigil/status)"
left=$(TPM2TOOLS_TCTI=device:/dev/tpm0 tpm2 getcap handles-transient 2>&1)
if [ -z "$left" ]; then
	vt_pass stall-no-transient-left "no transient object loaded in the TPM"
else
	vt_fail stall-no-transient-left "still loaded: $(echo "$left" | tr '\n' ' ')"
fi
# A resource-manager user needs free slots: a primary, a child, loaded.
vt_check stall-tpmrm-slots sh -c 'cd /tmp && export TPM2TOOLS_TCTI=device:/dev/tpmrm0 && tpm2 createprimary -C o -c p.ctx >/dev/null &&
	tpm2 create -C p.ctx -u k.pub -r k.priv >/dev/null && tpm2 load -C p.ctx -u k.pub -r k.priv -c k.ctx >/dev/null'
vt_check stall-rmmod vt_rmmod vigil
