#!/usr/bin/env bash
# Sharded injector vs one process, side by side against the same loopback sink (target/release/rpc-sink,
# one thread, echoes ids; see tests/src/sink.rs), --no-confirm, as scripts/bench-injector.sh's max-rate step:
#   1. one process: offered 60,000/s for BENCH_SECS, 32 in flight          -> achieved actions/s
#   2. two shard processes at once (--shard 0/2 and 1/2, same flags), then `iotex-injector merge`
#                                                                           -> aggregate achieved actions/s
# The sink and the clients share the machine's cores, so on 2 cores this measures how far a second process
# helps there, not the scaling on separate pods. Loopback only; bounded in time. Knob: BENCH_SECS (15).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="$root/.bench/shards"
mkdir -p "$out"
secs="${BENCH_SECS:-15}"
command -v python3 >/dev/null 2>&1 || { echo "bench-shards: python3 is needed" >&2; exit 1; }

echo "bench-shards: building release binaries" >&2
cargo build --release --locked -q -p iotex-injector --bin iotex-injector
cargo build --release --locked -q -p iotex-tests --bin rpc-sink
inj="$root/target/release/iotex-injector"

"$root/target/release/rpc-sink" 127.0.0.1:0 >"$out/sink.out" &
sink_pid=$!
trap 'kill "$sink_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do grep -q listening "$out/sink.out" 2>/dev/null && break; sleep 0.05; done
addr="$(awk '/listening on/ {print $3}' "$out/sink.out")"
[ -n "$addr" ] || { echo "bench-shards: rpc-sink did not start (see $out/sink.out)" >&2; exit 1; }
mnemonic="test test test test test test test test test test test junk"
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"

run_inj() { # report, extra args...
  local report="$1"; shift
  "$inj" run --endpoint "http://$addr" --mnemonic "$mnemonic" --accounts 64 --gas-price 1000000000 \
    --no-confirm --rate 60000 --duration "${secs}s" --max-in-flight 32 --progress off --log-format json \
    --report "$report" "$@" >"$report.log" 2>&1
}
jq_() { python3 -c "import json,sys; d=json.load(open('$1')); print($2)"; }

echo "bench-shards: one process, offered 60000/s for ${secs}s" >&2
run_inj "$out/one.json"
one="$(jq_ "$out/one.json" "round(d['achieved_rate'])")"

echo "bench-shards: two shard processes at once, offered 60000/s in all for ${secs}s" >&2
run_inj "$out/shard0.json" --shard 0/2 --run-id bench-shards &
p0=$!
run_inj "$out/shard1.json" --shard 1/2 --run-id bench-shards &
p1=$!
wait "$p0" "$p1"
"$inj" merge --out "$out/merged.json" "$out/shard0.json" "$out/shard1.json" >"$out/merge.log"
two="$(jq_ "$out/merged.json" "round(d['achieved_rate'])")"
per="$(python3 -c "import json; print(' + '.join(str(round(json.load(open(f))['achieved_rate'])) for f in ['$out/shard0.json', '$out/shard1.json']))")"
p99() { jq_ "$1" "'%.2f' % d['submit_latency_ms']['p99']"; }
load_end="$(cut -d' ' -f1-3 /proc/loadavg)"

cat <<TABLE

| \`--no-confirm\`, offered 60,000/s for ${secs} s, 64 accounts, 32 in flight per process, one rpc-sink | achieved actions/s | submit p99 ms |
|---|---|---|
| 1 process | ${one} | $(p99 "$out/one.json") |
| 2 shard processes (\`--shard 0/2\`, \`1/2\`), merged | ${two} (${per}) | $(p99 "$out/merged.json") |
| machine load average (1/5/15 min) at start → end | ${load_start} → ${load_end} | |
TABLE
echo "bench-shards: 2 shards / 1 process = $(python3 -c "print('%.2fx' % ($two / max($one, 1)))")"
