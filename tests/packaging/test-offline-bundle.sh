#!/usr/bin/env bash
# The air-gapped install (label: slow): packaging/make-offline-bundle.sh builds
# the bundle for the .deb of this build; a fresh minimal bookworm root with its
# apt lists deleted runs the bundle's install.sh with NO network (unshare -n);
# ragbox works as the service user; a bundle with one altered byte is refused.
. "$(dirname "$0")/lib.sh"
BUILD=${RAGBOX_BUILD:?}
SRC=${RAGBOX_SOURCE:?}
bash "$SRC/packaging/bookworm-root.sh" --check || exit $?
command -v unshare >/dev/null || skip "unshare (util-linux) not available"
unshare -n true 2>/dev/null || skip "cannot create a network namespace here"
T=$(scratch bundle)
R=$T/root
t0=$(date +%s)
cleanup() {
  local m
  for m in $(awk -v r="$R" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r); do umount "$m" 2>/dev/null || umount -l "$m" || true; done
  if awk -v r="$R" 'index($2, r) == 1 {f=1} END {exit !f}' /proc/mounts; then
    echo "mounts remain under $R: not removing it" >&2
  else
    rm -rf "$R"
  fi
}
trap cleanup EXIT

version=$(sed -n 's/^set(CPACK_PACKAGE_VERSION "\(.*\)")/\1/p' "$BUILD/CPackConfig.cmake" | head -1)
(cd "$BUILD" && cpack -G DEB -B "$T/pkg" >"$T/cpack.log" 2>&1) || { cat "$T/cpack.log" >&2; bad "cpack"; finish; exit 1; }
deb=$T/pkg/ragbox_${version}_amd64.deb
check "make-offline-bundle.sh" sh -c "'$SRC/packaging/make-offline-bundle.sh' --out '$T/out' '$deb' >'$T/bundle.path' 2>'$T/bundle.log'"
cat "$T/bundle.log" >&2
bundle=$(cat "$T/bundle.path")
name=$(basename "$bundle")
check "bundle has install.sh, SHA256SUMS, the .deb" [ -x "$bundle/install.sh" ] && [ -s "$bundle/SHA256SUMS" ] && [ -s "$bundle/ragbox_${version}_amd64.deb" ]
check "bundle SHA256SUMS verify" sh -c "cd '$bundle' && sha256sum --quiet -c SHA256SUMS"
check "tarball checksum verifies" sh -c "cd '$T/out' && sha256sum --quiet -c '$name.tar.gz.sha256'"
# Every shared-library dependency of the package is either in minbase or in the bundle.
tarball=$(bash "$SRC/packaging/bookworm-root.sh")
mkdir -p "$R"
tar -C "$R" --numeric-owner -xf "$tarball"
for dep in $(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/(.*//; s/|.*//; s/ //g'); do
  if grep -qx "$dep" "$R/var/lib/ragbox-minbase.list"; then ok
  else check "dependency $dep is in the bundle" sh -c "ls '$bundle/debs/' | grep -q '^${dep}_'"; fi
done
say "bundle built in $(( $(date +%s) - t0 )) s"

# An air-gapped server: no package lists, no network.
rm -rf "$R/var/lib/apt/lists/"*
mount -t proc proc "$R/proc"
mount --bind /dev "$R/dev"
mount -t devpts devpts "$R/dev/pts" -o newinstance,ptmxmode=0666 2>/dev/null || true
printf '#!/bin/sh\nexit 101\n' >"$R/usr/sbin/policy-rc.d"; chmod 755 "$R/usr/sbin/policy-rc.d"
cp "$T/out/$name.tar.gz" "$R/root/"
offline() { unshare -n chroot "$R" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }
check "no network inside" sh -c "! unshare -n chroot '$R' sh -c 'exec 3<>/dev/tcp/127.0.0.1/1' 2>/dev/null"
# A damaged copy is refused before anything is installed.
mkdir -p "$R/root/damaged" && tar -C "$R/root/damaged" -xzf "$R/root/$name.tar.gz"
printf 'X' | dd of="$R/root/damaged/$name/ragbox_${version}_amd64.deb" bs=1 seek=2000 conv=notrunc status=none
check_fails "install.sh refuses an altered bundle" offline sh -c "/root/damaged/$name/install.sh >/tmp/damaged.log 2>&1"
check "the refusal says why" grep -q "damaged or was altered" "$R/tmp/damaged.log"
check "nothing was installed from it" sh -c "! chroot '$R' dpkg-query -W ragbox >/dev/null 2>&1"
t1=$(date +%s)
check "install.sh without network" offline sh -c "cd /root && tar xzf $name.tar.gz && ./$name/install.sh >/tmp/offline-install.log 2>&1"
say "offline install: $(( $(date +%s) - t1 )) s"
cp "$R/tmp/offline-install.log" "$T/" 2>/dev/null || true
check "install.sh reports success" grep -q "ragbox is installed" "$T/offline-install.log"
check "ragbox installed offline" [ "$(chroot "$R" dpkg-query -W -f='${Status} ${Version}' ragbox 2>/dev/null)" = "install ok installed $version" ]
check "ragbox runs as the service user" offline setpriv --reuid=ragbox --regid=ragbox --init-groups env HOME=/var/lib/ragbox \
  ragbox --data /var/lib/ragbox --config /etc/ragbox/ragbox.conf doctor >"$T/doctor.txt" 2>&1
[ $fails -gt 0 ] && { tail -30 "$T/offline-install.log" >&2; cat "$T/doctor.txt" >&2; }
say "total: $(( $(date +%s) - t0 )) s"
finish
