#!/usr/bin/env bash
# Instructions per proxied call under callgrind (gateway/benches/instructions.rs): single call, 10-call batch,
# cache hit, denied method. Counts do not move with machine load, so this is the regression guard that
# scripts/bench-gateway.sh (req/s, CPU per call) cannot be.
#
# Needs valgrind (installed from Debian if missing) and gungraun-runner at exactly the version of the
# gungraun library in Cargo.lock: built from crates.io with the project's own toolchain (never downloads
# one) into ~/.cache/iotex-toolkit/gungraun-runner-<version>/, once; later runs reuse it.
# Extra arguments go to the bench (e.g. `-- --save-baseline=before`, then `-- --baseline=before`).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if ! command -v valgrind >/dev/null; then
  echo "bench: installing valgrind from Debian" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends valgrind >/dev/null
fi
version=$(awk '/^name = "gungraun"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
[ -n "$version" ] || { echo "gungraun is not in Cargo.lock" >&2; exit 1; }
cache="${XDG_CACHE_HOME:-$HOME/.cache}/iotex-toolkit"
prefix="$cache/gungraun-runner-$version"
runner="$prefix/bin/gungraun-runner"
if [ ! -x "$runner" ] || [ "$("$runner" --version 2>/dev/null | awk '{print $2}')" != "$version" ]; then
  echo "bench: building gungraun-runner $version into $prefix (once)" >&2
  # Its own target dir, so the build does not touch the workspace's; the toolchain is the one rustup has.
  CARGO_TARGET_DIR="$cache/build" cargo install --locked --quiet --version "$version" --root "$prefix" gungraun-runner
fi
GUNGRAUN_RUNNER="$runner" cargo bench --locked -p iotex-gateway --bench instructions -- "$@"
