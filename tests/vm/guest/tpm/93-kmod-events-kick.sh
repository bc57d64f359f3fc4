# SPDX-License-Identifier: GPL-2.0
# checkpoint_events: the commit path kicks a checkpoint (irq_work, no
# sleeping) once N events were committed since the last one, without any
# timer. Three rounds of 150 events each must give at least three
# event-triggered checkpoints and no timer ones.
vt_check kmod-kick-insmod insmod /vigil.ko checkpoint_ms=0 checkpoint_events=100
for round in 1 2 3; do
	vigil-stress -t 2 -n 75 -c 0 -r 0 >/dev/null 2>&1 || vt_fail kmod-kick-commit "round $round"
	sleep 1
done
n=$(grep -c 'reason=events' /sys/kernel/security/vigil/ascii_log)
t=$(grep -c 'reason=timer' /sys/kernel/security/vigil/ascii_log)
if [ "$n" -ge 3 ] && [ "$t" -eq 0 ]; then vt_pass kmod-kick-checkpoints "$n event-triggered checkpoints for 450 events"; else vt_fail kmod-kick-checkpoints "$n event / $t timer checkpoints"; fi
vt_check kmod-kick-replay vigil-replay --chain-complete --expect-signed --min-checkpoints 3
vt_check kmod-kick-rmmod vt_rmmod vigil

# Silence is signed: with no timer, no count trigger and nothing happening,
# a heartbeat checkpoint still comes every heartbeat_ms, signed.
vt_check kmod-heartbeat-insmod insmod /vigil.ko checkpoint_ms=0 checkpoint_events=0 heartbeat_ms=300
sleep 1.5
h=$(grep -c 'reason=heartbeat' /sys/kernel/security/vigil/ascii_log)
s=$(grep -c ' signature .*status=ok' /sys/kernel/security/vigil/ascii_log)
if [ "$h" -ge 3 ] && [ "$s" -ge "$h" ]; then
	vt_pass kmod-heartbeat "$h heartbeat checkpoints in 1.5 s, $s signed"
else
	vt_fail kmod-heartbeat "$h heartbeat checkpoints, $s signatures: $(tail -n 3 /sys/kernel/security/vigil/ascii_log | tr '\n' '|')"
fi
vt_check kmod-heartbeat-rmmod vt_rmmod vigil
