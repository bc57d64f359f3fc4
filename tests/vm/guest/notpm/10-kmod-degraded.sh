# SPDX-License-Identifier: GPL-2.0
# Without a TPM: tpm_required=1 refuses to load with a clear message; the
# default loads degraded, says so (dmesg, GET_INFO, securityfs), keeps
# chaining and logging, and marks checkpoints unsigned (NO_TPM).
if insmod /vigil.ko tpm_required=1 2>/tmp/insmod.err; then
	vt_fail kmod-tpm-required "loaded without a TPM"
	vt_rmmod vigil
else
	vt_pass kmod-tpm-required "refused: $(cat /tmp/insmod.err | tr '\n' ' ')"
fi
vt_check kmod-tpm-required-msg sh -c "dmesg | grep -q 'vigil: no TPM 2.0 found and tpm_required=1: refusing to load'"
vt_check kmod-no-dev-after-refusal test ! -e /dev/vigil
vt_check kmod-insmod-degraded insmod /vigil.ko
vt_check kmod-degraded-msg sh -c "dmesg | grep -q 'vigil: no TPM 2.0 found: degraded mode'"
vt_check kmod-status-degraded grep -q '^tpm: absent (degraded' /sys/kernel/security/vigil/status
vt_check kmod-notpm-measure-nopcr grep -q ' measure pcr=none kind=1 ' /sys/kernel/security/vigil/ascii_log
for c in $(vigil-ioctl-test --list); do
	vt_check "kmod-notpm-ioctl-$c" vigil-ioctl-test "$c"
done
vt_check kmod-notpm-sig-status grep -q 'signature checkpoint=[0-9]* status=no-tpm' /sys/kernel/security/vigil/ascii_log
vt_check kmod-notpm-stress vigil-stress -t 4 -n 200 -c 5 -r 1
vt_check kmod-notpm-replay vigil-replay --no-tpm --expect-sig-status 1 --min-checkpoints 5
vt_check kmod-notpm-rmmod vt_rmmod vigil
vt_check kmod-notpm-reload sh -c 'insmod /vigil.ko && vigil-ioctl-test commit checkpoint && vigil-replay --no-tpm --chain-complete --expect-sig-status 1 && vigilctl seal >/dev/null && rmmod vigil'
# the kfuncs work the same without a TPM
if command -v vigil-kmod-bench >/dev/null; then
	insmod /vigil.ko
	vt_check kmod-notpm-kfunc-bpf vigil-kmod-bench --check
	vt_rmmod vigil
fi
