# SPDX-License-Identifier: GPL-2.0
# checkpoint_events: the commit path kicks a checkpoint (irq_work, no
# sleeping) every N events, without any timer.
vt_check kmod-kick-insmod insmod /vigil.ko checkpoint_ms=0 checkpoint_events=100
vt_check kmod-kick-stress vigil-stress -t 2 -n 250 -c 0 -r 0
sleep 1
n=$(grep -c 'reason=events' /sys/kernel/security/vigil/ascii_log)
t=$(grep -c 'reason=timer' /sys/kernel/security/vigil/ascii_log)
if [ "$n" -ge 2 ] && [ "$t" -eq 0 ]; then vt_pass kmod-kick-checkpoints "$n event-triggered checkpoints for 500 events"; else vt_fail kmod-kick-checkpoints "$n event / $t timer checkpoints"; fi
vt_check kmod-kick-replay vigil-replay --chain-complete --expect-signed --min-checkpoints 2
vt_check kmod-kick-rmmod rmmod vigil
