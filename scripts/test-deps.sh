#!/usr/bin/env bash
# What `npm test` needs besides npm packages: redis-server (the Redis tests start their own on
# free loopback ports) and Chromium (the dashboard test drives it through playwright-core, with
# no browser download). Both present: nothing to do. Missing on Debian or Ubuntu as root (or with
# password-less sudo): installs them with apt-get. Otherwise says what to install and fails.
set -euo pipefail
if [ -n "${CHROMIUM_PATH:-}" ] && [ ! -x "$CHROMIUM_PATH" ]; then
  echo "npm test: CHROMIUM_PATH=$CHROMIUM_PATH is not an executable; point it at a Chromium or Chrome" >&2
  exit 1
fi
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ] || missing+=(chromium)
[ ${#missing[@]} -eq 0 ] && exit 0

as_root=()
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
fi
if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" -eq 0 ] || [ ${#as_root[@]} -gt 0 ]; }; then
  echo "npm test: installing ${missing[*]} with apt-get (the Redis and dashboard tests need them)"
  "${as_root[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
  exit 0
fi
cat >&2 <<MSG
npm test needs ${missing[*]}, which is not installed:
  Debian/Ubuntu: sudo apt-get install -y ${missing[*]}
  macOS: brew install redis, and CHROMIUM_PATH=/path/to/chrome for the dashboard test
Or run single test files without them: npx vitest run test/<name>.test.ts
MSG
exit 1
