# SPDX-License-Identifier: GPL-2.0
# Lockdown scenario, step 1: no lockdown yet. Debian 6.12 builds the
# lockdown LSM in and lists it in CONFIG_LSM, so it is active without an
# lsm= argument; the VM has no Secure Boot, so the kernel starts at "none".
#
# vigil.ko is loaded now, because once lockdown is raised (either level,
# LOCKDOWN_MODULE_SIGNATURE is an integrity reason) the kernel refuses
# unsigned modules, and the test VM has no Secure Boot/MOK to sign it with.
# A production host would sign the module instead. Lockdown can only be
# raised, so the next scripts raise it in this same boot: integrity (20-*),
# then confidentiality (30-*).
. /tests/guest/lockdown/lockdown.lib
mkdir -p $LD_DIR

if [ -r $LD_FILE ] && [ "$(ld_level)" = none ]; then
	vt_pass lockdown-lsm-active "$(cat $LD_FILE)"
else
	vt_fail lockdown-lsm-active "$LD_FILE: $(cat $LD_FILE 2>&1)"
fi
vt_check lockdown-none-insmod insmod /vigil.ko
vt_check lockdown-none-kfunc-btf test -s /sys/kernel/btf/vigil

# The attacker's target for every level: linux_banner, whose first bytes
# /proc/version repeats (CONFIG_KALLSYMS_ALL: data symbols are listed).
awk '$3 == "linux_banner" { print $1 }' /proc/kallsyms >$LD_DIR/banner.addr
head -c 48 /proc/version >$LD_DIR/banner.txt
if [ -s $LD_DIR/banner.addr ] && [ "$(wc -c <$LD_DIR/banner.txt)" = 48 ]; then
	vt_pass lockdown-banner-found "linux_banner at $(cat $LD_DIR/banner.addr)"
else
	vt_fail lockdown-banner-found "no linux_banner in /proc/kallsyms"
fi
# Control: without lockdown all three ways of reading kernel memory work, so a
# refusal later is the lockdown's doing and not a broken tool.
for mode in helper cast printf; do
	if [ $mode = cast ] && ! ld_have_cast; then
		# 6.1: no such kfunc; the tool must say so (exit 4), not fail.
		ld_kread cast $LD_DIR/none-cast.txt
		rc=$?
		if [ $rc = 4 ] && grep -q 'no bpf_rdonly_cast' $LD_DIR/none-cast.txt.err; then
			vt_pass lockdown-none-kread-cast "$(uname -r): no bpf_rdonly_cast kfunc, no cast read"
		else
			vt_fail lockdown-none-kread-cast "exit $rc: $(cat $LD_DIR/none-cast.txt.err | tr '\n' '|' | cut -c1-300)"
		fi
		continue
	fi
	if ld_kread $mode $LD_DIR/none-$mode.txt && ld_banner_read $LD_DIR/none-$mode.txt; then
		vt_pass lockdown-none-kread-$mode "$(head -n 1 $LD_DIR/none-$mode.txt)"
	else
		vt_fail lockdown-none-kread-$mode "$(cat $LD_DIR/none-$mode.txt $LD_DIR/none-$mode.txt.err | tr '\n' '|' | cut -c1-300)"
	fi
done
