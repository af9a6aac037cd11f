#!/usr/bin/env bash
# Side-by-side benchmark of iotex-gateway against nginx as a plain reverse proxy, and against calling the
# upstream directly, with one load generator (wrk) in one run. Everything listens on 127.0.0.1.
#
# For each upstream (a canned-answer nginx sink fast enough that the proxy is the bottleneck, and a real
# anvil node), it measures:
#   1. maximum throughput: wrk, 1 thread, $CONNS connections, $MAX_SECS s, eth_blockNumber POSTs;
#   2. latency at a fixed rate below the maximum: $FIXED_PCT % of the slowest target's maximum, the same rate
#      for all three targets, paced by wrk's delay() hook; p50/p99/p99.9 from wrk's own histogram.
# It prints a table and the ratios the README quotes. Nothing here is asserted: machines are noisy; read the
# ratios, which come from the same run.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
CONNS=${CONNS:-32}
MAX_SECS=${MAX_SECS:-8}
FIXED_SECS=${FIXED_SECS:-10}
FIXED_PCT=${FIXED_PCT:-50}
FIXED_CONNS=${FIXED_CONNS:-16}
work="$root/.bench/gateway"
rm -rf "$work" && mkdir -p "$work"

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then
  echo "bench: installing ${need[*]} from Debian" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
scripts/install-peers.sh
cargo build --release --locked -q -p iotex-gateway
gw_bin="$root/target/release/iotex-gateway"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

nginx_conf() { # name, workers, server block
  mkdir -p "$work/$1"
  cat > "$work/$1/nginx.conf" <<CONF
worker_processes $2;
pid $work/$1/nginx.pid;
error_log $work/$1/error.log warn;
daemon off;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/$1/body;
  proxy_temp_path $work/$1/proxy;
  fastcgi_temp_path $work/$1/fastcgi;
  uwsgi_temp_path $work/$1/uwsgi;
  scgi_temp_path $work/$1/scgi;
  keepalive_requests 1000000;
  $3
}
CONF
  nginx -p "$work/$1" -c "$work/$1/nginx.conf" &
  pids+=($!)
}

wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; return 1; }

sink_port=$(free_port)
nginx_conf sink 1 "server { listen 127.0.0.1:$sink_port; default_type application/json;
    location / { return 200 '{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x1\"}'; } }"
anvil_port=$(free_port)
tools/peers/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil --host 127.0.0.1 --port "$anvil_port" \
  --chain-id 4689 --silent >/dev/null 2>&1 &
pids+=($!)
wait_port "$sink_port"; wait_port "$anvil_port"

declare -A url
for up in sink anvil; do
  up_port=$([ "$up" = sink ] && echo "$sink_port" || echo "$anvil_port")
  url[$up/direct]="http://127.0.0.1:$up_port/"
  p=$(free_port)
  nginx_conf "proxy-$up" 2 "upstream up { server 127.0.0.1:$up_port; keepalive 128; }
    server { listen 127.0.0.1:$p; location / { proxy_pass http://up; proxy_http_version 1.1;
      proxy_set_header Connection \"\"; proxy_buffering off; } }"
  url[$up/nginx]="http://127.0.0.1:$p/"
  g=$(free_port); a=$(free_port)
  RUST_LOG=warn "$gw_bin" --listen "127.0.0.1:$g" --admin-listen "127.0.0.1:$a" \
    --upstream "$up=http://127.0.0.1:$up_port" --log-format json ${GATEWAY_ARGS:-} >"$work/gateway-$up.log" 2>&1 &
  pids+=($!)
  url[$up/gateway]="http://127.0.0.1:$g/"
  wait_port "$p"; wait_port "$g"
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$a/readyz" >/dev/null && break; sleep 0.05; done
done

run_wrk() { # url secs conns delay_ms -> RESULT line
  WRK_DELAY_MS=$4 wrk -t1 -c"$3" -d"${2}s" -s bench/post.lua "$1" 2>&1 | grep '^RESULT' || echo "RESULT rps=0 p50_us=0 p99_us=0 p999_us=0 errors=-1 non2xx=-1"
}
field() { sed -E "s/.*$2=([-0-9.]+).*/\1/" <<<"$1"; }

printf '\n%-8s %-8s %12s %10s %10s %10s %8s\n' upstream target max_rps p50_ms p99_ms p999_ms errors
declare -A res
for up in sink anvil; do
  for t in direct nginx gateway; do
    run_wrk "${url[$up/$t]}" 2 "$CONNS" 0 >/dev/null  # warm-up: connections, pools, caches
    res[$up/$t/max]=$(run_wrk "${url[$up/$t]}" "$MAX_SECS" "$CONNS" 0)
  done
  slowest=$(for t in direct nginx gateway; do field "${res[$up/$t/max]}" rps; done | sort -g | head -1)
  rate=$(python3 -c "print(max(1, int($slowest * $FIXED_PCT / 100)))")
  delay=$(python3 -c "print(max(1, int($FIXED_CONNS * 1000 / $rate)))")
  for t in direct nginx gateway; do
    res[$up/$t/fixed]=$(run_wrk "${url[$up/$t]}" "$FIXED_SECS" "$FIXED_CONNS" "$delay")
    m=${res[$up/$t/max]}; f=${res[$up/$t/fixed]}
    printf '%-8s %-8s %12.0f %10.3f %10.3f %10.3f %8s\n' "$up" "$t" "$(field "$m" rps)" \
      "$(python3 -c "print($(field "$f" p50_us)/1000)")" "$(python3 -c "print($(field "$f" p99_us)/1000)")" \
      "$(python3 -c "print($(field "$f" p999_us)/1000)")" "$(( $(field "$m" errors) + $(field "$m" non2xx) + $(field "$f" errors) + $(field "$f" non2xx) ))"
  done
  echo "         (latency columns: fixed rate of ~$rate req/s = ${FIXED_PCT}% of the slowest target's max, $FIXED_CONNS connections)"
  res[$up/rate]=$rate
done

echo
echo "Ratios (same run):"
for up in sink anvil; do
  python3 - "$up" "${res[$up/direct/max]}" "${res[$up/nginx/max]}" "${res[$up/gateway/max]}" \
    "${res[$up/direct/fixed]}" "${res[$up/nginx/fixed]}" "${res[$up/gateway/fixed]}" <<'PY'
import re, sys
up, *lines = sys.argv[1:]
v = [dict((k, float(x)) for k, x in re.findall(r"(\w+)=([-0-9.]+)", l)) for l in lines]
dmax, nmax, gmax, dfix, nfix, gfix = v
added_n = (nfix["p99_us"] - dfix["p99_us"]) / 1000
added_g = (gfix["p99_us"] - dfix["p99_us"]) / 1000
print(f"  {up:6} throughput gateway/nginx = {gmax['rps']/nmax['rps']:.2f}x   gateway/direct = {gmax['rps']/dmax['rps']:.2f}x   "
      f"added p99: nginx {added_n:+.3f} ms, gateway {added_g:+.3f} ms")
PY
done
