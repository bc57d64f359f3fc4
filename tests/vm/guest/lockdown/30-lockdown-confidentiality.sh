# SPDX-License-Identifier: GPL-2.0
# Lockdown scenario, step 3: lockdown=confidentiality, the level vigil's key
# secrecy needs. /proc/kcore and bpf_probe_read_kernel are refused, and
# vigil still works: its BPF objects (no bpf_probe_read_kernel, see
# scripts/check-bpf-helpers) load, and vigild records and verifies signed
# checkpoints.
#
# What this level does not stop in 6.12 is checked too, as documented
# gaps: bpf_rdonly_cast() plus plain loads (fault-handled BPF_PROBE_MEM), and
# bpf_snprintf("%s"), still read any kernel address. None of them consults
# lockdown, so a root that can load BPF programs can still read the key;
# see docs/kernel-module.md, "Lockdown". If a kernel closes a gap, its
# check fails and the docs must change with it.
. /tests/guest/lockdown/lockdown.lib

ld_raise confidentiality
# Lockdown can only be raised.
echo integrity >$LD_FILE 2>/dev/null
if [ "$(ld_level)" = confidentiality ]; then
	vt_pass lockdown-cannot-lower "$(cat $LD_FILE)"
else
	vt_fail lockdown-cannot-lower "$(cat $LD_FILE)"
fi

if dd if=/proc/kcore of=$LD_DIR/kcore2.head bs=64 count=1 2>$LD_DIR/kcore2.err; then
	vt_fail lockdown-conf-kcore-refused "read $(wc -c <$LD_DIR/kcore2.head) bytes of /proc/kcore"
elif grep -q 'not permitted' $LD_DIR/kcore2.err; then
	vt_pass lockdown-conf-kcore-refused "$(head -n 1 $LD_DIR/kcore2.err)"
else
	vt_fail lockdown-conf-kcore-refused "not EPERM: $(cat $LD_DIR/kcore2.err)"
fi

ld_kread helper $LD_DIR/conf-helper.txt
rc=$?
if [ $rc = 3 ] && grep -q 'probe_read_kernel' $LD_DIR/conf-helper.txt.err; then
	vt_pass lockdown-conf-bpf-read-kernel-refused "$(grep -m1 'probe_read_kernel' $LD_DIR/conf-helper.txt.err | cut -c1-160)"
else
	vt_fail lockdown-conf-bpf-read-kernel-refused "exit $rc: $(cat $LD_DIR/conf-helper.txt $LD_DIR/conf-helper.txt.err | tail -n 4 | tr '\n' '|' | cut -c1-300)"
fi

if ! ld_have_cast; then
	# 6.1: bpf_rdonly_cast came with 6.2, so this gap does not exist here.
	ld_kread cast $LD_DIR/conf-cast.txt
	rc=$?
	if [ $rc = 4 ]; then
		vt_pass lockdown-conf-rdonly-cast-gap "$(uname -r) has no bpf_rdonly_cast: no such gap"
	else
		vt_fail lockdown-conf-rdonly-cast-gap "exit $rc without the kfunc: $(cat $LD_DIR/conf-cast.txt.err | tr '\n' '|' | cut -c1-300)"
	fi
elif ld_kread cast $LD_DIR/conf-cast.txt && ld_banner_read $LD_DIR/conf-cast.txt; then
	vt_pass lockdown-conf-rdonly-cast-gap "still reads kernel memory (documented gap): $(head -n 1 $LD_DIR/conf-cast.txt)"
else
	vt_fail lockdown-conf-rdonly-cast-gap "the gap is closed or the read failed, update the docs: $(cat $LD_DIR/conf-cast.txt $LD_DIR/conf-cast.txt.err | tail -n 3 | tr '\n' '|' | cut -c1-300)"
fi

if ld_kread printf $LD_DIR/conf-printf.txt && ld_banner_read $LD_DIR/conf-printf.txt; then
	vt_pass lockdown-conf-snprintf-gap "still reads kernel memory (documented gap): $(head -n 1 $LD_DIR/conf-printf.txt)"
else
	vt_fail lockdown-conf-snprintf-gap "the gap is closed or the read failed, update the docs: $(cat $LD_DIR/conf-printf.txt $LD_DIR/conf-printf.txt.err | tail -n 3 | tr '\n' '|' | cut -c1-300)"
fi

# What the gaps mean: the key's secrets are read all the same, through
# bpf_rdonly_cast, and the key recreated (the helper path is refused).
if ld_steal_key helper $LD_DIR/conf-steal-helper.txt; then
	vt_fail lockdown-conf-key-via-helper-refused "recreated with bpf_probe_read_kernel under confidentiality"
elif grep -q 'refused the helper program' $LD_DIR/conf-steal-helper.txt.err &&
	grep -q '^key_auth ' $LD_DIR/conf-steal-helper.txt.addrs; then
	vt_pass lockdown-conf-key-via-helper-refused "addresses found, bpf_probe_read_kernel refused: $(grep -m1 'refused' $LD_DIR/conf-steal-helper.txt.err | cut -c1-120)"
else
	vt_fail lockdown-conf-key-via-helper-refused "failed for another reason: $(tail -n 3 $LD_DIR/conf-steal-helper.txt.err | tr '\n' '|' | cut -c1-300)"
fi
if ! ld_have_cast; then
	# 6.1: without bpf_rdonly_cast the secrets cannot be read this way.
	if ld_steal_key cast $LD_DIR/conf-steal.txt; then
		vt_fail lockdown-conf-key-recreated-gap "recreated without bpf_rdonly_cast: how?"
	elif grep -q 'no bpf_rdonly_cast' $LD_DIR/conf-steal.txt.err; then
		vt_pass lockdown-conf-key-recreated-gap "$(uname -r): no bpf_rdonly_cast, the cast path to the key does not exist"
	else
		vt_fail lockdown-conf-key-recreated-gap "failed for another reason: $(tail -n 3 $LD_DIR/conf-steal.txt.err | tr '\n' '|' | cut -c1-300)"
	fi
elif ld_steal_key cast $LD_DIR/conf-steal.txt; then
	vt_pass lockdown-conf-key-recreated-gap "root read the secrets with bpf_rdonly_cast, recreated the key and signed (documented gap)"
else
	vt_fail lockdown-conf-key-recreated-gap "the gap is closed or the attack failed, update the docs: $(cat $LD_DIR/conf-steal.txt $LD_DIR/conf-steal.txt.err 2>/dev/null | tail -n 4 | tr '\n' '|' | cut -c1-300)"
fi

ld_vigild confidentiality
vt_check lockdown-conf-rmmod vt_rmmod vigil
