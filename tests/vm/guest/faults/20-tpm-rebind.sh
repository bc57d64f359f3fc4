# SPDX-License-Identifier: GPL-2.0
# The TPM driver is unbound and bound again (a new chip): while it is gone,
# checkpoints are logged unsigned with the TPM error and their extends stay
# pending; after the bind the module follows the TPM to the new chip, signs
# again, retries the pending extends, and the PCR replay matches.
vt_check rebind-insmod insmod /vigil.ko heartbeat_ms=3600000
dev=$(readlink -f /sys/class/tpm/tpm0/device)
drv=$(readlink -f "$dev/driver")
name=${dev##*/}
vt_log "TPM device $dev, driver $drv"
vt_check rebind-signed-before vigil-ioctl-test commit checkpoint
if ! echo "$name" >"$drv/unbind" 2>/tmp/unbind.err; then
	vt_fail rebind-unbind "unbind $name from $drv: $(cat /tmp/unbind.err)"
	vt_rmmod vigil
	return 0 2>/dev/null || exit 0
fi
vt_check rebind-unbound sh -c '! ls /dev/tpmrm* >/dev/null 2>&1'
vt_check rebind-unsigned-while-gone vigil-ioctl-test commit checkpoint-tpm-error
# The old chip keeps its number while the module still holds it, so the new
# one may be tpm1 until the module lets go of the old one.
vt_check rebind-bind sh -c "echo $name >$drv/bind && sleep 1 && ls /dev/tpmrm* >/dev/null"
vt_check rebind-signed-after vigil-ioctl-test commit checkpoint
rm_dev=$(ls /dev/tpmrm* | tail -n 1)
vt_check rebind-replay env VIGIL_TCTI=device:$rm_dev vigil-replay --quiet
vt_check rebind-dmesg sh -c 'dmesg | grep -q "the TPM came back as a new chip"'
vt_check rebind-rmmod vt_rmmod vigil

