#!/usr/bin/env bash
# The gateway's native gRPC path against calling the node directly: unary GetChainMeta on one HTTP/2
# connection, through the gateway and straight to a canned gRPC sink, in one run on 127.0.0.1
# (tests/src/bin/grpc-bench.rs: max throughput with 32 calls in flight, the gateway's CPU per call from /proc,
# p50/p99/p99.9 at a fixed rate of half the gateway's max, timed from each call's intended send time).
#   scripts/bench-grpc.sh            # 8 s per run, 4 runs, about 40 s
#   SECS=20 scripts/bench-grpc.sh
#   GATEWAY_BIN=/path/to/iotex-gateway scripts/bench-grpc.sh   # another build
# Nothing is asserted: read the ratios, which come from the same run.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
SECS=${SECS:-8}
[[ "$SECS" =~ ^[1-9][0-9]{0,2}$ ]] || { echo "bench-grpc: SECS must be a whole number from 1 to 600, got '$SECS'" >&2; exit 2; }
echo "bench-grpc: building the release gateway and grpc-bench" >&2
cargo build --release --locked -q -p iotex-gateway -p iotex-tests --bin iotex-gateway --bin grpc-bench
bin="${GATEWAY_BIN:-$root/target/release/iotex-gateway}"
[ -x "$bin" ] || { echo "bench-grpc: no gateway binary at $bin" >&2; exit 2; }
exec target/release/grpc-bench "$bin" "$SECS"
