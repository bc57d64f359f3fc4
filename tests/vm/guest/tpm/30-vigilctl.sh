# SPDX-License-Identifier: GPL-2.0
# vigilctl against the loaded module and the TPM (/dev/tpmrm0): status sees
# the TPM and its banks, the log decodes, and replaying the log gives the
# pcr_config value the TPM holds in every bank (and a wrong PCR index does not).
out=/tmp/vigilctl.status
if vigilctl status >"$out" 2>&1; then
	vt_pass vigilctl-status "$(head -n 1 "$out")"
else
	vt_fail vigilctl-status "exit $?: $(tr '\n' '|' <"$out" | cut -c1-300)"
fi
cat "$out" >/dev/console
if grep -q '^TPM: present' "$out"; then
	vt_pass vigilctl-status-tpm "$(grep '^TPM:' "$out")"
else
	vt_fail vigilctl-status-tpm "$(tr '\n' '|' <"$out" | cut -c1-300)"
fi
if grep '^PCR banks:' "$out" | grep -q sha256; then
	vt_pass vigilctl-status-banks "$(grep '^PCR banks:' "$out")"
else
	vt_fail vigilctl-status-banks "$(grep '^PCR banks:' "$out")"
fi
vigilctl status --json >/tmp/vigilctl.json 2>&1
if grep -q '"tpm_present": true' /tmp/vigilctl.json && grep -q '"abi_major": 2' /tmp/vigilctl.json; then
	vt_pass vigilctl-status-json
else
	vt_fail vigilctl-status-json "$(tr '\n' ' ' </tmp/vigilctl.json | cut -c1-300)"
fi

# The log decodes, holds a BASE (at load or at the last TRIM cut) and its
# seqs increase.
vigilctl log >/tmp/vigilctl.log 2>&1
rc=$?
nrec=$(grep -c . /tmp/vigilctl.log)
nbase=$(grep -c '^base ' /tmp/vigilctl.log)
sed -n 's/^[a-z]* *seq=\([0-9]*\) .*/\1/p' /tmp/vigilctl.log >/tmp/vigilctl.seqs
sorted=$(sort -n -u /tmp/vigilctl.seqs | tr '\n' ' ')
asread=$(tr '\n' ' ' </tmp/vigilctl.seqs)
if [ $rc -eq 0 ] && [ "$nrec" -ge 2 ] && [ "$nbase" -ge 1 ] && [ "$sorted" = "$asread" ]; then
	vt_pass vigilctl-log "$nrec records, $nbase BASE, seq increasing"
else
	vt_fail vigilctl-log "exit $rc, $nrec records, $nbase BASE: $(head -n 2 /tmp/vigilctl.log | tr '\n' '|' | cut -c1-300)"
fi

vigilctl replay --pcr config >/tmp/vigilctl.replay 2>&1
rc=$?
cat /tmp/vigilctl.replay >/dev/console
nbanks=$(grep -c '^sha[0-9]* pcr_config' /tmp/vigilctl.replay)
nmatch=$(grep -c '^  match$' /tmp/vigilctl.replay)
if [ $rc -eq 0 ] && [ "$nbanks" -ge 1 ] && [ "$nmatch" -eq "$nbanks" ]; then
	vt_pass vigilctl-replay-config "$nbanks banks match"
else
	vt_fail vigilctl-replay-config "exit $rc, $nmatch of $nbanks banks match: $(tail -n 4 /tmp/vigilctl.replay | tr '\n' '|' | cut -c1-300)"
fi

# Not vacuous: the same replay against another PCR must be a mismatch (5).
vigilctl replay --pcr config --pcr-config 15 >/tmp/vigilctl.replay15 2>&1
rc=$?
if [ $rc -eq 5 ]; then
	vt_pass vigilctl-replay-wrong-pcr "exit 5 as expected"
else
	vt_fail vigilctl-replay-wrong-pcr "exit $rc (expected 5): $(tail -n 2 /tmp/vigilctl.replay15 | tr '\n' '|')"
fi

vt_check vigilctl-replay-all vigilctl replay --pcr all
