#!/usr/bin/env bash
# Prints the path of a cached tarball of a clean Debian bookworm root
# (debootstrap --variant=minbase), building it once.
#
#   packaging/bookworm-root.sh            build if missing, print the tarball path
#   packaging/bookworm-root.sh --check    exit 77 (with a reason) if it cannot be built here
#
# The archive mirror is the one apt on this host already uses (deb822
# /etc/apt/sources.list.d/debian.sources, else /etc/apt/sources.list), so the
# test root gets the same packages the build host was built against. The root
# carries the host's apt sources (bookworm, -updates, -security) and fresh
# package lists, and a list of what minbase contains (var/lib/ragbox-minbase.list)
# for the offline bundle.
#
# Cache: $RAGBOX_ROOT_CACHE (default /var/cache/ragbox-test). Concurrent callers
# serialise on a lock file; a half-built root is never published (built in a
# temporary directory, tarred, renamed into place).
set -euo pipefail

cache=${RAGBOX_ROOT_CACHE:-/var/cache/ragbox-test}
suite=bookworm
arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
tarball="$cache/$suite-minbase-$arch.tar"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

skip() { echo "SKIP: $*" >&2; exit 77; }

check() {
  [ "$(id -u)" = 0 ] || skip "needs root (debootstrap, chroot and bind mounts)"
  command -v debootstrap >/dev/null || skip "debootstrap is not installed (apt-get install debootstrap)"
  command -v chroot >/dev/null || skip "chroot is not available"
  [ -r "$keyring" ] || skip "$keyring missing (apt-get install debian-archive-keyring)"
  # Bind mounts need CAP_SYS_ADMIN (absent in unprivileged containers).
  local probe
  probe=$(mktemp -d)
  if ! mount -t tmpfs ragbox-probe "$probe" 2>/dev/null; then
    rmdir "$probe"
    skip "cannot mount file systems here (unprivileged container?)"
  fi
  umount "$probe"
  rmdir "$probe"
}

# The bookworm mirror apt uses on this host.
mirror() {
  local uri=""
  if [ -r /etc/apt/sources.list.d/debian.sources ]; then
    uri=$(awk '/^URIs:/{u=$2} /^Suites:/{ if ($0 ~ /[[:space:]]bookworm([[:space:]]|$)/ && u != "") { print u; exit } }' \
          /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$uri" ] && [ -r /etc/apt/sources.list ]; then
    uri=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

if [ "${1:-}" = "--check" ]; then
  check
  exit 0
fi
check
[ -s "$tarball" ] && { echo "$tarball"; exit 0; }

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [ -s "$tarball" ]; then echo "$tarball"; exit 0; fi

work=$(mktemp -d "$cache/build.XXXXXX")
root="$work/root"
cleanup() {
  # Never rm -rf through a live bind mount.
  for m in $(awk -v r="$root" '$2 ~ "^"r {print $2}' /proc/mounts | sort -r); do umount -l "$m" || true; done
  if awk -v r="$root" '$2 ~ "^"r {found=1} END{exit !found}' /proc/mounts; then
    echo "bookworm-root: mounts remain under $root; not removing it" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

m=$(mirror)
echo "bookworm-root: debootstrap --variant=minbase $suite from $m (a few minutes, once)" >&2
start=$(date +%s)
if ! debootstrap --variant=minbase --arch="$arch" --keyring="$keyring" "$suite" "$root" "$m" \
     >"$work/debootstrap.log" 2>&1; then
  tail -n 30 "$work/debootstrap.log" >&2
  [ -f "$root/debootstrap/debootstrap.log" ] && tail -n 30 "$root/debootstrap/debootstrap.log" >&2
  echo "bookworm-root: debootstrap failed" >&2
  exit 1
fi
# What a minimal bookworm has: the offline bundle ships everything else.
chroot "$root" dpkg-query -W -f='${Package}\n' | sort >"$root/var/lib/ragbox-minbase.list"
# The same suites the host uses (security updates matter: the package was
# built against them), keyed by the archive keyring debootstrap installed.
rm -f "$root/etc/apt/sources.list"
if [ -r /etc/apt/sources.list.d/debian.sources ]; then
  cp /etc/apt/sources.list.d/debian.sources "$root/etc/apt/sources.list.d/debian.sources"
else
  sec=$(echo "$m" | sed 's#/debian/*$#/debian-security#')
  printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb %s bookworm-security main\n' \
    "$m" "$m" "$sec" >"$root/etc/apt/sources.list"
fi
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
mount -t proc proc "$root/proc"
chroot "$root" apt-get update -qq >"$work/apt-update.log" 2>&1 || { cat "$work/apt-update.log" >&2; exit 1; }
umount "$root/proc"
chroot "$root" apt-get clean
tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
mv "$tarball.tmp" "$tarball"
echo "bookworm-root: cached $tarball in $(( $(date +%s) - start )) s" >&2
echo "$tarball"
