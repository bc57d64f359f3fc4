# SPDX-License-Identifier: GPL-2.0
# The TPM disappears mid-run (the host kills swtpm): no hang; checkpoints
# keep coming, logged unsigned with the TPM error; unload still works.
# Runs last: the TPM does not come back. After the rebind test the TPM may be
# tpm1 (IMA keeps the old tpm0 number): the device is looked up.
export VIGIL_TCTI=device:$(vt_tpmrm)
vt_check kmod-gone-insmod insmod /vigil.ko heartbeat_ms=3600000
vt_check kmod-gone-signed-before vigil-ioctl-test commit checkpoint
# TPM2_Clear changes the owner seed: the saved key context no longer loads,
# the re-derived key differs from the logged one, and the module refuses to
# sign with it (-EKEYREJECTED) rather than switch keys silently.
if command -v tpm2 >/dev/null && TPM2TOOLS_TCTI=device:$(vt_tpmrm) tpm2 clear >/tmp/clear.out 2>&1; then
	out=$(vigil-ioctl-test checkpoint-tpm-error 2>&1)
	if echo "$out" | grep -q 'status 2 error -129 '; then
		vt_pass kmod-owner-clear-key-rejected "$(echo "$out" | grep '^checkpoint')"
	else
		vt_fail kmod-owner-clear-key-rejected "$(echo "$out" | tr '\n' '|')"
	fi
else
	vt_skip kmod-owner-clear-key-rejected "tpm2 clear unavailable: $(tail -n 1 /tmp/clear.out 2>/dev/null)"
fi
# The PCR values the TPM holds when it dies (nothing is extended between
# this read and the kill: no event, so timer checkpoints are idle).
pcrs=
if command -v tpm2 >/dev/null; then
	pcrs=$(TPM2TOOLS_TCTI=device:$(vt_tpmrm) tpm2 pcrread sha256:16,23 2>/dev/null |
		awk '$1 == "16:" || $1 == "23:" { sub(/^0x/, "", $2); print tolower($2) }' | tr '\n' ' ')
fi
vt_host kill-tpm
sleep 2
start=$(date +%s)
vt_check kmod-gone-checkpoint vigil-ioctl-test checkpoint-tpm-error
took=$(($(date +%s) - start))
if [ $took -le 30 ]; then vt_pass kmod-gone-no-hang "forced checkpoint returned in ${took}s"; else vt_fail kmod-gone-no-hang "took ${took}s"; fi
vigil-ioctl-test commit >/dev/null
sleep 3
n=$(grep -c 'status=tpm-error' /sys/kernel/security/vigil/ascii_log)
if [ "$n" -ge 2 ]; then vt_pass kmod-gone-timer-unsigned "$n checkpoints logged unsigned with the TPM error"; else vt_fail kmod-gone-timer-unsigned "$n tpm-error signatures"; fi
vt_check kmod-gone-chain-ok vigil-replay --skip-pcr --chain-complete --min-checkpoints 3
# Failed extends stay pending (later records for the PCR wait behind them),
# TRIM refuses to fold them, and a TRIM up to the first pending record
# folds exactly what the TPM had seen: its BASE equals the PCRs at the kill.
out=$(vigil-ioctl-test extend-pending 2>&1)
if [ $? -eq 0 ]; then
	vt_pass kmod-gone-extend-pending "$(echo "$out" | grep '^pending')"
else
	vt_fail kmod-gone-extend-pending "$(echo "$out" | tr '\n' '|' | cut -c1-400)"
fi
cut=$(echo "$out" | sed -n 's/^base-cut alg=0x000b config=\([0-9a-f]*\) events=\([0-9a-f]*\)$/\1 \2 /p')
if [ -z "$pcrs" ]; then
	vt_skip kmod-gone-trim-folds-extended "no tpm2 pcrread before the kill"
elif [ -n "$cut" ] && [ "$cut" = "$pcrs" ]; then
	vt_pass kmod-gone-trim-folds-extended "BASE sha256 pcr16/23 = PCRs at the kill"
else
	vt_fail kmod-gone-trim-folds-extended "BASE '$cut' vs PCRs at the kill '$pcrs'"
fi
vt_check kmod-gone-rmmod vt_rmmod vigil
