# SPDX-License-Identifier: GPL-2.0
# TRIM drops old records and writes a BASE with the PCR values at the cut:
# a replay from the trimmed log still reproduces the TPM's PCRs.
vt_check kmod-trim vigil-ioctl-test trim
vt_check kmod-replay-after-trim vigil-replay --expect-signed
vt_check kmod-checkpoint-after-trim vigil-ioctl-test commit checkpoint
vt_check kmod-replay-after-trim-cp vigil-replay --expect-signed --min-checkpoints 1
