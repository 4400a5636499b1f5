#!/usr/bin/env bash
# Prints the path of the .deb of an earlier release of ragbox (a git ref of
# this repository, e.g. the tag v0.1.0), building it once. Used by the
# upgrade test (tests/packaging/test-install-bookworm.sh) to upgrade from what
# customers really run.
#
#   packaging/build-ref-deb.sh [--src DIR] REF
#
# The tree of REF is exported with `git archive` (the repository, its
# worktrees and branches are not touched), configured Release with -O2 and
# without the CUDA backend, and only the targets its packages install are
# built (the binary and the man pages: no tests, no benchmarks); then the
# tree's own CPack configuration packs it (cpack -G DEB). About 2 minutes on 2
# cores. The result is cached under $RAGBOX_ROOT_CACHE/ref-debs/<commit>/
# (default /var/cache/ragbox-test), keyed by the commit REF names, so reruns
# take no time; a half-built package is never published.
#
# Exit status 1 with a message when REF cannot be resolved (not a git checkout,
# a shallow clone without the tag: fetch it with `git fetch --tags
# --unshallow`) or the build fails.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
if [ "${1:-}" = --src ]; then src=$2; shift 2; fi
ref=${1:?usage: build-ref-deb.sh [--src DIR] REF}
cache=${RAGBOX_ROOT_CACHE:-/var/cache/ragbox-test}/ref-debs
jobs=${RAGBOX_JOBS:-2}

die() { echo "build-ref-deb: $*" >&2; exit 1; }

git -C "$src" rev-parse --git-dir >/dev/null 2>&1 ||
  die "$src is not a git checkout, so release $ref cannot be built from its history"
# The releases by commit, for clones that carry the history but not the tags.
case $ref in
  v0.1.0) release_commit=4edeb1c93a551c0eb161cf2a5a5b53774ee89277 ;;
  *) release_commit= ;;
esac
resolve() {
  git -C "$src" rev-parse --verify -q "$ref^{commit}" ||
    { [ -n "$release_commit" ] && git -C "$src" rev-parse --verify -q "$release_commit^{commit}"; }
}
if ! commit=$(resolve); then
  # A clone without the tag or the history: ask its origin once, quietly.
  echo "build-ref-deb: $ref not in $src; fetching tags and history from origin" >&2
  git -C "$src" fetch -q --tags origin >/dev/null 2>&1 || true
  [ "$(git -C "$src" rev-parse --is-shallow-repository 2>/dev/null)" = true ] &&
    { git -C "$src" fetch -q --unshallow origin >/dev/null 2>&1 || true; }
fi
if ! commit=$(resolve); then
  shallow=$(git -C "$src" rev-parse --is-shallow-repository 2>/dev/null || echo unknown)
  die "$ref is not in the history of $src (shallow clone: $shallow); fetch it: git fetch --tags --unshallow origin"
fi

out="$cache/$commit"
find_deb() { find "$out" -maxdepth 1 -name 'ragbox_*_amd64.deb' 2>/dev/null | head -1 || true; }
deb=$(find_deb)
if [ -n "$deb" ]; then echo "$deb"; exit 0; fi

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
deb=$(find_deb)
if [ -n "$deb" ]; then echo "$deb"; exit 0; fi

work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
echo "build-ref-deb: building $ref ($commit) once, cached in $out" >&2
mkdir -p "$work/src"
git -C "$src" archive "$commit" | tar -x -C "$work/src"
log=$work/build.log
if ! { cmake -S "$work/src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
         -DCMAKE_C_FLAGS_RELEASE="-O2 -DNDEBUG" -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
         -DRAGBOX_CUDA=OFF -DCMAKE_SKIP_INSTALL_ALL_DEPENDENCY=ON &&
       cmake --build "$work/build" -j"$jobs" --target ragbox ragbox-manpage ragbox-admin-manpage &&
       (cd "$work/build" && cpack -G DEB); } >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  die "building the package of $ref failed (log above)"
fi
built=$(find "$work/build/packages" -maxdepth 1 -name 'ragbox_*_amd64.deb' | head -1)
[ -s "$built" ] || die "cpack produced no .deb for $ref"
mkdir -p "$out.tmp"
cp "$built" "$out.tmp/"
printf '%s %s\n' "$ref" "$commit" >"$out.tmp/REF"
rm -rf "$out"
mv "$out.tmp" "$out"
echo "build-ref-deb: $ref packaged in $(( $(date +%s) - start )) s" >&2
find_deb
