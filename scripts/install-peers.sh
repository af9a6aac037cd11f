#!/usr/bin/env bash
# Installs the real test peers (anvil 1.7.1, ganache 7.9.2) from the npm registry, pinned by
# tools/peers/package-lock.json, and Google's Python `protobuf` (the independent decoder of native actions,
# tests/peers/decode_action.py) from PyPI into ~/.cache/iotex-toolkit. Idempotent: does nothing when what
# is installed matches the pins.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
peers="$root/tools/peers"

# Python protobuf, pinned; outside the tree (tests/src/protobuf_peer.rs reads the same path).
protobuf_version="7.36.2"
pydir="${XDG_CACHE_HOME:-$HOME/.cache}/iotex-toolkit/python-protobuf-$protobuf_version"
if [ ! -d "$pydir/protobuf-$protobuf_version.dist-info" ]; then
  command -v python3 >/dev/null 2>&1 || { echo "install-peers: python3 not found (needed for the protobuf peer)" >&2; exit 1; }
  echo "install-peers: installing Python protobuf $protobuf_version into $pydir" >&2
  python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$pydir.tmp" "protobuf==$protobuf_version" \
    || { echo "install-peers: pip install protobuf==$protobuf_version failed" >&2; rm -rf "$pydir.tmp"; exit 1; }
  rm -rf "$pydir" && mv "$pydir.tmp" "$pydir"
fi

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
