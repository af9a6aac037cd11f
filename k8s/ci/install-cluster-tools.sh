#!/usr/bin/env bash
# Builds the pinned tools of the test control plane from their published Go modules, through the Go
# module proxy, into a cache outside the work tree (a warm run only checks stamps and exits at once):
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl   k8s.io/kubernetes   tools/k8s/control-plane
#   etcd                                                                go.etcd.io/etcd/server/v3   tools/k8s/etcd
#   kwok (fake nodes that "run" pods)                                   sigs.k8s.io/kwok   tools/k8s/kwok
#   helm                                                                helm.sh/helm/v3    tools/k8s/helm
# Each tools/k8s/<name> is a wrapper module of ours (go.mod + go.sum, plus etcd's one-line main.go): the
# versions are the ones its go.mod pins and go.sum verifies; no upstream source is in the repository.
# Prints the cache's bin directory on stdout (everything else goes to stderr).
#   K8S_TOOLS_CACHE   where binaries go (default ${XDG_CACHE_HOME:-$HOME/.cache}/iotex-toolkit/k8s)
set -euo pipefail
ci="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$ci/../.." && pwd)"
wrappers="$repo/tools/k8s"
cache="${K8S_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/iotex-toolkit/k8s}"
log() { printf 'install-cluster-tools: %s\n' "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

command -v go >/dev/null 2>&1 || die "no 'go' on PATH: these tools are built from Go modules (Go >= 1.26 and the Go module proxy)"
# local: never download another toolchain; readonly: build exactly what go.mod/go.sum pin, never edit them.
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly
mkdir -p "$cache/bin"

# The version a wrapper's go.mod pins for a module (one source of truth: the go.mod).
pinned() {
  awk -v m="$2" '$1 == m && $2 ~ /^v/ {print $2; exit} $1 == "require" && $2 == m {print $3; exit}' "$wrappers/$1/go.mod"
}

k8s_version="$(pinned control-plane k8s.io/kubernetes)"
etcd_version="$(pinned etcd go.etcd.io/etcd/server/v3)"
kwok_version="$(pinned kwok sigs.k8s.io/kwok)"
helm_version="$(pinned helm helm.sh/helm/v3)"
helm_client_go="$(pinned helm k8s.io/client-go)"
for v in k8s_version etcd_version kwok_version helm_version helm_client_go; do
  [ -n "${!v}" ] || die "cannot read the pinned version ($v) from $wrappers/*/go.mod"
done

# Version stamps, so that /version reports v1.37.2 (helm checks the chart's kubeVersion against it) and
# `helm template` assumes the Kubernetes minor helm was built for, not its v1.20 source default.
k8s_minor="$(echo "$k8s_version" | cut -d. -f2)"
k8s_ldflags=""
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $p.gitVersion=$k8s_version -X $p.gitMajor=1 -X $p.gitMinor=$k8s_minor"
  k8s_ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=2026-01-01T00:00:00Z"
done
helm_minor="$(echo "$helm_client_go" | cut -d. -f2)"
helm_ldflags="-X helm.sh/helm/v3/internal/version.version=$helm_version -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for p in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  helm_ldflags+=" -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$helm_minor"
done
etcd_ldflags=""
kwok_ldflags=""  # kwok stamps its own version in pkg/consts

# One build at a time per cache (two test runs starting together must not both link 1 GB binaries).
exec 9>"$cache/.lock"
flock 9

# build NAME WRAPPER VERSION MINUTES LDFLAGS BINARY:PACKAGE...
# Skipped when every binary is present and the stamp (wrapper files, flags, Go version) is unchanged.
build() {
  local name="$1" wrapper="$2" version="$3" minutes="$4" ldflags="$5"; shift 5
  local dir="$cache/$name-$version" stamp spec bin pkgs=() bins=() ok=1
  stamp="$( (cat "$wrappers/$wrapper"/go.mod "$wrappers/$wrapper"/go.sum "$wrappers/$wrapper"/*.go 2>/dev/null; \
             echo "$ldflags"; go version) | sha256sum | cut -d' ' -f1)"
  for spec in "$@"; do bins+=("${spec%%:*}"); pkgs+=("${spec#*:}"); done
  for bin in "${bins[@]}"; do [ -x "$dir/bin/$bin" ] || ok=0; done
  if [ "$ok" = 1 ] && [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$stamp" ]; then
    for bin in "${bins[@]}"; do ln -sf "$dir/bin/$bin" "$cache/bin/$bin"; done
    return 0
  fi
  log "building $name $version (${bins[*]}) from the Go module proxy; a cold build takes about $minutes min on 2 cores"
  rm -rf "$dir/bin.tmp" && mkdir -p "$dir/bin.tmp"
  local started=$SECONDS out="$dir/build.log"
  ( cd "$wrappers/$wrapper" && go build -trimpath -ldflags "-s -w $ldflags" -o "$dir/bin.tmp/" "${pkgs[@]}" ) >"$out" 2>&1 &
  local pid=$!
  # A progress line a minute, so a 20-minute link does not look like a hang.
  while kill -0 "$pid" 2>/dev/null; do
    sleep 5
    if [ $(( (SECONDS - started) % 60 )) -lt 5 ] && [ $((SECONDS - started)) -ge 60 ]; then
      log "  still building $name $version ($(( (SECONDS - started) / 60 )) min)"
    fi
  done
  if ! wait "$pid"; then
    tail -n 30 "$out" >&2
    # Name what the proxy refused (403 "not available", 404, 410), so the failure says which module@version.
    grep -Eo '[A-Za-z0-9./_-]+@v[^:[:space:]]+: (reading|verifying|unrecognized|invalid)[^"]*' "$out" | sort -u | head -5 >&2 || true
    die "go build of $name $version in tools/k8s/$wrapper (log: $out)"
  fi
  rm -rf "$dir/bin" && mv "$dir/bin.tmp" "$dir/bin"
  echo "$stamp" >"$dir/.stamp"
  for bin in "${bins[@]}"; do ln -sf "$dir/bin/$bin" "$cache/bin/$bin"; done
  log "built $name $version in $(( SECONDS - started ))s"
}

build kubernetes control-plane "$k8s_version" 15-35 "$k8s_ldflags" \
  kube-apiserver:k8s.io/kubernetes/cmd/kube-apiserver \
  kube-controller-manager:k8s.io/kubernetes/cmd/kube-controller-manager \
  kube-scheduler:k8s.io/kubernetes/cmd/kube-scheduler \
  kubectl:k8s.io/kubernetes/cmd/kubectl
build etcd etcd "$etcd_version" 2-5 "$etcd_ldflags" etcd:iotex-toolkit/tools/etcd
build kwok kwok "$kwok_version" 3-6 "$kwok_ldflags" kwok:sigs.k8s.io/kwok/cmd/kwok
build helm helm "$helm_version" 3-8 "$helm_ldflags" helm:helm.sh/helm/v3/cmd/helm

# The binaries must say the pinned versions (a stale link or a wrong ldflag shows here, not mid-test).
# (Output captured first: `grep -q` closing the pipe early would make the command die of SIGPIPE.)
check() { local out; out="$("$@" 2>&1)" || true; [[ "$out" == *"$VERSION"* ]] || die "'$*' does not report $VERSION"; }
VERSION="$k8s_version" check "$cache/bin/kube-apiserver" --version
VERSION="$k8s_version" check "$cache/bin/kubectl" version --client
VERSION="$helm_version" check "$cache/bin/helm" version --short
VERSION="etcd Version: ${etcd_version#v}" check "$cache/bin/etcd" --version
log "ready in $cache/bin: kubernetes $k8s_version, etcd $etcd_version, kwok $kwok_version, helm $helm_version"
echo "$cache/bin"
