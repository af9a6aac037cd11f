#!/usr/bin/env bash
# Side by side with IoTeX's own load tool: iotex-injector ("ours") and iotex-core's tools/actioninjector.v2
# ("actioninjector", built by `scripts/install-iotex.sh actioninjector` from the node's own pinned module)
# against the same local real cluster (scripts/iotex-cluster.sh), one tool at a time, at RATES actions/s and
# at the cluster's knee, DURATION seconds each. For every run: the achieved rate against the target (from the
# chain), CPU µs per action (utime+stime of the tool's process from /proc over the actions that landed), peak
# RSS (VmHWM), and whether the tool's own counts agree with the chain (the rise of the senders' nonces, and
# their actions counted in the blocks). The last line is
#   ours/actioninjector cpu-per-action X.XXx, rate error ours A % theirs B %
#
#   scripts/bench-vs-actioninjector.sh                     # 7-11 minutes on 2 cores with the defaults
#   DURATION=60 RATES="10 100" KNEE=400 scripts/bench-vs-actioninjector.sh
#
# Env: DURATION (30, seconds per run), RATES ("10 100 500"), KNEE (auto: the latency knee of a KNEE_STEPS
# ramp of ours, see scripts/lib/bench_vs_actioninjector.py knee_rate; or a number), KNEE_STEPS
# (100@10s,...,600@10s), SETTLE_TIMEOUT (60 s for a run's actions to reach blocks), IOTEX_BASE_PORT (24900
# and the next 50). Everything runs on 127.0.0.1 and stops by itself; results land in .bench/vs-actioninjector/.
#
# The cluster is the repository's loopback cluster with one change, the Quebec fork height moved out of
# reach: actioninjector v2.1.0 signs every action with chain id 0 (iotex-antenna-go v2.5.1 never sets
# ActionCore.chainID), and a chain past Quebec refuses that ("ChainID does not match, expecting 3, got 0"),
# so on the default cluster it lands nothing. Before Quebec the node accepts chain id 0 or its own, so both
# tools land on the same chain.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
DURATION=${DURATION:-30}
RATES=${RATES:-10 100 500}
KNEE=${KNEE:-auto}
KNEE_STEPS=${KNEE_STEPS:-100@10s,200@10s,300@10s,400@10s,500@10s,600@10s}
SETTLE_TIMEOUT=${SETTLE_TIMEOUT:-60}
IOTEX_BASE_PORT=${IOTEX_BASE_PORT:-24900}
out="$root/.bench/vs-actioninjector"
log() { printf 'bench-vs-actioninjector: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
py() { python3 "$root/scripts/lib/bench_vs_actioninjector.py" "$@"; }

[[ "$DURATION" =~ ^[1-9][0-9]*$ ]] || die "DURATION must be whole seconds, got '$DURATION'"
for r in $RATES; do [[ "$r" =~ ^[1-9][0-9]*$ ]] || die "RATES must be whole actions/s, got '$r'"; done
[[ "$KNEE" == auto || "$KNEE" =~ ^[1-9][0-9]*$ ]] || die "KNEE must be 'auto' or whole actions/s, got '$KNEE'"
for p in $(seq "$IOTEX_BASE_PORT" $((IOTEX_BASE_PORT + 49))); do
  ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || die "127.0.0.1:$p is in use; set IOTEX_BASE_PORT to a free range of 50"
done
rm -rf "$out"
mkdir -p "$out"
load0=$(cut -d' ' -f1-3 /proc/loadavg)

scripts/install-iotex.sh >/dev/null
theirs="$(scripts/install-iotex.sh actioninjector)"
log "building iotex-injector (release)"
cargo build --release --locked -q -p iotex-injector
ours="$root/target/release/iotex-injector"

cleanup() { [ -f "$out/cluster/cluster.json" ] && scripts/iotex-cluster.sh down "$out/cluster" >/dev/null 2>&1 || true; }
trap cleanup EXIT
printf 'genesis:\n  forkHeights:\n    quebecHeight: 1000000000\n' >"$out/quebec-later.yaml"
# Every run gets a fresh chain: a run that overloads the cluster (the knee probe, 500/s on a busy machine)
# must not leave a full action pool or a stalled round behind for the next tool.
fresh_cluster() {
  cleanup
  rm -rf "$out/cluster"
  scripts/iotex-cluster.sh up "$out/cluster" --base-port "$IOTEX_BASE_PORT" --owner-pid $$ \
    --values "$out/quebec-later.yaml" >/dev/null 2>"$out/cluster-up.log" || { cat "$out/cluster-up.log" >&2; die "the cluster did not come up"; }
}
log "starting the loopback cluster on 127.0.0.1:$IOTEX_BASE_PORT+ (Quebec moved out of reach, see the header)"
fresh_cluster
read -r web3 grpc < <(python3 -c 'import json,sys; n=json.load(open(sys.argv[1]))["nodes"][0]; print(n["web3"], n["grpc"])' "$out/cluster/cluster.json")
py keys "$out/cluster/cluster.json" "$out"

# Both tools send native actions through SendAction on the same node's gRPC port.
ours_api=grpc
ours_ep=(--api grpc --endpoint "$grpc")
log "ours: iotex-injector over $ours_api; theirs: $theirs over gRPC $grpc; node-0 of 5; $(nproc) cores"

# The knee: a ramp of ours; the highest step that still kept pace (inclusion p99 within 1.5x of the first
# step's, and some inclusion timed at all). Its report also names our pool's accounts for the nonce counts.
log "knee probe: ours ramps $KNEE_STEPS"
"$ours" run "${ours_ep[@]}" --keys-file "$out/keys.txt" --steps "$KNEE_STEPS" --account-in-flight 4 \
  --confirm-timeout 20s --report "$out/knee.json" --progress off --log-format json >"$out/knee.log" 2>&1 || log "knee probe exit code $? (see $out/knee.log)"
mapfile -t ours_senders < <(py senders-from-report "$out/knee.json")
[ "${#ours_senders[@]}" -gt 0 ] || die "our knee probe's report lists no accounts (see $out/knee.log)"
if ! measured_knee=$(py knee "$out/knee.json"); then
  [ "$KNEE" = auto ] && die "no knee in the probe's ramp (load average $(cut -d' ' -f1-3 /proc/loadavg)); set KNEE to a rate"
  measured_knee=none
fi
[ "$measured_knee" = "$(echo "${KNEE_STEPS##*,}" | cut -d@ -f1)" ] && log "the ramp never bent: the knee is at least its top step"
[ "$KNEE" = auto ] && KNEE=$measured_knee
log "knee: $measured_knee actions/s measured; using $KNEE"

run_ours() { # LABEL RATE
  local d="$out/ours-$2"
  fresh_cluster
  py snapshot "$web3" "${ours_senders[@]}" >"$d.before.json"
  py measure "$d.measure.json" -- "$ours" run "${ours_ep[@]}" --keys-file "$out/keys.txt" --rate "$2" \
    --duration "${DURATION}s" --account-in-flight 4 --report "$d.report.json" --progress off --log-format json >/dev/null
  py settle "$web3" "$d.before.json" "${ours_senders[@]}" --timeout "$SETTLE_TIMEOUT" >"$d.chain.json"
  py row --label "$1" --tool ours --rate "$2" --duration "$DURATION" --measure "$d.measure.json" \
    --chain "$d.chain.json" --report "$d.report.json" >>"$out/rows.jsonl"
}
run_theirs() { # LABEL RATE
  local d="$out/actioninjector-$2" senders
  fresh_cluster
  # Its senders are fresh random accounts (nonce 0), funded from our keypair file at start; the log names them.
  py snapshot "$web3" >"$d.before.json"
  py measure "$d.measure.json" -- "$theirs" inject --addr "$grpc" --insecure --aps "$2" --duration "${DURATION}s" \
    --rand-accounts 5 --load-token-amount 10000000000000000000000 --injector-config-path "$out/keypairs.yaml" \
    --action-type transfer >/dev/null
  mapfile -t senders < <(py senders-from-log "$d.measure.json.log")
  [ "${#senders[@]}" -gt 0 ] || die "actioninjector named no generated accounts (see $d.measure.json.log)"
  py settle "$web3" "$d.before.json" "${senders[@]}" --timeout "$SETTLE_TIMEOUT" >"$d.chain.json"
  py row --label "$1" --tool actioninjector --rate "$2" --duration "$DURATION" --measure "$d.measure.json" \
    --chain "$d.chain.json" --failures "$(grep -c 'Failed to inject' "$d.measure.json.log" || true)" >>"$out/rows.jsonl"
}

# The knee gets a run of its own unless it is one of RATES already (then that row is labelled the knee).
runs="$RATES"
case " $RATES " in *" $KNEE "*) ;; *) runs="$RATES knee" ;; esac
for r in $runs; do
  label=$r rate=$r
  [ "$r" = knee ] && rate=$KNEE
  [ "$rate" = "$KNEE" ] && label="$KNEE (knee)"
  log "$label actions/s for ${DURATION}s: ours, then actioninjector"
  run_ours "$label" "$rate"
  run_theirs "$label" "$rate"
done
{
  echo "ours: iotex-injector over $ours_api; actioninjector: $(basename "$(dirname "$theirs")") over gRPC; both to node-0 of the"
  echo "5-node loopback cluster; ${DURATION}s a run; knee $KNEE actions/s (measured $measured_knee); $(nproc) cores, load average $load0 -> $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  py table "$out/rows.jsonl"
} | tee "$out/table.md"
