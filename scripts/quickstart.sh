#!/usr/bin/env bash
# The main job on its defaults (README, first command): installs everything on
# a fresh Debian bookworm machine, builds ragbox, ingests the bundled sample
# set (samples/) into a collection and asks it questions in English and
# Chinese, printing cited answers.
#
#   scripts/quickstart.sh [DATA_DIR]     (default: ./out/quickstart)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-$PWD/out/quickstart}
jobs=$(nproc 2>/dev/null || echo 2)

bash scripts/setup.sh --minimal
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs" --target ragbox
rb() { ./build/cli/ragbox --data "$data" "$@"; }

mkdir -p "$data"
rb collection list 2>/dev/null | grep -qx samples || rb collection create samples
echo "== ingesting the bundled sample set (samples/) into collection 'samples'"
rb ingest --collection samples samples/healthcare samples/finance samples/government-zh
rb index stats --collection samples
for q in "What was the maximum exposure to credit risk at 31 March 2019?" \
         "Is low serum chloride level a risk factor for cardiovascular mortality?" \
         "应急管理部派出工作组的目的是什么？"; do
  echo
  echo "== ragbox ask --collection samples \"$q\""
  rb ask --collection samples "$q"
done
