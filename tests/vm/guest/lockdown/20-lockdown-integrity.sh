# SPDX-License-Identifier: GPL-2.0
# Lockdown scenario, step 2: lockdown=integrity (what Secure Boot gives on
# Debian). It stops unsigned modules, but not reads of kernel memory by
# root: LOCKDOWN_KCORE and LOCKDOWN_BPF_READ_KERNEL come after
# LOCKDOWN_INTEGRITY_MAX in include/linux/security.h. So root reads the
# module's key secrets here and recreates the key: the documented weakness,
# checked as such.
# vigil itself runs fully at this level.
. /tests/guest/lockdown/lockdown.lib

ld_raise integrity

# Unsigned modules are refused now (vigil.ko had to be loaded before).
if ! insmod /vigil.ko 2>$LD_DIR/insmod.err &&
	dmesg | grep -q 'Lockdown: insmod: unsigned module loading is restricted'; then
	vt_pass lockdown-integrity-unsigned-module-refused "$(head -n 1 $LD_DIR/insmod.err)"
else
	vt_fail lockdown-integrity-unsigned-module-refused "$(cat $LD_DIR/insmod.err) $(dmesg | grep Lockdown | tail -n 2 | tr '\n' '|')"
fi

# The weakness: root still reads kernel memory, through /proc/kcore ...
if dd if=/proc/kcore of=$LD_DIR/kcore.head bs=64 count=1 2>$LD_DIR/kcore.err &&
	[ "$(head -c 4 $LD_DIR/kcore.head | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
	vt_pass lockdown-integrity-kcore-readable "root reads /proc/kcore (ELF header): key secrecy needs confidentiality"
else
	vt_fail lockdown-integrity-kcore-readable "$(cat $LD_DIR/kcore.err)"
fi
# ... and through bpf_probe_read_kernel.
if ld_kread helper $LD_DIR/integrity-helper.txt && ld_banner_read $LD_DIR/integrity-helper.txt; then
	vt_pass lockdown-integrity-bpf-read-kernel "bpf_probe_read_kernel read $(head -n 1 $LD_DIR/integrity-helper.txt)"
else
	vt_fail lockdown-integrity-bpf-read-kernel "$(cat $LD_DIR/integrity-helper.txt $LD_DIR/integrity-helper.txt.err | tr '\n' '|' | cut -c1-300)"
fi

# ... and so the key: read its two secrets, recreate it in the TPM, sign.
if ld_steal_key helper $LD_DIR/integrity-steal.txt; then
	vt_pass lockdown-integrity-key-recreated "root read key_auth/key_unique with bpf_probe_read_kernel, recreated the key ($(head -n 1 $LD_DIR/integrity-steal.txt | cut -c1-20)...) and signed with it"
else
	vt_fail lockdown-integrity-key-recreated "$(cat $LD_DIR/integrity-steal.txt $LD_DIR/integrity-steal.txt.err 2>/dev/null | tail -n 4 | tr '\n' '|' | cut -c1-300)"
fi

ld_vigild integrity
