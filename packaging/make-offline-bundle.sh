#!/usr/bin/env bash
# Builds the offline bundle for an air-gapped Debian bookworm server: the ragbox
# package(s) plus every Debian package they need that a minimal bookworm
# (debootstrap --variant=minbase) does not have, an install script and checksums.
#
#   packaging/make-offline-bundle.sh [--out DIR] [--status FILE] ragbox_V_amd64.deb [ragbox-V.x86_64.rpm]
#
#   --out DIR      where to write the bundle (default: the current directory)
#   --status FILE  a dpkg status file describing the target's installed packages
#                  (default: the one of a cached debootstrap minbase root, built
#                  once by packaging/bookworm-root.sh; a site can pass the
#                  /var/lib/dpkg/status of its own server to ship less)
#
# Output: DIR/ragbox-offline-V-bookworm-amd64/ and the same as .tar.gz (+ .sha256):
#   ragbox_V_amd64.deb [ragbox-V.x86_64.rpm]   the product
#   debs/*.deb                                 the dependency closure, from the Debian archive
#   install.sh                                 verifies SHA256SUMS, installs without network
#   SHA256SUMS, README
#
# The closure is apt's own resolution: `apt-get install --download-only` of the
# .deb against the minimal system's dpkg status, with the package lists of the
# archive this host uses (so the versions are the ones the package was built
# and tested against). Runs as root (apt locks); needs the archive reachable.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$PWD
status=""
debs=()
rpms=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --status) status=$2; shift 2 ;;
    -h|--help) sed -n '2,26s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *.deb) debs+=("$(realpath "$1")"); shift ;;
    *.rpm) rpms+=("$(realpath "$1")"); shift ;;
    *) echo "make-offline-bundle: unexpected argument $1 (try --help)" >&2; exit 2 ;;
  esac
done
[ ${#debs[@]} -eq 1 ] || { echo "make-offline-bundle: give exactly one ragbox .deb" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "make-offline-bundle: run as root (apt needs it)" >&2; exit 1; }
deb=${debs[0]}
name=$(dpkg-deb -f "$deb" Package)
version=$(dpkg-deb -f "$deb" Version)
arch=$(dpkg-deb -f "$deb" Architecture)
bundle=$out/$name-offline-$version-bookworm-$arch
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
say() { printf 'make-offline-bundle: %s\n' "$*" >&2; }

# --- the target's dpkg status ---------------------------------------------------
if [ -z "$status" ]; then
  tarball=$(bash "$here/bookworm-root.sh")
  tar -C "$work" -xf "$tarball" ./var/lib/dpkg/status
  status=$work/var/lib/dpkg/status
fi
[ -s "$status" ] || { echo "make-offline-bundle: $status is empty" >&2; exit 1; }
say "target: $(grep -c '^Package: ' "$status") packages installed ($status)"

# --- apt's resolution against that status, downloading into our own cache --------
# A private apt state: the host's sources and lists, the target's status, our
# own archive directory and lock, so the host's dpkg database is not touched.
mkdir -p "$work/state/lists/partial" "$work/archives/partial" "$work/dpkg"
cp "$status" "$work/dpkg/status"
: >"$work/dpkg/lock"
apt_opts=(
  -o "Dir::State::status=$work/dpkg/status"
  -o "Dir::State::Lists=$work/state/lists"
  -o "Dir::Cache=$work/cache" -o "Dir::Cache::archives=$work/archives"
  -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache="
  -o "Debug::NoLocking=1"
  -o "APT::Install-Recommends=false" -o "APT::Get::AllowUnauthenticated=false"
)
# Lists of the archive the host uses (a fresh download: what exists now).
apt-get "${apt_opts[@]}" update -qq >"$work/update.log" 2>&1 || { cat "$work/update.log" >&2; exit 1; }
apt-get "${apt_opts[@]}" install -y -qq --download-only "$deb" >"$work/download.log" 2>&1 ||
  { cat "$work/download.log" >&2; echo "make-offline-bundle: apt could not resolve the dependencies" >&2; exit 1; }

rm -rf "$bundle" "$bundle.tar.gz" "$bundle.tar.gz.sha256"
mkdir -p "$bundle/debs"
cp "$deb" "$bundle/"
for r in "${rpms[@]}"; do cp "$r" "$bundle/"; done
find "$work/archives" -maxdepth 1 -name '*.deb' -exec cp {} "$bundle/debs/" \;
n=$(find "$bundle/debs" -name '*.deb' | wc -l)
say "$n dependency packages: $(cd "$bundle/debs" && ls | sed 's/_.*//' | tr '\n' ' ')"

cat >"$bundle/install.sh" <<'EOF'
#!/bin/sh
# Installs ragbox from this offline bundle on Debian bookworm, without network:
# verifies every file against SHA256SUMS, then installs the dependency packages
# the system lacks and ragbox in one dpkg transaction. Upgrades work the same way: run
# the install.sh of the newer bundle (the configuration and data are kept).
#   sudo ./install.sh
set -eu
cd "$(dirname "$0")"
[ "$(id -u)" = 0 ] || { echo "install.sh: run as root (sudo ./install.sh)" >&2; exit 1; }
if ! sha256sum --quiet -c SHA256SUMS; then
  echo "install.sh: the bundle is damaged or was altered (SHA256SUMS does not match); not installing" >&2
  exit 1
fi
. /etc/os-release 2>/dev/null || true
if [ "${VERSION_CODENAME:-}" != bookworm ]; then
  echo "install.sh: warning: this bundle is for Debian bookworm; this system is ${PRETTY_NAME:-unknown}" >&2
fi
export DEBIAN_FRONTEND=noninteractive
# The dependency packages this system does not already have at the same or a
# newer version (never downgrade a library the system updated since), then
# ragbox, in one dpkg run: dpkg orders the configuration of the set itself.
set --
for f in debs/*.deb; do
  [ -e "$f" ] || continue
  pkg=$(dpkg-deb -f "$f" Package)
  ver=$(dpkg-deb -f "$f" Version)
  have=$(dpkg-query -W -f='${Status} ${Version}' "$pkg" 2>/dev/null | sed -n 's/^install ok installed //p')
  if [ -n "$have" ] && dpkg --compare-versions "$have" ge "$ver"; then
    continue
  fi
  set -- "$@" "$f"
done
set -- "$@" ./ragbox_*.deb
echo "install.sh: installing $# packages" >&2
if ! dpkg -i "$@"; then
  echo "install.sh: dpkg could not install the bundle (see above). This bundle was built for a" >&2
  echo "minimal Debian bookworm; a library this system lacks in a needed version is named above." >&2
  exit 1
fi
echo
echo "ragbox is installed. Next steps (see /usr/share/doc/ragbox/OPERATIONS.md):"
echo "  sudo ragbox-admin model add /path/to/model.gguf --role chat   # optional: extractive mode without"
echo "  sudo ragbox-admin doctor"
echo "  sudo systemctl status ragbox.target"
EOF
chmod 755 "$bundle/install.sh"
cat >"$bundle/README" <<EOF
ragbox $version offline bundle for Debian bookworm ($arch)

Contents: $(basename "$deb") (the appliance), ${rpms[*]:+$(for r in "${rpms[@]}"; do basename "$r"; done) (for RPM systems), }
debs/ ($n Debian packages ragbox needs that a minimal bookworm installation lacks,
from the Debian archive), install.sh, SHA256SUMS.

Install on the air-gapped server:
  sha256sum -c $(basename "$bundle").tar.gz.sha256     # on the transfer medium
  tar xzf $(basename "$bundle").tar.gz && cd $(basename "$bundle")
  sudo ./install.sh
EOF
(cd "$bundle" && find . -type f ! -name SHA256SUMS -printf '%P\n' | sort | xargs sha256sum >SHA256SUMS)
tar -C "$out" -czf "$bundle.tar.gz" "$(basename "$bundle")"
(cd "$out" && sha256sum "$(basename "$bundle").tar.gz" >"$(basename "$bundle").tar.gz.sha256")
say "bundle: $bundle ($(du -sh "$bundle" | cut -f1)), $bundle.tar.gz"
echo "$bundle"
