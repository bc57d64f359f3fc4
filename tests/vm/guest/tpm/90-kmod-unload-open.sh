# SPDX-License-Identifier: GPL-2.0
# Nothing is lost at unload. The attack: stop the collector, act, rmmod and
# insmod, so the verifier sees a clean restart without the tail. The module
# holds a reference to itself until SEAL wrote the final checkpoint (while
# /dev/vigil still exists) and a reader drained the log: before, rmmod fails
# with EAGAIN. An open /dev/vigil or securityfs file still holds it too.
pcr23() {
	TPM2TOOLS_TCTI=device:/dev/tpmrm0 tpm2 pcrread sha256:23 2>/dev/null |
		awk '$1 == "23:" { print $2 }'
}
vt_rmmod vigil 2>/dev/null
vt_check kmod-reload insmod /vigil.ko
vigil-ioctl-test commit >/dev/null
if rmmod vigil 2>/tmp/rmmod.err; then
	vt_fail kmod-rmmod-unsealed "rmmod succeeded before SEAL: the tail since the last checkpoint is gone"
	insmod /vigil.ko
elif grep -q 'Resource temporarily unavailable\|Try again' /tmp/rmmod.err; then
	vt_pass kmod-rmmod-unsealed "refused before SEAL (EAGAIN): $(tr '\n' ' ' </tmp/rmmod.err)"
else
	vt_fail kmod-rmmod-unsealed "refused, but not with EAGAIN: $(tr '\n' ' ' </tmp/rmmod.err)"
fi
vt_check kmod-works-after-refused-rmmod vigil-ioctl-test commit checkpoint
# SEAL: the final checkpoint is logged and anchored while the log is
# readable; commits and windows are refused from then on.
before=$(pcr23)
vt_check kmod-seal vigil-ioctl-test sealed
after=$(pcr23)
if [ -n "$before" ] && [ "$before" != "$after" ]; then
	vt_pass kmod-seal-anchored "PCR 23 extended by the final checkpoint"
else
	vt_fail kmod-seal-anchored "PCR 23 '$before' -> '$after'"
fi
# Sealed but not drained: still refused. Seeking to the end and reading the
# last record is not a drain either: every record must be read.
vt_check kmod-seal-skip-read vigil-ioctl-test skip-to-end
if rmmod vigil 2>/dev/null; then
	vt_fail kmod-rmmod-undrained "rmmod succeeded after a seek to the last record"
	insmod /vigil.ko
else
	vt_pass kmod-rmmod-undrained "refused until the log is read from its oldest record"
fi
# Drain (and keep) the whole log: the final checkpoint is in it and the
# replay of every PCR matches the TPM, so no PCR holds an unread record.
vt_check kmod-seal-drain vigilctl seal --save /tmp/final.bin
vt_check kmod-seal-final-in-log sh -c 'vigilctl log --json --file /tmp/final.bin | grep "\"type\":\"checkpoint\"" | tail -n 1 | grep -q "\"reason\":4"'
vt_check kmod-seal-replay vigil-replay --quiet
exec 3</dev/vigil
if rmmod vigil 2>/dev/null; then vt_fail kmod-rmmod-open "rmmod succeeded with /dev/vigil open"; else vt_pass kmod-rmmod-open "refused while open"; fi
exec 3<&-
exec 4</sys/kernel/security/vigil/ascii_log
if rmmod vigil 2>/dev/null; then vt_fail kmod-rmmod-sfs-open "rmmod succeeded with ascii_log open"; else vt_pass kmod-rmmod-sfs-open "refused while ascii_log open"; fi
exec 4<&-
sealed_pcr=$(pcr23)
vt_check kmod-rmmod-closed vt_rmmod vigil
vt_check kmod-rmmod-no-extend test -n "$sealed_pcr" -a "$sealed_pcr" = "$(pcr23)"
vt_check kmod-gone test ! -e /dev/vigil -a ! -e /sys/kernel/security/vigil

