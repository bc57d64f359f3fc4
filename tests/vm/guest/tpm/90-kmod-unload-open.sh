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
vt_check kmod-rmmod-closed rmmod vigil
vt_check kmod-gone test ! -e /dev/vigil -a ! -e /sys/kernel/security/vigil
