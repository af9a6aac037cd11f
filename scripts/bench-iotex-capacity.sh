#!/usr/bin/env bash
# Capacity of the local real IoTeX cluster: a --steps ramp of signed transfers through iotex-gateway into the
# 5-node loopback cluster (scripts/iotex-cluster.sh), with the injector's per-step table (offered vs achieved
# rate, inclusion latency) and the CPU share of the injector and of the nodes in each step, read from /proc.
#
#   scripts/bench-iotex-capacity.sh                       # STEPS="100@20s,200@20s,400@20s,600@20s,800@20s"
#   STEPS="100@30s,200@30s" scripts/bench-iotex-capacity.sh
#
# Everything runs on 127.0.0.1 and stops by itself; results land in .bench/capacity/ (report.json, plot).
# Ports: IOTEX_BASE_PORT (24700) and the next 50, GATEWAY_PORT (15114), ADMIN_PORT (15180).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
STEPS=${STEPS:-100@20s,200@20s,400@20s,600@20s,800@20s}
IOTEX_BASE_PORT=${IOTEX_BASE_PORT:-24700}
GATEWAY_PORT=${GATEWAY_PORT:-15114}
ADMIN_PORT=${ADMIN_PORT:-15180}
out="$root/.bench/capacity"
rm -rf "$out"
mkdir -p "$out"
log() { printf 'bench-iotex-capacity: %s\n' "$*" >&2; }

scripts/install-iotex.sh >/dev/null
log "building iotex-gateway and iotex-injector (release)"
cargo build --release --locked -q -p iotex-gateway -p iotex-injector
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  [ -f "$out/cluster/cluster.json" ] && scripts/iotex-cluster.sh down "$out/cluster" >/dev/null 2>&1 || true
}
trap cleanup EXIT
scripts/iotex-cluster.sh up "$out/cluster" --base-port "$IOTEX_BASE_PORT" --owner-pid $$ >/dev/null
read -r -a gw_args < <(python3 -c 'import json,sys
c = json.load(open(sys.argv[1]))
print(" ".join("--upstream %s=%s --upstream-health %s=%s/readiness" % (n["name"], n["web3"], n["name"], n["stats"]) for n in c["nodes"]))' "$out/cluster/cluster.json")
python3 -c 'import json,sys; print("\n".join(json.load(open(sys.argv[1]))["funded_keys"]))' "$out/cluster/cluster.json" >"$out/keys.txt"
node_pids=$(python3 -c 'import json,sys; print(" ".join(str(n["pid"]) for n in json.load(open(sys.argv[1]))["nodes"]))' "$out/cluster/cluster.json")
target/release/iotex-gateway --listen "127.0.0.1:$GATEWAY_PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" --grpc-listen 127.0.0.1:0 "${gw_args[@]}" \
  --health-interval 500ms --log-format json >"$out/gateway.log" 2>&1 &
pids+=($!)
gw_pid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null && break; sleep 0.1; done

# CPU seconds (user + system) of a set of pids, from /proc/<pid>/stat fields 14 and 15.
cpu() { local t=0; for p in "$@"; do [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
hz=$(getconf CLK_TCK)

log "ramp $STEPS through the gateway ($(nproc) cores)"
target/release/iotex-injector run --endpoint "http://127.0.0.1:$GATEWAY_PORT" --keys-file "$out/keys.txt" \
  --steps "$STEPS" --account-in-flight 4 --report "$out/report.json" --plot "$out/run.svg" \
  --progress off --log-format json >"$out/injector.log" 2>&1 &
inj=$!
pids+=("$inj")
# Sample CPU at each step boundary (the injector signs and funds nothing before its first tick here, so
# its schedule starts within a second of launch).
IFS=',' read -r -a steps <<< "$STEPS"
printf '%s\n' "step offered/s injector-cpu-% gateway-cpu-% nodes-cpu-%" >"$out/cpu.txt"
for i in "${!steps[@]}"; do
  secs=$(python3 -c 'import sys; sys.path.insert(0, ""); d=sys.argv[1].split("@")[1]; m={"ms":0.001,"s":1,"m":60,"h":3600}; u=d.lstrip("0123456789."); print(float(d[:len(d)-len(u)])*m[u])' "${steps[$i]}")
  a_inj=$(cpu "$inj"); a_gw=$(cpu "$gw_pid"); a_nodes=$(cpu $node_pids); t0=$(date +%s.%N)
  sleep "$secs"
  b_inj=$(cpu "$inj"); b_gw=$(cpu "$gw_pid"); b_nodes=$(cpu $node_pids); t1=$(date +%s.%N)
  python3 -c 'import sys
hz, wall = float(sys.argv[1]), float(sys.argv[3]) - float(sys.argv[2])
share = lambda a, b: 100.0 * (int(b) - int(a)) / hz / wall
print(sys.argv[4], sys.argv[5].split("@")[0], "%.0f %.0f %.0f" % (share(sys.argv[6], sys.argv[7]), share(sys.argv[8], sys.argv[9]), share(sys.argv[10], sys.argv[11])))' \
    "$hz" "$t0" "$t1" "$((i + 1))" "${steps[$i]}" "$a_inj" "$b_inj" "$a_gw" "$b_gw" "$a_nodes" "$b_nodes" >>"$out/cpu.txt"
done
wait "$inj" || log "injector exit code $? (see $out/injector.log)"
python3 - "$out/report.json" "$out/cpu.txt" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
cpu = {l.split()[0]: l.split()[2:] for l in open(sys.argv[2]).read().splitlines()[1:]}
print("| step | offered/s | achieved/s | included/s | submit p99 ms | inclusion p50 / p99 ms | injector CPU % | gateway CPU % | 5 nodes CPU % |")
print("|---|---|---|---|---|---|---|---|---|")
for n, s in enumerate(r["steps"], 1):
    c = cpu.get(str(n), ["-", "-", "-"])
    print(f"| {n} | {s['rate_to']:.0f} | {s['achieved_rate']:.1f} | {s['included_rate']:.1f} | {s['submit_latency_ms']['p99']:.1f} "
          f"| {s['inclusion_latency_ms']['p50']:.0f} / {s['inclusion_latency_ms']['p99']:.0f} | {c[0]} | {c[1]} | {c[2]} |")
print(f"\nwhole run: scheduled {r['scheduled']}, accepted {r['accepted']}, included {r['included']}, "
      f"pending at end {r['pending_at_end']}, dropped {r['dropped']}, rejected {r['rejected'] or 'none'}")
PY
