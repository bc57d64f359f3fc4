# SPDX-License-Identifier: GPL-2.0
# Boot 1 of the node: the module DKMS built, loaded at boot through
# modules-load.d with modprobe.d's options; the TPM marked for the reboot.
rm -rf "${NODE_KEEP:?}"/*
node_check_module boot1
inst=$(node_instance)
if [ -n "$inst" ]; then
	echo "$inst" >$NODE_KEEP/boot1.instance
	vt_pass boot1-instance "$inst"
else
	vt_fail boot1-instance "no instance_id in vigilctl status --json"
fi
cat /proc/sys/kernel/random/boot_id >$NODE_KEEP/boot1.boot_id
# A random value in a TPM NV index: boot 2 reads it back iff swtpm kept its
# state across the power cycle (the module's key hangs on the same seed).
tpm2_getrandom 16 >$NODE_KEEP/boot1.nv 2>/run/nv.err &&
	tpm2_nvdefine 0x1500016 -C o -s 16 -a "ownerread|ownerwrite" >/dev/null 2>>/run/nv.err &&
	tpm2_nvwrite 0x1500016 -C o -i $NODE_KEEP/boot1.nv 2>>/run/nv.err &&
	vt_pass boot1-tpm-nv-written "16 random bytes in NV index 0x1500016" ||
	vt_fail boot1-tpm-nv-written "$(tail -n 3 /run/nv.err | tr '\n' '|')"
