#!/usr/bin/env bash
# Side-by-side benchmark of iotex-gateway against nginx and a bare hyper reverse proxy, and against calling
# the upstream directly, with one load generator (wrk) in one run. Everything listens on 127.0.0.1.
#
# Upstream: an nginx that answers a canned JSON-RPC body, fast enough that the proxy in front is the
# bottleneck (UPSTREAMS="sink anvil" adds a real anvil node). Its stub_status counts the calls that reach it.
# Proxies, each with $THREADS serving threads / workers (THREADS="1 2" runs both):
#   nginx    plain keep-alive reverse proxy;
#   bare     tests/src/bin/bare-proxy.rs: hyper server + hyper-util pooled client, no parsing (the floor of
#            the gateway's stack);
#   gateway  iotex-gateway with its defaults (cache and coalescing on);
#   gw_NAME  another iotex-gateway binary, from GATEWAY_BINS="NAME=/path/to/iotex-gateway ..." (e.g. a build
#            of an earlier commit, to measure a change side by side in one run).
# Two workloads, labelled:
#   distinct   every call is eth_getBalance of a different address at "latest": nothing can be cached or
#              coalesced, so this is one hop against one hop (the headline);
#   identical  every call is the same eth_blockNumber: shows what coalescing buys (upstream/client ratio).
# For each proxy and workload:
#   1. maximum throughput: wrk, 1 thread, $CONNS connections, $MAX_SECS s; CPU µs per call of the proxy
#      process (utime+stime from /proc, workers included, divided by the calls wrk completed);
#   2. latency at a fixed rate: $FIXED_PCT % of the slowest proxy's maximum, the same rate for every target,
#      paced by wrk's delay() hook; p50/p99/p99.9 from wrk's own histogram, and CPU µs per call at that rate;
#   3. upstream calls / client calls over both runs, from the sink's request counter.
# It prints tables and the ratios the README quotes. Nothing here is asserted: machines are noisy; read the
# ratios, which come from the same run.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
CONNS=${CONNS:-32}
MAX_SECS=${MAX_SECS:-8}
FIXED_SECS=${FIXED_SECS:-10}
FIXED_PCT=${FIXED_PCT:-50}
FIXED_CONNS=${FIXED_CONNS:-16}
THREADS=${THREADS:-"1 2"}
WORKLOADS=${WORKLOADS:-"distinct identical"}
UPSTREAMS=${UPSTREAMS:-sink}
PROXIES=${PROXIES:-"nginx bare gateway"}
declare -A gw_bins=()
for kv in ${GATEWAY_BINS:-}; do gw_bins[${kv%%=*}]=${kv#*=}; PROXIES="$PROXIES gw_${kv%%=*}"; done
work="$root/.bench/gateway"
rm -rf "$work" && mkdir -p "$work"

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then
  echo "bench: installing ${need[*]} from Debian" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
[[ " $UPSTREAMS " == *" anvil "* ]] && scripts/install-peers.sh
cargo build --release --locked -q -p iotex-gateway -p iotex-tests --bin iotex-gateway --bin bare-proxy
gw_bin="$root/target/release/iotex-gateway"
bare_bin="$root/target/release/bare-proxy"
tck=$(getconf CLK_TCK)

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

# CPU ticks (utime+stime) of a process and its children (nginx's workers are the master's children).
cpu_ticks() {
  local all=("$1") t=0 p
  for p in $(cat /proc/"$1"/task/*/children 2>/dev/null); do all+=("$p"); done
  for p in "${all[@]}"; do
    t=$(( t + $(sed 's/.*) //' /proc/"$p"/stat 2>/dev/null | awk '{print $12 + $13}' || echo 0) ))
  done
  echo "$t"
}

sink_port=$(free_port); sink_status=$(free_port)
nginx_conf sink 1 "server { listen 127.0.0.1:$sink_port; default_type application/json;
    location / { return 200 '{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"0x1\"}'; } }
  server { listen 127.0.0.1:$sink_status; location / { stub_status; } }"
wait_port "$sink_port"
declare -A up_port=([sink]=$sink_port)
if [[ " $UPSTREAMS " == *" anvil "* ]]; then
  up_port[anvil]=$(free_port)
  tools/peers/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil --host 127.0.0.1 --port "${up_port[anvil]}" \
    --chain-id 4689 --silent >/dev/null 2>&1 &
  pids+=($!)
  wait_port "${up_port[anvil]}"
fi
# Calls the sink has answered so far (anvil has no counter: "-").
upstream_calls() { [ "$1" = sink ] && curl -sf "http://127.0.0.1:$sink_status/" | awk 'NR==3 {print $3}' || echo -; }

declare -A url pid
targets=()
for up in $UPSTREAMS; do
  url[$up/direct]="http://127.0.0.1:${up_port[$up]}/"
  targets+=("$up/direct")
  for n in $THREADS; do
    for proxy in $PROXIES; do
      p=$(free_port)
      case $proxy in
        nginx)
          nginx_conf "nginx-$up-$n" "$n" "upstream up { server 127.0.0.1:${up_port[$up]}; keepalive 128; }
            server { listen 127.0.0.1:$p; location / { proxy_pass http://up; proxy_http_version 1.1;
              proxy_set_header Connection \"\"; proxy_buffering off; } }" ;;
        bare)
          "$bare_bin" --listen "127.0.0.1:$p" --upstream "http://127.0.0.1:${up_port[$up]}/" --threads "$n" \
            >"$work/bare-$up-$n.log" 2>&1 &
          pids+=($!) ;;
        gateway|gw_*)
          a=$(free_port)
          bin=$gw_bin; [ "$proxy" = gateway ] || bin=${gw_bins[${proxy#gw_}]}
          # Builds from before the gRPC listener do not know --grpc-listen; later ones would all bind 14014.
          grpc=(); "$bin" --help 2>/dev/null | grep -q -- --grpc-listen && grpc=(--grpc-listen 127.0.0.1:0)
          RUST_LOG=warn "$bin" --listen "127.0.0.1:$p" --admin-listen "127.0.0.1:$a" "${grpc[@]}" --worker-threads "$n" \
            --upstream "$up=http://127.0.0.1:${up_port[$up]}" --log-format json ${GATEWAY_ARGS:-} \
            >"$work/$proxy-$up-$n.log" 2>&1 &
          pids+=($!)
          for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$a/readyz" >/dev/null && break; sleep 0.05; done ;;
      esac
      pid[$up/$proxy-$n]=${pids[-1]}
      url[$up/$proxy-$n]="http://127.0.0.1:$p/"
      targets+=("$up/$proxy-$n")
      wait_port "$p"
    done
  done
done

run_wrk() { # workload url secs conns delay_ms -> RESULT line
  WRK_WORKLOAD=$1 WRK_DELAY_MS=$5 wrk -t1 -c"$4" -d"${3}s" -s bench/post.lua "$2" 2>&1 | grep '^RESULT' ||
    echo "RESULT rps=0 requests=0 p50_us=0 p99_us=0 p999_us=0 errors=-1 non2xx=-1"
}
field() { sed -E "s/.*\b$2=([-0-9.]+).*/\1/" <<<"$1"; }
# One measured wrk run with the proxy's CPU and the sink's count around it: RESULT ... cpu_us=.. upstream=..
measure() { # target workload secs conns delay_ms
  local t=$1 up=${1%%/*} c0 c1 u0 u1 r
  c0=$([ -n "${pid[$t]:-}" ] && cpu_ticks "${pid[$t]}" || echo 0); u0=$(upstream_calls "$up")
  r=$(run_wrk "$2" "${url[$t]}" "$3" "$4" "$5")
  c1=$([ -n "${pid[$t]:-}" ] && cpu_ticks "${pid[$t]}" || echo 0); u1=$(upstream_calls "$up")
  local n; n=$(field "$r" requests)
  local cpu; cpu=$([ -n "${pid[$t]:-}" ] && [ "$n" -gt 0 ] && python3 -c "print(f'{($c1-$c0)*1e6/$tck/$n:.1f}')" || echo -1)
  local ups; ups=$([ "$u0" != - ] && echo $(( u1 - u0 )) || echo -1)
  echo "$r cpu_us=$cpu upstream=$ups"
}

declare -A res
for wl in $WORKLOADS; do
  for t in "${targets[@]}"; do
    run_wrk "$wl" "${url[$t]}" 2 "$CONNS" 0 >/dev/null  # warm-up: connections, pools
    res[$wl/$t/max]=$(measure "$t" "$wl" "$MAX_SECS" "$CONNS" 0)
  done
  for up in $UPSTREAMS; do
    slowest=$(for t in "${targets[@]}"; do [[ $t == $up/* && $t != */direct ]] && field "${res[$wl/$t/max]}" rps; done | sort -g | head -1)
    rate=$(python3 -c "print(max(1, int(${slowest:-1000} * $FIXED_PCT / 100)))")
    delay=$(python3 -c "print(max(1, int($FIXED_CONNS * 1000 / $rate)))")
    res[$wl/$up/rate]=$rate
    for t in "${targets[@]}"; do
      [[ $t == $up/* ]] || continue
      res[$wl/$t/fixed]=$(measure "$t" "$wl" "$FIXED_SECS" "$FIXED_CONNS" "$delay")
    done
  done
done

python3 - "$WORKLOADS" "$UPSTREAMS" "$FIXED_PCT" "$FIXED_CONNS" "$CONNS" "${targets[@]}" -- \
  $(for k in "${!res[@]}"; do printf '%s|%s\n' "$k" "${res[$k]// /,}"; done) <<'PY'
import re, sys
args = sys.argv[1:]
workloads, upstreams, pct, fconns, conns = args[0].split(), args[1].split(), args[2], args[3], args[4]
sep = args.index("--")
targets, raw = args[5:sep], args[sep + 1:]
res = {}
for item in raw:
    k, v = item.split("|", 1)
    res[k] = v if k.endswith("/rate") else dict((a, float(b)) for a, b in re.findall(r"(\w+)=([-0-9.]+)", v))
titles = {"distinct": "distinct, uncacheable calls (eth_getBalance of a new address at latest) -- the headline",
          "identical": "identical calls (eth_blockNumber on every connection) -- what coalescing buys"}
for wl in workloads:
    print(f"\n== Workload: {titles.get(wl, wl)}")
    print(f"{'target':18} {'max_rps':>9} {'cpu_us/call':>11} {'p50_ms':>8} {'p99_ms':>8} {'p999_ms':>8} "
          f"{'cpu_us@fixed':>12} {'up/client':>9} {'errors':>6}")
    for t in targets:
        m, f = res[f"{wl}/{t}/max"], res[f"{wl}/{t}/fixed"]
        cpu = lambda r: "-" if r["cpu_us"] < 0 else f"{r['cpu_us']:.1f}"
        calls, ups = m["requests"] + f["requests"], m["upstream"] + f["upstream"]
        ratio = "-" if ups < 0 or calls == 0 else f"{ups / calls:.3f}"
        errs = int(m["errors"] + m["non2xx"] + f["errors"] + f["non2xx"])
        print(f"{t:18} {m['rps']:9.0f} {cpu(m):>11} {f['p50_us']/1000:8.3f} {f['p99_us']/1000:8.3f} "
              f"{f['p999_us']/1000:8.3f} {cpu(f):>12} {ratio:>9} {errs:6}")
    for up in upstreams:
        print(f"   ({up}: latency and cpu@fixed at ~{res[f'{wl}/{up}/rate']} req/s = {pct}% of the slowest proxy's "
              f"max, {fconns} connections; max with {conns} connections)")
print("\nRatios (same run; CPU per call at max throughput):")
for wl in workloads:
    for t in targets:
        up, name = t.split("/")
        if not name.startswith(("gateway-", "gw_")):
            continue
        gw, n = name.rsplit("-", 1)
        g = res[f"{wl}/{t}/max"]
        parts = []
        for other in ("bare", "nginx"):
            o = res.get(f"{wl}/{up}/{other}-{n}/max")
            if o and o["rps"] > 0 and o["cpu_us"] > 0:
                parts.append(f"vs {other}: throughput {g['rps']/o['rps']:.2f}x, CPU/call {g['cpu_us']/o['cpu_us']:.2f}x")
        b, x = res.get(f"{wl}/{up}/bare-{n}/max"), res.get(f"{wl}/{up}/nginx-{n}/max")
        if b and x and x["cpu_us"] > 0:
            parts.append(f"(bare vs nginx: throughput {b['rps']/x['rps']:.2f}x, CPU/call {b['cpu_us']/x['cpu_us']:.2f}x)")
        print(f"  {wl:9} {up} {n} thread(s): {gw} " + "; ".join(parts))
PY
