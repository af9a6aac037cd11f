#!/usr/bin/env bash
# A real Kubernetes control plane on loopback, for testing the chart beyond `helm template`:
#   control-plane.sh up DIR     etcd, kube-apiserver (admission on, PodSecurity and RBAC included),
#                               kube-controller-manager, kube-scheduler and kwok with FAKE_NODES (4) fake
#                               nodes; the prometheus-operator CRDs (ServiceMonitor, PodMonitor,
#                               PrometheusRule) from their published manifests. Writes DIR/kubeconfig and
#                               DIR/env (`. DIR/env` sets KUBECONFIG and puts the pinned kubectl and helm
#                               first on PATH). Returns once the API answers and >= 3 fake nodes are Ready.
#   control-plane.sh down DIR   stops everything `up` started in DIR (nothing stays running).
# The binaries come from install-cluster-tools.sh (built from their Go modules, cached by version).
# Every process listens on 127.0.0.1 only. kwok writes pod status as a kubelet would, but no container
# ever runs: pods get Running/Succeeded and made-up IPs that nothing dials (there is no kube-proxy or CNI).
set -euo pipefail
ci="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$ci/../.." && pwd)"
log() { printf 'control-plane: %s\n' "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }
usage() { echo "usage: control-plane.sh up DIR | down DIR" >&2; exit 2; }

[ $# -eq 2 ] || usage
cmd="$1"
mkdir -p "$2"
dir="$(cd "$2" && pwd)"
components=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

alive() { [ -f "$dir/run/$1.pid" ] && kill -0 "$(cat "$dir/run/$1.pid")" 2>/dev/null; }

down() {
  local c pid n
  # Reverse order: controllers first, etcd last, so nothing logs a lost-etcd storm on the way down.
  for ((n = ${#components[@]} - 1; n >= 0; n--)); do
    c="${components[$n]}"
    [ -f "$dir/run/$c.pid" ] || continue
    pid="$(cat "$dir/run/$c.pid")"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$c ($pid) ignored SIGTERM for 20 s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
    fi
    kill -0 "$pid" 2>/dev/null && die "$c ($pid) is still running"
    rm -f "$dir/run/$c.pid"
  done
  log "stopped everything started in $dir"
}

if [ "$cmd" = down ]; then down; exit 0; fi
[ "$cmd" = up ] || usage

started=$SECONDS
bin="$(bash "$ci/install-cluster-tools.sh")" || die "the pinned tools could not be built (see above)"
kubectl="$bin/kubectl"

running=0
for c in "${components[@]}"; do alive "$c" && running=$((running + 1)); done
if [ "$running" -gt 0 ]; then
  [ "$running" = "${#components[@]}" ] || die "$dir has $running of ${#components[@]} components running: run 'control-plane.sh down $dir' first"
  log "already up in $dir"
  exit 0
fi

# A partly started plane (failed `up`) is stopped before we give up, so nothing is left running.
trap 'rc=$?; if [ $rc -ne 0 ]; then log "up failed: stopping what was started; logs in $dir/logs"; down || true; fi' EXIT

rm -rf "$dir/pki" "$dir/etcd" "$dir/run" "$dir/logs"
mkdir -p "$dir/pki" "$dir/etcd" "$dir/run" "$dir/logs"
chmod 700 "$dir/pki" "$dir/etcd"

read -r p_etcd p_peer p_api p_kcm p_sched < <(python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(5)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
PY
)

# --- certificates: a CA, the API server's serving cert, one client cert per identity, the SA key ---
pki="$dir/pki"
openssl_quiet() { openssl "$@" 2>>"$dir/logs/openssl.log" || die "openssl $1 (see $dir/logs/openssl.log)"; }
openssl_quiet req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=iotex-ci-ca" -keyout "$pki/ca.key" -out "$pki/ca.crt"
cert() { # name subject [extensions]
  openssl_quiet req -newkey rsa:2048 -nodes -subj "$2" -keyout "$pki/$1.key" -out "$pki/$1.csr"
  printf '%s\n' "${3:-extendedKeyUsage=clientAuth}" >"$pki/$1.ext"
  openssl_quiet x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 2 \
    -extfile "$pki/$1.ext" -out "$pki/$1.crt"
}
cert apiserver "/CN=kube-apiserver" \
  "subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc
extendedKeyUsage=serverAuth"
cert admin "/O=system:masters/CN=iotex-ci-admin"
# The controller manager and scheduler use their own identities, so RBAC's bootstrap roles are what they get.
cert controller-manager "/CN=system:kube-controller-manager"
cert scheduler "/CN=system:kube-scheduler"
openssl_quiet genrsa -out "$pki/sa.key" 2048
openssl_quiet rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub"

kubeconfig() { # file user
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: iotex-ci
    cluster: {server: "https://127.0.0.1:$p_api", certificate-authority: "$pki/ca.crt"}
users:
  - name: $2
    user: {client-certificate: "$pki/$2.crt", client-key: "$pki/$2.key"}
contexts:
  - name: iotex-ci
    context: {cluster: iotex-ci, user: $2}
current-context: iotex-ci
EOF
}
kubeconfig "$dir/kubeconfig" admin
kubeconfig "$pki/controller-manager.kubeconfig" controller-manager
kubeconfig "$pki/scheduler.kubeconfig" scheduler

start() { # name args...: its own process group (setsid), so `down` stops it and only it
  local name="$1"; shift
  setsid "$bin/$name" "$@" >"$dir/logs/$name.log" 2>&1 < /dev/null &
  echo $! >"$dir/run/$name.pid"
}
wait_for() { # what seconds command...
  local what="$1" limit="$2" t=0; shift 2
  until "$@" >/dev/null 2>&1; do
    for c in "${components[@]}"; do
      if [ -f "$dir/run/$c.pid" ] && ! alive "$c"; then tail -n 20 "$dir/logs/$c.log" >&2; die "$c exited (log: $dir/logs/$c.log)"; fi
    done
    t=$((t + 1)); [ "$t" -le "$((limit * 2))" ] || die "$what not ready within ${limit}s"
    sleep 0.5
  done
}

# --- etcd (plain HTTP on loopback; fsync off: a throwaway test store on a shared disk) ---
start etcd --name ci --data-dir "$dir/etcd" --log-level warn --unsafe-no-fsync \
  --listen-client-urls "http://127.0.0.1:$p_etcd" --advertise-client-urls "http://127.0.0.1:$p_etcd" \
  --listen-peer-urls "http://127.0.0.1:$p_peer" --initial-advertise-peer-urls "http://127.0.0.1:$p_peer" \
  --initial-cluster "ci=http://127.0.0.1:$p_peer"
wait_for etcd 60 curl -sf "http://127.0.0.1:$p_etcd/health"

# --- kube-apiserver: RBAC authorization; the default admission plugins (PodSecurity, ServiceAccount,
# LimitRanger, ResourceQuota, DefaultStorageClass, ...) plus NodeRestriction, named so that a default
# change cannot silently drop PodSecurity. The endpoint reconciler is off: it refuses a loopback advertise
# address, and it only maintains the `kubernetes` Service's endpoints, which no pod here ever dials ---
start kube-apiserver --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$p_api" \
  --etcd-servers="http://127.0.0.1:$p_etcd" \
  --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" --client-ca-file="$pki/ca.crt" \
  --service-account-issuer=https://kubernetes.default.svc --service-account-key-file="$pki/sa.pub" \
  --service-account-signing-key-file="$pki/sa.key" --api-audiences=https://kubernetes.default.svc \
  --service-cluster-ip-range=10.96.0.0/16 --authorization-mode=RBAC --endpoint-reconciler-type=none \
  --enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,DefaultStorageClass,ResourceQuota,PodSecurity,NodeRestriction,Priority,DefaultTolerationSeconds,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy \
  --allow-privileged=false --profiling=false --cert-dir="$pki/apiserver-generated"
wait_for kube-apiserver 120 "$kubectl" --kubeconfig "$dir/kubeconfig" get --raw /readyz

# --- controllers (with per-controller service accounts, as a real cluster runs them) and scheduler ---
start kube-controller-manager --kubeconfig="$pki/controller-manager.kubeconfig" \
  --authentication-kubeconfig="$pki/controller-manager.kubeconfig" --authorization-kubeconfig="$pki/controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 --secure-port="$p_kcm" --leader-elect=false --use-service-account-credentials=true \
  --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
  --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
  --cert-dir="$pki/kcm-generated" --profiling=false
start kube-scheduler --kubeconfig="$pki/scheduler.kubeconfig" \
  --authentication-kubeconfig="$pki/scheduler.kubeconfig" --authorization-kubeconfig="$pki/scheduler.kubeconfig" \
  --bind-address=127.0.0.1 --secure-port="$p_sched" --leader-elect=false --profiling=false

# --- kwok: kwok's own published node and pod stages (from the pinned module), and ours (kwok-stages.yaml) ---
# (go mod download: the binary may be cached while the module cache was cleaned; it verifies against go.sum.)
kwok_dir="$(cd "$repo/tools/k8s/kwok" && GOTOOLCHAIN=local GOFLAGS=-mod=readonly go mod download -json sigs.k8s.io/kwok \
  | python3 -c 'import json, sys; print(json.load(sys.stdin).get("Dir", ""))')" || die "go mod download sigs.k8s.io/kwok (tools/k8s/kwok)"
[ -d "$kwok_dir/kustomize/stage" ] || die "kwok's published stages are not in its module ($kwok_dir)"
{
  for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
           pod/fast/pod-ready.yaml pod/fast/pod-delete.yaml; do
    cat "$kwok_dir/kustomize/stage/$f"; printf '\n---\n'
  done
  cat "$ci/kwok-stages.yaml"
} >"$dir/run/kwok-stages.yaml"
start kwok --kubeconfig="$dir/kubeconfig" --config="$dir/run/kwok-stages.yaml" \
  --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
  --node-lease-duration-seconds=40 --cidr=10.244.0.1/16 --node-ip=10.0.0.1

k() { "$kubectl" --kubeconfig "$dir/kubeconfig" "$@"; }
# The kube-system namespace and RBAC bootstrap roles exist once the API is ready; wait for the
# default ServiceAccount, which the controller manager creates (pods need it to be admitted).
wait_for "the default ServiceAccount" 120 k -n default get serviceaccount default

# --- fake nodes: FAKE_NODES (default 4) nodes over 2 zones, 64 CPU / 256 Gi / 110 pods each, and 64 Ti
# of ephemeral storage (delegates request their whole emptyDir chain copy) ---
nodes="${FAKE_NODES:-4}"
for i in $(seq 0 $((nodes - 1))); do
  cat <<EOF
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
  labels:
    kubernetes.io/hostname: kwok-node-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    topology.kubernetes.io/zone: zone-$((i % 2))
    type: kwok
status:
  allocatable: {cpu: "64", memory: 256Gi, pods: "110", ephemeral-storage: 64Ti}
  capacity: {cpu: "64", memory: 256Gi, pods: "110", ephemeral-storage: 64Ti}
---
EOF
done | k apply -f - >/dev/null
ready_nodes() { [ "$(k get nodes -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True)" -ge 3 ]; }
wait_for ">= 3 Ready fake nodes" 120 ready_nodes

# --- the prometheus-operator CRDs, from the published module (its zip carries the generated manifests;
# go verifies the zip against the checksum database, and we against the pinned hash) ---
po_module=github.com/prometheus-operator/prometheus-operator
po_version=v0.85.0
po_sum="h1:M5xLCLEoaW2IJfnuCwFzzpL+jSVQu3KGT84Pye+fW8s="
po_json="$(cd "$dir/run" && GOTOOLCHAIN=local GOFLAGS=-mod=mod go mod download -json "$po_module@$po_version" 2>&1)" \
  || die "go mod download $po_module@$po_version: $po_json"
po_dir="$(printf '%s' "$po_json" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["Dir"] if d.get("Sum") == sys.argv[1] else "")' "$po_sum")"
[ -n "$po_dir" ] || die "$po_module@$po_version: its checksum is not the pinned $po_sum"
for crd in servicemonitors podmonitors prometheusrules; do
  k apply --server-side -f "$po_dir/example/prometheus-operator-crd-full/monitoring.coreos.com_$crd.yaml" >/dev/null \
    || die "applying the $crd CRD from $po_module@$po_version"
done
k wait --for=condition=Established --timeout=60s crd/servicemonitors.monitoring.coreos.com \
  crd/podmonitors.monitoring.coreos.com crd/prometheusrules.monitoring.coreos.com >/dev/null

cat >"$dir/env" <<EOF
# . this file: the test control plane in $dir (control-plane.sh up/down)
export KUBECONFIG="$dir/kubeconfig"
export PATH="$bin:\$PATH"
EOF
trap - EXIT
log "up in $((SECONDS - started))s: API https://127.0.0.1:$p_api, $nodes fake nodes Ready, prometheus-operator $po_version CRDs; . $dir/env"
