# SPDX-License-Identifier: GPL-2.0
# Parameter validation: PCRs locality 0 cannot extend (17-22), that do not
# exist (24+), that others own (0-15 without allow_claimed_pcrs), equal
# PCRs, out-of-range periods, caps and anchors are refused with a message.
bad() { # bad NAME "PARAMS" "dmesg text"
	if insmod /vigil.ko $2 2>/dev/null; then
		vt_fail "kmod-param-$1" "loaded with $2"
		vt_rmmod vigil
	elif dmesg | tail -n 5 | grep -q "$3"; then
		vt_pass "kmod-param-$1" "$2 refused"
	else
		vt_fail "kmod-param-$1" "no message '$3': $(dmesg | tail -n 2 | tr '\n' '|')"
	fi
}
bad pcr17 "pcr_events=17" "pcr_events=17: PCRs 17-22 cannot be extended from locality 0"
bad pcr22 "pcr_config=22" "pcr_config=22: PCRs 17-22"
bad pcr24 "pcr_config=24" "pcr_config=24: no such PCR"
bad pcr10 "pcr_events=10" "pcr_events=10: PCRs 0-15 are used by firmware"
bad same-pcr "pcr_config=23 pcr_events=23" "pcr_config and pcr_events must differ"
bad cp-ms "checkpoint_ms=5" "checkpoint_ms=5: use 0 or 10"
bad cp-events "checkpoint_events=99999999" "checkpoint_events=99999999: at most"
bad log-cap "log_max_bytes=100" "log_max_bytes=100: use"
bad anchor "anchor=nv" "anchor=nv: use pcr or ima"
vt_check kmod-param-claimed-allowed sh -c 'insmod /vigil.ko allow_claimed_pcrs=1 pcr_events=14 checkpoint_ms=0 && vigil-ioctl-test commit checkpoint >/dev/null && vigil-replay --chain-complete --expect-signed && vigilctl seal >/dev/null && rmmod vigil'
vt_check kmod-param-swapped sh -c 'insmod /vigil.ko pcr_config=23 pcr_events=16 && grep -q "^pcr_config: 23" /sys/kernel/security/vigil/status && vigilctl seal >/dev/null && rmmod vigil'
