#!/usr/bin/env bash
# Makes sure `redis-server` is on PATH for the Redis usage-store tests (test/redis-store.test.ts
# starts its own server on a free loopback port; in CI a missing redis-server fails them).
# Installs it with apt-get when it is missing; quiet unless it installs or fails.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "redis-server is missing and apt-get is not available: install redis-server (Debian: apt-get install redis-server)" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "redis-server is missing, and installing it needs root (or sudo): apt-get install redis-server" >&2
    exit 1
  fi
  sudo="sudo"
fi

echo "== installing redis-server (apt-get)"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! { $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "installing redis-server failed (see above)" >&2
  exit 1
fi
command -v redis-server >/dev/null 2>&1 || { echo "redis-server is still not on PATH after installing it" >&2; exit 1; }
echo "   $(redis-server --version)"
