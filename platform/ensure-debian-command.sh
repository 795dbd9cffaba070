#!/usr/bin/env bash
# Makes sure a command that tests need is on this machine, installing its Debian package where
# possible (never a download of its own): ensure-debian-command.sh COMMAND PACKAGE "WHAT NEEDS IT".
# Used by make test for Debian's chromium (the browser tests) and nodejs (the JavaScript tests).
set -u
command_name="$1" package="$2" needed_by="$3"
if command -v "$command_name" >/dev/null; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "Installing Debian's $package for $needed_by..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package") >/dev/null 2>&1 || true
fi
if command -v "$command_name" >/dev/null; then exit 0; fi
if [ -n "${CI:-}" ]; then
  echo "ERROR: $command_name is missing and could not be installed; under CI $needed_by may not be skipped." >&2
  exit 1
fi
echo "WARNING: $command_name is missing and could not be installed: $needed_by will be skipped." >&2
