# SPDX-License-Identifier: GPL-2.0
# Guest-side helpers for VM tests (busybox sh). Results go to the second
# serial port as "VMTEST: CHECK <name> PASS|FAIL|SKIP <detail>"; the host
# (scripts/vm-test) counts them. Sourced by /init before every test script.

VMTEST_OUT=${VMTEST_OUT:-/dev/ttyS1}
VMTEST_FAILS=${VMTEST_FAILS:-/tmp/vmtest.fails}

_vt_emit() {
	echo "VMTEST: $*" >"$VMTEST_OUT"
	echo "VMTEST: $*"
}

# vt_pass NAME [DETAIL]
vt_pass() {
	_n=$1
	shift
	_vt_emit "CHECK $_n PASS $*"
}

# vt_fail NAME [DETAIL]
vt_fail() {
	_n=$1
	shift
	echo "$_n" >>"$VMTEST_FAILS"
	_vt_emit "CHECK $_n FAIL $*"
}

# vt_skip NAME REASON: never counted as passed.
vt_skip() {
	_n=$1
	shift
	_vt_emit "CHECK $_n SKIP $*"
}

# vt_log TEXT: informational, shown by the host with the results.
vt_log() {
	_vt_emit "LOG $*"
}

# vt_check NAME CMD...: PASS iff CMD exits 0; FAIL shows its last lines.
vt_check() {
	_n=$1
	shift
	_out=/tmp/vt_check.$$.out
	if "$@" >"$_out" 2>&1; then
		vt_pass "$_n" "$(tail -n 1 "$_out" | cut -c1-160)"
	else
		_rc=$?
		vt_fail "$_n" "exit $_rc: $(tail -n 3 "$_out" | tr '\n' '|' | cut -c1-400)"
	fi
	rm -f "$_out"
}

# vt_records FILE: only the record lines of vigild's output (not its
# checkpoint verdicts, findings, alerts and measurements).
vt_records() {
	grep -v '"type":"\(checkpoint\|finding\|alert\|measure\)"' "$1"
}

# vt_wait_line FILE PATTERN TENTHS: wait up to TENTHS/10 s for a line of
# FILE matching the grep PATTERN.
vt_wait_line() {
	_i=0
	while [ $_i -lt "$3" ]; do
		grep -q "$2" "$1" && return 0
		sleep 0.1
		_i=$((_i + 1))
	done
	return 1
}

# vt_wait_finding FILE KIND TENTHS: wait up to TENTHS/10 s for a vigild
# finding of KIND in FILE.
vt_wait_finding() {
	vt_wait_line "$1" "\"kind\":\"$2\"" "$3"
}

# vt_tpmrm: the TPM resource manager device now (a driver rebind moves the
# TPM to tpm1 while IMA still holds tpm0).
vt_tpmrm() {
	ls /dev/tpmrm* 2>/dev/null | tail -n 1
}

# vt_host ACTION: ask the host runner to act (e.g. kill-tpm), best effort.
vt_host() {
	_vt_emit "HOST $*"
}

# vt_wait_ready FILE PID: wait up to 60 s for a daemon's ready file;
# fails at once if PID exits first.
vt_wait_ready() {
	_i=0
	while [ ! -f "$1" ] && [ $_i -lt 600 ]; do
		kill -0 "$2" 2>/dev/null || break
		sleep 0.1
		_i=$((_i + 1))
	done
	[ -f "$1" ]
}

# vt_seal: vigil.ko refuses rmmod (EAGAIN) until SEAL wrote its final
# checkpoint and a reader drained the log; `vigilctl seal` does both.
vt_seal() {
	[ -e /dev/vigil ] || return 0
	vigilctl seal >/tmp/vt_seal.out 2>&1 || { cat /tmp/vt_seal.out; return 1; }
}

# vt_rmmod NAME: seal (vigil), then rmmod with retries (BPF drops module
# refs asynchronously).
vt_rmmod() {
	if [ "$1" = vigil ]; then vt_seal || return 1; fi
	_i=0
	while [ $_i -lt 50 ]; do
		rmmod "$1" 2>/dev/null && return 0
		_i=$((_i + 1))
		sleep 0.1
	done
	rmmod "$1"
}
