# SPDX-License-Identifier: GPL-2.0
# 50 load/unload cycles, each with a commit and a signed checkpoint: no
# leak in /proc/slabinfo (kmalloc caches) and no leftover TPM objects.
slab_objs() { awk '$1 ~ /^kmalloc-/ {s += $2} END {print s}' /proc/slabinfo; }
cycle() {
	insmod /vigil.ko checkpoint_ms=0 || return 1
	vigil-ioctl-test commit checkpoint >/dev/null || { rmmod vigil; return 1; }
	rmmod vigil
}
for i in 1 2 3; do cycle; done
sync; echo 3 >/proc/sys/vm/drop_caches
before=$(slab_objs)
fails=0
i=0
while [ $i -lt 50 ]; do
	cycle || fails=$((fails + 1))
	i=$((i + 1))
done
sync; echo 3 >/proc/sys/vm/drop_caches
sleep 1
after=$(slab_objs)
if [ $fails -eq 0 ]; then vt_pass kmod-cycles "50 load/commit/checkpoint/unload cycles"; else vt_fail kmod-cycles "$fails of 50 cycles failed"; fi
growth=$((after - before))
vt_log "kmalloc objects: $before before, $after after 50 cycles ($growth)"
if [ $growth -lt 50 ]; then vt_pass kmod-cycles-no-leak "kmalloc objects grew by $growth over 50 cycles"; else vt_fail kmod-cycles-no-leak "kmalloc objects grew by $growth over 50 cycles"; fi
if [ -e /sys/kernel/debug/kmemleak ]; then
	echo scan >/sys/kernel/debug/kmemleak
	vt_check kmod-cycles-kmemleak sh -c '! grep -q vigil /sys/kernel/debug/kmemleak'
else
	vt_log "no kmemleak in this kernel"
fi
vt_check kmod-cycles-tpm-clean sh -c "insmod /vigil.ko && vigil-tpm-coexist && rmmod vigil"
