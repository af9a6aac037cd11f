#!/usr/bin/env bash
# The main job, locally: a real IoTeX cluster on loopback (5 iotex-server processes, the boot node and 4
# delegates in ROLLDPOS, configured by the Helm chart's own rendering; scripts/iotex-cluster.sh), iotex-gateway
# in front of them, its /status and a few calls through it, then iotex-injector driving signed actions through
# the gateway for INJECT_SECONDS (30) and its summary, and a check that every node holds the same blocks. Then
# it keeps the cluster up until Ctrl-C (or for DEMO_SECONDS seconds when set) and stops everything it started.
# Report, plot and logs land in .demo/.
#
# The first run builds iotex-server from its Go module (a few minutes, once; later runs start at once).
# DEMO_NODES=anvil runs the older quick path instead: anvil x2 + ganache dev nodes, which do not gossip, so
# the gateway broadcasts raw transactions to all of them.
#
# Ports (all on 127.0.0.1; override with env): gateway JSON-RPC GATEWAY_PORT=15014, admin ADMIN_PORT=15080;
# IoTeX nodes use IOTEX_BASE_PORT=24600 and the next 50; dev nodes NODE_PORTS="18545 18546 18547".
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
DEMO_NODES=${DEMO_NODES:-iotex}
GATEWAY_PORT=${GATEWAY_PORT:-15014}
ADMIN_PORT=${ADMIN_PORT:-15080}
IOTEX_BASE_PORT=${IOTEX_BASE_PORT:-24600}
read -r -a NODE_PORTS <<< "${NODE_PORTS:-18545 18546 18547}"
MNEMONIC="test test test test test test test test test test test junk"
state="$root/.demo"
mkdir -p "$state"

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
case "$DEMO_NODES" in
  iotex) node_ports=$(seq "$IOTEX_BASE_PORT" $((IOTEX_BASE_PORT + 49))) ;;
  anvil) node_ports="${NODE_PORTS[*]}" ;;
  *) echo "demo: DEMO_NODES is '$DEMO_NODES'; use iotex (default) or anvil" >&2; exit 2 ;;
esac
for p in "$GATEWAY_PORT" "$ADMIN_PORT" $node_ports; do
  port_free "$p" || { echo "demo: 127.0.0.1:$p is in use; set GATEWAY_PORT, ADMIN_PORT, IOTEX_BASE_PORT or NODE_PORTS to free ports" >&2; exit 1; }
done

if [ "$DEMO_NODES" = anvil ]; then
  say "installing test peers (pinned anvil and ganache) if needed"
  scripts/install-peers.sh
else
  say "iotex-server from its Go module (built once and cached: the first run takes a few minutes)"
  scripts/install-iotex.sh >/dev/null
fi
say "building iotex-gateway and iotex-injector (release)"
cargo build --release --locked -q -p iotex-gateway -p iotex-injector
gateway_bin="$root/target/release/iotex-gateway"
injector_bin="$root/target/release/iotex-injector"

pids=()
cleanup() {
  trap - EXIT INT TERM
  say "stopping"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  if [ -f "$state/cluster/cluster.json" ]; then scripts/iotex-cluster.sh down "$state/cluster" || true; fi
  wait 2>/dev/null || true
  echo "demo: everything stopped; logs are in .demo/"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

rpc() { curl -s --max-time 5 -H 'content-type: application/json' -d "$2" "$1"; }
start_gateway() {
  "$gateway_bin" --listen "127.0.0.1:$GATEWAY_PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" --grpc-listen 127.0.0.1:0 "$@" \
    --health-interval 500ms --max-lag-blocks 5 --log-format json >"$state/gateway.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null && break
    sleep 0.1
  done
}

if [ "$DEMO_NODES" = iotex ]; then
  say "starting a real IoTeX cluster on 127.0.0.1:$IOTEX_BASE_PORT+ (5 nodes, ROLLDPOS, the chart's config)"
  rm -rf "$state/cluster"
  scripts/iotex-cluster.sh up "$state/cluster" --base-port "$IOTEX_BASE_PORT" --owner-pid $$ >/dev/null
  scripts/iotex-cluster.sh status "$state/cluster"
  read -r -a gw_args < <(python3 -c 'import json,sys
c = json.load(open(sys.argv[1]))
print(" ".join("--upstream %s=%s --upstream-health %s=%s/readiness" % (n["name"], n["web3"], n["name"], n["stats"]) for n in c["nodes"]))' "$state/cluster/cluster.json")
  python3 -c 'import json,sys; print("\n".join(json.load(open(sys.argv[1]))["funded_keys"]))' "$state/cluster/cluster.json" >"$state/keys.txt"
  chmod 600 "$state/keys.txt"
  say "starting iotex-gateway on 127.0.0.1:$GATEWAY_PORT (admin 127.0.0.1:$ADMIN_PORT) in front of the 5 nodes"
  start_gateway "${gw_args[@]}"
  accounts=(--keys-file "$state/keys.txt")
  probe_addr=0x97186a21fa8e7955c0f154f960d588c3aca44f14   # funded dev key (iotex-core identityset[0])
else
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
  for p in "${NODE_PORTS[@]}"; do
    for _ in $(seq 1 100); do
      rpc "http://127.0.0.1:$p" '{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}' | grep -q 0x1251 && break
      sleep 0.1
    done
  done
  say "starting iotex-gateway on 127.0.0.1:$GATEWAY_PORT (admin 127.0.0.1:$ADMIN_PORT), broadcasting raw transactions to all 3 nodes"
  start_gateway --upstream "anvil0=http://127.0.0.1:${NODE_PORTS[0]}" --upstream "anvil1=http://127.0.0.1:${NODE_PORTS[1]}" \
    --upstream "ganache=http://127.0.0.1:${NODE_PORTS[2]}" --tx-broadcast 3
  accounts=(--mnemonic "$MNEMONIC" --accounts 10)
  probe_addr=0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266
fi

gw="http://127.0.0.1:$GATEWAY_PORT"
say "GET /status"
curl -s "http://127.0.0.1:$ADMIN_PORT/status"; echo
say "a few calls through the gateway"
for body in \
  '{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}' \
  '{"jsonrpc":"2.0","id":2,"method":"eth_blockNumber"}' \
  "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"eth_getBalance\",\"params\":[\"$probe_addr\",\"latest\"]}" \
  '[{"jsonrpc":"2.0","id":4,"method":"net_version"},{"jsonrpc":"2.0","id":5,"method":"eth_gasPrice"},{"jsonrpc":"2.0","id":6,"method":"admin_peers"}]' ; do
  printf '%s\n  -> %s\n' "$body" "$(rpc "$gw" "$body")"
done
say "the gateway's metrics (excerpt)"
curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" | grep -E '^iotex_gateway_(upstream_up|best_head_block|requests_total)' | head -12

say "iotex-injector: ${INJECT_RATE:-20} signed actions/s for ${INJECT_SECONDS:-30}s through the gateway (80 % transfers, 20 % contract calls)"
set +e
"$injector_bin" run --endpoint "$gw" "${accounts[@]}" \
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
    print(f"  {u['name']:10} {u['state']:8} head {u['head']} lag {u['lag']} requests {u['requests']} errors {u['errors']}")
PY
if [ "$DEMO_NODES" = iotex ]; then
  say "one chain: a recent block, asked of every node"
  python3 - "$state/cluster/cluster.json" <<'PY'
import json, sys, urllib.request
def call(url, method, params):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    req = urllib.request.Request(url, body, {"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.load(r)["result"]
nodes = json.load(open(sys.argv[1]))["nodes"]
h = min(int(call(n["web3"], "eth_blockNumber", []), 16) for n in nodes) - 1
for n in nodes:
    b = call(n["web3"], "eth_getBlockByNumber", [hex(h), False])
    print(f"  {n['name']:10} block {h} {b['hash']}  {len(b['transactions'])} txs  producer {b['author']}")
PY
fi

if [ -n "${DEMO_SECONDS:-}" ]; then
  say "running for ${DEMO_SECONDS}s (DEMO_SECONDS)"
  sleep "$DEMO_SECONDS"
else
  say "running; try: curl -s http://127.0.0.1:$ADMIN_PORT/status   (Ctrl-C stops everything)"
  wait
fi
