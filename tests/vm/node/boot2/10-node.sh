# SPDX-License-Identifier: GPL-2.0
# Boot 2 (same disk, same TPM state): a new boot and a new module instance,
# loaded at boot again; the TPM kept its state.
node_check_module boot2
old=$(cat $NODE_KEEP/boot1.instance 2>/dev/null)
inst=$(node_instance)
echo "$inst" >$NODE_KEEP/boot2.instance
if [ -n "$old" ] && [ -n "$inst" ] && [ "$old" != "$inst" ] &&
	[ "$(cat /proc/sys/kernel/random/boot_id)" != "$(cat $NODE_KEEP/boot1.boot_id)" ]; then
	vt_pass boot2-new-instance "boot 1 $old, boot 2 $inst, boot_id changed"
else
	vt_fail boot2-new-instance "boot 1 '${old}', boot 2 '${inst}'"
fi
tpm2_nvread 0x1500016 -C o -s 16 -o /run/nv.now 2>/run/nv.err
if [ -s $NODE_KEEP/boot1.nv ] && cmp -s /run/nv.now $NODE_KEEP/boot1.nv; then
	vt_pass boot2-tpm-state-kept "NV index 0x1500016 holds boot 1's value"
else
	vt_fail boot2-tpm-state-kept "$(tail -n 3 /run/nv.err | tr '\n' '|')"
fi
