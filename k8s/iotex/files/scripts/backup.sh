#!/bin/sh
# Snapshots DATA_DIR to $S3_REMOTE/snapshots/<UTC time>.tar.gz, checks what landed (size), then points
# $S3_REMOTE/latest at it ("<name> <sha256> <bytes>") and deletes all but the newest BACKUP_KEEP snapshots.
# Consistency is the caller's job: the backup CronJob stops the boot node first, so its databases are
# closed and nothing writes DATA_DIR while this reads it.
# The pointer only moves after a complete, verified upload; a failed run deletes its partial object and
# leaves `latest` where it was. With STATUS_FILE set, the exit status is written there and the script
# exits 0, so the job's last container always restarts the boot node before reporting the failure.
set -u
log() { printf '%s backup: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

backup() {
  data="${DATA_DIR:?DATA_DIR is not set}"
  remote="${S3_REMOTE:?S3_REMOTE is not set}"
  keep="${BACKUP_KEEP:-3}"
  if [ ! -d "$data" ] || [ -z "$(ls -A "$data")" ]; then
    log "$data is missing or empty: nothing to back up"
    return 1
  fi
  name="$(date -u +%Y%m%dT%H%M%SZ).tar.gz"
  object="$remote/snapshots/$name"
  mkfifo "$work/sha.pipe" "$work/len.pipe"
  sha256sum <"$work/sha.pipe" >"$work/sha" &
  wc -c <"$work/len.pipe" >"$work/len" &
  log "uploading $data to $object"
  { tar -C "$data" -czf - . ; echo $? >"$work/tar.rc"; } \
    | tee "$work/sha.pipe" "$work/len.pipe" \
    | { rclone rcat "$object"; echo $? >"$work/rclone.rc"; }
  wait
  sha="$(cut -d' ' -f1 <"$work/sha")"
  bytes="$(tr -d ' ' <"$work/len")"
  if [ "$(cat "$work/tar.rc")" != 0 ] || [ "$(cat "$work/rclone.rc")" != 0 ]; then
    log "tar exited $(cat "$work/tar.rc"), rclone exited $(cat "$work/rclone.rc"): removing the partial upload"
    rclone deletefile "$object" 2>/dev/null
    return 1
  fi
  remote_bytes="$(rclone lsf --format s "$object" 2>/dev/null)"
  if [ "$remote_bytes" != "$bytes" ]; then
    log "uploaded size ${remote_bytes:-none} != $bytes bytes written: removing it"
    rclone deletefile "$object" 2>/dev/null
    return 1
  fi
  if ! printf '%s %s %s\n' "$name" "$sha" "$bytes" | rclone rcat "$remote/latest"; then
    log "could not update the latest pointer (snapshot $name stays, unreferenced)"
    return 1
  fi
  log "latest -> $name ($bytes bytes, sha256 $sha)"
  # Keep the newest $keep snapshots (names sort by time); `latest` is always among them.
  rclone lsf --files-only "$remote/snapshots/" | sort >"$work/all"
  surplus=$(( $(wc -l <"$work/all") - keep ))
  [ "$surplus" -gt 0 ] || return 0
  head -n "$surplus" "$work/all" | while read -r old; do
    log "deleting old snapshot $old"
    rclone deletefile "$remote/snapshots/$old" || log "could not delete $old (kept)"
  done
  return 0
}

backup
status=$?
if [ -n "${STATUS_FILE:-}" ]; then
  echo "$status" >"$STATUS_FILE"
  exit 0
fi
exit "$status"
