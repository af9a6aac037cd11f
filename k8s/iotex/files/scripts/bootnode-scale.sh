#!/bin/sh
# Stops and restarts the boot node around a backup, so its databases are closed while backup.sh reads them.
#   bootnode-scale.sh stop    scale the StatefulSet to 0 and poll (every POLL_SECONDS, at most STOP_TIMEOUT s)
#                             until its pod is gone; on timeout, or if the pod cannot be read, scale it back
#                             to 1 and fail (never a backup of a live database).
#   bootnode-scale.sh start   scale back to 1 (bounded retries), then exit with backup.sh's status.
set -u
log() { printf '%s bootnode-scale: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
sts="${BOOTNODE_STS:?BOOTNODE_STS is not set}"
timeout="${STOP_TIMEOUT:-300}"
poll="${POLL_SECONDS:-5}"

scale() {
  n=1
  while [ "$n" -le 5 ]; do
    kubectl scale statefulset "$sts" --replicas="$1" && return 0
    log "scale to $1 failed (try $n/5)"; sleep 5; n=$((n + 1))
  done
  return 1
}

case "${1:-}" in
  stop)
    log "stopping $sts"
    scale 0 || exit 1
    waited=0
    while :; do
      if ! pod="$(kubectl get pod "$sts-0" --ignore-not-found -o name)"; then
        log "cannot read pod $sts-0: restarting the boot node, no backup this time"
        scale 1
        exit 1
      fi
      [ -z "$pod" ] && break
      if [ "$waited" -ge "$timeout" ]; then
        log "$sts-0 did not stop within ${timeout}s: restarting it, no backup this time"
        scale 1
        exit 1
      fi
      sleep "$poll"
      waited=$((waited + poll))
    done
    log "$sts-0 stopped" ;;
  start)
    log "starting $sts"
    scale 1 || { log "could not restart $sts: it stays at 0 replicas, fix by hand"; exit 1; }
    status="$(cat "${STATUS_FILE:?}" 2>/dev/null || echo 1)"
    log "backup status: $status"
    exit "$status" ;;
  *) echo "usage: bootnode-scale.sh stop|start" >&2; exit 2 ;;
esac
