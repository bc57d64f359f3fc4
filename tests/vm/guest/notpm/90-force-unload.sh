# SPDX-License-Identifier: GPL-2.0
# rmmod -f (Debian builds CONFIG_MODULE_FORCE_UNLOAD=y) on a module that is
# not sealed and drained: freeing it would lose the unread tail, and BPF
# programs calling the kfuncs would run freed code. The module stays: the
# forced rmmod blocks for good and the device keeps working for open files.
# Runs last in its boot (no TPM: loads degraded): the blocked rmmod never returns.
vt_rmmod vigil 2>/dev/null
vt_check force-insmod insmod /vigil.ko heartbeat_ms=3600000
exec 3</dev/vigil
rmmod -f vigil >/tmp/force.out 2>&1 &
rp=$!
sleep 3
if kill -0 $rp 2>/dev/null; then
	vt_pass force-rmmod-blocked "rmmod -f still waiting after 3 s"
else
	wait $rp
	vt_fail force-rmmod-blocked "rmmod -f returned: $(tr '\n' ' ' </tmp/force.out)"
fi
vt_check force-module-stays test -d /sys/module/vigil
vt_check force-dmesg sh -c 'dmesg | grep -q "forced unload while in use"'
