# SPDX-License-Identifier: GPL-2.0
# 50 load/unload cycles, each with a commit and a signed checkpoint: no
# leak in /proc/slabinfo (kmalloc caches, settled after RCU), no leftover
# TPM objects, and kmemleak clean where the kernel has it.
vt_rmmod vigil 2>/dev/null
vt_check kmod-cycles vigil-cycles -n 50 -w 5 -m 50 /vigil.ko
if [ -e /sys/kernel/debug/kmemleak ]; then
	echo scan >/sys/kernel/debug/kmemleak
	vt_check kmod-cycles-kmemleak sh -c '! grep -q vigil /sys/kernel/debug/kmemleak'
else
	vt_log "no kmemleak in this kernel"
fi
vt_check kmod-cycles-tpm-clean sh -c "insmod /vigil.ko && vigil-tpm-coexist && vigilctl seal >/dev/null && rmmod vigil"
