# SPDX-License-Identifier: GPL-2.0
# The checkpoint key certified by an AK of the guest's TPM (issue #11):
# KEY_CREATION's blobs, CertifyModuleKey through the resource manager,
# CheckKeyCertification against GET_INFO's key; the ioctl's argument
# contract; the key still signs checkpoints afterwards.
for c in $(vigil-keycert-test --list); do
	vt_check "kmod-keycert-$c" vigil-keycert-test "$c" "device:$(vt_tpmrm)"
done
# What was certified, for the record.
vigil-keycert-test certify "device:$(vt_tpmrm)" 2>&1 | grep -E '^  (blobs|certified)' |
	while read -r line; do vt_log "keycert: $line"; done
