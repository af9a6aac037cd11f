#!/usr/bin/env bash
# The main job, locally: three real nodes on loopback (anvil x2 + ganache, chain id 4689, interval mining so
# their heads move together), iotex-gateway in front of them (broadcasting raw transactions to every node, as
# dev nodes do not gossip), its /status and a few calls through it, then iotex-injector driving signed actions
# through the gateway for INJECT_SECONDS (30) and its summary. Then it keeps the cluster up until Ctrl-C (or for
# DEMO_SECONDS seconds when set) and stops everything it started. Report, plot and logs land in .demo/.
#
# Ports (all on 127.0.0.1; override with env): gateway JSON-RPC GATEWAY_PORT=15014, admin ADMIN_PORT=15080,
# nodes NODE_PORTS="18545 18546 18547".
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
GATEWAY_PORT=${GATEWAY_PORT:-15014}
ADMIN_PORT=${ADMIN_PORT:-15080}
read -r -a NODE_PORTS <<< "${NODE_PORTS:-18545 18546 18547}"
MNEMONIC="test test test test test test test test test test test junk"
state="$root/.demo"
mkdir -p "$state"

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$GATEWAY_PORT" "$ADMIN_PORT" "${NODE_PORTS[@]}"; do
  port_free "$p" || { echo "demo: 127.0.0.1:$p is in use; set GATEWAY_PORT, ADMIN_PORT or NODE_PORTS to free ports" >&2; exit 1; }
done

say "installing test peers (pinned anvil and ganache) if needed"
scripts/install-peers.sh
say "building iotex-gateway and iotex-injector (release)"
cargo build --release --locked -q -p iotex-gateway -p iotex-injector
gateway_bin="$root/target/release/iotex-gateway"
injector_bin="$root/target/release/iotex-injector"

pids=()
cleanup() {
  trap - EXIT INT TERM
  say "stopping"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "demo: everything stopped; logs are in .demo/"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

anvil="tools/peers/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
ganache="tools/peers/node_modules/ganache/dist/node/cli.js"
say "starting nodes: anvil on ${NODE_PORTS[0]} and ${NODE_PORTS[1]}, ganache on ${NODE_PORTS[2]} (chain id 4689, a block every second)"
"$anvil" --host 127.0.0.1 --port "${NODE_PORTS[0]}" --chain-id 4689 --block-time 1 --silent --mnemonic "$MNEMONIC" >"$state/anvil0.log" 2>&1 &
pids+=($!)
"$anvil" --host 127.0.0.1 --port "${NODE_PORTS[1]}" --chain-id 4689 --block-time 1 --silent --mnemonic "$MNEMONIC" >"$state/anvil1.log" 2>&1 &
pids+=($!)
node "$ganache" --server.host 127.0.0.1 --server.port "${NODE_PORTS[2]}" --logging.quiet --chain.chainId 4689 \
  --chain.networkId 4689 --miner.blockTime 1 --wallet.mnemonic "$MNEMONIC" >"$state/ganache.log" 2>&1 &
pids+=($!)

rpc() { curl -s --max-time 5 -H 'content-type: application/json' -d "$2" "$1"; }
for p in "${NODE_PORTS[@]}"; do
  for _ in $(seq 1 100); do
    rpc "http://127.0.0.1:$p" '{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}' | grep -q 0x1251 && break
    sleep 0.1
  done
done

say "starting iotex-gateway on 127.0.0.1:$GATEWAY_PORT (admin 127.0.0.1:$ADMIN_PORT), broadcasting raw transactions to all 3 nodes"
"$gateway_bin" --listen "127.0.0.1:$GATEWAY_PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" \
  --upstream "anvil0=http://127.0.0.1:${NODE_PORTS[0]}" --upstream "anvil1=http://127.0.0.1:${NODE_PORTS[1]}" \
  --upstream "ganache=http://127.0.0.1:${NODE_PORTS[2]}" \
  --health-interval 500ms --max-lag-blocks 5 --tx-broadcast 3 --log-format json >"$state/gateway.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null && break
  sleep 0.1
done

gw="http://127.0.0.1:$GATEWAY_PORT"
say "GET /status"
curl -s "http://127.0.0.1:$ADMIN_PORT/status"; echo
say "a few calls through the gateway"
for body in \
  '{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}' \
  '{"jsonrpc":"2.0","id":2,"method":"eth_blockNumber"}' \
  '{"jsonrpc":"2.0","id":3,"method":"eth_getBalance","params":["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266","latest"]}' \
  '[{"jsonrpc":"2.0","id":4,"method":"net_version"},{"jsonrpc":"2.0","id":5,"method":"anvil_mine"}]' ; do
  printf '%s\n  -> %s\n' "$body" "$(rpc "$gw" "$body")"
done
say "the gateway's metrics (excerpt)"
curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" | grep -E '^iotex_gateway_(upstream_up|best_head_block|requests_total)' | head -12

say "iotex-injector: ${INJECT_RATE:-20} signed actions/s for ${INJECT_SECONDS:-30}s through the gateway (80 % transfers, 20 % contract calls)"
set +e
"$injector_bin" run --endpoint "$gw" --mnemonic "$MNEMONIC" --accounts 10 \
  --rate "${INJECT_RATE:-20}" --duration "${INJECT_SECONDS:-30}s" --mix transfer=80,execution=20 \
  --report "$state/report.json" --plot "$state/run.svg" --histogram-log "$state/run.hlog" --log-format text
inject_rc=$?
set -e
echo "injector exit code $inject_rc; report: .demo/report.json, plot: .demo/run.svg, latency log: .demo/run.hlog"
say "gateway /status after the run"
python3 - "$(curl -s "http://127.0.0.1:$ADMIN_PORT/status")" <<'PY'
import json, sys
s = json.loads(sys.argv[1])
print("best head", s["best_head"])
for u in s["upstreams"]:
    print(f"  {u['name']:8} {u['state']:8} head {u['head']} lag {u['lag']} requests {u['requests']} errors {u['errors']}")
PY

if [ -n "${DEMO_SECONDS:-}" ]; then
  say "running for ${DEMO_SECONDS}s (DEMO_SECONDS)"
  sleep "$DEMO_SECONDS"
else
  say "running; try: curl -s http://127.0.0.1:$ADMIN_PORT/status   (Ctrl-C stops everything)"
  wait
fi
