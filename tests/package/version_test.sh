#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# One version: CMake's project(), kmod/dkms.conf's PACKAGE_VERSION (the DKMS
# tree /usr/src/vigil-<version>) and debian/changelog (the packages) agree.
# usage: version_test.sh SOURCE_DIR
set -euo pipefail
top=$1
cmake_v=$(sed -n 's/^project(vigil VERSION \([0-9.]*\) .*/\1/p' "$top/CMakeLists.txt")
dkms_v=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$top/kmod/dkms.conf")
deb_v=$(dpkg-parsechangelog -l "$top/debian/changelog" -S Version)
echo "CMakeLists.txt: ${cmake_v:-?}  kmod/dkms.conf: ${dkms_v:-?}  debian/changelog: ${deb_v:-?}"
fail=0
for v in "$cmake_v" "$dkms_v" "$deb_v"; do
	[ -n "$v" ] || { echo "FAIL: a version is missing"; fail=1; }
done
# A native package: the changelog's version is the upstream version itself
# (a Debian revision "-N" would have to be stripped for the DKMS tree).
if [ "$cmake_v" != "$dkms_v" ] || [ "$cmake_v" != "$deb_v" ]; then
	echo "FAIL: the versions differ; change all three together"
	fail=1
fi
[ "$fail" -eq 0 ] && echo "PASS: version $cmake_v everywhere"
exit "$fail"
