# SPDX-License-Identifier: GPL-2.0
# Host side of the "remote" scenario, sourced by scripts/vm-test: the guest
# is attested continuously by a vigil-verifier running HERE, on the host,
# over a virtio-serial port (no IP): QEMU exposes the port as a chardev
# UNIX socket, `vigil-verifier serve --serial` connects to it. The guest
# marks each phase (an attack, a recovery) with "VMTEST: HOST mark NAME";
# after the boot, remote-check.py holds the verifier's verdict stream
# against the marks and adds its CHECK lines to the results.

remote_deadline=25 # seconds without trusted evidence before "overdue"

host_setup() {
	remote_dir=$1
	host_extra_seconds=240 # the phases wait for deadlines and TCG rounds
	rm -f "$remote_dir/attest.sock" "$remote_dir/marks.txt" "$remote_dir/verdicts.jsonl"
	: >"$remote_dir/marks.txt"
	: >"$remote_dir/verdicts.jsonl"
	host_qemu_args=(-device virtio-serial-pci,id=vser0
		-chardev "socket,id=vattest,path=$remote_dir/attest.sock,server=on,wait=off"
		-device virtserialport,bus=vser0.0,chardev=vattest,name=org.vigil.attest)
}

host_action() {
	case "$1" in
	verifier-start\ *)
		# The policy an operator takes from a known-good node: the digests
		# of the module identity, parameters and producer set it measured.
		# shellcheck disable=SC2086 # the three digests, split on purpose
		set -- ${1#verifier-start }
		cat >"$remote_dir/policy.json" <<-POLICY
			{"version": 1, "anchor": "ima", "allow_reload": true,
			 "module_digests": ["$1"], "params_digests": ["$2"],
			 "producer_set_digests": ["$3"]}
		POLICY
		"$build_dir/userspace/vigil-verifier" --state "$remote_dir/verifier" \
			--policy "$remote_dir/policy.json" serve --serial "$remote_dir/attest.sock" \
			--deadline "$remote_deadline" --pin-ek \
			>"$remote_dir/verdicts.jsonl" 2>"$remote_dir/verifier.err" &
		pids+=("$!")
		remote_verifier=$!
		echo "$(date +%s) verifier-start" >>"$remote_dir/marks.txt"
		;;
	mark\ *)
		echo "$(date +%s) ${1#mark }" >>"$remote_dir/marks.txt"
		;;
	*) return 1 ;;
	esac
}

host_finish() {
	[ -n "${remote_verifier:-}" ] && reap "$remote_verifier"
	python3 "$top/tests/vm/host/remote-check.py" --deadline "$remote_deadline" \
		"$remote_dir/marks.txt" "$remote_dir/verdicts.jsonl" "$remote_dir/verifier.err"
}
