#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Install, upgrade, remove and purge the packages for real, with dpkg and
# their maintainer scripts, in a throw-away copy of this machine: an
# overlay of / (writes go to a tmpfs) in a private mount namespace, entered
# with chroot. The host's installed packages satisfy the dependencies; the
# host is untouched. What this cannot show: DKMS building the module (no
# kernel headers or modules here; the node VM does that) and systemd
# starting the units (no systemd as PID 1 in a chroot: deb-systemd-invoke
# skips; enabling is checked through the symlinks).
#   1. install vigil and vigil-dkms; files, dkms status, unit enablement,
#      systemd-analyze verify of the installed units, vigild runs;
#   2. state in /var/lib/vigil, edited conffiles, vigild enabled by hand;
#   3. upgrade to the same packages re-versioned (VERSION+test1): state,
#      edits and enablement kept;
#   4. remove: programs and DKMS tree gone, state and conffiles kept;
#   5. purge: /var/lib/vigil, /etc/vigil, the conffiles, the DKMS entry and
#      the unit symlinks gone; a file of the admin's in /etc/vigil stays.
# usage: install_test.sh PACKAGES_DIR   (root: mount namespaces, overlayfs)
set -euo pipefail
dir=$(realpath "$1")
[ "$(id -u)" -eq 0 ] || { echo "FAIL: needs root (mount namespace, overlayfs, chroot)"; exit 1; }
debs=("$dir"/vigil_*.deb "$dir"/vigil-dkms_*_all.deb)
for d in "${debs[@]}"; do [ -f "$d" ] || { echo "FAIL: no $d (make package)"; exit 1; }; done

if [ "${VIGIL_INSTALL_TEST_INNER:-}" != 1 ]; then
	exec env VIGIL_INSTALL_TEST_INNER=1 unshare --mount --propagation private "$0" "$@"
fi

# --- the throw-away root ---
work=$(mktemp -d)
mount -t tmpfs -o size=2g vigil-install-test "$work"
mkdir "$work/upper" "$work/work" "$work/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$work/upper,workdir=$work/work" "$work/root"
R=$work/root
mount --rbind /dev "$R/dev"
mount -t proc proc "$R/proc"
mount -t tmpfs tmpfs "$R/run"
mount -t tmpfs tmpfs "$R/tmp"
trap 'umount -R "$R" 2>/dev/null; umount -R "$work" 2>/dev/null; rmdir "$work" 2>/dev/null || true' EXIT
# Whatever an earlier vigil left on this machine is not in the copy.
rm -rf "$R/var/lib/vigil" "$R/etc/vigil" "$R/usr/src"/vigil-* "$R/var/lib/dkms/vigil"
in_root() { chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }

fail=0
bad() { echo "FAIL: $*"; fail=1; }
ok() { echo "ok: $*"; }
exists() { for f; do [ -e "$R$f" ] || bad "missing $f"; done; }
absent() { for f; do [ ! -e "$R$f" ] || bad "still there: $f"; done; }

# --- the next version: the same packages with a higher version ---
version=$(dpkg-deb -f "${debs[0]}" Version)
next=$version+test1
mkdir -p "$R/tmp/v1" "$R/tmp/v2"
cp "${debs[@]}" "$R/tmp/v1/"
for d in "${debs[@]}"; do
	x=$work/x
	rm -rf "$x"
	dpkg-deb -R "$d" "$x"
	sed -i "s/^Version: .*/Version: $next/" "$x/DEBIAN/control"
	dpkg-deb --root-owner-group -b "$x" "$R/tmp/v2/" >/dev/null
done
arch=$(dpkg-deb -f "${debs[0]}" Architecture)
v1=(/tmp/v1/vigil_"${version}_$arch".deb /tmp/v1/vigil-dkms_"$version"_all.deb)
v2=(/tmp/v2/vigil_"${next}_$arch".deb /tmp/v2/vigil-dkms_"$next"_all.deb)
for f in "${v1[@]}" "${v2[@]}"; do [ -f "$R$f" ] || { echo "FAIL: no $f"; exit 1; }; done
echo "packages: ${v1[*]##*/}; upgrade to ${v2[*]##*/}"

# --- 1. install ---
if out=$(in_root dpkg -i "${v1[@]}" 2>&1); then
	ok "dpkg -i $version"
else
	bad "dpkg -i $version:"; echo "$out"; exit 1
fi
echo "$out" | sed "s/^/  | /"
for p in vigil vigil-dkms; do
	st=$(in_root dpkg-query -W -f='${db:Status-Status} ${Version}' "$p" 2>/dev/null || true)
	[ "$st" = "installed $version" ] || bad "$p: '$st'"
done
exists /usr/sbin/vigild /usr/sbin/vigilctl /usr/sbin/vigil-verifier /etc/vigil/vigild.conf \
	/lib/systemd/system/vigild.service /lib/systemd/system/vigil-ima-policy.service \
	/usr/lib/vigil/vigil-ima-policy /etc/modprobe.d/vigil.conf /usr/lib/modules-load.d/vigil.conf \
	/etc/logrotate.d/vigil /usr/share/man/man8/vigild.8.gz /usr/share/man/man4/vigil.4.gz \
	"/usr/src/vigil-$version/dkms.conf" "/usr/src/vigil-$version/btf-kdir" "/usr/src/vigil-$version/main.c" \
	"/usr/src/vigil-$version/include/uapi/vigil.h"
absent /var/lib/vigil  # made by StateDirectory= at the first start, not by the package
dkms=$(in_root dkms status vigil 2>&1 || true)
echo "$dkms" | grep -q "^vigil/$version" && ok "dkms status: $dkms" || bad "dkms status: '$dkms'"
[ -L "$R/etc/systemd/system/sysinit.target.wants/vigil-ima-policy.service" ] &&
	ok "vigil-ima-policy enabled" || bad "vigil-ima-policy.service not enabled"
[ ! -e "$R/etc/systemd/system/multi-user.target.wants/vigild.service" ] &&
	ok "vigild not enabled by the install" || bad "vigild.service enabled by the install"
if out=$(in_root systemd-analyze verify vigild.service vigil-ima-policy.service 2>&1) && [ -z "$out" ]; then
	ok "systemd-analyze verify of the installed units"
else
	bad "systemd-analyze verify of the installed units:"; echo "$out"
fi
in_root vigild --version | head -n 1 | grep -q "$version" && ok "installed vigild runs" ||
	bad "installed vigild --version"

# --- 2. state and the admin's edits ---
mkdir -p -m 0700 "$R/var/lib/vigil"
echo '{"state":"baselines"}' >"$R/var/lib/vigil/baselines.json"
echo '{"verdict":"verified"}' >"$R/var/lib/vigil/verdicts.jsonl"
head -c 4096 /dev/urandom >"$R/var/lib/vigil/log-00.bin"
echo "metrics = 127.0.0.1:9555" >>"$R/etc/vigil/vigild.conf"
sed -i 's/^options vigil .*/& checkpoint_ms=500/' "$R/etc/modprobe.d/vigil.conf"
in_root systemctl enable vigild.service >/dev/null 2>&1 || bad "systemctl enable vigild (offline)"
state_before=$(cd "$R/var/lib/vigil" && sha256sum ./*)
conf_before=$(cat "$R/etc/vigil/vigild.conf" "$R/etc/modprobe.d/vigil.conf" | sha256sum)

# --- 3. upgrade ---
if out=$(in_root dpkg -i "${v2[@]}" 2>&1); then
	ok "upgrade to $next"
else
	bad "upgrade to $next:"; echo "$out"
fi
for p in vigil vigil-dkms; do
	st=$(in_root dpkg-query -W -f='${db:Status-Status} ${Version}' "$p" 2>/dev/null || true)
	[ "$st" = "installed $next" ] || bad "$p after the upgrade: '$st'"
done
[ "$(cd "$R/var/lib/vigil" && sha256sum ./*)" = "$state_before" ] &&
	ok "upgrade kept /var/lib/vigil" || bad "upgrade changed /var/lib/vigil"
[ "$(cat "$R/etc/vigil/vigild.conf" "$R/etc/modprobe.d/vigil.conf" | sha256sum)" = "$conf_before" ] &&
	ok "upgrade kept the edited conffiles" || bad "upgrade changed the edited conffiles"
[ -L "$R/etc/systemd/system/multi-user.target.wants/vigild.service" ] &&
	ok "vigild still enabled" || bad "upgrade disabled vigild"
absent /etc/vigil/vigild.conf.dpkg-new /etc/vigil/vigild.conf.dpkg-dist /etc/modprobe.d/vigil.conf.dpkg-dist
echo "$(in_root dkms status vigil 2>&1)" | grep -q "^vigil/$version" || bad "dkms entry lost in the upgrade"

# --- 4. remove ---
in_root dpkg -r vigil vigil-dkms >/dev/null 2>&1 || bad "dpkg -r"
absent /usr/sbin/vigild /usr/sbin/vigilctl "/usr/src/vigil-$version" /usr/lib/modules-load.d/vigil.conf
exists /var/lib/vigil/baselines.json /var/lib/vigil/verdicts.jsonl /etc/vigil/vigild.conf \
	/etc/modprobe.d/vigil.conf
[ -z "$(in_root dkms status vigil 2>&1)" ] || bad "dkms still lists vigil after remove"
[ "$fail" -eq 0 ] && ok "remove kept the state and the conffiles"

# --- 5. purge ---
echo "# the admin's own file" >"$R/etc/vigil/site-notes"
in_root dpkg -P vigil vigil-dkms >/dev/null 2>&1 || bad "dpkg -P"
absent /var/lib/vigil /etc/vigil/vigild.conf /etc/modprobe.d/vigil.conf /etc/logrotate.d/vigil \
	/etc/systemd/system/multi-user.target.wants/vigild.service \
	/etc/systemd/system/sysinit.target.wants/vigil-ima-policy.service /var/lib/dkms/vigil
exists /etc/vigil/site-notes
for p in vigil vigil-dkms; do
	st=$(in_root dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$st" = not-installed ] || [ -z "$st" ] || bad "$p after purge: '$st'"
done
[ "$fail" -eq 0 ] && ok "purge removed the state and the configuration, kept /etc/vigil/site-notes"

if [ "$fail" -eq 0 ]; then echo "PASS"; else echo "FAILED"; fi
exit "$fail"
