#!/usr/bin/env bash
# Runs every check and test the project has. This is the README's second command and what CI runs.
# It installs what the tests need itself (test peers from npm, chart tools), so it works on a fresh machine.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
start=$(date +%s)
step() { printf '\n==> %s (%ss)\n' "$*" "$(( $(date +%s) - start ))"; }

step "nothing refers to a path outside the repository"
# A fresh clone has nothing beside it: a path above the root works only on the machine that wrote it.
python3 scripts/check-tree-paths.py --self-test
python3 scripts/check-tree-paths.py

step "code shape: no import cycle between a crate's modules, no unexplained function over 80 lines, no dead doc link"
# Each check proves on small cases that it can fail before it judges the tree.
python3 scripts/check-module-cycles.py --self-test >/dev/null
python3 scripts/check-module-cycles.py
python3 scripts/check-fn-length.py --self-test >/dev/null
python3 scripts/check-fn-length.py
python3 scripts/check-doc-links.py --self-test >/dev/null
python3 scripts/check-doc-links.py
# The arithmetic and /proc parsing of scripts/bench-vs-actioninjector.sh (the benchmark itself is not run here).
python3 scripts/lib/bench_vs_actioninjector.py --self-test >/dev/null

step "install test peers and tools"
scripts/install-peers.sh
if ! command -v promtool >/dev/null 2>&1; then
  # promtool checks the gateway's /metrics exposition (and the chart's rules).
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

step "real IoTeX node: iotex-server from its Go module (cached; the first build takes a few minutes)"
# The real-node tests (tests/tests/it/iotex_*.rs) start clusters of it; building it here, once, shows the
# progress and any refused module by name instead of inside a test's timeout.
scripts/install-iotex.sh
(cd tools/p2p-id && GOTOOLCHAIN=local go test ./...)

step "IoTeX's own clients: ioctl (the node's iotex-core module) and iotex-etl 1.0.2 (PyPI, Python 3.7 venv), cached"
# tests/tests/it/iotex_grpc_clients.rs drives the gateway's gRPC listener with them; installing them here
# shows progress and names what failed (a refused module, no Python 3.7) outside a test's timeout.
scripts/install-iotex.sh ioctl >/dev/null
scripts/install-iotex-etl.sh >/dev/null
# A Node.js gRPC-web client (connect-node, code generated from iotex-proto) for the gRPC-web proof there.
scripts/install-grpc-web-client.sh >/dev/null

step "network-chaos tools: iptables-legacy, toxiproxy-server from its Go module (cached)"
# tests/tests/it/iotex_chaos.rs puts a cluster in a network namespace and needs these; installing them here
# shows progress and names what failed outside the test's timeout.
scripts/install-chaos-tools.sh >/dev/null

step "cargo fmt --check"
cargo fmt --all -- --check

step "lock files are current (the workspace and fuzz/, its own workspace)"
# fuzz/ depends on the gateway by path, so a dependency added there changes fuzz/Cargo.lock too; the fuzz
# smoke step near the end would refuse a stale one with --locked. Checking it here fails in seconds, not
# after the tests (how CI at 37849f2 failed).
cargo metadata --locked --format-version 1 >/dev/null
cargo metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null \
  || { echo "fuzz/Cargo.lock is out of date: run 'cargo update -w' in fuzz/ and commit it" >&2; exit 1; }

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "docs/reference matches the code (flags from clap, metrics from their catalogs)"
cargo run --locked -q -p iotex-tests --bin gen-reference -- --check

step "cargo doc (warnings are errors)"
RUSTDOCFLAGS=-Dwarnings cargo doc --workspace --no-deps --locked --quiet

step "tests"
# Every log line and /metrics scrape of this run is kept here (tests/src/capture.rs) and scanned for the
# tests' secrets after the tests (see "nothing leaks" below).
export IOTEX_TEST_LOG_DIR="$root/target/test-logs/$(date +%Y%m%d-%H%M%S)-$$"
rm -rf "$root/target/test-logs"
mkdir -p "$IOTEX_TEST_LOG_DIR"
if cargo nextest --version >/dev/null 2>&1; then
  # Doc tests first (nextest does not run them), so the test runner's closing summary is nextest's.
  cargo test --workspace --doc --locked --quiet
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi

step "nothing leaks: no test key, mnemonic, token or basic-auth password in any captured log line or metric"
# Fails on any hit (FILE:LINE: KIND, never the value) and when nothing was captured at all.
cargo run --locked -q -p iotex-tests --bin scan-secrets -- "$IOTEX_TEST_LOG_DIR"

step "soak, 3 minutes: gateway + injector + a read load on a real IoTeX cluster; RSS, fds and accepted = included"
# scripts/soak.sh 1h gives the figures in docs/reliability.md; this is the short version, on the debug
# binaries the tests just built (no release build here). The soak mostly waits (10 actions/s, 20 reads/s) and
# judges memory, fds and counts, not speed, so the chart's checks (k8s/ci/validate.sh, ~3 min, its own free
# ports) run beside it; their output follows the soak's.
mkdir -p "$root/target/ci"
validate_log="$root/target/ci/validate.log"
# setsid: its own process group, so that a failed soak (set -e ends this script) takes helm, moto and the
# rest of the checks beside it down too, not just their shell.
setsid bash k8s/ci/validate.sh >"$validate_log" 2>&1 &
validate_pid=$!
trap 'kill -- -"$validate_pid" 2>/dev/null || true' EXIT
SOAK_PROFILE=debug SOAK_INTERVAL=15s SOAK_OUT="$PWD/target/soak/ci" scripts/soak.sh 3m
python3 scripts/lib/soak.py --self-test

step "k8s/ci/validate.sh (ran beside the soak; its output, $validate_log)"
validate_rc=0
wait "$validate_pid" || validate_rc=$?
trap - EXIT
cat "$validate_log"
if [ "$validate_rc" -ne 0 ]; then
  echo "k8s/ci/validate.sh failed (exit $validate_rc); its output is above and in $validate_log" >&2
  exit 1
fi

step "fuzz smoke: every cargo-fuzz target for 5 s from its seed corpus (scripts/fuzz.sh)"
# The parsers of untrusted and operator input (JSON-RPC bodies, access tokens, both config loaders, keys and
# mnemonics, native actions); the long runs are in docs/reliability.md. The first build takes a few minutes.
scripts/fuzz.sh 5

step "chart on a real Kubernetes control plane (k8s/ci/cluster-tests.sh)"
# etcd, kube-apiserver, controller manager, scheduler and kwok fake nodes on loopback, built from pinned Go
# modules (first run ~15-35 min on 2 cores, cached in ~/.cache/iotex-toolkit after), then install, helm test,
# backups, upgrade, rollback and uninstall of the chart for testing/21, production/101 and staging/21.
bash k8s/ci/cluster-tests.sh

step "all checks passed"
