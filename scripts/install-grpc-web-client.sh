#!/usr/bin/env bash
# Installs the tests' independent gRPC-web client of iotexapi.APIService (tools/grpc-web-client): Connect for
# ES (@connectrpc/connect-node, @connectrpc/connect-web) and protobuf-es, pinned by
# tools/grpc-web-client/package-lock.json, plus the message and service code that protoc-gen-es generates
# (through the buf compiler from npm) from iotex-proto's .proto files, fetched from the Go module proxy.
# Neither the generated code nor the .proto files are in this repository: everything goes into a cache
# outside the tree, keyed by the lockfile, the generation template and the iotex-proto version:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/iotex-toolkit/grpc-web-client-<key>/
# The first install ends with the client's self-test (tools/grpc-web-client/selftest.mjs: a Connect server
# in this process, the client over gRPC-web, gRPC-web-text and gRPC); it runs again when call.mjs or
# selftest.mjs change.
#
# Idempotent: when the cache is complete it only refreshes the copied client. Progress goes to stderr;
# the last line on stdout is the runnable client:  node <that path> --url ... --method ... (see call.mjs).
# Needs node and npm (Node.js 20 or newer) and go (to fetch the module).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$root/tools/grpc-web-client"
proto_module="github.com/iotexproject/iotex-proto"
proto_version="v0.6.4"

say() { echo "install-grpc-web-client: $*" >&2; }
fail() { say "FAILED: $*"; exit 1; }

command -v node >/dev/null 2>&1 || fail "node not found (Node.js 20 or newer is needed; scripts/install-peers.sh installs Debian's)"
command -v npm >/dev/null 2>&1 || fail "npm not found"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] || fail "node $(node --version) is too old; Node.js 20 or newer is needed"

key="$(cat "$src/package-lock.json" "$src/buf.gen.yaml" <(echo "$proto_module@$proto_version") | sha256sum | cut -c1-16)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/iotex-toolkit/grpc-web-client-$key"

if [ ! -f "$cache/.complete" ]; then
  command -v go >/dev/null 2>&1 || fail "go not found (needed to fetch $proto_module@$proto_version from the Go module proxy)"
  mkdir -p "$(dirname "$cache")"
  tmp="$(mktemp -d "$cache.tmp.XXXXXX")"
  trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
  say "installing into $cache"
  cp "$src/package.json" "$src/package-lock.json" "$src/buf.gen.yaml" "$tmp/"

  say "npm ci (pinned by tools/grpc-web-client/package-lock.json)"
  (cd "$tmp" && npm ci --no-audit --no-fund --loglevel=error >&2) || fail "npm ci in $tmp"

  say "fetching $proto_module@$proto_version (go mod download)"
  info="$(cd "$tmp" && go mod download -json "$proto_module@$proto_version")" \
    || fail "go mod download -json $proto_module@$proto_version: $info"
  dir="$(printf '%s' "$info" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);if(j.Error){console.error(j.Error);process.exit(1)}console.log(j.Dir)})')" \
    || fail "go mod download for $proto_module@$proto_version gave no directory"
  [ -f "$dir/proto/api/api.proto" ] || fail "$proto_module@$proto_version has no proto/api/api.proto in $dir"
  # The import paths in the files are "proto/types/...", relative to the module's root.
  mkdir -p "$tmp/iotex-proto/proto"
  cp -R "$dir/proto/api" "$dir/proto/types" "$tmp/iotex-proto/proto/"
  chmod -R u+w "$tmp/iotex-proto"

  say "generating the iotexapi code (buf generate, protoc-gen-es)"
  (cd "$tmp" && ./node_modules/.bin/buf generate iotex-proto --template buf.gen.yaml \
      --path iotex-proto/proto/api --path iotex-proto/proto/types >&2) || fail "buf generate (protoc-gen-es) in $tmp"
  [ -f "$tmp/gen/proto/api/api_pb.js" ] || fail "buf generate wrote no gen/proto/api/api_pb.js"
  echo "$proto_module@$proto_version" > "$tmp/.complete"
  if ! mv -T "$tmp" "$cache" 2>/dev/null; then
    [ -f "$cache/.complete" ] || fail "could not move $tmp to $cache"
    say "another install finished first; using it"
  fi
  trap - EXIT
  rm -rf "$tmp" 2>/dev/null || true
fi

# The client and its self-test live in the cache beside node_modules and gen/ (ES modules resolve their
# imports from their own directory). Copied atomically, so a concurrent install never shows half a file.
for f in call.mjs selftest.mjs; do
  if ! cmp -s "$src/$f" "$cache/$f"; then
    cp "$src/$f" "$cache/$f.tmp.$$" && mv -f "$cache/$f.tmp.$$" "$cache/$f"
  fi
done

tested="$(cat "$cache/call.mjs" "$cache/selftest.mjs" | sha256sum | cut -c1-16)"
if [ "$(cat "$cache/.selftest-ok" 2>/dev/null)" != "$tested" ]; then
  say "self-test: a Connect server in-process, the client over gRPC-web (HTTP/1.1 and HTTP/2), gRPC-web-text and gRPC"
  node "$cache/selftest.mjs" >&2 || fail "the client's self-test (node $cache/selftest.mjs)"
  echo "$tested" > "$cache/.selftest-ok"
fi

echo "$cache/call.mjs"
