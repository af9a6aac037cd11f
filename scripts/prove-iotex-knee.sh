#!/usr/bin/env bash
# Proof that the injector's counts hold at the local real IoTeX cluster's knee, for legacy and type-2
# actions alike: each tx type gets a fresh 5-node loopback cluster (scripts/iotex-cluster.sh) with
# iotex-gateway in front, a run of signed transfers at KNEE actions/s for DURATION seconds through the
# gateway (web3, the path whose fees follow the base fee), and then the chain's own count: the rise of the
# pool accounts' nonces and their transactions counted block by block. A row passes when nothing was refused
# as underpriced, the report's equations hold, and included = nonce rise = transactions in the blocks.
#
#   scripts/prove-iotex-knee.sh                  # KNEE=auto: a ramp first, then both tx types at its knee
#   KNEE=400 DURATION=60 scripts/prove-iotex-knee.sh
#
# Env: KNEE (auto, or whole actions/s), KNEE_STEPS (100@10s,...,600@10s; the knee rule is
# scripts/lib/bench_vs_actioninjector.py knee_rate), DURATION (30 s), TX_TYPES ("legacy eip1559"),
# SETTLE_TIMEOUT (60 s for the pool to drain into blocks), IOTEX_BASE_PORT (25000 and the next 50),
# GATEWAY_PORT (15214), ADMIN_PORT (15280). Everything runs on 127.0.0.1 and stops by itself; results land in
# .bench/knee-proof/ (each run's report, the table). Exit 1 when a row fails.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
KNEE=${KNEE:-auto}
KNEE_STEPS=${KNEE_STEPS:-100@10s,200@10s,300@10s,400@10s,500@10s,600@10s}
DURATION=${DURATION:-30}
TX_TYPES=${TX_TYPES:-legacy eip1559}
SETTLE_TIMEOUT=${SETTLE_TIMEOUT:-60}
IOTEX_BASE_PORT=${IOTEX_BASE_PORT:-25000}
GATEWAY_PORT=${GATEWAY_PORT:-15214}
ADMIN_PORT=${ADMIN_PORT:-15280}
out="$root/.bench/knee-proof"
log() { printf 'prove-iotex-knee: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
py() { python3 "$root/scripts/lib/bench_vs_actioninjector.py" "$@"; }

[[ "$DURATION" =~ ^[1-9][0-9]*$ ]] || die "DURATION must be whole seconds, got '$DURATION'"
[[ "$KNEE" == auto || "$KNEE" =~ ^[1-9][0-9]*$ ]] || die "KNEE must be 'auto' or whole actions/s, got '$KNEE'"
for t in $TX_TYPES; do [[ "$t" == legacy || "$t" == eip1559 ]] || die "TX_TYPES holds legacy and/or eip1559, got '$t'"; done
for p in $(seq "$IOTEX_BASE_PORT" $((IOTEX_BASE_PORT + 49))) "$GATEWAY_PORT" "$ADMIN_PORT"; do
  ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || die "127.0.0.1:$p is in use; set IOTEX_BASE_PORT / GATEWAY_PORT / ADMIN_PORT"
done
rm -rf "$out"
mkdir -p "$out"
load0=$(cut -d' ' -f1-3 /proc/loadavg)

scripts/install-iotex.sh >/dev/null
log "building iotex-gateway and iotex-injector (release)"
cargo build --release --locked -q -p iotex-gateway -p iotex-injector
gw_pid=""
cleanup() {
  [ -n "$gw_pid" ] && kill -TERM "$gw_pid" 2>/dev/null || true
  [ -f "$out/cluster/cluster.json" ] && scripts/iotex-cluster.sh down "$out/cluster" >/dev/null 2>&1 || true
}
trap cleanup EXIT

# A fresh chain and a gateway in front of its five nodes: a run at the knee must not leave a full action
# pool or a raised base fee behind for the next one.
fresh() {
  cleanup
  gw_pid=""
  rm -rf "$out/cluster"
  scripts/iotex-cluster.sh up "$out/cluster" --base-port "$IOTEX_BASE_PORT" --owner-pid $$ >/dev/null 2>"$out/cluster-up.log" \
    || { cat "$out/cluster-up.log" >&2; die "the cluster did not come up"; }
  read -r -a gw_args < <(python3 -c 'import json,sys
c = json.load(open(sys.argv[1]))
print(" ".join("--upstream %s=%s --upstream-health %s=%s/readiness" % (n["name"], n["web3"], n["name"], n["stats"]) for n in c["nodes"]))' "$out/cluster/cluster.json")
  target/release/iotex-gateway --listen "127.0.0.1:$GATEWAY_PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" --grpc-listen 127.0.0.1:0 "${gw_args[@]}" \
    --health-interval 500ms --log-format json >>"$out/gateway.log" 2>&1 &
  gw_pid=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null && return 0; sleep 0.1; done
  die "the gateway did not become ready (see $out/gateway.log)"
}
inject() { # OUT_PREFIX ARGS...: one injector run through the gateway
  local prefix=$1
  shift
  target/release/iotex-injector run --endpoint "http://127.0.0.1:$GATEWAY_PORT" --keys-file "$out/keys.txt" \
    --account-in-flight 4 --confirm-timeout 30s --report "$prefix.json" --progress off --log-format json "$@" \
    >"$prefix.log" 2>&1
}

log "starting the loopback cluster on 127.0.0.1:$IOTEX_BASE_PORT+ with the gateway on :$GATEWAY_PORT ($(nproc) cores)"
fresh
python3 -c 'import json,sys; print("\n".join(json.load(open(sys.argv[1]))["funded_keys"]))' "$out/cluster/cluster.json" >"$out/keys.txt"
web3=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["nodes"][0]["web3"])' "$out/cluster/cluster.json")
measured=none
if [ "$KNEE" = auto ]; then
  log "knee probe: ramp $KNEE_STEPS (legacy)"
  inject "$out/knee-probe" --steps "$KNEE_STEPS" || log "knee probe exit code $? (see $out/knee-probe.log)"
  measured=$(py knee "$out/knee-probe.json") || die "no knee in the ramp (load average $(cut -d' ' -f1-3 /proc/loadavg)); set KNEE"
  KNEE=$measured
fi
log "knee: $KNEE actions/s (measured: $measured)"

failed=0
: >"$out/rows.jsonl"
for t in $TX_TYPES; do
  log "$t: $KNEE actions/s for ${DURATION}s on a fresh chain"
  fresh
  code=0
  inject "$out/$t" --rate "$KNEE" --duration "${DURATION}s" --tx-type "$t" --fail-if "unbalanced>0" || code=$?
  [ -s "$out/$t.json" ] || die "$t: the injector wrote no report (exit $code; see $out/$t.log)"
  mapfile -t senders < <(py senders-from-report "$out/$t.json")
  # A fresh chain: every transaction of the pool accounts from block 1 on is this run's.
  py before-from-report "$out/$t.json" 0 >"$out/$t.before.json"
  py settle "$web3" "$out/$t.before.json" "${senders[@]}" --timeout "$SETTLE_TIMEOUT" >"$out/$t.chain.json"
  python3 - "$t" "$KNEE" "$code" "$out/$t.json" "$out/$t.chain.json" >>"$out/rows.jsonl" <<'PY'
import json, sys
t, rate, code, r, c = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), json.load(open(sys.argv[4])), json.load(open(sys.argv[5]))
underpriced = r["rejected"].get("underpriced", 0) + r["rejected"].get("replacement_underpriced", 0)
ok = (underpriced == 0 and all(e["holds"] for e in r["equations"]) and code == 0
      and r["included"] == c["nonce_rise"] == c["included_on_chain"])
print(json.dumps({"tx_type": t, "rate": rate, "scheduled": r["scheduled"], "accepted": r["accepted"],
  "included": r["included"], "pending": r["pending_at_end"], "dropped": r["dropped"], "rise": c["nonce_rise"],
  "in_blocks": c["included_on_chain"], "underpriced": underpriced,
  "other_rejected": sum(r["rejected"].values()) - underpriced, "retried": sum(r["retried"].values()),
  "resyncs": r["nonce_resyncs"], "equations": all(e["holds"] for e in r["equations"]),
  "fee_p50": r["fee"]["p50_gwei"], "fee_p99": r["fee"]["p99_gwei"], "fee_total": r["fee"]["total_coins"],
  "inclusion_p99": r["inclusion_latency_ms"]["p99"], "exit": code, "ok": ok}))
PY
  tail -1 "$out/rows.jsonl" | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["ok"] else 1)' || failed=1
done
{
  echo "iotex-injector through iotex-gateway (web3) into the 5-node loopback cluster, a fresh chain per tx type;"
  echo "${DURATION}s at the knee, $KNEE actions/s (measured: $measured); $(nproc) cores, load average $load0 -> $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  python3 - "$out/rows.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("| tx type | rate/s | scheduled | accepted | included | nonce rise | in blocks | underpriced | other rejected | retried | resyncs | equations | fee p50 / p99 Gwei | fees IOTX | inclusion p99 ms | pass |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['tx_type']} | {r['rate']:.0f} | {r['scheduled']} | {r['accepted']} | {r['included']} | {r['rise']} | {r['in_blocks']} "
          f"| {r['underpriced']} | {r['other_rejected']} | {r['retried']} | {r['resyncs']} | {'hold' if r['equations'] else 'DO NOT HOLD'} "
          f"| {r['fee_p50']:.0f} / {r['fee_p99']:.0f} | {r['fee_total']:.4f} | {r['inclusion_p99']:.0f} | {'yes' if r['ok'] else 'NO'} |")
PY
} | tee "$out/table.md"
exit "$failed"
