#!/usr/bin/env bash
# A real IoTeX cluster on 127.0.0.1: 5 iotex-server processes (the boot node and 4 delegates, ROLLDPOS)
# configured by the Helm chart's own rendering, with only ports, paths and keys rewritten for loopback.
#
#   scripts/iotex-cluster.sh up DIR [--base-port N] [--owner-pid PID [--remove-on-exit]] [--values FILE]  # returns once every node is ready and blocks flow
#   scripts/iotex-cluster.sh status DIR                                  # each node: process, readiness, head
#   scripts/iotex-cluster.sh down DIR                                    # stops everything `up` started
#   scripts/iotex-cluster.sh start-node DIR NAME                         # restarts one stopped node (tests)
#
# `up` writes DIR/cluster.json (chain ids, each node's web3/ws/grpc/stats URLs and pid, funded dev keys).
# Node i uses ports BASE+10i .. BASE+10i+4 (p2p, gRPC, web3, WebSocket, stats); BASE defaults to 24600
# (IOTEX_CLUSTER_BASE_PORT). --owner-pid stops the cluster when that process exits.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
usage() { sed -n '5,8p' "${BASH_SOURCE[0]}" | sed 's/^# *//' >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd="$1"; shift
case "$cmd" in
  up)
    server="$("$root/scripts/install-iotex.sh")"
    p2p_id="$(dirname "$(dirname "$server")")/iotex-p2p-id"
    helm="${HELM:-}"
    if [ -z "$helm" ]; then
      bash "$root/k8s/ci/install-tools.sh" helm
      helm="$root/k8s/.tools/bin/helm"
    fi
    exec python3 "$root/scripts/lib/iotex_cluster.py" up "$@" --helm "$helm" --server "$server" --p2p-id "$p2p_id"
    ;;
  down|status|start-node)
    exec python3 "$root/scripts/lib/iotex_cluster.py" "$cmd" "$@"
    ;;
  *) usage ;;
esac
