#!/bin/sh
# Stops and restarts the boot node around a backup, so its databases are closed while backup.sh reads them,
# with one backup at a time and a guaranteed restart. Both rest on the Lease $LEASE (created by the chart):
# spec.holderIdentity is the backup pod that holds it, and the annotation iotex.io/bootnode-stopped says
# whether that holder has scaled the boot node to 0. A holder is alive while its pod exists and is Pending
# or Running; a pod that was killed (deadline, eviction, OOM, deletion) is not, whatever it left behind.
#   bootnode-scale.sh acquire  take the Lease for POD_NAME, or refuse (exit 1) while a live backup holds it
#                              (a scheduled and a manual run never overlap; nothing is stopped on refusal)
#   bootnode-scale.sh stop     mark the Lease "stopped", scale the StatefulSet to 0 and poll (every
#                              POLL_SECONDS, at most STOP_TIMEOUT s) until its pod is gone; on timeout, or if
#                              the pod cannot be read, scale it back to 1, release, and fail
#   bootnode-scale.sh start    scale back to 1 (bounded retries), release the Lease, exit with backup.sh's status
#   bootnode-scale.sh guard    (the backup-guard CronJob) if the Lease says a backup stopped the boot node and
#                              that backup's pod is no longer alive, restart the boot node and release the Lease
# Every Lease write is a merge patch carrying the resourceVersion just read: two writers racing get a
# Conflict instead of both winning.
set -u
log() { printf '%s bootnode-scale: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
sts="${BOOTNODE_STS:?BOOTNODE_STS is not set}"
lease="${LEASE:?LEASE is not set}"
timeout="${STOP_TIMEOUT:-300}"
poll="${POLL_SECONDS:-5}"
me="${POD_NAME:-}"

scale() {
  n=1
  while [ "$n" -le 5 ]; do
    kubectl scale statefulset "$sts" --replicas="$1" && return 0
    log "scale to $1 failed (try $n/5)"; sleep 5; n=$((n + 1))
  done
  return 1
}

# Sets rv, holder, stopped from the Lease; fails if it cannot be read (then nobody may assume anything).
read_lease() {
  out="$(kubectl get lease "$lease" -o jsonpath='{.metadata.resourceVersion}|{.spec.holderIdentity}|{.metadata.annotations.iotex\.io/bootnode-stopped}')" \
    || { log "cannot read Lease $lease"; return 1; }
  rv="${out%%|*}"; rest="${out#*|}"; holder="${rest%%|*}"; stopped="${rest#*|}"
  [ -n "$rv" ] || { log "Lease $lease has no resourceVersion"; return 1; }
}

# Alive: the pod exists and is Pending or Running (a terminating pod counts until it is gone: it may
# still be writing). An API error counts as alive: never take over on a guess.
alive() {
  [ -n "$1" ] || return 1
  phase="$(kubectl get pod "$1" --ignore-not-found -o jsonpath='{.status.phase}')" || return 0
  [ "$phase" = Pending ] || [ "$phase" = Running ]
}

# patch_lease JSON-FRAGMENTS: merge patch with the resourceVersion read last (Conflict if it moved).
patch_lease() {
  kubectl patch lease "$lease" --type=merge -p "{\"metadata\":{\"resourceVersion\":\"$rv\"$1}$2}" >/dev/null
}
now() { date -u +%Y-%m-%dT%H:%M:%S.000000Z; }

release() {
  n=1
  while [ "$n" -le 5 ]; do
    read_lease || return 1
    if [ -n "$holder" ] && [ "$holder" != "$1" ]; then log "Lease now held by $holder: leaving it"; return 0; fi
    patch_lease ',"annotations":{"iotex.io/bootnode-stopped":"false"}' ',"spec":{"holderIdentity":null}' && { log "released Lease $lease"; return 0; }
    n=$((n + 1)); sleep 1
  done
  log "could not release Lease $lease"; return 1
}

case "${1:-}" in
  acquire)
    [ -n "$me" ] || { log "POD_NAME is not set"; exit 2; }
    n=1
    while [ "$n" -le 5 ]; do
      read_lease || exit 1
      if [ -n "$holder" ] && [ "$holder" != "$me" ] && alive "$holder"; then
        log "backup $holder holds Lease $lease and is $phase: refusing to run a second backup at the same time (nothing was stopped)"
        exit 1
      fi
      [ -n "$holder" ] && [ "$holder" != "$me" ] && log "taking over Lease $lease from $holder, which is gone (${phase:-deleted})"
      t="$(now)"
      if patch_lease '' ",\"spec\":{\"holderIdentity\":\"$me\",\"acquireTime\":\"$t\",\"renewTime\":\"$t\"}"; then
        log "$me holds Lease $lease"; exit 0
      fi
      log "Lease $lease changed while taking it (try $n/5)"; n=$((n + 1)); sleep 1
    done
    exit 1 ;;
  stop)
    read_lease || exit 1
    [ "$holder" = "$me" ] || { log "$me does not hold Lease $lease (holder: ${holder:-none}): not stopping"; exit 1; }
    # Marked before scaling: if this pod dies from here on, the guard knows the boot node is ours to restart.
    patch_lease ',"annotations":{"iotex.io/bootnode-stopped":"true"}' ",\"spec\":{\"renewTime\":\"$(now)\"}" \
      || { log "could not mark Lease $lease: not stopping"; exit 1; }
    log "stopping $sts"
    if ! scale 0; then scale 1; release "$me"; exit 1; fi
    waited=0
    while :; do
      if ! pod="$(kubectl get pod "$sts-0" --ignore-not-found -o name)"; then
        log "cannot read pod $sts-0: restarting the boot node, no backup this time"
        scale 1; release "$me"; exit 1
      fi
      [ -z "$pod" ] && break
      if [ "$waited" -ge "$timeout" ]; then
        log "$sts-0 did not stop within ${timeout}s: restarting it, no backup this time"
        scale 1; release "$me"; exit 1
      fi
      sleep "$poll"
      waited=$((waited + poll))
    done
    log "$sts-0 stopped" ;;
  start)
    log "starting $sts"
    scale 1 || { log "could not restart $sts: the backup-guard CronJob will retry (the Lease stays marked)"; exit 1; }
    release "$me"
    status="$(cat "${STATUS_FILE:?}" 2>/dev/null || echo 1)"
    log "backup status: $status"
    exit "$status" ;;
  guard)
    read_lease || exit 1
    [ "$stopped" = true ] || { log "no backup has the boot node stopped"; exit 0; }
    if alive "$holder"; then log "backup $holder is $phase and has the boot node stopped: leaving it"; exit 0; fi
    log "backup ${holder:-?} stopped $sts and is gone (${phase:-deleted}): restarting the boot node"
    # Take the Lease first (Conflict = a new backup just took it over and will restart the node itself).
    patch_lease '' ',"spec":{"holderIdentity":"backup-guard"}' || { log "Lease $lease changed meanwhile: leaving it"; exit 0; }
    scale 1 || exit 1
    release backup-guard || exit 1
    log "$sts restarted" ;;
  *) echo "usage: bootnode-scale.sh acquire|stop|start|guard" >&2; exit 2 ;;
esac
