# SPDX-License-Identifier: GPL-2.0
# The kfuncs from a real BPF program (tp_btf/sys_enter): a valid record gets
# the next seq and the COMMITTED flag; NULL (a failed ring-buffer
# reservation passed unchecked), a bad type and a bad size get -EINVAL and
# are counted as rejected; vigil_drop counts per type.
if command -v vigil-kmod-bench >/dev/null; then
	vt_check kmod-kfunc-bpf vigil-kmod-bench --check
else
	vt_skip kmod-kfunc-bpf "vigil-kmod-bench not built (clang/bpftool/libbpf)"
fi
# Only vigil's registered producers commit: a root tp_btf program that calls
# vigil_commit without the producer window is refused at load (the kfunc
# set's filter, 6.5+), and the refusal is counted. Where the kernel has no
# filter (Debian 12's 6.1) the module says so (kfunc_guard "callsite"):
# the foreign program loads, and every one of its calls (vigil_commit,
# vigil_drop, vigil_alive) is refused with -EPERM and counted, nothing is
# committed and the alive counters do not move (vigil-kmod-bench --foreign
# checks the mode GET_INFO reports).
if command -v vigil-kmod-bench >/dev/null; then
	guard=$(vigilctl status --json | sed -n 's/.*"kfunc_guard": "\([a-z]*\)".*/\1/p')
	case "$(uname -r)" in
	6.1.*) want=callsite ;;
	*) want=filter ;;
	esac
	if [ "$guard" = "$want" ]; then
		vt_pass kmod-kfunc-guard "kfunc_guard $guard on $(uname -r)"
	else
		vt_fail kmod-kfunc-guard "kfunc_guard '$guard' on $(uname -r), want $want"
	fi
	vt_check kmod-kfunc-foreign-refused vigil-kmod-bench --foreign
	if [ "$guard" = callsite ]; then
		vt_check kmod-kfunc-foreign-loaded-refused-at-call sh -c \
			'vigil-kmod-bench --foreign | grep -q "^refused at call"'
	else
		vt_check kmod-kfunc-foreign-dmesg sh -c 'dmesg | grep -q "not a registered vigil producer"'
	fi
fi
# A kretprobe swaps the return address the call-site guard checks: it
# would make the module refuse the real producers' calls. The kfuncs are
# on the kprobe blacklist (both guards: nothing needs to probe them).
ev=/sys/kernel/tracing/kprobe_events
if [ -w "$ev" ]; then
	probed=
	for f in vigil_commit vigil_drop vigil_alive; do
		if echo "r:vigil_rp_$f $f" >>"$ev" 2>/dev/null; then
			probed="$probed $f"
			echo "-:vigil_rp_$f" >>"$ev" 2>/dev/null
		fi
	done
	if [ -z "$probed" ]; then
		vt_pass kmod-kfunc-no-kretprobe "kretprobes on vigil_commit, vigil_drop, vigil_alive refused"
	else
		vt_fail kmod-kfunc-no-kretprobe "a kretprobe was accepted on:$probed"
	fi
	# The probe mechanism works at all (else the refusal above proves nothing).
	if echo "r:vigil_rp_ok vfs_read" >>"$ev" 2>/dev/null; then
		echo "-:vigil_rp_ok" >>"$ev"
		vt_pass kmod-kfunc-kretprobe-elsewhere "a kretprobe on vfs_read is accepted"
	else
		vt_fail kmod-kfunc-kretprobe-elsewhere "no kretprobe can be set (kprobe_events broken?)"
	fi
else
	vt_fail kmod-kfunc-no-kretprobe "$ev is not writable: tracefs missing"
fi
# An fexit program (a BPF trampoline) and the function_graph tracer run the
# traced function from a trampoline and so swap its return address too. The
# kfuncs cannot be notrace (pahole 1.24 encodes BTF only for ftrace-able
# functions: they would vanish from the module's BTF), so root can attach
# both. What must hold: under the call-site guard (6.1) the producers'
# calls made meanwhile are refused and counted in `rejected` (vigild's
# `refused` finding), never committed unseen, and they commit again once
# the tracer is gone; under the filter (6.5+) the return address plays no
# part and commits go on.
rejected() { vigilctl status --json | sed -n 's/.*"rejected": \([0-9]*\).*/\1/p'; }
# traced_check NAME HOW: vigil-kmod-bench --check (a registered producer
# committing) while HOW (fexit|graph) instruments vigil_commit.
traced_check() {
	local name=$1 how=$2 r0 r1 rc=0 fp= i t=/sys/kernel/tracing
	r0=$(rejected)
	case "$how" in
	fexit)
		vigil-fexit --hold 120 vigil_commit >/tmp/fexit.out 2>&1 &
		fp=$!
		i=0
		while ! grep -q '^attached' /tmp/fexit.out && kill -0 "$fp" 2>/dev/null && [ $i -lt 100 ]; do
			sleep 0.2
			i=$((i + 1))
		done
		if ! grep -q '^attached' /tmp/fexit.out; then
			vt_fail "$name" "fexit on vigil_commit did not attach: $(cat /tmp/fexit.out)"
			kill "$fp" 2>/dev/null
			wait "$fp" 2>/dev/null
			return
		fi
		;;
	graph)
		# set_ftrace_filter too: without it the graph tracer patches
		# and traces every kernel function, which under TCG stalled a
		# 6.1 guest for minutes (a soft lockup in the writing shell).
		if ! echo vigil_commit >"$t/set_ftrace_filter" 2>/dev/null ||
			! echo vigil_commit >"$t/set_graph_function" 2>/dev/null ||
			! echo function_graph >"$t/current_tracer" 2>/dev/null; then
			vt_fail "$name" "function_graph on vigil_commit could not be set"
			echo >"$t/set_graph_function" 2>/dev/null
			echo >"$t/set_ftrace_filter" 2>/dev/null
			return
		fi
		;;
	esac
	vigil-kmod-bench --check >/tmp/traced-check.out 2>&1 || rc=$?
	if [ "$how" = fexit ]; then
		kill "$fp"
		wait "$fp" 2>/dev/null
	else
		echo nop >"$t/current_tracer"
		echo >"$t/set_graph_function"
		echo >"$t/set_ftrace_filter"
	fi
	r1=$(rejected)
	if [ "$guard" = callsite ]; then
		if [ "$rc" -ne 0 ] && [ "${r1:-0}" -gt "${r0:-0}" ]; then
			vt_pass "$name" "$how on vigil_commit: the producer's commits refused and counted (rejected $r0 -> $r1)"
		else
			vt_fail "$name" "$how on vigil_commit: check rc $rc, rejected $r0 -> $r1: $(grep -m3 FAIL /tmp/traced-check.out)"
		fi
	elif [ "$rc" -eq 0 ]; then
		vt_pass "$name" "$how on vigil_commit: the filter guard commits as before (rejected $r0 -> $r1)"
	else
		vt_fail "$name" "$how on vigil_commit broke the filter guard's commits: $(grep -m3 FAIL /tmp/traced-check.out)"
	fi
}
if command -v vigil-fexit >/dev/null && command -v vigil-kmod-bench >/dev/null; then
	traced_check kmod-kfunc-fexit-refused-counted fexit
	traced_check kmod-kfunc-graph-refused-counted graph
	# Nothing sticks: with the tracers gone a producer commits again.
	vt_check kmod-kfunc-untraced-commits vigil-kmod-bench --check
else
	vt_fail kmod-kfunc-fexit-refused-counted "vigil-fexit or vigil-kmod-bench is missing from the guest"
fi
# A loaded BPF program that calls the kfuncs holds a module reference:
# rmmod is refused while it is attached and succeeds after it is gone.
if command -v vigil-kmod-bench >/dev/null; then
	vigil-kmod-bench --hold 3 >/tmp/hold.out 2>&1 &
	hp=$!
	i=0
	while ! grep -q attached /tmp/hold.out && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	if ! grep -q attached /tmp/hold.out; then
		vt_fail kmod-rmmod-bpf-held "program did not attach: $(cat /tmp/hold.out | tr '\n' '|')"
	elif rmmod vigil 2>/dev/null; then
		vt_fail kmod-rmmod-bpf-held "rmmod succeeded while a BPF program used the kfuncs"
		insmod /vigil.ko
	else
		vt_pass kmod-rmmod-bpf-held "rmmod refused while the program is attached"
	fi
	wait $hp
	vt_check kmod-rmmod-after-bpf vt_rmmod vigil
	vt_check kmod-reload-after-bpf insmod /vigil.ko
fi
