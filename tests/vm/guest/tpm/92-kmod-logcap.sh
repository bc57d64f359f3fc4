# SPDX-License-Identifier: GPL-2.0
# The log cap: at log_max_bytes new records are refused with ENOSPC and
# counted, checkpoints are deferred (not dropped), TRIM makes room, and the
# next checkpoint covers the whole gap and carries the refused count.
vt_check kmod-logcap-insmod insmod /vigil.ko log_max_bytes=65536 checkpoint_ms=0 checkpoint_events=0 heartbeat_ms=3600000
vt_check kmod-logcap vigil-ioctl-test logcap
vt_check kmod-logcap-replay vigil-replay --expect-signed --min-checkpoints 1
vt_check kmod-logcap-rmmod vt_rmmod vigil
