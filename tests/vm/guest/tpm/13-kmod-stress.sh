# SPDX-License-Identifier: GPL-2.0
# Concurrent committers on every CPU + forced checkpoints + readers, while
# rmmod is attempted (and refused: /dev/vigil is open): no lost or
# duplicated sequence number, and the replay still holds.
exec 3</dev/vigil
n=$((VMTEST_NCPU * 2))
vigil-stress -t "$n" -n 300 -c 15 -r 2 >/tmp/stress.out 2>&1 &
pid=$!
refused=0
tries=0
while kill -0 $pid 2>/dev/null; do
	tries=$((tries + 1))
	if rmmod vigil 2>/dev/null; then
		vt_fail kmod-rmmod-busy "rmmod succeeded while /dev/vigil was open"
		insmod /vigil.ko
		break
	fi
	refused=$((refused + 1))
	sleep 0.2
done
wait $pid
rc=$?
exec 3<&-
if [ $rc -eq 0 ]; then vt_pass kmod-stress "$(tail -n 1 /tmp/stress.out)"; else vt_fail kmod-stress "$(grep -m 3 FAIL /tmp/stress.out | tr '\n' '|')"; fi
[ "$tries" -gt 0 ] && [ "$refused" -eq "$tries" ] && vt_pass kmod-rmmod-busy "$refused rmmod attempts refused"
vt_check kmod-replay-after-stress vigil-replay --chain-complete --expect-signed --min-checkpoints 10
