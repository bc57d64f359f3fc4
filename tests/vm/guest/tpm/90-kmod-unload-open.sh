# SPDX-License-Identifier: GPL-2.0
# Unloading while /dev/vigil (or the securityfs log) is open is refused
# (the open file holds a module reference); the module keeps working, and
# unloads once the file is closed.
vt_rmmod vigil 2>/dev/null
vt_check kmod-reload insmod /vigil.ko
exec 3</dev/vigil
if rmmod vigil 2>/dev/null; then vt_fail kmod-rmmod-open "rmmod succeeded with /dev/vigil open"; insmod /vigil.ko; else vt_pass kmod-rmmod-open "refused while open"; fi
vt_check kmod-works-after-refused-rmmod vigil-ioctl-test commit checkpoint
exec 3<&-
exec 4</sys/kernel/security/vigil/ascii_log
if rmmod vigil 2>/dev/null; then vt_fail kmod-rmmod-sfs-open "rmmod succeeded with ascii_log open"; insmod /vigil.ko; else vt_pass kmod-rmmod-sfs-open "refused while ascii_log open"; fi
exec 4<&-
# rmmod takes a last checkpoint (reason unload) and extends pcr_events (23).
pcr23() {
	command -v tpm2 >/dev/null &&
		TPM2TOOLS_TCTI=device:/dev/tpmrm0 tpm2 pcrread sha256:23 2>/dev/null |
		awk '$1 == "23:" { print $2 }'
}
before=$(pcr23)
vt_check kmod-rmmod-closed rmmod vigil
after=$(pcr23)
if [ -z "$before" ] || [ -z "$after" ]; then
	vt_skip kmod-unload-checkpoint "tpm2 pcrread unavailable"
elif [ "$before" != "$after" ]; then
	vt_pass kmod-unload-checkpoint "PCR 23 extended at unload"
else
	vt_fail kmod-unload-checkpoint "PCR 23 unchanged by rmmod: no final checkpoint"
fi
vt_check kmod-gone test ! -e /dev/vigil -a ! -e /sys/kernel/security/vigil
