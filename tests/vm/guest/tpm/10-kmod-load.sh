# SPDX-License-Identifier: GPL-2.0
# vigil.ko loads with the TPM, creates /dev/vigil (0600), its module BTF
# carries both kfuncs, and the securityfs views exist.
vt_check kmod-insmod insmod /vigil.ko
vt_check kmod-dev-node test -c /dev/vigil
mode=$(stat -c %a /dev/vigil 2>/dev/null)
if [ "$mode" = 600 ]; then vt_pass kmod-dev-mode "0600"; else vt_fail kmod-dev-mode "mode $mode"; fi
vt_check kmod-module-btf test -s /sys/kernel/btf/vigil
if command -v bpftool >/dev/null; then
	bpftool -B /sys/kernel/btf/vmlinux btf dump file /sys/kernel/btf/vigil >/tmp/vigil.btf 2>&1
	if grep -q "FUNC 'vigil_commit'" /tmp/vigil.btf && grep -q "FUNC 'vigil_drop'" /tmp/vigil.btf; then
		vt_pass kmod-kfunc-btf "vigil_commit and vigil_drop in module BTF"
	else
		vt_fail kmod-kfunc-btf "$(grep -c FUNC /tmp/vigil.btf) FUNCs, no vigil_commit/vigil_drop"
	fi
else
	vt_skip kmod-kfunc-btf "no bpftool in the guest"
fi
vt_check kmod-securityfs test -r /sys/kernel/security/vigil/ascii_log -a -r /sys/kernel/security/vigil/status
vt_check kmod-status-tpm grep -q '^tpm: present' /sys/kernel/security/vigil/status
vt_check kmod-status-key grep -q '^key: yes' /sys/kernel/security/vigil/status
if dmesg | grep -q 'vigil: loaded: TPM 2.0'; then vt_pass kmod-dmesg-loaded; else vt_fail kmod-dmesg-loaded "$(dmesg | grep vigil | tail -n 3 | tr '\n' '|')"; fi
# the load-time records: BASE, MEASURE (module), MEASURE (params), KEY
types=$(awk '{print $3}' /sys/kernel/security/vigil/ascii_log | head -n 4 | tr '\n' ' ')
if [ "$types" = "base measure measure key " ]; then
	vt_pass kmod-load-records "$types"
else
	vt_fail kmod-load-records "got: $types"
fi
vt_check kmod-measure-pcr16 grep -q ' measure pcr=16 kind=1 .* name=vigil ' /sys/kernel/security/vigil/ascii_log
# The identity measurement names the kfunc guard (GET_INFO kfunc_guard), so
# a verifier reading the anchored log knows which guarantee the node has.
case "$(uname -r)" in
6.1.*) want=callsite ;;
*) want=filter ;;
esac
line=$(grep -m1 ' measure pcr=[0-9a-z]* kind=1 ' /sys/kernel/security/vigil/ascii_log)
case "$line" in
*" name=vigil "*" guard=$want") vt_pass kmod-kfunc-guard-measured "${line#* name=}" ;;
*) vt_fail kmod-kfunc-guard-measured "identity measurement, want guard=$want: ${line:-none}" ;;
esac
