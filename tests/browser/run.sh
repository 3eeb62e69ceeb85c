#!/usr/bin/env bash
# Browser tests of the portals: builds the server binary, installs playwright-core from
# the committed lock file, and runs the node test runner against Debian's headless
# Chromium (/usr/bin/chromium; `apt-get install chromium chromium-driver`). Screenshots
# of the main pages land in tests/browser/screenshots/ (git-ignored).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

if [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
  echo "Chromium is missing: apt-get install -y chromium chromium-driver (or set CHROMIUM_PATH)" >&2
  exit 1
fi

if [ -z "${PERMETRIX_BIN:-}" ]; then
  cargo build --manifest-path "$root/Cargo.toml" --bin permetrix
  export PERMETRIX_BIN="$root/target/debug/permetrix"
fi

cd "$here"
npm ci --no-audit --no-fund --loglevel=error
rm -rf screenshots
node --test --test-concurrency=1 --test-reporter=spec ./*.test.mjs
