#!/usr/bin/env bash
# ensure-chromium.sh: make sure Debian's chromium is installed for the browser tests
# (test/functions/dashboard-browser.test.ts drives it through playwright-core). A fresh CI machine
# has none: as root with apt-get it is installed, otherwise this says how and fails.
set -euo pipefail
CHROMIUM=${LISA_CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "browser: $CHROMIUM not found; installing chromium with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends chromium >&2
  [ -x "$CHROMIUM" ] && exit 0
fi
{
  echo "browser: the dashboard tests need Debian's chromium at $CHROMIUM"
  echo "  install it:  sudo apt-get update && sudo apt-get install -y --no-install-recommends chromium"
  echo "  or name another build:  LISA_CHROMIUM=/path/to/chromium"
} >&2
exit 1
