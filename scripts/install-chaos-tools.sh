#!/usr/bin/env bash
# The tools of the network-chaos test (tests/tests/it/iotex_chaos.rs), which puts a real IoTeX cluster in a
# network namespace of its own, joined to the gateway by a veth pair:
#   - iproute2 (`ip netns`, `ip link`, `tc`): the namespace, the veth pair, the bandwidth cap (tbf);
#   - iptables-legacy (Debian's iptables): packet loss (`-m statistic --mode random`) and the partition.
#     The legacy backend because this machine's kernel has x_tables but no nf_tables;
#   - toxiproxy-server (github.com/Shopify/toxiproxy/v2, built from its Go module at the version pinned by
#     tools/toxiproxy/go.mod): the 200 ms delay, because the kernel has no netem qdisc (`tc qdisc add ...
#     netem` answers "Specified qdisc kind is unknown").
# Idempotent: what is there is reused, the toxiproxy build is cached by version under
# ~/.cache/iotex-toolkit. Prints the toxiproxy-server path last; exits non-zero naming what failed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf 'install-chaos-tools: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v ip >/dev/null || die "ip (iproute2) not found: the chaos test needs network namespaces"
command -v tc >/dev/null || die "tc (iproute2) not found"
if ! command -v iptables-legacy >/dev/null; then
  command -v apt-get >/dev/null || die "iptables-legacy not found and no apt-get to install Debian's iptables"
  log "installing Debian's iptables (for iptables-legacy)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends iptables >/tmp/install-chaos-apt.log 2>&1 \
    || { tail -5 /tmp/install-chaos-apt.log >&2; die "apt-get install iptables failed"; }
  command -v iptables-legacy >/dev/null || die "apt-get installed iptables but there is no iptables-legacy"
fi

wrapper="$root/tools/toxiproxy"
version="$(awk '$1 == "github.com/Shopify/toxiproxy/v2" {print $2}' "$wrapper/go.mod")"
[ -n "$version" ] || die "tools/toxiproxy/go.mod pins no github.com/Shopify/toxiproxy/v2 version"
command -v go >/dev/null || die "go not found on PATH: toxiproxy-server is built from its Go module"
export GOTOOLCHAIN=local
gover="$(go env GOVERSION)"
key="toxiproxy-$version-$gover-$(cat "$wrapper"/go.* | sha256sum | cut -c1-12)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/iotex-toolkit/chaos"
bin="$cache/$key/toxiproxy-server"
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if ! [ -x "$bin" ]; then
  log "building toxiproxy-server $version from its Go module (once per version)"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  cp "$wrapper/go.mod" "$wrapper/go.sum" "$work/"
  (cd "$work" && GOFLAGS=-mod=readonly go build -trimpath -o "$work/toxiproxy-server" \
     github.com/Shopify/toxiproxy/v2/cmd/server) >"$work/build.log" 2>&1 \
    || { tail -20 "$work/build.log" >&2; die "go build of github.com/Shopify/toxiproxy/v2/cmd/server@$version failed"; }
  mkdir -p "$(dirname "$bin")"
  mv "$work/toxiproxy-server" "$bin"
fi
log "ready: iptables-legacy, ip, tc, toxiproxy-server $version"
echo "$bin"
