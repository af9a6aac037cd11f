#!/usr/bin/env bash
# Installs the real test peers (anvil 1.7.1, ganache 7.9.2) from the npm registry, pinned by
# tools/peers/package-lock.json. Idempotent: does nothing when the installed tree matches the lockfile.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
peers="$root/tools/peers"

if ! command -v npm >/dev/null 2>&1; then
  echo "install-peers: npm not found; installing Debian's nodejs and npm" >&2
  apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi

stamp="$peers/node_modules/.lock-stamp"
if [ -f "$stamp" ] && cmp -s "$stamp" "$peers/package-lock.json" \
   && [ -x "$peers/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil" ]; then
  exit 0
fi
echo "install-peers: installing anvil and ganache (pinned) into tools/peers/node_modules" >&2
(cd "$peers" && npm ci --no-audit --no-fund --loglevel=error)
cp "$peers/package-lock.json" "$stamp"
"$peers/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil" --version | head -1 >&2
