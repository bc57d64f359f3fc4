# SPDX-License-Identifier: GPL-2.0
# Helpers of the node VM's test scripts (dash), on top of tests/vm/lib.sh.

# What the tests keep across the reboot (on the node's disk, beside vigil's).
export NODE_KEEP=/var/lib/vigil-node-test
export NODE_STATE=/var/lib/vigil
mkdir -p $NODE_KEEP
export TPM2TOOLS_TCTI=device:/dev/tpmrm0

# node_vigild_out: vigild's JSON lines of this boot (vigild.service writes
# them to stdout, i.e. the journal).
node_vigild_out() {
	journalctl -b -u vigild.service -o cat --no-pager 2>/dev/null | grep '^{'
}

# node_instance: the loaded module's instance id (GET_INFO).
node_instance() {
	vigilctl status --json | sed -n 's/.*"instance_id": "\([0-9a-f]*\)".*/\1/p' | head -n1
}

# node_check_module BOOT: the module DKMS built for this kernel, loaded at
# boot by systemd-modules-load with the options of /etc/modprobe.d.
node_check_module() {
	_b=$1
	_kver=$(uname -r)
	# DKMS's mark of an installed module (what `dkms status` reads; dkms
	# itself takes 15 s under TCG), and the loaded module is DKMS's build.
	_ver=$(cat /sys/module/vigil/version 2>/dev/null)
	_built=$(ls /var/lib/dkms/vigil/"$_ver"/"$_kver"/*/module/vigil.ko* 2>/dev/null | head -n1)
	_src=$(cat /sys/module/vigil/srcversion 2>/dev/null)
	if [ -L /var/lib/dkms/vigil/kernel-"$_kver"-"$(uname -m)" ] && [ -n "$_built" ] && [ -n "$_src" ] &&
		[ "$(modinfo -F srcversion "$_built")" = "$_src" ]; then
		vt_pass "$_b-dkms-installed" "vigil/$_ver installed for $_kver by DKMS, loaded srcversion $_src"
	else
		vt_fail "$_b-dkms-installed" "version '$_ver', DKMS build '${_built}', loaded srcversion '$_src', $(ls /var/lib/dkms/vigil 2>&1 | tr '\n' ' ')"
	fi
	_ko=$(modinfo -n vigil 2>&1)
	case "$_ko" in
	/lib/modules/"$_kver"/updates/dkms/vigil.ko*) vt_pass "$_b-module-from-dkms" "$_ko" ;;
	*) vt_fail "$_b-module-from-dkms" "modinfo -n vigil: $_ko" ;;
	esac
	# Not -u: before journald runs, the line comes in through kmsg, without
	# the unit's fields.
	_ins=$(journalctl -b -t systemd-modules-load -o cat --no-pager | grep -m1 "module 'vigil'")
	if grep -q '^vigil ' /proc/modules && [ -n "$_ins" ] &&
		[ "$(systemctl is-active systemd-modules-load.service)" = active ]; then
		vt_pass "$_b-module-loaded-at-boot" "systemd-modules-load: $_ins"
	else
		vt_fail "$_b-module-loaded-at-boot" "in /proc/modules: $(grep -c '^vigil ' /proc/modules), modules-load: ${_ins:-no line}; $(cat /etc/modules-load.d/*vigil* /usr/lib/modules-load.d/*vigil* 2>/dev/null | grep -v '^#' | tr '\n' ' ')"
	fi
	# Every "options vigil k=v" of modprobe.d is what the module runs with.
	_opts=$(cat /etc/modprobe.d/*.conf /lib/modprobe.d/*.conf /usr/lib/modprobe.d/*.conf 2>/dev/null |
		sed -n 's/^[[:space:]]*options[[:space:]]\{1,\}vigil[[:space:]]\{1,\}//p' | tr '\t' ' ')
	_bad=
	for _kv in $_opts; do
		_k=${_kv%%=*}
		_v=${_kv#*=}
		_now=$(cat /sys/module/vigil/parameters/"$_k" 2>/dev/null)
		case "$_v:$_now" in
		1:Y | y:Y | Y:Y | 0:N | n:N | N:N) ;;
		*) [ "$_v" = "$_now" ] || _bad="$_bad $_k=$_v(runs $_now)" ;;
		esac
	done
	if [ -z "$_opts" ]; then
		vt_fail "$_b-module-options" "no 'options vigil' in modprobe.d"
	elif [ -n "$_bad" ]; then
		vt_fail "$_b-module-options" "differ:$_bad"
	else
		vt_pass "$_b-module-options" "$_opts"
	fi
	# The packages' IMA rule (vigil-ima-policy.service) before the module,
	# or the stand-in's ima_policy= on the kernel command line.
	if systemctl cat vigil-ima-policy.service >/dev/null 2>&1; then
		[ "$(systemctl is-active vigil-ima-policy.service)" = active ] &&
			vt_pass "$_b-ima-policy" "vigil-ima-policy.service ran" ||
			vt_fail "$_b-ima-policy" "vigil-ima-policy.service: $(systemctl is-active vigil-ima-policy.service)"
	else
		grep -q 'ima_policy=critical_data' /proc/cmdline &&
			vt_pass "$_b-ima-policy" "stand-in: ima_policy=critical_data on the command line" ||
			vt_fail "$_b-ima-policy" "no IMA policy for critical data"
	fi
	[ -d /sys/kernel/btf/vigil ] || [ -f /sys/kernel/btf/vigil ] &&
		vt_pass "$_b-module-btf" "/sys/kernel/btf/vigil" ||
		vt_fail "$_b-module-btf" "no /sys/kernel/btf/vigil: BPF cannot call the kfuncs"
	# What keeps foreign BPF programs off the kfuncs: the kfunc set's filter
	# (6.5+), or on Debian 12's 6.1 (no filter) the call-site guard.
	_guard=$(vigilctl status --json | sed -n 's/.*"kfunc_guard": "\([a-z]*\)".*/\1/p')
	case "$_kver" in
	6.1.*) _want=callsite ;;
	*) _want=filter ;;
	esac
	[ "$_guard" = "$_want" ] &&
		vt_pass "$_b-kfunc-guard" "kfunc_guard $_guard on $_kver" ||
		vt_fail "$_b-kfunc-guard" "kfunc_guard '$_guard' on $_kver, want $_want"
	vigilctl status >/run/status.txt 2>&1
	if grep -q '^TPM: present, checkpoint key: yes' /run/status.txt; then
		vt_pass "$_b-module-tpm-key" "$(grep -E '^(TPM|pcr_config)' /run/status.txt | tr '\n' ' ')"
	else
		vt_fail "$_b-module-tpm-key" "$(head -n 5 /run/status.txt | tr '\n' '|')"
	fi
}

# node_workloads TAG: tracked agents of two roles, through vigild.
node_workloads() {
	_ok=0
	_n=0
	for _i in 1 2 3; do
		_n=$((_n + 1))
		vigilctl agent run --name "web@$1$_i" -- sh -c 'for j in 1 2 3 4 5; do ls / >/dev/null; cat /etc/os-release >/dev/null; done' &&
			_ok=$((_ok + 1))
	done
	_n=$((_n + 1))
	vigilctl agent run --name "db@$1" -- sh -c 'dd if=/dev/zero of=/tmp/db.$$ bs=64k count=64 2>/dev/null; rm -f /tmp/db.$$' &&
		_ok=$((_ok + 1))
	[ $_ok -eq $_n ] && vt_pass "$2-agents-run" "$_ok agents of web and db ran under vigild" ||
		vt_fail "$2-agents-run" "$_ok of $_n vigilctl agent run succeeded"
}

# node_wait_verified CHECK SECONDS: a "verified" checkpoint verdict with
# events (the workloads), and no verdict other than "verified", this boot.
node_wait_verified() {
	_i=0
	while [ $_i -lt $(($2 * 2)) ]; do
		node_vigild_out | grep '"type":"checkpoint"' | grep '"verdict":"verified"' |
			grep -q '"events":[1-9]' && break
		sleep 0.5
		_i=$((_i + 1))
	done
	sleep 1
	node_vigild_out | grep '"type":"checkpoint"' >/run/verdicts.json
	_all=$(grep -c '"verdict"' /run/verdicts.json)
	_ver=$(grep -c '"verdict":"verified"' /run/verdicts.json)
	_ev=$(grep '"verdict":"verified"' /run/verdicts.json | grep -c '"events":[1-9]')
	if [ "$_ev" -ge 1 ] && [ "$_ver" -eq "$_all" ]; then
		vt_pass "$1" "$_ver of $_all checkpoints verified ($_ev with events): $(grep '"verdict":"verified"' /run/verdicts.json | grep -m1 '"events":[1-9]' | sed 's/.*"reason"/"reason"/' | cut -c1-160)"
	else
		vt_fail "$1" "$_ver of $_all verified, $_ev with events: $(grep -v '"verdict":"verified"' /run/verdicts.json | head -n 2 | cut -c1-300 | tr '\n' '|') $(journalctl -b -u vigild.service -o cat --no-pager | grep -v '^{' | tail -n 3 | tr '\n' '|')"
	fi
}

# node_wait_active UNIT SECONDS
node_wait_active() {
	_i=0
	while [ $_i -lt $(($2 * 5)) ]; do
		[ "$(systemctl is-active "$1")" = active ] && return 0
		sleep 0.2
		_i=$((_i + 1))
	done
	return 1
}
