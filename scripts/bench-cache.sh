#!/usr/bin/env bash
# Benchmark of the gateway's finality-aware cache and in-flight coalescing on an Explorer-like read mix, with
# both on, each alone, and both off, in one run against the same real anvil node. Everything is on 127.0.0.1.
#
# 1. Start one anvil (chain id 4689) and seed it with `explorer-mix seed`: a log-emitting contract, then
#    $SEED_BLOCKS blocks of $SEED_TXS transactions (transfers between dev accounts alternating with calls that
#    emit a log); anvil then mines a block every $BLOCK_SECS s (IoTeX: 2.5 s), and during each run a writer adds a transaction every
#    250 ms, so the head moves and new blocks have transactions and logs.
# 2. For each configuration, start a fresh gateway in front of the node and run `explorer-mix run`: $CLIENTS
#    clients offering $RATE calls/s in total (fixed schedule; latency counted from the scheduled time), a
#    $WARMUP s unmeasured warm-up, then $SECS s measured. The mix: eth_blockNumber 10 %, recent blocks by
#    number (with transactions) 25 %, receipts by hash 25 %, transactions by hash 10 %, balances at latest 5 %
#    and at a recent block 10 %, logs over recent 10-block pages 15 %; recent items are favoured.
# 3. Print a table: client calls (counted by the gateway), upstream attempts (the gateway's
#    iotex_gateway_upstream_requests_total), their ratio, hits, coalesced calls, p50/p99/p99.9 and errors.
# Nothing is asserted: compare rows of the same run.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
CLIENTS=${CLIENTS:-64}
RATE=${RATE:-1000}
SECS=${SECS:-20}
WARMUP=${WARMUP:-5}
SEED_BLOCKS=${SEED_BLOCKS:-200}
SEED_TXS=${SEED_TXS:-4}
# Which configurations to run, in order (both-on cache-only coalesce-only both-off).
BLOCK_SECS=${BLOCK_SECS:-2}
work="$root/.bench/cache"
rm -rf "$work" && mkdir -p "$work"
target="${CARGO_TARGET_DIR:-$root/target}"

scripts/install-peers.sh
cargo build --release --locked -q -p iotex-gateway -p iotex-tests --bin iotex-gateway --bin explorer-mix
gw_bin="$target/release/iotex-gateway"
mix_bin="$target/release/explorer-mix"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
wait_port() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; return 1; }

anvil_port=$(free_port)
tools/peers/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil --host 127.0.0.1 --port "$anvil_port" \
  --chain-id 4689 --silent >"$work/anvil.log" 2>&1 &
pids+=($!)
wait_port "$anvil_port"
node="http://127.0.0.1:$anvil_port"
"$mix_bin" seed --node "$node" --blocks "$SEED_BLOCKS" --txs "$SEED_TXS" --block-secs "$BLOCK_SECS"

run() { # label, gateway args...
  local label=$1; shift
  local g a pid
  g=$(free_port); a=$(free_port)
  RUST_LOG=warn "$gw_bin" --listen "127.0.0.1:$g" --admin-listen "127.0.0.1:$a" --grpc-listen 127.0.0.1:0 --upstream "anvil=$node" \
    --log-format json "$@" >"$work/gateway-$label.log" 2>&1 &
  pid=$!
  wait_port "$g"
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$a/readyz" >/dev/null && break; sleep 0.05; done
  "$mix_bin" run --url "http://127.0.0.1:$g" --admin "http://127.0.0.1:$a" --node "$node" --clients "$CLIENTS" \
    --rate "$RATE" --secs "$SECS" --warmup "$WARMUP" --label "$label" | grep '^RESULT'
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

results="$work/results.txt"
: >"$results"
declare -A flags=([both-on]="" [cache-only]="--coalesce false" [coalesce-only]="--cache-max-bytes 0"
  [both-off]="--cache-max-bytes 0 --coalesce false")
for label in ${CONFIGS:-both-on cache-only coalesce-only both-off}; do
  # shellcheck disable=SC2086 # the flags are words
  run "$label" ${flags[$label]} >>"$results"
done

echo
echo "Explorer-like mix, $CLIENTS clients, $RATE calls/s offered, ${SECS}s measured after ${WARMUP}s warm-up, one anvil, a block every ${BLOCK_SECS}s:"
python3 - "$results" <<'PY'
import re, sys
rows = [dict(re.findall(r"(\w+)=(\S+)", l)) for l in open(sys.argv[1]) if l.startswith("RESULT")]
print(f"{'config':14} {'client_calls':>12} {'upstream':>9} {'up/client':>9} {'hits':>7} {'coalesced':>9} "
      f"{'p50_ms':>8} {'p99_ms':>8} {'p999_ms':>8} {'errors':>6}")
for r in rows:
    print(f"{r['label']:14} {float(r['gw_calls']):12.0f} {float(r['upstream']):9.0f} {r['upstream_pct']+'%':>9} "
          f"{float(r['hits']):7.0f} {float(r['coalesced']):9.0f} {float(r['p50_ms']):8.3f} {float(r['p99_ms']):8.3f} "
          f"{float(r['p999_ms']):8.3f} {r['errors']:>6}")
by = {r["label"]: r for r in rows}
if "both-on" in by and "both-off" in by:
    on, off = by["both-on"], by["both-off"]
    print(f"\nSame run: upstream calls per client call {on['upstream_pct']}% (on) vs {off['upstream_pct']}% (off); "
          f"p99 on/off = {float(on['p99_ms']) / max(float(off['p99_ms']), 1e-9):.2f}x, "
          f"p50 on/off = {float(on['p50_ms']) / max(float(off['p50_ms']), 1e-9):.2f}x")
PY
