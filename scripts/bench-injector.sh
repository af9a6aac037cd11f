#!/usr/bin/env bash
# Injector benchmark, side by side in one run against the same loopback sink (target/release/rpc-sink, one
# thread, echoes ids; see tests/src/sink.rs):
#   1. wrk's raw POST rate (eth_sendRawTransaction bodies)            -> the sink's ceiling for a client
#   2. the injector's max sustained signed-action rate, --no-confirm  -> ratio to wrk
#   3. rate error at 5,000/s over 60 s (--no-confirm)
#   4. bytes per unconfirmed action (peak RSS with every action tracked vs not tracked, same rate/length)
#   5. criterion: sign + encode per action
# Loopback only; every run is bounded in time. Knobs: BENCH_SECS (default 15), RATE_SECS (default 60).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="$root/.bench"
mkdir -p "$out"
secs="${BENCH_SECS:-15}"
rate_secs="${RATE_SECS:-60}"

need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
[ -x /usr/bin/time ] || need+=(time)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if [ "${#need[@]}" -gt 0 ]; then
  echo "bench: installing ${need[*]} from Debian" >&2
  apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
fi

load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "bench: building release binaries" >&2
cargo build --release --locked -q -p iotex-injector --bin iotex-injector
cargo build --release --locked -q -p iotex-tests --bin rpc-sink
inj="$root/target/release/iotex-injector"

"$root/target/release/rpc-sink" 127.0.0.1:0 >"$out/sink.out" &
sink_pid=$!
trap 'kill "$sink_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do grep -q listening "$out/sink.out" 2>/dev/null && break; sleep 0.05; done
addr="$(awk '/listening on/ {print $3}' "$out/sink.out")"
url="http://$addr"
mnemonic="test test test test test test test test test test test junk"

# A real signed transfer as wrk's body, so both clients send the same bytes per request.
raw=0xf86680843b9aca0082520894070707070707070707070707070707070707070701808224c6a0c5e3d5d2c0c9a3b6b9f8a2c2c6e1b7b4e4e0d2f0a5f3c8a1b9e7d6c5b4a3f2e1a04e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e3d2c1
cat >"$out/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["$raw"]}'
LUA

echo "bench: wrk raw POST rate (${secs}s, 1 thread, 64 connections)" >&2
wrk -t1 -c64 -d"${secs}s" -s "$out/post.lua" "$url" >"$out/wrk.txt"
wrk_rps="$(awk '/Requests\/sec/ {print $2}' "$out/wrk.txt")"

run_inj() { # name, extra args...
  local name="$1"; shift
  /usr/bin/time -v -o "$out/$name.time" "$inj" run --endpoint "$url" --mnemonic "$mnemonic" --accounts 64 --gas-price 1000000000 \
    --progress off --log-format json --report "$out/$name.json" "$@" >"$out/$name.log" 2>&1 || true
}
jq_() { python3 -c "import json,sys; d=json.load(open('$1')); print($2)"; }
rss_kb() { awk -F': ' '/Maximum resident set size/ {print $2}' "$1"; }

# 32 outstanding sends (32 keep-alive connections): fewer connections cost less per request than hundreds.
echo "bench: injector max sustained rate (--no-confirm, offered 60000/s for ${secs}s, 32 in flight)" >&2
run_inj max --no-confirm --rate 60000 --duration "${secs}s" --max-in-flight 32
inj_rate="$(jq_ "$out/max.json" "round(d['achieved_rate'])")"

echo "bench: rate error at 5000/s over ${rate_secs}s (--no-confirm)" >&2
run_inj rate --no-confirm --rate 5000 --duration "${rate_secs}s" --max-in-flight 64
rate_err="$(jq_ "$out/rate.json" "'%.3f %% of the total; %.3f %% mean per-second' % (d['rate_error']*100, d['interval_rate_error']*100)")"
rate_line="$(jq_ "$out/rate.json" "'scheduled %d accepted %d late %d, send lag p99 %.2f ms' % (d['scheduled'], d['accepted'], d['late'], d['send_lag_ms']['p99'])")"
rss_plain="$(rss_kb "$out/rate.time")"

# Same rate, length and connection bound, with and without tracking: the RSS difference is the tracking map.
echo "bench: bytes per unconfirmed action (5000/s for 30s, confirm on, the sink never includes)" >&2
run_inj track --rate 5000 --duration 30s --confirm-timeout 1s --max-in-flight 64
run_inj notrack --no-confirm --rate 5000 --duration 30s --max-in-flight 64
tracked="$(jq_ "$out/track.json" "d['accepted']")"
rss_track="$(rss_kb "$out/track.time")"
rss_notrack="$(rss_kb "$out/notrack.time")"
bpa="$(python3 -c "print(round(($rss_track - $rss_notrack) * 1024 / max($tracked, 1)))")"

echo "bench: criterion sign + encode" >&2
cargo bench -q -p iotex-injector --bench sign -- --warm-up-time 1 --measurement-time 3 >"$out/criterion.txt" 2>&1 || true
crit() { awk -v n="sign_encode/$1" '$1 == n {getline; print $4, $5}' "$out/criterion.txt" | head -1; }

load_end="$(cut -d' ' -f1-3 /proc/loadavg)"
ratio="$(python3 -c "print('%.0f %%' % (100.0 * $inj_rate / $wrk_rps))")"
cat <<TABLE

| measurement (one run, same loopback sink, 2 cores shared by client and sink) | result |
|---|---|
| wrk raw POST rate (1 thread, 64 connections, ${secs} s) | ${wrk_rps} req/s |
| injector max sustained signed actions/s (\`--no-confirm\`, offered 60,000/s, 32 in flight, ${secs} s) | ${inj_rate} /s |
| injector / wrk | ${ratio} |
| rate error at 5,000/s over ${rate_secs} s | ${rate_err} (${rate_line}) |
| peak RSS, \`--no-confirm\`, 5,000/s: 30 s vs ${rate_secs} s (does not grow with run length) | ${rss_notrack} KiB vs ${rss_plain} KiB |
| bytes per unconfirmed action (peak RSS with ${tracked} tracked actions − untracked, same 30 s run) | ${bpa} B (record: 32 B hash + 16 B state + hash-table slack) |
| sign + encode, legacy, libsecp256k1 (criterion median) | $(crit "legacy_transfer/libsecp256k1") |
| sign + encode, EIP-1559, libsecp256k1 | $(crit "eip1559_transfer/libsecp256k1") |
| sign + encode, legacy, k256 (pure Rust) | $(crit "legacy_transfer/k256") |
| machine load average (1/5/15 min) at start → end (other processes share the 2 cores) | ${load_start} → ${load_end} |
TABLE
