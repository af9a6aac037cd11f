#!/usr/bin/env bash
# Instructions per call of the whole gateway process against the bare hyper proxy, under callgrind:
# everything the in-process bench (scripts/bench-instructions.sh) leaves out is in it (hyper's parsing of the
# client's bytes, the connection layer of gateway/src/server.rs, the watchdog, the other runtimes).
#
# Each proxy (1 serving thread) runs under valgrind in front of tests' rpc-sink on 127.0.0.1, and a client
# makes N distinct eth_getBalance calls at "latest" over 4 keep-alive connections, one at a time. Two runs per
# proxy, with SHORT and LONG calls; (total(LONG) - total(SHORT)) / (LONG - SHORT) cancels start-up and
# shutdown and leaves the cost of one call. How often a connection's task is woken per call depends on
# timing, so the figure moves by a few hundred instructions from run to run: compare changes of a thousand
# or more, or repeat with RUNS.
#   SHORT=200 LONG=1200 RUNS=1 scripts/bench-process-instructions.sh
# GATEWAY_BINS="before=/path/to/iotex-gateway ..." adds other gateway builds (e.g. of an earlier commit), each
# measured the same way, to see a change side by side.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
SHORT=${SHORT:-200}
LONG=${LONG:-1200}
RUNS=${RUNS:-1}
for v in SHORT LONG RUNS; do
  [[ "${!v}" =~ ^[1-9][0-9]{0,5}$ ]] || { echo "bench: $v must be a whole number from 1 to 999999, got '${!v}'" >&2; exit 2; }
done
[ "$LONG" -gt "$SHORT" ] || { echo "bench: LONG ($LONG) must be above SHORT ($SHORT)" >&2; exit 2; }
if ! command -v valgrind >/dev/null; then
  echo "bench: installing valgrind from Debian" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends valgrind >/dev/null
fi
echo "bench: building the release gateway, bare-proxy and rpc-sink" >&2
cargo build --release --locked -q -p iotex-gateway -p iotex-tests --bin iotex-gateway --bin bare-proxy --bin rpc-sink
work="$root/.bench/process-instructions"
rm -rf "$work" && mkdir -p "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# N calls, one at a time, round-robin over 4 keep-alive connections; fails unless every call got a result.
client() {
  python3 - "$1" "$2" <<'EOF'
import http.client, random, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=60) for _ in range(4)]
ok = 0
for i in range(n):
    c = conns[i % 4]
    body = '{"jsonrpc":"2.0","id":%d,"method":"eth_getBalance","params":["0x%040x","latest"]}' % (i, random.getrandbits(160))
    c.request("POST", "/", body, {"Content-Type": "application/json"})
    r = c.getresponse()
    if r.status == 200 and b'"result"' in r.read():
        ok += 1
if ok != n:
    sys.exit(f"only {ok} of {n} calls answered")
EOF
}

# Sets `total` to the instructions of one proxy process that served N calls.
one_run() { # proxy, calls
  local proxy=$1 n=$2 sink_port port out pid sink
  sink_port=$(free_port); port=$(free_port); out="$work/$proxy.$n.callgrind"
  target/release/rpc-sink "127.0.0.1:$sink_port" > /dev/null & sink=$!; pids+=("$sink")
  local bin=target/release/iotex-gateway
  [[ "$proxy" == gw_* ]] && bin=${gw_bins[${proxy#gw_}]}
  if [ "$proxy" = bare ]; then
    valgrind --tool=callgrind --callgrind-out-file="$out" target/release/bare-proxy --listen "127.0.0.1:$port" \
      --upstream "http://127.0.0.1:$sink_port" --threads 1 > "$work/$proxy.$n.log" 2> "$work/$proxy.$n.valgrind.log" & pid=$!
  else
    # Builds from before the gRPC listener do not know --grpc-listen; later ones would all bind 14014.
    grpc=(); "$bin" --help 2>/dev/null | grep -q -- --grpc-listen && grpc=(--grpc-listen 127.0.0.1:0)
    valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" --listen "127.0.0.1:$port" \
      --upstream "sink=http://127.0.0.1:$sink_port" --worker-threads 1 --health-interval 1h --shutdown-delay 0s \
      --admin-listen 127.0.0.1:0 "${grpc[@]}" > "$work/$proxy.$n.log" 2> "$work/$proxy.$n.valgrind.log" & pid=$!
  fi
  pids+=("$pid")
  # Under valgrind start-up takes seconds: wait for a first answer (bounded: 60 tries).
  local tries=0
  until curl -sf -o /dev/null -X POST -H 'content-type: application/json' \
    --data '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}' "http://127.0.0.1:$port/"; do
    tries=$((tries + 1))
    [ "$tries" -lt 60 ] || { echo "bench: $proxy did not answer under valgrind (see $work/$proxy.$n.valgrind.log)" >&2; exit 1; }
    sleep 0.5
  done
  client "$port" "$n" || { echo "bench: the client's calls through $proxy failed" >&2; exit 1; }
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  kill "$sink" 2>/dev/null || true; wait "$sink" 2>/dev/null || true
  total=$(callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ && !done { gsub(",", "", $1); print $1; done = 1 }')
  [ -n "$total" ] || { echo "bench: no callgrind total for $proxy (see $work)" >&2; exit 1; }
}

declare -A gw_bins=()
proxies="bare gateway"
for kv in ${GATEWAY_BINS:-}; do
  name=${kv%%=*}; bin=${kv#*=}
  [[ "$name" =~ ^[A-Za-z0-9_-]+$ ]] && [ -x "$bin" ] || { echo "bench: GATEWAY_BINS entry '$kv' is not NAME=/executable" >&2; exit 2; }
  gw_bins[$name]=$bin; proxies="$proxies gw_$name"
done
declare -A per_call=()
for proxy in $proxies; do
  for run in $(seq 1 "$RUNS"); do
    echo "bench: $proxy, run $run of $RUNS: $SHORT then $LONG calls under callgrind" >&2
    one_run "$proxy" "$SHORT"; short=$total
    one_run "$proxy" "$LONG"; long=$total
    per_call[$proxy]="${per_call[$proxy]:-} $(( (long - short) / (LONG - SHORT) ))"
  done
done
echo "instructions per call (whole process, $((LONG - SHORT)) calls, each run):"
for proxy in $proxies; do printf '  %-12s %s\n' "$proxy" "${per_call[$proxy]}"; done
read -r b _ <<< "${per_call[bare]}"
for proxy in $proxies; do
  [ "$proxy" = bare ] && continue
  read -r g _ <<< "${per_call[$proxy]}"
  awk -v p="$proxy" -v g="$g" -v b="$b" 'BEGIN { printf "  %s / bare (first runs): %.3f; it adds %d per call\n", p, g / b, g - b }'
done
