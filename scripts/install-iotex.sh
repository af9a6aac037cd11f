#!/usr/bin/env bash
# Builds a real iotex-server (and iotex-p2p-id, which derives node peer IDs) from published Go modules,
# once per version, into a cache outside the work tree; prints the iotex-server path last.
# With the argument `actioninjector` it builds IoTeX's own load tool, tools/actioninjector.v2 of the same
# pinned iotex-core module (a second `tool` of the same wrapper), and prints its path instead; with `ioctl`,
# IoTeX's operator CLI, tools/ioctl (a third `tool`), likewise.
#
#   scripts/install-iotex.sh                 # the default version (see below)
#   IOTEX_VERSION=v2.4.4 scripts/install-iotex.sh
#   scripts/install-iotex.sh actioninjector  # for scripts/bench-vs-actioninjector.sh
#   scripts/install-iotex.sh ioctl           # for tests/tests/it/iotex_grpc_clients.rs
#
# The wrapper module for each version is tools/iotex-node/<version>/ (our own go.mod + go.sum: it
# repeats iotex-core's replace lines, which Go ignores in a dependency). Nothing of iotex-core is in
# this repository. Idempotent: a cached binary whose key (version, Go version, tags, wrapper hash)
# matches is reused at once. Exits non-zero naming the module@version the Go module proxy refused.
#
# Default v2.1.0: the newest iotex-core release whose whole dependency graph the Go module proxy serves
# here. v2.4.4 needs github.com/envestcc/erigon@v0.0.0-20251229032433-18f245cc374a, which the proxy
# refuses (403); see tools/iotex-node/README.md.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="${IOTEX_VERSION:-v2.1.0}"
log() { printf 'install-iotex: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
what="${1:-server}"
case "$what" in
  server|actioninjector|ioctl) ;;
  *) die "unknown argument '$what': give nothing (iotex-server), 'actioninjector' or 'ioctl'";;
esac

wrapper="$root/tools/iotex-node/$version"
[ -f "$wrapper/go.mod" ] || die "no wrapper module for iotex-core $version (tools/iotex-node/$version/go.mod); have: $(ls "$root/tools/iotex-node" | grep '^v' | tr '\n' ' ')"
command -v go >/dev/null || die "go not found on PATH: iotex-server is built from its Go module (Go >= 1.24 needed)"
for cc in gcc g++; do command -v "$cc" >/dev/null || die "$cc not found: iotex-server links C (libmdbx, secp256k1) and C++ (go-libutp) code"; done
export GOTOOLCHAIN=local CGO_ENABLED=1
# The checksum database mirror here has no entries for iotex-core's own modules and forks (404). Their
# hashes are pinned by the committed go.sum instead, which -mod=readonly enforces.
export GONOSUMDB="${GONOSUMDB:+$GONOSUMDB,}github.com/iotexproject,github.com/envestcc,github.com/ledgerwatch,github.com/erigontech"
gover="$(go env GOVERSION)"
case "$gover" in go1.2[4-9]*|go1.[3-9][0-9]*) ;; *) die "Go $gover is too old: iotex-core needs Go >= 1.24 (go get -tool)";; esac

tags=nosilkworm
wrapper_hash="$(cat "$wrapper"/go.* | sha256sum | cut -c1-12)"
key="iotex-server-$version-$gover-$tags-$wrapper_hash"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/iotex-toolkit/iotex-node"
bin="$cache/$key/iotex-server"
p2p_bin="$cache/p2p-id-$gover-$(cat "$root/tools/p2p-id/"*.go "$root/tools/p2p-id/go.mod" | sha256sum | cut -c1-12)/iotex-p2p-id"
mkdir -p "$cache"

# One build at a time per cache (tests and the demo may call this concurrently).
exec 9>"$cache/.lock"
flock 9

# iotex-p2p-id: standard library only, builds in seconds.
if ! [ -x "$p2p_bin" ]; then
  log "building iotex-p2p-id (tools/p2p-id)"
  mkdir -p "$(dirname "$p2p_bin")"
  (cd "$root/tools/p2p-id" && go build -trimpath -o "$p2p_bin.tmp" .) || die "go build of tools/p2p-id failed"
  mv "$p2p_bin.tmp" "$p2p_bin"
fi
ln -sfn "$p2p_bin" "$cache/iotex-p2p-id"

# go_build NAME PACKAGE OUT [TAGS]: builds one tool of the wrapper module into OUT, or dies naming the
# module@version the Go module proxy refused (or the first compiler errors).
go_build() {
  local name="$1" pkg="$2" out="$3" tags="${4:-}" mode start refused
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  # Build in a copy, so the work tree is never touched (go may add go.sum lines for a version without one).
  cp "$wrapper/go.mod" "$work/"
  [ -f "$wrapper/go.sum" ] && cp "$wrapper/go.sum" "$work/"
  mode=readonly
  [ -f "$wrapper/go.sum" ] || mode=mod
  start=$(date +%s)
  if ! (cd "$work" && GOFLAGS="-mod=$mode" go build -trimpath ${tags:+-tags "$tags"} \
          -ldflags "-X github.com/iotexproject/iotex-core/v2/pkg/version.PackageVersion=$version" \
          -o "$work/$name" "$pkg") >"$work/build.log" 2>&1; then
    refused="$(grep -oE '[A-Za-z0-9._/-]+@v[^:]+: reading https?://[^ ]+: (403|404|410)[^"]*' "$work/build.log" \
               | sed -E 's/: reading ([^ ]+): ([0-9]+).*/ (HTTP \2)/' | sort -u || true)"
    if [ -n "$refused" ]; then
      log "the Go module proxy refused:"
      printf '%s\n' "$refused" | sed 's/^/  /' >&2
      die "cannot build $name $version here: the module(s) above are not served"
    fi
    grep -v '^go: downloading' "$work/build.log" | head -20 >&2
    die "go build of $name $version ($pkg) failed (first lines above; gcc: $(gcc -dumpversion))"
  fi
  mkdir -p "$(dirname "$out")"
  mv "$work/$name" "$out"
  log "built $name in $(( $(date +%s) - start ))s: $(du -h "$out" | cut -f1)"
}

# A tool of the wrapper module other than the node: same module graph as the node (one wrapper, several
# `tool` lines), so node and tools are always of one release. No cgo-only tags: the tools link no
# erigon/silkworm code.
case "$what" in
  actioninjector) tool_pkg=github.com/iotexproject/iotex-core/v2/tools/actioninjector.v2 ;;
  ioctl) tool_pkg=github.com/iotexproject/iotex-core/v2/tools/ioctl ;;
  *) tool_pkg= ;;
esac
if [ -n "$tool_pkg" ]; then
  tool_bin="$cache/$what-$version-$gover-$wrapper_hash/$what"
  if ! [ -x "$tool_bin" ]; then
    grep -q "^[[:space:]]*\(tool[[:space:]]\+\)\?$tool_pkg\$" "$wrapper/go.mod" \
      || die "tools/iotex-node/$version/go.mod has no 'tool $tool_pkg' line (add it with go get -tool)"
    log "building $what $version from $tool_pkg ($gover)"
    go_build "$what" "$tool_pkg" "$tool_bin"
  fi
  ln -sfn "$tool_bin" "$cache/$what"
  echo "$tool_bin"
  exit 0
fi

if [ -x "$bin" ]; then
  ln -sfn "$bin" "$cache/iotex-server"
  echo "$bin"
  exit 0
fi

log "building iotex-server $version from github.com/iotexproject/iotex-core/v2 ($gover, -tags $tags)"
log "a cold build downloads ~1 GB of modules and compiles for about 3-6 minutes on 2 cores; later runs reuse $cache"
go_build iotex-server github.com/iotexproject/iotex-core/v2/server "$bin" "$tags"
ln -sfn "$bin" "$cache/iotex-server"
echo "$bin"
