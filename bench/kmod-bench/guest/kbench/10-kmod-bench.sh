# SPDX-License-Identifier: GPL-2.0
# Commit cost (kfunc vs ring buffer only) and checkpoint latency with swtpm.
insmod /vigil.ko checkpoint_ms=0 checkpoint_events=0
vigil-kmod-bench -n 2000 -r 20 -c 50 >/tmp/bench.out 2>&1
rc=$?
grep '^BENCH:' /tmp/bench.out | while read -r line; do vt_log "$line"; done
if [ $rc -eq 0 ]; then vt_pass kmod-bench "$(grep -c '^BENCH:' /tmp/bench.out) results"; else vt_fail kmod-bench "$(tail -n 3 /tmp/bench.out | tr '\n' '|')"; fi
vt_rmmod vigil
insmod /vigil.ko checkpoint_ms=0 checkpoint_events=0 anchor=ima
vigil-kmod-bench -n 10 -r 1 -c 50 >/tmp/bench-ima.out 2>&1
grep '^BENCH: checkpoint' /tmp/bench-ima.out | sed 's/^BENCH: checkpoint/BENCH: checkpoint-ima-anchor/' | while read -r line; do vt_log "$line"; done
vt_rmmod vigil
