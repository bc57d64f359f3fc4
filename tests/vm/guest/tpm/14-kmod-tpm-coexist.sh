# SPDX-License-Identifier: GPL-2.0
# /dev/tpmrm0 users keep working: the module holds no transient slot
# between checkpoints, and user keys in all three slots coexist with
# checkpoint signing.
vt_check kmod-tpm-coexist vigil-tpm-coexist
