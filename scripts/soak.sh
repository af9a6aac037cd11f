#!/usr/bin/env bash
# A soak of the whole toolkit on loopback: a real IoTeX cluster (scripts/iotex-cluster.sh, 5 iotex-server
# processes), iotex-gateway in front of it, iotex-injector sending signed actions through the gateway at a
# steady rate for DURATION, and a steady Explorer-like read load through the gateway beside it. Every
# SOAK_INTERVAL it samples both binaries' RSS, open fds and threads, and the reads' p99
# (scripts/lib/soak.py). At the end it writes soak.json and soak.svg and fails if, after the warm-up, either
# binary's RSS grew more than 20 MB (the gateway's net of its response cache, a store bounded by
# cache-max-bytes that fills on purpose) or its fds grew, or the injector's accepted != included.
#
#   scripts/soak.sh 1h                  # the figures in docs/reliability.md
#   scripts/soak.sh 3m                  # what scripts/test.sh runs (SOAK_INTERVAL=15s there)
#
# Env: SOAK_RATE actions/s (10), SOAK_READ_RATE reads/s (20), SOAK_INTERVAL (60s, or DURATION/12 when that
# is shorter), SOAK_WARMUP (a quarter of DURATION, at most 5m), SOAK_PROFILE release|debug (release; test.sh
# uses the debug binaries it already built), SOAK_OUT (target/soak/<UTC time>). Everything it starts is
# stopped when it exits, however it exits; the cluster also stops with this script's process (--owner-pid).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
log() { printf 'soak: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ $# -eq 1 ] || die "usage: scripts/soak.sh DURATION (e.g. 3m, 1h, 90s)"
secs() {
  case "$1" in
    *h) echo $(( ${1%h} * 3600 ));; *m) echo $(( ${1%m} * 60 ));; *s) echo "${1%s}";;
    *[!0-9]*|'') return 1;; *) echo "$1";;
  esac
}
duration=$(secs "$1" 2>/dev/null) || die "DURATION '$1' is not a number of seconds, minutes (m) or hours (h)"
[ "$duration" -ge 60 ] || die "DURATION '$1' is under a minute: too short for a warm-up and a drift"
[ "$duration" -le 86400 ] || die "DURATION '$1' is over a day; the soak is bounded"
interval=$(secs "${SOAK_INTERVAL:-60s}") || die "SOAK_INTERVAL '${SOAK_INTERVAL}' is not a duration"
[ $((duration / 12)) -lt "$interval" ] && interval=$((duration / 12))
warmup=$(secs "${SOAK_WARMUP:-$(( duration / 4 < 300 ? duration / 4 : 300 ))s}") || die "SOAK_WARMUP is not a duration"
rate="${SOAK_RATE:-10}"
profile="${SOAK_PROFILE:-release}"
out="${SOAK_OUT:-$root/target/soak/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$out"
# A reused SOAK_OUT: stop what a previous run left there and drop its results, so nothing old is judged.
if [ -d "$out/cluster" ]; then scripts/iotex-cluster.sh down "$out/cluster" >/dev/null 2>&1 || true; fi
rm -rf "$out/cluster" "$out/report.json" "$out/samples.json" "$out/soak.json" "$out/soak.svg"

log "building iotex-server (cached) and iotex-gateway + iotex-injector ($profile)"
scripts/install-iotex.sh >/dev/null
case "$profile" in
  release) cargo build --release --locked -q -p iotex-gateway -p iotex-injector; bin="$root/target/release";;
  debug) cargo build --locked -q -p iotex-gateway -p iotex-injector; bin="$root/target/debug";;
  *) die "SOAK_PROFILE '$profile' is neither release nor debug";;
esac

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  [ -f "$out/cluster/cluster.json" ] && scripts/iotex-cluster.sh down "$out/cluster" >/dev/null 2>&1 || true
  wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

base=$(python3 -c 'import random; print(random.randrange(21000, 60000, 50))')
log "starting a real IoTeX cluster (5 nodes) on 127.0.0.1:$base+"
for attempt in 1 2 3; do
  if scripts/iotex-cluster.sh up "$out/cluster" --base-port "$base" --owner-pid $$ >"$out/cluster-up.log" 2>&1; then break; fi
  grep -q "in use" "$out/cluster-up.log" && [ "$attempt" -lt 3 ] || { cat "$out/cluster-up.log" >&2; die "the IoTeX cluster did not start"; }
  rm -rf "$out/cluster"; base=$((base + 50))
done
read -r -a gw_args < <(python3 -c 'import json,sys
c = json.load(open(sys.argv[1]))
print(" ".join("--upstream %s=%s --upstream-health %s=%s/readiness" % (n["name"], n["web3"], n["name"], n["stats"]) for n in c["nodes"]))' "$out/cluster/cluster.json")
python3 -c 'import json,sys; print("\n".join(json.load(open(sys.argv[1]))["funded_keys"]))' "$out/cluster/cluster.json" >"$out/keys.txt"
chmod 600 "$out/keys.txt"

gw_port=$(free_port); admin_port=$(free_port)
log "starting iotex-gateway on 127.0.0.1:$gw_port"
"$bin/iotex-gateway" --listen "127.0.0.1:$gw_port" --admin-listen "127.0.0.1:$admin_port" --grpc-listen 127.0.0.1:0 "${gw_args[@]}" \
  --health-interval 500ms --probe-timeout 1s --max-lag-blocks 5 --log-format json >"$out/gateway.log" 2>&1 &
gw_pid=$!; pids+=("$gw_pid")
for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$admin_port/readyz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$admin_port/readyz" >/dev/null || { tail -5 "$out/gateway.log" >&2; die "the gateway never became ready"; }

log "iotex-injector: $rate actions/s for ${duration}s through the gateway; reads at ${SOAK_READ_RATE:-20}/s; a sample every ${interval}s after a ${warmup}s warm-up"
"$bin/iotex-injector" run --endpoint "http://127.0.0.1:$gw_port" --keys-file "$out/keys.txt" \
  --rate "$rate" --duration "${duration}s" --mix transfer=80,execution=20 --confirm-timeout 60s \
  --report "$out/report.json" --log-format json >"$out/injector.out" 2>"$out/injector.log" &
inj_pid=$!; pids+=("$inj_pid")

set +e
python3 scripts/lib/soak.py run --gateway "http://127.0.0.1:$gw_port" --gateway-admin "http://127.0.0.1:$admin_port" \
  --gateway-pid "$gw_pid" --injector-pid "$inj_pid" \
  --out "$out" --interval "$interval" --warmup "$warmup" --read-rate "${SOAK_READ_RATE:-20}" --max-seconds $((duration * 2 + 300))
rc=$?
wait "$inj_pid"; inj_rc=$?
set -e
# The injector's summary (its progress lines stay in injector.out).
sed -n '/iotex-injector summary/,$p' "$out/injector.out"
[ "$inj_rc" -eq 0 ] || log "iotex-injector exited $inj_rc (see $out/injector.log)"
[ "$rc" -eq 0 ] && [ "$inj_rc" -eq 0 ] || die "the soak failed (figures in $out/soak.json)"
log "passed: $out/soak.json, $out/soak.svg"
