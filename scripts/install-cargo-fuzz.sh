#!/usr/bin/env bash
# Installs cargo-fuzz (the `cargo fuzz` subcommand that scripts/fuzz.sh drives) at a pinned version into
# ~/.cargo/bin, built from crates.io with the project's own stable toolchain. Idempotent: does nothing when
# that version is already installed; the build is cached under ~/.cache/iotex-toolkit so a reinstall is quick.
set -euo pipefail
version="0.13.2"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/iotex-toolkit"
if command -v cargo-fuzz >/dev/null 2>&1 && [ "$(cargo-fuzz --version 2>/dev/null)" = "cargo-fuzz $version" ]; then
  exit 0
fi
echo "install-cargo-fuzz: building cargo-fuzz $version from crates.io into ~/.cargo/bin (once, about 2 minutes)" >&2
mkdir -p "$cache"
CARGO_TARGET_DIR="$cache/cargo-fuzz-build" cargo install --locked --quiet --version "$version" cargo-fuzz \
  || { echo "install-cargo-fuzz: cargo install cargo-fuzz@$version failed (see above)" >&2; exit 1; }
[ "$(cargo-fuzz --version 2>/dev/null)" = "cargo-fuzz $version" ] \
  || { echo "install-cargo-fuzz: cargo-fuzz $version is not on PATH after the install (is ~/.cargo/bin on PATH?)" >&2; exit 1; }
