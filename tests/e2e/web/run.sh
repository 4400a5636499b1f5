#!/bin/sh
# Runs the browser e2e test; installs playwright-core (package-lock.json) first
# when node_modules is missing. Exit 77 (skip) without node or chromium.
set -e
here=$(cd "$(dirname "$0")" && pwd)
command -v node >/dev/null 2>&1 || { echo "node not installed: skipped"; exit 77; }
[ -x /usr/bin/chromium ] || { echo "chromium not installed: skipped"; exit 77; }
if [ ! -d "$here/node_modules/playwright-core" ]; then
    (cd "$here" && npm ci --no-audit --no-fund) || { echo "npm ci failed"; exit 1; }
fi
exec node "$here/ui.test.mjs" "$@"
