#!/usr/bin/env bash
# The room's JavaScript modules are tested under Node (tests/test_room_state_js.py); Node comes from
# Debian's packages, like the browser.
set -u
if command -v node >/dev/null; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "Installing Debian's nodejs for the JavaScript tests..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs) >/dev/null 2>&1 || true
fi
if command -v node >/dev/null; then exit 0; fi
if [ -n "${CI:-}" ]; then
  echo "ERROR: node is missing and could not be installed; under CI the JavaScript tests may not be skipped." >&2
  exit 1
fi
echo "WARNING: node is missing and could not be installed: the JavaScript tests will be skipped." >&2
