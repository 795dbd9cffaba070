#!/usr/bin/env bash
# Browser tests drive Debian's chromium through Playwright; no browser is downloaded by Playwright.
set -u
if command -v chromium >/dev/null; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "Installing Debian's chromium for the browser tests..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 || true
fi
if command -v chromium >/dev/null; then exit 0; fi
if [ -n "${CI:-}" ]; then
  echo "ERROR: chromium is missing and could not be installed; under CI browser tests may not be skipped." >&2
  exit 1
fi
echo "WARNING: chromium is missing and could not be installed: browser tests will be skipped." >&2
