# SPDX-License-Identifier: GPL-2.0
# Interop: IMA's binary log, vigil's critical-data entries included, replays
# to the TPM's PCR 10 with a standard tool, ima-evm-utils' `evmctl
# ima_measurement`, and a copy with one byte of a vigil checkpoint changed
# does not. Debian's evmctl reads TPM 2.0 PCRs only through tsspcrread (not
# in Debian), so the values come from sysfs (/sys/class/tpm/tpm0/pcr-<alg>/N)
# in the "PCR-NN: <hex>" lines its --pcrs option reads. The log is copied
# before and after the PCR read and must not change in between, so the PCR
# values are the whole copy's (evmctl stops at the first entry where every
# bank matches: a corruption after that point would go unseen).
IMABIN=/sys/kernel/security/ima/binary_runtime_measurements
IMALOG=/sys/kernel/security/ima/ascii_runtime_measurements
dir=/tmp/evmctl
mkdir -p $dir
if ! command -v evmctl >/dev/null; then
	vt_fail ima-evmctl-present "evmctl is not in the guest (scripts/deps installs ima-evm-utils)"
	return 0 2>/dev/null || exit 0
fi
# No timer or heartbeat checkpoint between the reads below.
vt_check ima-evmctl-insmod insmod /vigil.ko anchor=ima checkpoint_ms=0 heartbeat_ms=3600000
vigil-ioctl-test commit checkpoint >/dev/null 2>&1
vt_check ima-evmctl-last-is-vigil sh -c "tail -n 1 $IMALOG | grep -q ' vigil-[0-9a-f]*-checkpoint-[0-9]* '"

pcr_file() { # pcr_file ALG: PCRs 0..23 of bank ALG as evmctl --pcrs reads them
	_i=0
	while [ $_i -lt 24 ]; do
		printf 'PCR-%02d: %s\n' $_i "$(cat /sys/class/tpm/tpm0/pcr-$1/$_i)"
		_i=$((_i + 1))
	done
}
ok=
for _try in 1 2 3; do
	cp $IMABIN $dir/before.bin
	pcr_file sha1 >$dir/pcrs-sha1
	pcr_file sha256 >$dir/pcrs-sha256
	cp $IMABIN $dir/ima.bin
	if cmp -s $dir/before.bin $dir/ima.bin; then
		ok=1
		break
	fi
done
if [ -z "$ok" ]; then
	vt_fail ima-evmctl-stable-log "IMA's log kept changing around the PCR read"
fi
entries=$(wc -l <$IMALOG)
nvigil=$(grep -c ' vigil-[0-9a-f]*-\(measure\|key\|checkpoint\)-[0-9]* ' $IMALOG)
evm() { # evm LOG: evmctl's verdict on LOG against the PCR files
	evmctl ima_measurement --ignore-violations --pcrs sha1,$dir/pcrs-sha1 \
		--pcrs sha256,$dir/pcrs-sha256 "$1" >$dir/evm.out 2>&1
}
if evm $dir/ima.bin && grep -q 'Matched per TPM bank calculated digest' $dir/evm.out; then
	vt_pass ima-evmctl-replay "evmctl: $(grep -m1 Matched $dir/evm.out) ($entries entries, $nvigil of vigil, $(wc -c <$dir/ima.bin) bytes, PCR 10 sha256 $(cut -c1-16 /sys/class/tpm/tpm0/pcr-sha256/10)...)"
else
	vt_fail ima-evmctl-replay "exit $?: $(grep -v '^[0-9a-f]\{40\} ' $dir/evm.out | tail -n 3 | tr '\n' '|' | cut -c1-300)"
fi
# One byte of the last entry's buffer (vigil's checkpoint record, its last
# 408 bytes) changed: the template digest and PCR 10 no longer agree.
size=$(wc -c <$dir/ima.bin)
off=$((size - 100))
cp $dir/ima.bin $dir/bad.bin
old=$(dd if=$dir/bad.bin bs=1 skip=$off count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
new=$(((old + 1) % 256))
printf "\\$(printf '%03o' $new)" | dd of=$dir/bad.bin bs=1 seek=$off conv=notrunc 2>/dev/null
if cmp -s $dir/ima.bin $dir/bad.bin; then
	vt_fail ima-evmctl-corrupt-fails "the corrupted copy equals the log"
elif evm $dir/bad.bin; then
	vt_fail ima-evmctl-corrupt-fails "evmctl accepted a log with a changed vigil checkpoint"
else
	vt_pass ima-evmctl-corrupt-fails "exit $?: $(grep -m1 -i 'fail' $dir/evm.out | cut -c1-160)"
fi
# The same log as CEL-JSON from the live module: PCR 16's records and every
# IMA entry.
if vigilctl export-cel --out $dir/cel.json 2>$dir/cel.err; then
	n_ima=$(grep -c '"content_type":"ima_template"' $dir/cel.json)
	n_vigil=$(grep -c '"content_type":"vigil"' $dir/cel.json)
	if [ "$n_ima" -ge "$entries" ] && [ "$n_vigil" -ge 4 ]; then
		vt_pass ima-export-cel-live "$(cut -c1-200 <$dir/cel.err | head -n 1)"
	else
		vt_fail ima-export-cel-live "$n_ima IMA records (log: $entries), $n_vigil vigil records"
	fi
else
	vt_fail ima-export-cel-live "exit $?: $(tail -n 2 $dir/cel.err | tr '\n' '|' | cut -c1-300)"
fi
vt_check ima-evmctl-rmmod vt_rmmod vigil
