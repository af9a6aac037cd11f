#!/usr/bin/env bash
# iotex-etl (PyPI, blockchain-etl's exporter of IoTeX blocks, actions and logs over the native gRPC API)
# in a virtualenv of its own, in a cache outside the work tree; prints the path of its `iotexetl`
# executable last. For tests/tests/it/iotex_grpc_clients.rs, which exports blocks through the gateway's
# gRPC listener and straight from a node and compares the two.
#
#   scripts/install-iotex-etl.sh
#   IOTEX_ETL_PYTHON=/path/to/python3.7 scripts/install-iotex-etl.sh
#
# iotex-etl 1.0.2 pins grpcio 1.30.0 and protobuf 3.12.2 and declares python_requires <3.8, so it needs a
# CPython 3.7: $IOTEX_ETL_PYTHON, else python3.7 on PATH, else pyenv's newest 3.7.x. Every package is pinned
# by version and file hash in tools/iotex-etl/requirements.txt (pip --require-hashes --no-deps: nothing
# unpinned is ever installed). Idempotent: a venv whose key (iotex-etl version, Python version,
# requirements hash) matches is reused at once. Exits non-zero naming what failed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf 'install-iotex-etl: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

reqs="$root/tools/iotex-etl/requirements.txt"
[ -f "$reqs" ] || die "tools/iotex-etl/requirements.txt is missing"
version="$(sed -n 's/^iotex-etl==\([^ ]*\) .*/\1/p' "$reqs")"
[ -n "$version" ] || die "tools/iotex-etl/requirements.txt pins no iotex-etl version"

# py_version PYTHON: its version, or nothing when it does not run (a pyenv shim of a version that is not
# selected exits non-zero).
py_version() { "$1" -c 'import platform; print(platform.python_version())' 2>/dev/null || true; }
if [ -n "${IOTEX_ETL_PYTHON:-}" ]; then
  python="$IOTEX_ETL_PYTHON"
  pyver="$(py_version "$python")"
  [ -n "$pyver" ] || die "IOTEX_ETL_PYTHON=$python does not run"
else
  python= pyver=
  pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
  for candidate in $(command -v python3.7 || true) $(ls -d "$pyenv_root"/versions/3.7.*/bin/python3.7 2>/dev/null | sort -rV); do
    v="$(py_version "$candidate")"
    case "$v" in 3.7.*) python="$candidate" pyver="$v"; break;; esac
  done
  [ -n "$python" ] \
    || die "no Python 3.7 found (tried python3.7 on PATH and $pyenv_root/versions/3.7.*; set IOTEX_ETL_PYTHON or 'pyenv install 3.7'): iotex-etl $version pins grpcio 1.30.0 / protobuf 3.12.2 and requires Python <3.8"
fi
case "$pyver" in 3.7.*) ;; *) die "$python is Python $pyver: iotex-etl $version needs Python 3.7 (its pinned wheels are CPython 3.7 ones; set IOTEX_ETL_PYTHON)";; esac

cache="${XDG_CACHE_HOME:-$HOME/.cache}/iotex-toolkit"
key="iotex-etl-$version-py$pyver-$(sha256sum "$reqs" | cut -c1-12)"
venv="$cache/$key"
bin="$venv/bin/iotexetl"
mkdir -p "$cache"

# One install at a time (tests may call this concurrently).
exec 9>"$cache/.iotex-etl.lock"
flock 9

if [ -x "$bin" ] && [ -f "$venv/.complete" ]; then
  echo "$bin"
  exit 0
fi

log "installing iotex-etl $version into $venv (Python $pyver at $python; hash-pinned; under a minute)"
start=$(date +%s)
rm -rf "$venv"
"$python" -m venv "$venv" || die "python -m venv failed with $python"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# --no-build-isolation: blockchain-etl-common and iotex-etl are published as sdists only; building them in
# pip's isolated environment would fetch setuptools unpinned, so they build with the venv's own.
if ! PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python" -m pip install -q --no-input --require-hashes \
       --no-deps --no-build-isolation -r "$reqs" >"$work/pip.log" 2>&1; then
  grep -iE 'error|hash|expected|got |==|no matching|not found|could not' "$work/pip.log" | head -20 >&2 || tail -20 "$work/pip.log" >&2
  rm -rf "$venv"
  die "pip install of tools/iotex-etl/requirements.txt failed (lines above)"
fi
"$bin" --version >/dev/null 2>&1 || { rm -rf "$venv"; die "iotexetl was installed but '$bin --version' fails"; }
touch "$venv/.complete"
log "installed iotex-etl $version in $(( $(date +%s) - start ))s"
echo "$bin"
