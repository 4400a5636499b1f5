# Shared by the tests/packaging shell tests: checks that count failures.
# Environment from CTest: RAGBOX_BIN, RAGBOX_TEST_TMP, RAGBOX_SHARED, RAGBOX_SOURCE.
set -u
fails=0
checks=0
say() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
ok() { checks=$((checks + 1)); }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); printf '%s: CHECK failed: %s\n' "${0##*/}" "$*" >&2; }
# check DESCRIPTION COMMAND...: the command must succeed.
check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }
# check_fails DESCRIPTION COMMAND...: the command must fail (non-zero exit).
check_fails() { local what=$1; shift; if "$@"; then bad "$what (succeeded)"; else ok; fi; }
skip() { echo "SKIP: $*" >&2; exit 77; }
finish() {
  if [ $checks -eq 0 ]; then echo "no checks ran" >&2; exit 1; fi
  echo "$checks checks, $fails failed" >&2
  [ $fails -eq 0 ]
}
scratch() {
  local d="${RAGBOX_TEST_TMP:-/tmp/ragbox-test}/$1"
  rm -rf "$d" && mkdir -p "$d" && echo "$d"
}
