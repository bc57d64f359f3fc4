# SPDX-License-Identifier: GPL-2.0
# The ioctl and read() contract of /dev/vigil: every bad input gets the
# right errno and changes nothing; good input does what it says.
for c in $(vigil-ioctl-test --list); do
	[ "$c" = trim ] && continue	# 15-kmod-trim.sh
	vt_check "kmod-ioctl-$c" vigil-ioctl-test "$c"
done
