#!/usr/bin/env bash
# The test command (README, second command; .ci/run calls exactly this):
# installs every dependency, builds ragbox, runs the whole CTest suite, then
# rebuilds with AddressSanitizer + UndefinedBehaviorSanitizer and runs the
# unit tests under them. Exit status non-zero on any failure.
#
#   scripts/test.sh            everything (as CI)
#   scripts/test.sh --fast     only the normal build and `ctest -L unit`
set -euo pipefail
cd "$(dirname "$0")/.."

fast=0
[ "${1:-}" = "--fast" ] && fast=1
jobs=$(nproc 2>/dev/null || echo 2)

bash scripts/setup.sh

echo "== build (RelWithDebInfo)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"

if [ $fast = 1 ]; then
  ctest --test-dir build -L unit --output-on-failure -j"$jobs"
  exit 0
fi

echo "== tests"
ctest --test-dir build --output-on-failure -j"$jobs" --timeout 900

echo "== build with -DRAGBOX_SANITIZE=address,undefined"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DRAGBOX_SANITIZE=address,undefined \
      -DRAGBOX_CUDA=OFF >/dev/null
cmake --build build-asan -j"$jobs"
echo "== unit tests under ASan/UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan -L unit --output-on-failure -j"$jobs"
